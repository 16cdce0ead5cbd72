//! Nets built from a plugin's [`Layer`] list ([`NetDesign`]): shape inference, the burn
//! modules, and the encoder / decoder that wrap them.

use burn::module::Module;
use burn::nn::conv::{
    Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, ConvTranspose1d, ConvTranspose1dConfig,
    ConvTranspose2d, ConvTranspose2dConfig,
};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d, PaddingConfig2d};
use burn::tensor::activation::{gelu, relu, tanh};
use burn::tensor::{backend::Backend, Tensor};

use super::conv::{conv_out, conv_transpose_out};
use super::{sigmoid_clamped, Decoder, Encoder, EncoderOutput, ScaleActivation, SigmoidLogits};
use rensou_api::net::Layer;
use rensou_api::{Error, Result};

/// Per-item shapes after each layer, starting with `input`; errors name `field` and the layer.
pub fn infer_shapes(field: &str, layers: &[Layer], input: &[usize]) -> Result<Vec<Vec<usize>>> {
    let mut shapes = vec![input.to_vec()];
    for (i, layer) in layers.iter().enumerate() {
        let cur = shapes.last().cloned().unwrap_or_default();
        let err = |msg: String| Error::config(format!("{field}.layers[{i}]"), msg);
        let count: usize = cur.iter().product();
        let conv = |out: usize, kernel: usize, stride: usize, padding: usize, transposed: bool| {
            if out == 0 || kernel == 0 || stride == 0 {
                return Err(err("`out`, `kernel` and `stride` must be >= 1".into()));
            }
            let size = move |s: usize| {
                if transposed {
                    conv_transpose_out(s, kernel, stride, padding)
                } else {
                    conv_out(s, kernel, stride, padding)
                }
                .filter(|&o| o >= 1)
                .ok_or_else(|| err(format!("size {s} is too small for kernel {kernel}")))
            };
            Ok((out, size))
        };
        let next = match layer {
            Layer::Linear { out } => {
                if *out == 0 || cur.is_empty() {
                    return Err(err(format!("needs out >= 1 and an input, got {cur:?}")));
                }
                let mut s = cur.clone();
                if let Some(last) = s.last_mut() {
                    *last = *out;
                }
                s
            }
            Layer::Conv1d {
                out,
                kernel,
                stride,
                padding,
            }
            | Layer::ConvTranspose1d {
                out,
                kernel,
                stride,
                padding,
            } => {
                let transposed = matches!(layer, Layer::ConvTranspose1d { .. });
                let (out, size) = conv(*out, *kernel, *stride, *padding, transposed)?;
                match cur.as_slice() {
                    [_, l] => vec![out, size(*l)?],
                    other => return Err(err(format!("needs a [C, L] input, got {other:?}"))),
                }
            }
            Layer::Conv2d {
                out,
                kernel,
                stride,
                padding,
            }
            | Layer::ConvTranspose2d {
                out,
                kernel,
                stride,
                padding,
            } => {
                let transposed = matches!(layer, Layer::ConvTranspose2d { .. });
                let (out, size) = conv(*out, *kernel, *stride, *padding, transposed)?;
                match cur.as_slice() {
                    [_, h, w] => vec![out, size(*h)?, size(*w)?],
                    other => return Err(err(format!("needs a [C, H, W] input, got {other:?}"))),
                }
            }
            Layer::Relu | Layer::Tanh | Layer::Gelu => cur.clone(),
            Layer::Reshape { shape } => {
                if shape.is_empty() || shape.len() > 3 || shape.iter().product::<usize>() != count {
                    return Err(err(format!(
                        "cannot reshape {cur:?} ({count} values) to {shape:?} (1 to 3 axes, same \
                         number of values)"
                    )));
                }
                shape.clone()
            }
            Layer::Permute { axes } => {
                let mut sorted = axes.clone();
                sorted.sort_unstable();
                if !(2..=3).contains(&cur.len()) || sorted != (0..cur.len()).collect::<Vec<_>>() {
                    return Err(err(format!(
                        "axes {axes:?} are not a permutation of {cur:?}'s 2 or 3 axes"
                    )));
                }
                axes.iter().map(|&a| cur[a]).collect()
            }
            Layer::Flatten => vec![count],
        };
        if next.len() > 3 {
            return Err(err(format!(
                "items of more than 3 axes are not supported: {next:?}"
            )));
        }
        shapes.push(next);
    }
    Ok(shapes)
}

