//! The 1-D convolutional encoder and decoder, for signals and spectrograms.
//!
//! Items are `[C, L]` (the first axis is channels, the second time: a log-mel spectrogram stored
//! `[mels, frames]` is 32 channels of 64 frames) or `[L]` (one channel); row-major, so the
//! flattened item is already the channel-major layout the convolutions use and no permutation
//! is needed either way. Encoder: Conv1d(C -> 64 -> 128 -> 128, kernel 4, stride 2, padding 1,
//! ReLU) -> flatten -> two linear heads to the latent. Decoder: linear latent -> the smallest
//! map, ReLU, then ConvTranspose1d back to `[C, L]` (ReLU between, clamped sigmoid after).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig, ConvTranspose1d, ConvTranspose1dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{backend::Backend, Tensor};

use super::conv::stride_sizes;
use super::{sigmoid_clamped, Decoder, Encoder, EncoderOutput, ScaleActivation, SigmoidLogits};
use rensou_api::{Error, Result};

/// Configuration of [`Conv1dEncoder`] and, through [`decoder`](Self::decoder), of the mirrored
/// [`Conv1dDecoder`].
#[derive(Config, Debug)]
pub struct Conv1dEncoderConfig {
    /// Input channels (`C` of `[C, L]`; 1 for `[L]` items).
    pub in_channels: usize,
    /// Signal length (`L`).
    pub length: usize,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Output channels of the stride convolutions.
    #[config(default = "vec![64, 128, 128]")]
    pub channels: Vec<usize>,
    /// Kernel size.
    #[config(default = 4)]
    pub kernel: usize,
    /// Stride.
    #[config(default = 2)]
    pub stride: usize,
    /// Padding.
    #[config(default = 1)]
    pub padding: usize,
    /// Scale activation.
    #[config(default = "ScaleActivation::Softmax")]
    pub scale_activation: ScaleActivation,
    /// Added to the scale; also the decoder's output clamp.
    #[config(default = 1e-6)]
    pub scale_eps: f64,
}

impl Conv1dEncoderConfig {
    /// The config for items of `item_shape` (`[C, L]` or `[L]`); `field` names the net in errors.
    pub fn for_items(field: &str, item_shape: &[usize], latent_dim: usize) -> Result<Self> {
        let (c, l) = match item_shape {
            [c, l] => (*c, *l),
            [l] => (1, *l),
            other => {
                return Err(Error::config(
                    field,
                    format!("conv1d needs items of shape [C, L] or [L], got {other:?}"),
                ))
            }
        };
        Ok(Conv1dEncoderConfig::new(c, l, latent_dim))
    }

    /// Lengths after each stride convolution, checked so that the mirrored decoder gives back
    /// exactly `length`. `field` names the config in errors.
    pub fn check(&self, field: &str) -> Result<Vec<usize>> {
        let err = |msg: String| Error::config(field, msg);
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err(err("`channels` must be non-empty and each >= 1".into()));
        }
        if self.kernel == 0 || self.stride == 0 {
            return Err(err("`kernel` and `stride` must be >= 1".into()));
        }
        if self.length == 0 || self.in_channels == 0 || self.latent_dim == 0 {
            return Err(err("length, channels and latent dim must be >= 1".into()));
        }
        let sizes = stride_sizes(
            self.length,
            self.channels.len(),
            self.kernel,
            self.stride,
            self.padding,
        )
        .map_err(|e| err(format!("length {e} (e.g. 64 for 3 layers)")))?;
        Ok(sizes)
    }

    /// The smallest map's length (after the last convolution).
    fn bottom(&self) -> usize {
        self.check("net")
            .ok()
            .and_then(|s| s.last().copied())
            .unwrap_or(1)
    }

    fn conv(&self, c_in: usize, c_out: usize) -> Conv1dConfig {
        Conv1dConfig::new(c_in, c_out, self.kernel)
            .with_stride(self.stride)
            .with_padding(PaddingConfig1d::Explicit(self.padding, self.padding))
    }

    /// Builds the encoder. Call [`check`](Self::check) first; sizes that fail it give a net
    /// whose forward pass panics on shape mismatch.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Conv1dEncoder<B> {
        let mut convs = Vec::with_capacity(self.channels.len());
        let mut c_in = self.in_channels;
        for &c in &self.channels {
            convs.push(self.conv(c_in, c).init(device));
            c_in = c;
        }
        let flat = c_in * self.bottom();
        Conv1dEncoder {
            convs,
            loc: LinearConfig::new(flat, self.latent_dim).init(device),
            scale: LinearConfig::new(flat, self.latent_dim).init(device),
            scale_activation: self.scale_activation,
            scale_eps: self.scale_eps,
            in_channels: self.in_channels,
            length: self.length,
            latent_dim: self.latent_dim,
        }
    }

    /// Builds the mirrored decoder.
    pub fn init_decoder<B: Backend>(&self, device: &B::Device) -> Conv1dDecoder<B> {
        let top = *self.channels.last().unwrap_or(&1);
        let bottom = self.bottom();
        // Channels back down: c_k -> c_{k-1} -> ... -> c_1 -> C.
        let mut outs: Vec<usize> = self.channels.iter().rev().skip(1).copied().collect();
        outs.push(self.in_channels);
        let mut deconvs = Vec::with_capacity(outs.len());
        let mut c_in = top;
        for c in outs {
            deconvs.push(
                ConvTranspose1dConfig::new([c_in, c], self.kernel)
                    .with_stride(self.stride)
                    .with_padding(self.padding)
                    .init(device),
            );
            c_in = c;
        }
        Conv1dDecoder {
            input: LinearConfig::new(self.latent_dim, top * bottom).init(device),
            deconvs,
            clamp_eps: self.scale_eps,
            top_channels: top,
            bottom,
            in_channels: self.in_channels,
            length: self.length,
            latent_dim: self.latent_dim,
        }
    }
}

