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
use super::im2col::{self, Geometry};
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
        match self.host_geometries(x.dims()[0]) {
            Some(geometries) => self.forward_channels_last(x, &geometries),
            None => self.forward_channels_first(x),
        }
    }
    fn input_dim(&self) -> usize {
        self.in_channels * self.length
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

impl<B: Backend> Conv1dEncoder<B> {
    /// The geometries of the convolutions on `batch` channels-last signals, when the host
    /// convolutions serve this backend and fit the layers.
    fn host_geometries(&self, batch: usize) -> Option<Vec<Geometry>> {
        if !im2col::host_available::<B>() {
            return None;
        }
        let mut len = self.length;
        let mut out = Vec::with_capacity(self.convs.len());
        for conv in &self.convs {
            let g = im2col::conv1d_geometry(conv, batch, len)?;
            len = g.small_w;
            out.push(g);
        }
        Some(out)
    }

    /// [`Encoder::forward`] with the convolutions on channels-last rows `[batch * l, c]`
    /// ([`im2col`]); the heads see the last map in its `(c, l)` order, as on the other path.
    fn forward_channels_last(&self, x: Tensor<B, 2>, geometries: &[Geometry]) -> EncoderOutput<B> {
        let batch = x.dims()[0];
        let mut h = x
            .reshape([batch, self.in_channels, self.length]) // [batch, C, L]
            .permute([0, 2, 1]) // [batch, L, C]
            .reshape([batch * self.length, self.in_channels]); // [batch*L, C]
        let (mut c, mut l) = (self.in_channels, self.length);
        for (conv, g) in self.convs.iter().zip(geometries) {
            h = relu(im2col::conv1d(conv, h, g)); // [batch*l_i, c_i]
            (c, l) = (conv.weight.dims()[0], g.small_w);
        }
        let flat = h
            .reshape([batch, l, c])
            .permute([0, 2, 1]) // [batch, c_k, l_k]
            .reshape([batch, c * l]);
        EncoderOutput {
            loc: self.loc.forward(flat.clone()), // [batch, latent]
            scale: self
                .scale_activation
                .apply(self.scale.forward(flat), self.scale_eps), // [batch, latent]
        }
    }

    /// [`Encoder::forward`] through burn's convolutions on `[batch, C, L]` signals.
    fn forward_channels_first(&self, x: Tensor<B, 2>) -> EncoderOutput<B> {
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
    /// The geometries of the transposed convolutions on `n` latents, when the host
    /// convolutions serve this backend and fit the layers.
    fn host_geometries(&self, n: usize) -> Option<Vec<Geometry>> {
        if !im2col::host_available::<B>() {
            return None;
        }
        let mut len = self.bottom;
        let mut out = Vec::with_capacity(self.deconvs.len());
        for layer in &self.deconvs {
            let g = im2col::conv_transpose1d_geometry(layer, n, len)?;
            len = g.big_w;
            out.push(g);
        }
        (len == self.length).then_some(out)
    }

    /// The logits with the transposed convolutions on channels-last rows ([`im2col`]):
    /// `[n, L * C]`, in `(L, C)` order.
    fn logits_channels_last(&self, z: Tensor<B, 2>, geometries: &[Geometry]) -> Tensor<B, 2> {
        let n = z.dims()[0];
        let mut h = relu(self.input.forward(z))
            .reshape([n, self.top_channels, self.bottom])
            .permute([0, 2, 1]) // [n, l_k, c_k]
            .reshape([n * self.bottom, self.top_channels]);
        let last = geometries.len().saturating_sub(1);
        for (i, (layer, g)) in self.deconvs.iter().zip(geometries).enumerate() {
            h = im2col::conv_transpose1d(layer, h, g); // [n*l_i, c_i]
            if i < last {
                h = relu(h);
            }
        }
        h.reshape([n, self.length * self.in_channels]) // [n, L*C]
    }

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
        let n = z.dims()[0];
        if let Some(geometries) = self.host_geometries(n) {
            return sigmoid_clamped(self.logits_channels_last(z, &geometries), self.clamp_eps)
                .reshape([n, self.length, self.in_channels])
                .permute([0, 2, 1]) // [n, C, L]
                .reshape([n, self.in_channels * self.length]);
        }
        sigmoid_clamped(self.logits(z), self.clamp_eps)
    }
    /// With the host convolutions the logits come in `(L, C)` order, which `chw` states as
    /// `[1, C, L]` items with `(L, 1, C)` logits, so the likelihood permutes the (smaller)
    /// data instead of the logits; else in the items' own `(C, L)` order.
    fn forward_logits(&self, z: Tensor<B, 2>) -> Option<SigmoidLogits<B>> {
        if let Some(geometries) = self.host_geometries(z.dims()[0]) {
            return Some(SigmoidLogits {
                logits: self.logits_channels_last(z, &geometries),
                eps: self.clamp_eps,
                chw: Some([1, self.in_channels, self.length]),
            });
        }
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
        let mut a = sigmoid_clamped(logits.logits, logits.eps);
        if let Some([h, w, c]) = logits.chw {
            // Logits in (C, H, W) order for items in (H, W, C) order: back to the items'.
            a = a
                .reshape([2, c, h, w])
                .permute([0, 2, 3, 1])
                .reshape([2, h * w * c]);
        }
        let a: Vec<f32> = a.into_data().to_vec().unwrap();
        let b: Vec<f32> = dec.forward(z).into_data().to_vec().unwrap();
        assert_eq!(a, b);
    }

    /// The channels-last host path computes what burn's 1-D convolutions compute: values,
    /// the input gradient and every parameter's gradient, encoder and decoder.
    #[test]
    fn host_path_matches_burn_convolutions() {
        use crate::nn::test_util::{assert_close, assert_same_grad, values};
        use burn::tensor::Distribution;
        crate::nn::install_host_kernels::<burn_flex::Flex>();
        let device = Default::default();
        let config = Conv1dEncoderConfig::for_items("net", &[3, 16], 4).unwrap();
        let enc = config.init::<B>(&device);
        let dec = config.init_decoder::<B>(&device);
        let (batch, n) = (3, 5);
        let x =
            Tensor::<B, 2>::random([batch, 3 * 16], Distribution::Default, &device).require_grad();
        let geometries = enc.host_geometries(batch).expect("host encoder path");
        let host = enc.forward_channels_last(x.clone(), &geometries);
        let burn_path = enc.forward_channels_first(x.clone());
        assert_close(
            &values(host.loc.clone().inner()),
            &values(burn_path.loc.clone().inner()),
            1e-4,
            "loc",
        );
        let g_host = (host.loc.sum() + host.scale.log().sum()).backward();
        let g_burn = (burn_path.loc.sum() + burn_path.scale.log().sum()).backward();
        let grad_x = |g| values(x.grad(g).expect("input grad"));
        assert_close(&grad_x(&g_host), &grad_x(&g_burn), 1e-4, "input grad");
        for (i, conv) in enc.convs.iter().enumerate() {
            assert_same_grad(&conv.weight, &g_host, &g_burn, &format!("conv {i}"));
        }

        let z = Tensor::<B, 2>::random([n, 4], Distribution::Normal(0.0, 1.0), &device);
        let geometries = dec.host_geometries(n).expect("host decoder path");
        let host = dec
            .logits_channels_last(z.clone(), &geometries) // [n, L*C]
            .reshape([n, 16, 3])
            .permute([0, 2, 1])
            .reshape([n, 3 * 16]);
        let burn_path = dec.logits(z); // [n, C*L]
        assert_close(
            &values(host.clone().inner()),
            &values(burn_path.clone().inner()),
            1e-4,
            "logits",
        );
        let w = Tensor::<B, 2>::random([n, 3 * 16], Distribution::Normal(0.0, 1.0), &device);
        let g_host = (host * w.clone()).sum().backward();
        let g_burn = (burn_path * w).sum().backward();
        for (i, layer) in dec.deconvs.iter().enumerate() {
            assert_same_grad(&layer.weight, &g_host, &g_burn, &format!("deconv {i}"));
            let bias = layer.bias.as_ref().expect("bias");
            assert_same_grad(bias, &g_host, &g_burn, &format!("deconv {i} bias"));
        }
        assert_same_grad(&dec.input.weight, &g_host, &g_burn, "input layer");
    }

    /// Forward + backward of the audio decoder (spectrogram items [32, 64], latent 20) on
    /// 2 560 latents (M*K*B for 2 modalities, K = 20, batch 64), burn's convolutions against
    /// the channels-last path, interleaved. Run by hand:
    /// `RAYON_NUM_THREADS=2 cargo test --release -p rensou-model --lib decoder_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn decoder_speed() {
        use burn::tensor::Distribution;
        use std::time::Instant;
        crate::nn::install_host_kernels::<burn_flex::Flex>();
        let device = Default::default();
        let config = Conv1dEncoderConfig::for_items("net", &[32, 64], 20).unwrap();
        let dec = config.init_decoder::<B>(&device);
        let n = 2560;
        let z = Tensor::<B, 2>::random([n, 20], Distribution::Normal(0.0, 1.0), &device);
        let geometries = dec.host_geometries(n).expect("host path");
        let time = |f: &dyn Fn() -> Tensor<B, 2>| {
            let start = Instant::now();
            let _ = f().sum().backward();
            start.elapsed().as_secs_f64()
        };
        for round in 1..=3 {
            let burn_s = time(&|| dec.logits(z.clone()));
            let host_s = time(&|| dec.logits_channels_last(z.clone(), &geometries));
            println!(
                "round {round}: burn {burn_s:.3} s, channels last {host_s:.3} s, x{:.2}",
                burn_s / host_s
            );
        }
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