/// The parameters of a layer list on `input` (for memory estimates).
pub fn layer_parameters(layers: &[Layer], input: &[usize]) -> u64 {
    let Ok(shapes) = infer_shapes("net", layers, input) else {
        return 0;
    };
    layers
        .iter()
        .zip(&shapes)
        .map(|(layer, shape)| {
            let c_in = shape.first().copied().unwrap_or(1) as u64;
            let last = shape.last().copied().unwrap_or(1) as u64;
            match layer {
                Layer::Linear { out } => (last + 1) * *out as u64,
                Layer::Conv1d { out, kernel, .. } | Layer::ConvTranspose1d { out, kernel, .. } => {
                    c_in * *out as u64 * *kernel as u64 + *out as u64
                }
                Layer::Conv2d { out, kernel, .. } | Layer::ConvTranspose2d { out, kernel, .. } => {
                    c_in * *out as u64 * (*kernel as u64).pow(2) + *out as u64
                }
                _ => 0,
            }
        })
        .sum()
}

/// The activations per item of a layer list (for memory estimates).
pub fn layer_units(layers: &[Layer], input: &[usize]) -> u64 {
    infer_shapes("net", layers, input)
        .map(|s| {
            s.iter()
                .skip(1)
                .map(|x| x.iter().product::<usize>() as u64)
                .sum()
        })
        .unwrap_or(0)
}

/// A layer with parameters.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ParamLayer<B: Backend> {
    /// [`Layer::Linear`].
    Linear(Linear<B>),
    /// [`Layer::Conv1d`].
    Conv1d(Conv1d<B>),
    /// [`Layer::Conv2d`].
    Conv2d(Conv2d<B>),
    /// [`Layer::ConvTranspose1d`].
    ConvTranspose1d(ConvTranspose1d<B>),
    /// [`Layer::ConvTranspose2d`].
    ConvTranspose2d(ConvTranspose2d<B>),
}

/// A batch of items of 1 to 3 axes.
enum Batch<B: Backend> {
    R2(Tensor<B, 2>),
    R3(Tensor<B, 3>),
    R4(Tensor<B, 4>),
}

impl<B: Backend> Batch<B> {
    fn reshape(self, n: usize, item: &[usize]) -> Self {
        let flat = match self {
            Batch::R2(t) => t.reshape([n as i32, -1]),
            Batch::R3(t) => t.reshape([n as i32, -1]),
            Batch::R4(t) => t.reshape([n as i32, -1]),
        };
        match item {
            [a, b] => Batch::R3(flat.reshape([n, *a, *b])),
            [a, b, c] => Batch::R4(flat.reshape([n, *a, *b, *c])),
            _ => Batch::R2(flat),
        }
    }