/// 1-D convolutional encoder.
#[derive(Module, Debug)]
pub struct Conv1dEncoder<B: Backend> {
    /// Stride convolutions, each followed by ReLU.
    pub convs: Vec<Conv1d<B>>,
    /// Location head on the flattened last map.
    pub loc: Linear<B>,
    /// Scale head.
    pub scale: Linear<B>,
    /// Scale activation.
    pub scale_activation: ScaleActivation,
    /// Added to the scale.
    pub scale_eps: f64,
    /// Input channels.
    pub in_channels: usize,
    /// Signal length.
    pub length: usize,
    /// Latent dimension.
    pub latent_dim: usize,
}

impl<B: Backend> Encoder<B> for Conv1dEncoder<B> {
    /// # Shapes
    /// - `x`: `[batch, C * L]` (channel-major, as `[C, L]` items are stored)
    /// - output: `loc`, `scale` each `[batch, latent_dim]`
    fn forward(&self, x: Tensor<B, 2>) -> EncoderOutput<B> {
        let batch = x.dims()[0];
        let mut h = x.reshape([batch, self.in_channels, self.length]); // [batch, C, L]
        for conv in &self.convs {
            h = relu(conv.forward(h)); // [batch, c_i, l_i]
        }
        let [_, c, l] = h.dims();
        let flat = h.reshape([batch, c * l]); // [batch, c_k * l_k]
        EncoderOutput {
            loc: self.loc.forward(flat.clone()), // [batch, latent]
            scale: self
                .scale_activation
                .apply(self.scale.forward(flat), self.scale_eps), // [batch, latent]
        }
    }
    fn input_dim(&self) -> usize {
        self.in_channels * self.length
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

/// 1-D convolutional decoder.
#[derive(Module, Debug)]
pub struct Conv1dDecoder<B: Backend> {
    /// Latent to the smallest map (`top_channels x bottom`), followed by ReLU.
    pub input: Linear<B>,
    /// Upsampling transposed convolutions; ReLU between, clamped sigmoid after the last.
    pub deconvs: Vec<ConvTranspose1d<B>>,
    /// Output clamp.
    pub clamp_eps: f64,
    /// Channels of the smallest map.
    pub top_channels: usize,
    /// Length of the smallest map.
    pub bottom: usize,
    /// Output channels.
    pub in_channels: usize,
    /// Signal length.
    pub length: usize,
    /// Latent dimension.
    pub latent_dim: usize,
}

impl<B: Backend> Conv1dDecoder<B> {
    /// The logits, `[n, C * L]` in item order.
    fn logits(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = z.dims()[0];
        let mut h = relu(self.input.forward(z)).reshape([n, self.top_channels, self.bottom]); // [n, c_k, l_k]
        let last = self.deconvs.len().saturating_sub(1);
        for (i, layer) in self.deconvs.iter().enumerate() {
            h = layer.forward(h); // [n, c_i, l_i]
            if i < last {
                h = relu(h);
            }
        }
        h.reshape([n, self.in_channels * self.length]) // [n, C*L]
    }
}

impl<B: Backend> Decoder<B> for Conv1dDecoder<B> {
    /// # Shapes
    /// - `z`: `[n, latent_dim]`
    /// - output: `[n, C * L]` (item order)
    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        sigmoid_clamped(self.logits(z), self.clamp_eps)
    }
    fn forward_logits(&self, z: Tensor<B, 2>) -> Option<SigmoidLogits<B>> {
        Some(SigmoidLogits {
            logits: self.logits(z),
            eps: self.clamp_eps,
            chw: None,
        })
    }
    fn output_dim(&self) -> usize {
        self.in_channels * self.length
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = burn::backend::Autodiff<burn_flex::Flex>;

    #[test]
    fn spectrogram_shapes_round_trip() {
        let device = Default::default();
        let config = Conv1dEncoderConfig::for_items("net", &[32, 64], 20).unwrap();
        assert_eq!(config.check("net").unwrap(), vec![64, 32, 16, 8]);
        let enc = config.init::<B>(&device);
        let dec = config.init_decoder::<B>(&device);
        let x = Tensor::<B, 2>::ones([3, 32 * 64], &device).mul_scalar(0.5);
        let out = enc.forward(x);
        assert_eq!(out.loc.dims(), [3, 20]);
        assert_eq!(out.scale.dims(), [3, 20]);
        let y = dec.forward(out.loc);
        assert_eq!(y.dims(), [3, 32 * 64]);
        let v: Vec<f32> = y.into_data().to_vec().unwrap();
        assert!(v.iter().all(|&p| p > 0.0 && p < 1.0));
        // The logits are the sigmoid's input, in item order.
        let z = Tensor::<B, 2>::zeros([2, 20], &device);
        let logits = dec.forward_logits(z.clone()).unwrap();
        assert!(logits.chw.is_none());
        let a: Vec<f32> = sigmoid_clamped(logits.logits, logits.eps)
            .into_data()
            .to_vec()
            .unwrap();
        let b: Vec<f32> = dec.forward(z).into_data().to_vec().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn lengths_that_do_not_round_trip_and_bad_shapes_are_refused() {
        let e = Conv1dEncoderConfig::new(1, 30, 4)
            .check("m.net")
            .unwrap_err();
        assert!(e.to_string().contains("round trip"), "{e}");
        let e = Conv1dEncoderConfig::new(1, 2, 4)
            .check("m.net")
            .unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        let e = Conv1dEncoderConfig::for_items("m.net", &[4, 4, 3], 4).unwrap_err();
        assert!(e.to_string().contains("[C, L] or [L]"), "{e}");
    }
}
