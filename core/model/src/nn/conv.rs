//! The convolutional encoder and decoder (Noda's original OSCN net).
//!
//! Encoder: `[H, W, C]` image -> Conv(C -> 32 -> 64 -> 128, kernel 4, stride 2, padding 1, ReLU)
//! -> two conv heads `128 -> latent` whose kernel covers the remaining map (4x4 for 32x32), giving
//! a 1x1 output. Decoder: ConvTranspose(latent -> 128, kernel = that map, stride 1, padding 0),
//! then ConvTranspose(128 -> 64 -> 32 -> C, 4, 2, 1) with ReLU between and a clamped sigmoid.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::relu;
use burn::tensor::module::conv_transpose2d;
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{backend::Backend, Tensor};

use super::im2col::{self, Geometry};
use super::{sigmoid_clamped, Decoder, Encoder, EncoderOutput, ScaleActivation, SigmoidLogits};
use rensou_api::{Error, Result};

/// Output size of a convolution.
pub(super) fn conv_out(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    (size + 2 * padding)
        .checked_sub(kernel)
        .map(|d| d / stride + 1)
}

/// Output size of a transposed convolution (no output padding).
pub(super) fn conv_transpose_out(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Option<usize> {
    ((size - 1) * stride + kernel).checked_sub(2 * padding)
}

/// Sizes after each of `layers` stride convolutions of `size`, checked so that the mirrored
/// transposed convolutions give back exactly `size`; the error completes "size ...".
pub(super) fn stride_sizes(
    size: usize,
    layers: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> std::result::Result<Vec<usize>, String> {
    let mut out = vec![size];
    for _ in 0..layers {
        let last = *out.last().unwrap_or(&size);
        match conv_out(last, kernel, stride, padding) {
            Some(s) if s >= 1 => out.push(s),
            _ => {
                return Err(format!(
                    "{size} is too small for {layers} convolutions (kernel {kernel}, stride \
                     {stride}, padding {padding})"
                ))
            }
        }
    }
    // The decoder mirrors the encoder; it must land on the same sizes.
    let mut back = *out.last().unwrap_or(&size);
    for expected in out.iter().rev().skip(1) {
        back = conv_transpose_out(back, kernel, stride, padding).unwrap_or(0);
        if back != *expected {
            return Err(format!(
                "{size} does not survive the conv/deconv round trip ({expected} becomes {back}); \
                 use sizes divisible by stride^layers"
            ));
        }
    }
    Ok(out)
}

/// Configuration of [`ConvEncoder`] (and, through [`decoder`](Self::decoder), of the mirrored
/// [`ConvDecoder`]).
#[derive(Config, Debug)]
pub struct ConvEncoderConfig {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Image channels (3 for RGB).
    pub image_channels: usize,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Output channels of the stride convolutions.
    #[config(default = "vec![32, 64, 128]")]
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

impl ConvEncoderConfig {
    /// Spatial sizes `(heights, widths)` after each stride convolution, checked so that the
    /// mirrored decoder gives back exactly `height x width`. `field` names the config in errors.
    pub fn check(&self, field: &str) -> Result<(Vec<usize>, Vec<usize>)> {
        let err = |msg: String| Error::config(field, msg);
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err(err("`channels` must be non-empty and each >= 1".into()));
        }
        if self.kernel == 0 || self.stride == 0 {
            return Err(err("`kernel` and `stride` must be >= 1".into()));
        }
        if self.height == 0 || self.width == 0 || self.image_channels == 0 || self.latent_dim == 0 {
            return Err(err(
                "image size, channels and latent dim must be >= 1".into()
            ));
        }
        let sizes = |size: usize| {
            stride_sizes(
                size,
                self.channels.len(),
                self.kernel,
                self.stride,
                self.padding,
            )
            .map_err(|e| err(format!("image size {e} (e.g. 32x32 for 3 layers)")))
        };
        Ok((sizes(self.height)?, sizes(self.width)?))
    }

    fn head_kernel(&self) -> [usize; 2] {
        match self.check("net") {
            Ok((h, w)) => [*h.last().unwrap_or(&1), *w.last().unwrap_or(&1)],
            Err(_) => [1, 1],
        }
    }

    /// Builds the encoder. Call [`check`](Self::check) first; sizes that fail it give a net
    /// whose forward pass panics on shape mismatch.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ConvEncoder<B> {
        let mut convs = Vec::with_capacity(self.channels.len());
        let mut c_in = self.image_channels;
        for &c in &self.channels {
            convs.push(
                Conv2dConfig::new([c_in, c], [self.kernel, self.kernel])
                    .with_stride([self.stride, self.stride])
                    .with_padding(PaddingConfig2d::Explicit(
                        self.padding,
                        self.padding,
                        self.padding,
                        self.padding,
                    ))
                    .init(device),
            );
            c_in = c;
        }
        let head = self.head_kernel();
        ConvEncoder {
            convs,
            loc: Conv2dConfig::new([c_in, self.latent_dim], head).init(device),
            scale: Conv2dConfig::new([c_in, self.latent_dim], head).init(device),
            scale_activation: self.scale_activation,
            scale_eps: self.scale_eps,
            height: self.height,
            width: self.width,
            image_channels: self.image_channels,
            latent_dim: self.latent_dim,
        }
    }

    /// The mirrored decoder's configuration.
    pub fn decoder(&self) -> ConvDecoderConfig {
        ConvDecoderConfig::new(
            self.height,
            self.width,
            self.image_channels,
            self.latent_dim,
        )
        .with_channels(self.channels.clone())
        .with_kernel(self.kernel)
        .with_stride(self.stride)
        .with_padding(self.padding)
        .with_clamp_eps(self.scale_eps)
    }
}

/// Convolutional encoder.
#[derive(Module, Debug)]
pub struct ConvEncoder<B: Backend> {
    /// Stride convolutions, each followed by ReLU.
    pub convs: Vec<Conv2d<B>>,
    /// Location head (kernel = remaining map, output 1x1).
    pub loc: Conv2d<B>,
    /// Scale head.
    pub scale: Conv2d<B>,
    /// Scale activation.
    pub scale_activation: ScaleActivation,
    /// Added to the scale.
    pub scale_eps: f64,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Image channels.
    pub image_channels: usize,
    /// Latent dimension.
    pub latent_dim: usize,
}

impl<B: Backend> ConvEncoder<B> {
    /// The geometries of the stride convolutions and of the heads on `batch` channels-last
    /// images, when the host convolutions serve this backend and fit the layers.
    fn host_geometries(&self, batch: usize) -> Option<Vec<Geometry>> {
        if !im2col::host_available::<B>() {
            return None;
        }
        let (mut h, mut w) = (self.height, self.width);
        let mut out = Vec::with_capacity(self.convs.len() + 1);
        for conv in self.convs.iter().chain([&self.loc]) {
            let g = im2col::conv2d_geometry(conv, batch, h, w)?;
            (h, w) = (g.small_h, g.small_w);
            out.push(g);
        }
        let same_heads =
            im2col::conv2d_geometry(&self.scale, batch, out.last()?.big_h, out.last()?.big_w)
                == out.last().copied();
        (same_heads && (h, w) == (1, 1)).then_some(out)
    }

    /// [`Encoder::forward`] on channels-last rows (the images' own HWC order, no permute):
    /// each convolution is `im2col(h) @ W` ([`im2col`]).
    fn forward_channels_last(&self, x: Tensor<B, 2>, geometries: &[Geometry]) -> EncoderOutput<B> {
        let batch = x.dims()[0];
        let mut h = x.reshape([batch * self.height * self.width, self.image_channels]); // [batch*H*W, C]
        for (conv, g) in self.convs.iter().zip(geometries) {
            h = relu(im2col::conv2d(conv, h, g)); // [batch*H_i*W_i, c_i]
        }
        let head = geometries[geometries.len() - 1];
        let loc = im2col::conv2d(&self.loc, h.clone(), &head); // [batch, latent]
        let raw = im2col::conv2d(&self.scale, h, &head); // [batch, latent]
        let scale = self.scale_activation.apply(raw, self.scale_eps); // [batch, latent]
        EncoderOutput { loc, scale }
    }
}

impl<B: Backend> Encoder<B> for ConvEncoder<B> {
    /// # Shapes
    /// - `x`: `[batch, H * W * C]` (HWC row-major)
    /// - output: `loc`, `scale` each `[batch, latent_dim]`
    fn forward(&self, x: Tensor<B, 2>) -> EncoderOutput<B> {
        let batch = x.dims()[0];
        match self.host_geometries(batch) {
            Some(geometries) => self.forward_channels_last(x, &geometries),
            None => self.forward_channels_first(x),
        }
    }
    fn input_dim(&self) -> usize {
        self.height * self.width * self.image_channels
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

impl<B: Backend> ConvEncoder<B> {
    /// [`Encoder::forward`] through burn's convolutions on `[batch, C, H, W]` maps.
    fn forward_channels_first(&self, x: Tensor<B, 2>) -> EncoderOutput<B> {
        let batch = x.dims()[0];
        let mut h = x
            .reshape([batch, self.height, self.width, self.image_channels]) // [batch, H, W, C]
            .permute([0, 3, 1, 2]); // [batch, C, H, W]
        for conv in &self.convs {
            h = relu(conv.forward(h)); // [batch, c_i, H_i, W_i]
        }
        let loc = self
            .loc
            .forward(h.clone())
            .reshape([batch, self.latent_dim]); // [batch, latent]
        let raw = self.scale.forward(h).reshape([batch, self.latent_dim]); // [batch, latent]
        let scale = self.scale_activation.apply(raw, self.scale_eps); // [batch, latent]
        EncoderOutput { loc, scale }
    }
}

/// Configuration of [`ConvDecoder`]; usually made by [`ConvEncoderConfig::decoder`].
#[derive(Config, Debug)]
pub struct ConvDecoderConfig {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Image channels.
    pub image_channels: usize,
    /// Latent dimension.
    pub latent_dim: usize,
    /// The encoder's channels (the decoder runs them backwards).
    #[config(default = "vec![32, 64, 128]")]
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
    /// Output clamp `[clamp_eps, 1 - clamp_eps]`.
    #[config(default = 1e-6)]
    pub clamp_eps: f64,
}

impl ConvDecoderConfig {
    fn encoder(&self) -> ConvEncoderConfig {
        ConvEncoderConfig::new(
            self.height,
            self.width,
            self.image_channels,
            self.latent_dim,
        )
        .with_channels(self.channels.clone())
        .with_kernel(self.kernel)
        .with_stride(self.stride)
        .with_padding(self.padding)
    }

    /// Checks sizes (see [`ConvEncoderConfig::check`]).
    pub fn check(&self, field: &str) -> Result<()> {
        self.encoder().check(field).map(|_| ())
    }

    /// Builds the decoder. Call [`check`](Self::check) first.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ConvDecoder<B> {
        let head = self.encoder().head_kernel();
        let top = *self.channels.last().unwrap_or(&self.image_channels);
        let input = ConvTranspose2dConfig::new([self.latent_dim, top], head).init(device);
        let mut deconvs = Vec::with_capacity(self.channels.len());
        let mut c_in = top;
        for i in (0..self.channels.len()).rev() {
            let c_out = if i == 0 {
                self.image_channels
            } else {
                self.channels[i - 1]
            };
            deconvs.push(
                ConvTranspose2dConfig::new([c_in, c_out], [self.kernel, self.kernel])
                    .with_stride([self.stride, self.stride])
                    .with_padding([self.padding, self.padding])
                    .init(device),
            );
            c_in = c_out;
        }
        ConvDecoder {
            input,
            deconvs,
            clamp_eps: self.clamp_eps,
            height: self.height,
            width: self.width,
            image_channels: self.image_channels,
            latent_dim: self.latent_dim,
        }
    }
}

/// Convolutional decoder.
#[derive(Module, Debug)]
pub struct ConvDecoder<B: Backend> {
    /// Latent `[latent, 1, 1]` to the smallest feature map.
    pub input: ConvTranspose2d<B>,
    /// Upsampling transposed convolutions; ReLU between, clamped sigmoid after the last.
    pub deconvs: Vec<ConvTranspose2d<B>>,
    /// Output clamp.
    pub clamp_eps: f64,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Image channels.
    pub image_channels: usize,
    /// Latent dimension.
    pub latent_dim: usize,
}

/// A transposed convolution whose bias is added as a broadcast rather than inside the op:
/// burn's in-op bias has a backward that transposes the whole `[n, C, H, W]` output gradient
/// (a strided copy) before summing it; the broadcast add's backward sums contiguous rows. Same
/// parameters, same function.
///
/// # Shapes
/// - `x`: `[n, c_in, h, w]`; output: `[n, c_out, h_out, w_out]`
fn deconv<B: Backend>(layer: &ConvTranspose2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let options = ConvTransposeOptions::new(
        layer.stride,
        layer.padding,
        layer.padding_out,
        layer.dilation,
        layer.groups,
    );
    let out = conv_transpose2d(x, layer.weight.val(), None, options); // [n, c_out, h, w]
    match &layer.bias {
        Some(bias) => {
            let [n, c, h, w] = out.dims();
            // One bias value per (item, channel) row: the per-row broadcast CPU backends run
            // vectorised (a [1, C, 1, 1] broadcast takes a strided scalar loop).
            let bias = bias
                .val() // [c_out]
                .reshape([1, c])
                .expand([n, c])
                .reshape([n * c, 1]); // [n*c_out, 1]
            out.reshape([n * c, h * w]).add(bias).reshape([n, c, h, w])
        }
        None => out,
    }
}

impl<B: Backend> ConvDecoder<B> {
    /// The transposed convolutions in order (the input layer first).
    fn layers(&self) -> impl Iterator<Item = &ConvTranspose2d<B>> {
        [&self.input].into_iter().chain(&self.deconvs)
    }

    /// The geometries of the transposed convolutions on `n` latents, when the host
    /// convolutions serve this backend and fit the layers.
    fn host_geometries(&self, n: usize) -> Option<Vec<Geometry>> {
        if !im2col::host_available::<B>() {
            return None;
        }
        let (mut h, mut w) = (1, 1);
        let mut out = Vec::with_capacity(self.deconvs.len() + 1);
        for layer in self.layers() {
            let g = im2col::conv_transpose2d_geometry(layer, n, h, w)?;
            (h, w) = (g.big_h, g.big_w);
            out.push(g);
        }
        ((h, w) == (self.height, self.width)).then_some(out)
    }

    /// The decoder up to its last transposed convolution, on channels-last rows: each layer is
    /// `col2im(h @ W)` ([`im2col`]), and the output is already in the items' HWC order.
    ///
    /// # Shapes
    /// - `z`: `[n, latent]` (the 1x1 input map, channels last)
    /// - output: `[n, H * W * C]`
    fn pre_sigmoid_channels_last(&self, z: Tensor<B, 2>, geometries: &[Geometry]) -> Tensor<B, 2> {
        let n = z.dims()[0];
        let last = geometries.len().saturating_sub(1);
        let mut h = z;
        for (i, (layer, g)) in self.layers().zip(geometries).enumerate() {
            h = im2col::conv_transpose2d(layer, h, g); // [n*h_i*w_i, c_i]
            if i < last {
                h = relu(h);
            }
        }
        h.reshape([n, self.height * self.width * self.image_channels])
    }

    /// The decoder up to its last transposed convolution (before the sigmoid).
    ///
    /// # Shapes
    /// - `z`: `[n, latent]`
    /// - output: `[n, C, H, W]`
    fn pre_sigmoid(&self, z: Tensor<B, 2>) -> Tensor<B, 4> {
        let n = z.dims()[0];
        let mut h = relu(deconv(&self.input, z.reshape([n, self.latent_dim, 1, 1]))); // [n, c_top, h_0, w_0]
        let last = self.deconvs.len().saturating_sub(1);
        for (i, layer) in self.deconvs.iter().enumerate() {
            h = deconv(layer, h); // [n, c_i, h_i, w_i]
            if i < last {
                h = relu(h);
            }
        }
        h // [n, C, H, W]
    }
}

impl<B: Backend> Decoder<B> for ConvDecoder<B> {
    /// # Shapes
    /// - `z`: `[n, latent_dim]`
    /// - output: `[n, H * W * C]` (HWC row-major)
    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = z.dims()[0];
        if let Some(geometries) = self.host_geometries(n) {
            let logits = self.pre_sigmoid_channels_last(z, &geometries); // [n, H*W*C]
            return sigmoid_clamped(logits, self.clamp_eps);
        }
        sigmoid_clamped(self.pre_sigmoid(z), self.clamp_eps) // [n, C, H, W]
            .permute([0, 2, 3, 1]) // [n, H, W, C]
            .reshape([n, self.height * self.width * self.image_channels]) // [n, H*W*C]
    }
    /// With the host convolutions the logits come out channels last, in the items' order; with
    /// burn's they stay in the convolutions' `(C, H, W)` order (no transposed copy of the
    /// `[n, C, H, W]` output and of its gradient) and the likelihood permutes the data instead.
    fn forward_logits(&self, z: Tensor<B, 2>) -> Option<SigmoidLogits<B>> {
        let n = z.dims()[0];
        if let Some(geometries) = self.host_geometries(n) {
            return Some(SigmoidLogits {
                logits: self.pre_sigmoid_channels_last(z, &geometries), // [n, H*W*C]
                eps: self.clamp_eps,
                chw: None,
            });
        }
        let logits = self
            .pre_sigmoid(z) // [n, C, H, W]
            .reshape([n, self.height * self.width * self.image_channels]); // [n, C*H*W]
        Some(SigmoidLogits {
            logits,
            eps: self.clamp_eps,
            chw: Some([self.height, self.width, self.image_channels]),
        })
    }
    fn output_dim(&self) -> usize {
        self.height * self.width * self.image_channels
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    use crate::nn::test_util::{assert_close, assert_same_grad, values, Ad, Inner};

    /// An odd image (24 x 16, 2 channels, channels 5-7-6) so that no size coincides.
    fn config() -> ConvEncoderConfig {
        ConvEncoderConfig::new(24, 16, 2, 3).with_channels(vec![5, 7, 6])
    }

    /// The channels-last host path computes what burn's convolutions compute, values and every
    /// parameter's gradient, for the decoder.
    #[test]
    fn host_decoder_matches_burn_convolutions() {
        crate::nn::install_host_kernels::<Inner>();
        let device = Default::default();
        let cfg = config();
        let decoder = cfg.decoder().init::<Ad>(&device);
        let n = 5;
        let z = Tensor::<Ad, 2>::random([n, 3], Distribution::Normal(0.0, 1.0), &device);
        let geometries = decoder.host_geometries(n).expect("host path available");
        let host = decoder.pre_sigmoid_channels_last(z.clone(), &geometries); // [n, H*W*C]
        let burn_path = decoder
            .pre_sigmoid(z) // [n, C, H, W]
            .permute([0, 2, 3, 1])
            .reshape([n, 24 * 16 * 2]);
        assert_close(
            &values(host.clone().inner()),
            &values(burn_path.clone().inner()),
            1e-4,
            "values",
        );
        // A weighted sum, so every output position carries a different gradient.
        let w = Tensor::<Ad, 2>::random([n, 24 * 16 * 2], Distribution::Normal(0.0, 1.0), &device);
        let g_host = (host * w.clone()).sum().backward();
        let g_burn = (burn_path * w).sum().backward();
        for (i, layer) in decoder.layers().enumerate() {
            let what = format!("layer {i} weight grad");
            assert_same_grad(&layer.weight, &g_host, &g_burn, &what);
            let bias = layer.bias.as_ref().expect("bias");
            assert_same_grad(bias, &g_host, &g_burn, &format!("layer {i} bias grad"));
        }
    }

    /// The same for the encoder, including the gradient with respect to its input.
    #[test]
    fn host_encoder_matches_burn_convolutions() {
        crate::nn::install_host_kernels::<Inner>();
        let device = Default::default();
        let encoder = config().init::<Ad>(&device);
        let batch = 4;
        let x = Tensor::<Ad, 2>::random([batch, 24 * 16 * 2], Distribution::Default, &device)
            .require_grad();
        let geometries = encoder.host_geometries(batch).expect("host path available");
        let host = encoder.forward_channels_last(x.clone(), &geometries);
        let burn_path = encoder.forward_channels_first(x.clone());
        for (a, b, what) in [
            (host.loc.clone(), burn_path.loc.clone(), "loc"),
            (host.scale.clone(), burn_path.scale.clone(), "scale"),
        ] {
            assert_close(&values(a.inner()), &values(b.inner()), 1e-4, what);
        }
        let w = Tensor::<Ad, 2>::random([batch, 3], Distribution::Normal(0.0, 1.0), &device);
        let g_host = (host.loc * w.clone() + host.scale.log()).sum().backward();
        let g_burn = (burn_path.loc * w + burn_path.scale.log()).sum().backward();
        let grad_x = |g| values(x.grad(g).expect("input grad"));
        assert_close(&grad_x(&g_host), &grad_x(&g_burn), 1e-4, "input grad");
        for (i, conv) in encoder
            .convs
            .iter()
            .chain([&encoder.loc, &encoder.scale])
            .enumerate()
        {
            assert_same_grad(
                &conv.weight,
                &g_host,
                &g_burn,
                &format!("conv {i} weight grad"),
            );
        }
    }
}