    fn map(
        self,
        f2: impl Fn(Tensor<B, 2>) -> Tensor<B, 2>,
        f3: impl Fn(Tensor<B, 3>) -> Tensor<B, 3>,
        f4: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Self {
        match self {
            Batch::R2(t) => Batch::R2(f2(t)),
            Batch::R3(t) => Batch::R3(f3(t)),
            Batch::R4(t) => Batch::R4(f4(t)),
        }
    }
}

/// A plugin's layer list as a burn module.
#[derive(Module, Debug)]
pub struct LayerStack<B: Backend> {
    /// The layers with parameters, in order.
    pub params: Vec<ParamLayer<B>>,
    /// The whole list (parameter layers are taken from `params` in order).
    #[module(skip)]
    pub layers: Vec<Layer>,
    /// Per-item shapes before each layer and after the last.
    #[module(skip)]
    pub shapes: Vec<Vec<usize>>,
}

impl<B: Backend> LayerStack<B> {
    /// Builds the layers for per-item `input`; errors name `field`.
    pub fn new(field: &str, layers: &[Layer], input: &[usize], device: &B::Device) -> Result<Self> {
        let shapes = infer_shapes(field, layers, input)?;
        let mut params = Vec::new();
        for (layer, shape) in layers.iter().zip(&shapes) {
            let c_in = shape.first().copied().unwrap_or(1);
            let last = shape.last().copied().unwrap_or(1);
            params.push(match *layer {
                Layer::Linear { out } => {
                    ParamLayer::Linear(LinearConfig::new(last, out).init(device))
                }
                Layer::Conv1d {
                    out,
                    kernel,
                    stride,
                    padding,
                } => ParamLayer::Conv1d(
                    Conv1dConfig::new(c_in, out, kernel)
                        .with_stride(stride)
                        .with_padding(PaddingConfig1d::Explicit(padding, padding))
                        .init(device),
                ),
                Layer::Conv2d {
                    out,
                    kernel,
                    stride,
                    padding,
                } => ParamLayer::Conv2d(
                    Conv2dConfig::new([c_in, out], [kernel, kernel])
                        .with_stride([stride, stride])
                        .with_padding(PaddingConfig2d::Explicit(
                            padding, padding, padding, padding,
                        ))
                        .init(device),
                ),
                Layer::ConvTranspose1d {
                    out,
                    kernel,
                    stride,
                    padding,
                } => ParamLayer::ConvTranspose1d(
                    ConvTranspose1dConfig::new([c_in, out], kernel)
                        .with_stride(stride)
                        .with_padding(padding)
                        .init(device),
                ),
                Layer::ConvTranspose2d {
                    out,
                    kernel,
                    stride,
                    padding,
                } => ParamLayer::ConvTranspose2d(
                    ConvTranspose2dConfig::new([c_in, out], [kernel, kernel])
                        .with_stride([stride, stride])
                        .with_padding([padding, padding])
                        .init(device),
                ),
                _ => continue,
            });
        }
        Ok(LayerStack {
            params,
            layers: layers.to_vec(),
            shapes,
        })
    }

    /// Values per item of the output.
    pub fn output_len(&self) -> usize {
        self.shapes.last().map_or(0, |s| s.iter().product())
    }

    /// Runs the layers on `[n, input values]` (item order) and returns `[n, output values]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let input = self.shapes.first().cloned().unwrap_or_default();
        let mut h = Batch::R2(x).reshape(n, &input);
        let mut params = self.params.iter();
        for (layer, shape) in self.layers.iter().zip(self.shapes.iter().skip(1)) {
            h = match layer {
                Layer::Linear { .. } => match params.next() {
                    Some(ParamLayer::Linear(l)) => {
                        h.map(|t| l.forward(t), |t| l.forward(t), |t| l.forward(t))
                    }
                    _ => h,
                },
                Layer::Conv1d { .. } | Layer::ConvTranspose1d { .. } => match (h, params.next()) {
                    (Batch::R3(t), Some(ParamLayer::Conv1d(c))) => Batch::R3(c.forward(t)),
                    (Batch::R3(t), Some(ParamLayer::ConvTranspose1d(c))) => Batch::R3(c.forward(t)),
                    (other, _) => other,
                },
                Layer::Conv2d { .. } | Layer::ConvTranspose2d { .. } => match (h, params.next()) {
                    (Batch::R4(t), Some(ParamLayer::Conv2d(c))) => Batch::R4(c.forward(t)),
                    (Batch::R4(t), Some(ParamLayer::ConvTranspose2d(c))) => Batch::R4(c.forward(t)),
                    (other, _) => other,
                },
                Layer::Relu => h.map(relu, relu, relu),
                Layer::Tanh => h.map(tanh, tanh, tanh),
                Layer::Gelu => h.map(gelu, gelu, gelu),
                Layer::Reshape { .. } | Layer::Flatten => h.reshape(n, shape),
                Layer::Permute { axes } => match h {
                    Batch::R3(t) => Batch::R3(t.permute([0, axes[0] + 1, axes[1] + 1])),
                    Batch::R4(t) => {
                        Batch::R4(t.permute([0, axes[0] + 1, axes[1] + 1, axes[2] + 1]))
                    }
                    other => other,
                },
            };
        }
        let out = self.output_len();
        match h {
            Batch::R2(t) => t.reshape([n, out]),
            Batch::R3(t) => t.reshape([n, out]),
            Batch::R4(t) => t.reshape([n, out]),
        }
    }
}

/// An encoder from a plugin's layers, flattened into two linear heads.
#[derive(Module, Debug)]
pub struct LayerEncoder<B: Backend> {
    /// The plugin's layers.
    pub body: LayerStack<B>,
    /// Location head.
    pub loc: Linear<B>,
    /// Scale head.
    pub scale: Linear<B>,
    /// Added to the scale.
    pub scale_eps: f64,
    /// Latent dimension.
    pub latent_dim: usize,
}

impl<B: Backend> LayerEncoder<B> {
    /// Builds it for items of `item_shape`; errors name `field`.
    pub fn new(
        field: &str,
        layers: &[Layer],
        item_shape: &[usize],
        latent_dim: usize,
        eps: f64,
        device: &B::Device,
    ) -> Result<Self> {
        let body = LayerStack::new(&format!("{field}.encoder"), layers, item_shape, device)?;
        let flat = body.output_len();
        Ok(LayerEncoder {
            loc: LinearConfig::new(flat, latent_dim).init(device),
            scale: LinearConfig::new(flat, latent_dim).init(device),
            body,
            scale_eps: eps,
            latent_dim,
        })
    }
}

impl<B: Backend> Encoder<B> for LayerEncoder<B> {
    /// # Shapes
    /// - `x`: `[batch, item values]`; output: `loc`, `scale` each `[batch, latent_dim]`
    fn forward(&self, x: Tensor<B, 2>) -> EncoderOutput<B> {
        let h = self.body.forward(x); // [batch, flat]
        EncoderOutput {
            loc: self.loc.forward(h.clone()),
            scale: ScaleActivation::Softmax.apply(self.scale.forward(h), self.scale_eps),
        }
    }
    fn input_dim(&self) -> usize {
        self.body.shapes.first().map_or(0, |s| s.iter().product())
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

/// A decoder from a plugin's layers, with the clamped sigmoid after them.
#[derive(Module, Debug)]
pub struct LayerDecoder<B: Backend> {
    /// The plugin's layers, from `[latent_dim]` to the item's values.
    pub body: LayerStack<B>,
    /// Output clamp.
    pub clamp_eps: f64,
    /// Latent dimension.
    pub latent_dim: usize,
}

impl<B: Backend> LayerDecoder<B> {
    /// Builds it for items of `item_shape`; errors name `field` (also when the layers do not end
    /// in as many values as an item has).
    pub fn new(
        field: &str,
        layers: &[Layer],
        item_shape: &[usize],
        latent_dim: usize,
        eps: f64,
        device: &B::Device,
    ) -> Result<Self> {
        let field = format!("{field}.decoder");
        let body = LayerStack::new(&field, layers, &[latent_dim], device)?;
        let want: usize = item_shape.iter().product();
        if body.output_len() != want {
            return Err(Error::config(
                field,
                format!(
                    "the layers end in {:?} ({} values) but an item {item_shape:?} has {want}",
                    body.shapes.last().cloned().unwrap_or_default(),
                    body.output_len()
                ),
            ));
        }
        Ok(LayerDecoder {
            body,
            clamp_eps: eps,
            latent_dim,
        })
    }
}

impl<B: Backend> Decoder<B> for LayerDecoder<B> {
    /// # Shapes
    /// - `z`: `[n, latent_dim]`; output: `[n, item values]` (item order)
    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        sigmoid_clamped(self.body.forward(z), self.clamp_eps)
    }
    fn forward_logits(&self, z: Tensor<B, 2>) -> Option<SigmoidLogits<B>> {
        Some(SigmoidLogits {
            logits: self.body.forward(z),
            eps: self.clamp_eps,
            chw: None,
        })
    }
    fn output_dim(&self) -> usize {
        self.body.output_len()
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = burn::backend::Autodiff<burn_flex::Flex>;

    fn conv2d(out: usize) -> Layer {
        Layer::Conv2d {
            out,
            kernel: 4,
            stride: 2,
            padding: 1,
        }
    }

    #[test]
    fn shapes_follow_the_layers_and_misfits_name_the_layer() {
        let layers = [
            Layer::Permute {
                axes: vec![2, 0, 1],
            },
            conv2d(8),
            Layer::Relu,
            conv2d(16),
            Layer::Flatten,
            Layer::Linear { out: 10 },
        ];
        let shapes = infer_shapes("m.net", &layers, &[32, 32, 3]).unwrap();
        assert_eq!(shapes[1], vec![3, 32, 32]);
        assert_eq!(shapes[2], vec![8, 16, 16]);
        assert_eq!(shapes[4], vec![16, 8, 8]);
        assert_eq!(shapes[6], vec![10]);
        // A 2-D convolution on the stored [H, W, C] order is fine shape-wise only after the
        // permute; on a flat vector it is an error that names the layer.
        let e = infer_shapes("m.net", &[Layer::Flatten, conv2d(8)], &[4, 4, 3]).unwrap_err();
        assert!(e.to_string().contains("m.net.layers[1]"), "{e}");
        let e = infer_shapes("m.net", &[Layer::Reshape { shape: vec![5] }], &[2, 3]).unwrap_err();
        assert!(e.to_string().contains("cannot reshape"), "{e}");
        let e = infer_shapes("m.net", &[Layer::Permute { axes: vec![0, 0] }], &[2, 3]).unwrap_err();
        assert!(e.to_string().contains("not a permutation"), "{e}");
    }

    #[test]
    fn a_layer_net_encodes_and_decodes_images_in_item_order() {
        let device = Default::default();
        let enc_layers = [
            Layer::Permute {
                axes: vec![2, 0, 1],
            },
            conv2d(4),
            Layer::Gelu,
            Layer::Flatten,
        ];
        let dec_layers = [
            Layer::Linear { out: 4 * 4 * 4 },
            Layer::Relu,
            Layer::Reshape {
                shape: vec![4, 4, 4],
            },
            Layer::ConvTranspose2d {
                out: 3,
                kernel: 4,
                stride: 2,
                padding: 1,
            },
            Layer::Permute {
                axes: vec![1, 2, 0],
            },
        ];
        let enc = LayerEncoder::<B>::new("net", &enc_layers, &[8, 8, 3], 5, 1e-6, &device).unwrap();
        let dec = LayerDecoder::<B>::new("net", &dec_layers, &[8, 8, 3], 5, 1e-6, &device).unwrap();
        assert_eq!(enc.body.params.len(), 1);
        let x = Tensor::<B, 2>::ones([2, 8 * 8 * 3], &device);
        let out = enc.forward(x);
        assert_eq!(out.loc.dims(), [2, 5]);
        let scale: Vec<f32> = out.scale.into_data().to_vec().unwrap();
        assert!(scale.iter().all(|&s| s > 0.0));
        let y = dec.forward(out.loc);
        assert_eq!(y.dims(), [2, 8 * 8 * 3]);
        // Decoder layers that do not end in an item's values are refused.
        let e = LayerDecoder::<B>::new("net", &dec_layers[..3], &[8, 8, 3], 5, 1e-6, &device)
            .unwrap_err();
        assert!(e.to_string().contains("an item [8, 8, 3] has 192"), "{e}");
    }
}
