//! Networks: the [`Encoder`] and [`Decoder`] extension points and the built-in nets.
//!
//! Items travel through the model as rows of a float tensor `[batch, features]`, `features`
//! being the product of the item shape, in the row-major order items are stored in (for images
//! `[H, W, C]`, i.e. HWC). A net that needs structure (the convolutional nets) reshapes and
//! permutes internally. Values are expected in `[0, 1]` for the built-in sigmoid decoders.
//!
//! Built-ins, each a `#[derive(Module)]` struct beside its `#[derive(Config)]` config:
//! - [`MlpEncoder`] / [`MlpDecoder`]: the paper's MLPs (hidden 400 x 4, ReLU).
//! - [`ConvEncoder`] / [`ConvDecoder`]: Noda's OSCN CNN (Conv 3->32->64->128, k4 s2 p1).
//! - [`Conv1dEncoder`] / [`Conv1dDecoder`]: 1-D convolutions over time for `[C, L]` signals and
//!   spectrograms (the audio modality's default).
//!
//! [`AnyEncoder`] / [`AnyDecoder`] wrap the built-ins and the nets of registered net plugins
//! ([`LayerEncoder`] / [`LayerDecoder`], built from a plugin's `rensou_api::net::Layer` list),
//! so one model can mix architectures per modality and every one of them trains, checkpoints
//! and resumes from the binary; [`NetConfig`] is their serialisable description in an
//! experiment file. Below the binary, any [`Encoder`] / [`Decoder`] implementation can also be
//! passed to [`Mmvae::from_parts`](crate::mmvae::Mmvae::from_parts).
//!
//! Everything about nets is found from here: how a user names one ([`NetSpec`], [`NetChoice`]:
//! `net = "conv"` or a table), its resolved description ([`NetConfig`]), the built-ins above, a
//! modality's suggestion ([`NetKind`]) and the plugin API ([`NetDesign`], [`NetPlugin`],
//! [`Layer`], defined in `rensou-api` so that a plugin crate needs no burn).

mod choice;
mod conv;
mod conv1d;
mod fused;
mod host;
mod im2col;
mod layers;
mod mlp;
#[cfg(test)]
mod test_util;

pub use choice::{NetChoice, NetSpec};
pub use conv::{ConvDecoder, ConvDecoderConfig, ConvEncoder, ConvEncoderConfig};
pub use conv1d::{Conv1dDecoder, Conv1dEncoder, Conv1dEncoderConfig};
pub(crate) use fused::likelihood_sum;
pub use fused::{install_host_kernels, sigmoid_likelihood_sum, SigmoidLikelihood};
pub use layers::{
    infer_shapes, layer_parameters, layer_units, LayerDecoder, LayerEncoder, LayerStack, ParamLayer,
};
pub use mlp::{MlpDecoder, MlpDecoderConfig, MlpEncoder, MlpEncoderConfig};
pub use rensou_api::modality::NetKind;
pub use rensou_api::net::{Layer, NetDesign, NetPlugin};

use burn::config::Config;
use burn::module::{Module, ModuleDisplay};
use burn::tensor::activation::{softmax, softplus};
use burn::tensor::{backend::Backend, BasicOps, Element, Tensor};
use serde::{Deserialize, Serialize};

use rensou_api::net::net_type_name;
use rensou_api::{Error, Result};

/// What an encoder returns: the parameters of the posterior `q(z | x)`.
#[derive(Clone, Debug)]
pub struct EncoderOutput<B: Backend> {
    /// Location, `[batch, latent]`.
    pub loc: Tensor<B, 2>,
    /// Scale (positive), `[batch, latent]`.
    pub scale: Tensor<B, 2>,
}

/// Maps items of one modality to posterior parameters.
///
/// Implement it on a `#[derive(Module)]` struct (the derive provides `ModuleDisplay`).
pub trait Encoder<B: Backend>: Module<B> + ModuleDisplay {
    /// Encodes a batch of flattened items.
    ///
    /// # Shapes
    /// - `x`: `[batch, input_dim]` (row-major flattening of `[batch, ...item_shape]`)
    /// - output: `loc`, `scale` each `[batch, latent_dim]`
    fn forward(&self, x: Tensor<B, 2>) -> EncoderOutput<B>;
    /// Number of input features (product of the item shape).
    fn input_dim(&self) -> usize;
    /// Latent dimension.
    fn latent_dim(&self) -> usize;
}

/// Maps latents to the location of the likelihood `p(x | z)` of one modality.
pub trait Decoder<B: Backend>: Module<B> + ModuleDisplay {
    /// Decodes a batch of latents.
    ///
    /// # Shapes
    /// - `z`: `[n, latent_dim]`
    /// - output: `[n, output_dim]` (row-major flattening of `[n, ...item_shape]`)
    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2>;
    /// Number of output features (product of the item shape).
    fn output_dim(&self) -> usize;
    /// Latent dimension.
    fn latent_dim(&self) -> usize;
    /// For a decoder whose output is `clamp(sigmoid(h), eps, 1 - eps)`: `h` and `eps`, so the
    /// likelihood can be fused with the sigmoid ([`sigmoid_likelihood_sum`]). The default,
    /// `None`, makes the model use [`forward`](Self::forward) as the likelihood location.
    ///
    /// # Shapes
    /// - `z`: `[n, latent_dim]`
    /// - output logits: `[n, output_dim]`, such that `forward(z)` is their clamped sigmoid
    fn forward_logits(&self, z: Tensor<B, 2>) -> Option<SigmoidLogits<B>> {
        let _ = z;
        None
    }
}

/// The pre-sigmoid output of a decoder ([`Decoder::forward_logits`]).
#[derive(Clone, Debug)]
pub struct SigmoidLogits<B: Backend> {
    /// Logits `h`, `[n, output_dim]`.
    pub logits: Tensor<B, 2>,
    /// The output clamp: locations are `clamp(sigmoid(h), eps, 1 - eps)`.
    pub eps: f64,
    /// `Some([H, W, C])` when the logits' features are in `(C, H, W)` order for items stored
    /// as `[H, W, C]` (a convolutional decoder's natural layout); the likelihood then permutes
    /// the data, not the much larger logits. `None`: the items' own order.
    pub chw: Option<[usize; 3]>,
}

/// How an encoder's scale head is made positive (`softmax`, `softplus`, `exp` in configs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleActivation {
    /// `softmax(h) * latent_dim + eps` (the MMVAE reference code; scales sum to `latent_dim`).
    Softmax,
    /// `softplus(h) + eps`.
    Softplus,
    /// `exp(h) + eps`.
    Exp,
}

impl Config for ScaleActivation {}

impl ScaleActivation {
    /// Applies the activation to the raw scale head output.
    ///
    /// # Shapes
    /// - `h`: `[batch, latent]`
    /// - output: `[batch, latent]`
    pub fn apply<B: Backend>(self, h: Tensor<B, 2>, eps: f64) -> Tensor<B, 2> {
        let latent = h.dims()[1] as f64;
        match self {
            ScaleActivation::Softmax => softmax(h, 1).mul_scalar(latent).add_scalar(eps), // [batch, latent]
            ScaleActivation::Softplus => softplus(h, 1.0).add_scalar(eps), // [batch, latent]
            ScaleActivation::Exp => h.exp().add_scalar(eps),               // [batch, latent]
        }
    }
}

/// `sigmoid(h)` clamped to `[eps, 1 - eps]`: the likelihood location of the built-in decoders.
///
/// # Shapes
/// - any `S` to `S`
pub fn sigmoid_clamped<B: Backend, const D: usize>(h: Tensor<B, D>, eps: f64) -> Tensor<B, D> {
    burn::tensor::activation::sigmoid(h).clamp(eps, 1.0 - eps)
}

fn default_mlp_hidden() -> Vec<usize> {
    vec![400; 4]
}
fn default_conv_channels() -> Vec<usize> {
    vec![32, 64, 128]
}
fn default_kernel() -> usize {
    4
}
fn default_stride() -> usize {
    2
}
fn default_padding() -> usize {
    1
}
fn default_scale_activation() -> ScaleActivation {
    ScaleActivation::Softmax
}
fn default_eps() -> f64 {
    1e-6
}

/// The built-in nets, for `rensou list`: name and one line.
pub const BUILT_IN_NETS: [(&str, &str); 3] = [
    (
        "mlp",
        "multi-layer perceptron on the flattened item (the paper's)",
    ),
    (
        "conv2d",
        "2-D convolutions on [H, W, C] images (Noda's OSCN CNN)",
    ),
    (
        "conv1d",
        "1-D convolutions on [C, L] signals and spectrograms",
    ),
];

/// The serialisable choice of a network for one modality (`net = { type = "mlp" }`): a
/// built-in, or a registered net plugin's design (`net = { type = "my-net", ... }`).
///
/// Sizes that depend on the data (input features, image size) and the latent dimension come
/// from the model config; this holds the architecture's own hyper-parameters.
#[derive(Clone, Debug)]
pub enum NetConfig {
    /// Multi-layer perceptron on the flattened item ([`MlpEncoder`], [`MlpDecoder`]).
    Mlp(MlpNet),
    /// 2-D convolutions on `[H, W, C]` images ([`ConvEncoder`], [`ConvDecoder`]).
    Conv2d(Conv2dNet),
    /// 1-D convolutions on `[C, L]` signals ([`Conv1dEncoder`], [`Conv1dDecoder`]).
    Conv1d(Conv1dNet),
    /// A net plugin's layers ([`LayerEncoder`], [`LayerDecoder`]).
    Plugin(Box<dyn NetDesign>),
}

/// The built-ins' serialised form (internally tagged by `type`).
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum BuiltIn {
    Mlp(MlpNet),
    Conv2d(Conv2dNet),
    Conv1d(Conv1dNet),
}

impl Serialize for NetConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            NetConfig::Mlp(n) => BuiltIn::Mlp(n.clone()).serialize(s),
            NetConfig::Conv2d(n) => BuiltIn::Conv2d(n.clone()).serialize(s),
            NetConfig::Conv1d(n) => BuiltIn::Conv1d(n.clone()).serialize(s),
            NetConfig::Plugin(design) => design.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for NetConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(d)?;
        let tag = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if BUILT_IN_NETS.iter().any(|(name, _)| *name == tag) {
            return Ok(
                match serde_json::from_value(value).map_err(D::Error::custom)? {
                    BuiltIn::Mlp(n) => NetConfig::Mlp(n),
                    BuiltIn::Conv2d(n) => NetConfig::Conv2d(n),
                    BuiltIn::Conv1d(n) => NetConfig::Conv1d(n),
                },
            );
        }
        serde_json::from_value::<Box<dyn NetDesign>>(value)
            .map(NetConfig::Plugin)
            .map_err(|e| {
                D::Error::custom(format!(
                    "{e} (built-in nets: {}; plugins: see `rensou list`)",
                    BUILT_IN_NETS.map(|(n, _)| n).join(", ")
                ))
            })
    }
}

impl PartialEq for NetConfig {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (NetConfig::Mlp(a), NetConfig::Mlp(b)) => a == b,
            (NetConfig::Conv2d(a), NetConfig::Conv2d(b)) => a == b,
            (NetConfig::Conv1d(a), NetConfig::Conv1d(b)) => a == b,
            (NetConfig::Plugin(a), NetConfig::Plugin(b)) => {
                serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
            }
            _ => false,
        }
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig::Mlp(MlpNet::default())
    }
}

/// Hyper-parameters of the MLP nets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpNet {
    /// Hidden layer widths, each `Linear + ReLU` (paper: `[400, 400, 400, 400]`); the decoder
    /// uses them in reverse order.
    #[serde(default = "default_mlp_hidden")]
    pub hidden: Vec<usize>,
    /// Encoder scale activation.
    #[serde(default = "default_scale_activation")]
    pub scale_activation: ScaleActivation,
    /// Added to the encoder scale; also the decoder's output clamp `[eps, 1 - eps]`.
    #[serde(default = "default_eps")]
    pub eps: f64,
}

impl Default for MlpNet {
    fn default() -> Self {
        MlpNet {
            hidden: default_mlp_hidden(),
            scale_activation: default_scale_activation(),
            eps: default_eps(),
        }
    }
}

/// Hyper-parameters of the convolutional nets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dNet {
    /// Output channels of each stride convolution (paper: `[32, 64, 128]`); the decoder mirrors
    /// them.
    #[serde(default = "default_conv_channels")]
    pub channels: Vec<usize>,
    /// Kernel size of the stride convolutions (4).
    #[serde(default = "default_kernel")]
    pub kernel: usize,
    /// Stride (2).
    #[serde(default = "default_stride")]
    pub stride: usize,
    /// Padding (1).
    #[serde(default = "default_padding")]
    pub padding: usize,
    /// Encoder scale activation.
    #[serde(default = "default_scale_activation")]
    pub scale_activation: ScaleActivation,
    /// Added to the encoder scale; also the decoder's output clamp `[eps, 1 - eps]`.
    #[serde(default = "default_eps")]
    pub eps: f64,
}

impl Default for Conv2dNet {
    fn default() -> Self {
        Conv2dNet {
            channels: default_conv_channels(),
            kernel: default_kernel(),
            stride: default_stride(),
            padding: default_padding(),
            scale_activation: default_scale_activation(),
            eps: default_eps(),
        }
    }
}

/// Hyper-parameters of the 1-D convolutional nets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv1dNet {
    /// Output channels of each stride convolution (`[64, 128, 128]`); the decoder mirrors them.
    #[serde(default = "default_conv1d_channels")]
    pub channels: Vec<usize>,
    /// Kernel size of the stride convolutions (4).
    #[serde(default = "default_kernel")]
    pub kernel: usize,
    /// Stride (2).
    #[serde(default = "default_stride")]
    pub stride: usize,
    /// Padding (1).
    #[serde(default = "default_padding")]
    pub padding: usize,
    /// Encoder scale activation.
    #[serde(default = "default_scale_activation")]
    pub scale_activation: ScaleActivation,
    /// Added to the encoder scale; also the decoder's output clamp `[eps, 1 - eps]`.
    #[serde(default = "default_eps")]
    pub eps: f64,
}

fn default_conv1d_channels() -> Vec<usize> {
    vec![64, 128, 128]
}

impl Default for Conv1dNet {
    fn default() -> Self {
        Conv1dNet {
            channels: default_conv1d_channels(),
            kernel: default_kernel(),
            stride: default_stride(),
            padding: default_padding(),
            scale_activation: default_scale_activation(),
            eps: default_eps(),
        }
    }
}

impl NetConfig {
    /// The default net of a kind (what a modality's [`Modality::default_net`] asks for).
    ///
    /// [`Modality::default_net`]: rensou_api::Modality::default_net
    pub fn from_kind(kind: NetKind) -> Self {
        match kind {
            NetKind::Mlp => NetConfig::Mlp(MlpNet::default()),
            NetKind::Conv2d => NetConfig::Conv2d(Conv2dNet::default()),
            NetKind::Conv1d => NetConfig::Conv1d(Conv1dNet::default()),
        }
    }

    /// The kind of this net (`None` for a plugin's).
    pub fn kind(&self) -> Option<NetKind> {
        match self {
            NetConfig::Mlp(_) => Some(NetKind::Mlp),
            NetConfig::Conv2d(_) => Some(NetKind::Conv2d),
            NetConfig::Conv1d(_) => Some(NetKind::Conv1d),
            NetConfig::Plugin(_) => None,
        }
    }

    /// The net's name: the built-in's or the plugin's `type`.
    pub fn name(&self) -> String {
        match self {
            NetConfig::Plugin(design) => {
                net_type_name(design.as_ref()).unwrap_or_else(|_| "plugin".into())
            }
            other => other.kind().map_or("unknown", NetKind::as_str).to_owned(),
        }
    }

    /// Checks the hyper-parameters against the item shape and latent dimension; `field` is the
    /// dotted config path used in errors (`model.modalities.oscn.net`).
    pub fn validate(&self, field: &str, item_shape: &[usize], latent_dim: usize) -> Result<()> {
        let input: usize = item_shape.iter().product();
        if input == 0 {
            return Err(Error::config(
                field,
                format!("item shape {item_shape:?} has no elements"),
            ));
        }
        let check_eps = |eps: f64| {
            if eps.is_finite() && (0.0..0.5).contains(&eps) {
                Ok(())
            } else {
                Err(Error::config(
                    format!("{field}.eps"),
                    format!("must be in [0, 0.5), got {eps}"),
                ))
            }
        };
        match self {
            NetConfig::Mlp(net) => {
                check_eps(net.eps)?;
                if net.hidden.contains(&0) {
                    return Err(Error::config(
                        format!("{field}.hidden"),
                        "layer widths must be >= 1",
                    ));
                }
                Ok(())
            }
            NetConfig::Conv2d(net) => {
                check_eps(net.eps)?;
                self.conv_encoder_config(field, item_shape, latent_dim)
                    .map(|_| ())
            }
            NetConfig::Conv1d(net) => {
                check_eps(net.eps)?;
                self.conv1d_config(field, item_shape, latent_dim)
                    .map(|_| ())
            }
            NetConfig::Plugin(design) => {
                design.validate()?;
                check_eps(design.eps())?;
                infer_shapes(
                    &format!("{field}.encoder"),
                    &design.encoder(item_shape, latent_dim)?,
                    item_shape,
                )?;
                let decoder = design.decoder(item_shape, latent_dim)?;
                let shapes = infer_shapes(&format!("{field}.decoder"), &decoder, &[latent_dim])?;
                let out: usize = shapes.last().map_or(0, |s| s.iter().product());
                if out != input {
                    return Err(Error::config(
                        format!("{field}.decoder"),
                        format!(
                            "the layers end in {:?} ({out} values) but an item {item_shape:?} \
                             has {input}",
                            shapes.last().cloned().unwrap_or_default()
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    fn conv1d_config(
        &self,
        field: &str,
        item_shape: &[usize],
        latent_dim: usize,
    ) -> Result<Conv1dEncoderConfig> {
        let NetConfig::Conv1d(net) = self else {
            return Err(Error::config(field, "not a conv1d net"));
        };
        let config = Conv1dEncoderConfig::for_items(field, item_shape, latent_dim)?
            .with_channels(net.channels.clone())
            .with_kernel(net.kernel)
            .with_stride(net.stride)
            .with_padding(net.padding)
            .with_scale_activation(net.scale_activation)
            .with_scale_eps(net.eps);
        config.check(field)?;
        Ok(config)
    }

    fn conv_encoder_config(
        &self,
        field: &str,
        item_shape: &[usize],
        latent_dim: usize,
    ) -> Result<ConvEncoderConfig> {
        let NetConfig::Conv2d(net) = self else {
            return Err(Error::config(field, "not a conv2d net"));
        };
        let [h, w, c] = match item_shape {
            [h, w, c] => [*h, *w, *c],
            [h, w] => [*h, *w, 1],
            other => {
                return Err(Error::config(
                    field,
                    format!("conv2d needs items of shape [H, W, C] or [H, W], got {other:?}"),
                ))
            }
        };
        let config = ConvEncoderConfig::new(h, w, c, latent_dim)
            .with_channels(net.channels.clone())
            .with_kernel(net.kernel)
            .with_stride(net.stride)
            .with_padding(net.padding)
            .with_scale_activation(net.scale_activation)
            .with_scale_eps(net.eps);
        config.check(field)?;
        Ok(config)
    }

    /// Builds the encoder for items of `item_shape` (call [`validate`](Self::validate) first;
    /// this re-checks and errors the same way).
    pub fn init_encoder<B: Backend>(
        &self,
        item_shape: &[usize],
        latent_dim: usize,
        device: &B::Device,
    ) -> Result<AnyEncoder<B>> {
        self.validate("net", item_shape, latent_dim)?;
        let input: usize = item_shape.iter().product();
        Ok(match self {
            NetConfig::Mlp(net) => AnyEncoder::Mlp(
                MlpEncoderConfig::new(input, latent_dim)
                    .with_hidden(net.hidden.clone())
                    .with_scale_activation(net.scale_activation)
                    .with_scale_eps(net.eps)
                    .init(device),
            ),
            NetConfig::Conv2d(_) => AnyEncoder::Conv2d(
                self.conv_encoder_config("net", item_shape, latent_dim)?
                    .init(device),
            ),
            NetConfig::Conv1d(_) => AnyEncoder::Conv1d(
                self.conv1d_config("net", item_shape, latent_dim)?
                    .init(device),
            ),
            NetConfig::Plugin(design) => AnyEncoder::Layers(LayerEncoder::new(
                "net",
                &design.encoder(item_shape, latent_dim)?,
                item_shape,
                latent_dim,
                design.eps(),
                device,
            )?),
        })
    }

    /// Builds the decoder for items of `item_shape`.
    pub fn init_decoder<B: Backend>(
        &self,
        item_shape: &[usize],
        latent_dim: usize,
        device: &B::Device,
    ) -> Result<AnyDecoder<B>> {
        self.validate("net", item_shape, latent_dim)?;
        let output: usize = item_shape.iter().product();
        Ok(match self {
            NetConfig::Mlp(net) => AnyDecoder::Mlp(
                MlpDecoderConfig::new(latent_dim, output)
                    .with_hidden(net.hidden.iter().rev().copied().collect())
                    .with_clamp_eps(net.eps)
                    .init(device),
            ),
            NetConfig::Conv2d(_) => AnyDecoder::Conv2d(
                self.conv_encoder_config("net", item_shape, latent_dim)?
                    .decoder()
                    .init(device),
            ),
            NetConfig::Conv1d(_) => AnyDecoder::Conv1d(
                self.conv1d_config("net", item_shape, latent_dim)?
                    .init_decoder(device),
            ),
            NetConfig::Plugin(design) => AnyDecoder::Layers(LayerDecoder::new(
                "net",
                &design.decoder(item_shape, latent_dim)?,
                item_shape,
                latent_dim,
                design.eps(),
                device,
            )?),
        })
    }
}

/// Any built-in encoder; lets one model use an MLP for one modality and a CNN for another.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AnyEncoder<B: Backend> {
    /// [`MlpEncoder`].
    Mlp(MlpEncoder<B>),
    /// [`ConvEncoder`].
    Conv2d(ConvEncoder<B>),
    /// [`Conv1dEncoder`].
    Conv1d(Conv1dEncoder<B>),
    /// [`LayerEncoder`] (a net plugin's).
    Layers(LayerEncoder<B>),
}

impl<B: Backend> Encoder<B> for AnyEncoder<B> {
    fn forward(&self, x: Tensor<B, 2>) -> EncoderOutput<B> {
        match self {
            AnyEncoder::Mlp(net) => net.forward(x),
            AnyEncoder::Conv2d(net) => net.forward(x),
            AnyEncoder::Conv1d(net) => net.forward(x),
            AnyEncoder::Layers(net) => net.forward(x),
        }
    }
    fn input_dim(&self) -> usize {
        match self {
            AnyEncoder::Mlp(net) => net.input_dim(),
            AnyEncoder::Conv2d(net) => net.input_dim(),
            AnyEncoder::Conv1d(net) => net.input_dim(),
            AnyEncoder::Layers(net) => net.input_dim(),
        }
    }
    fn latent_dim(&self) -> usize {
        match self {
            AnyEncoder::Mlp(net) => Encoder::latent_dim(net),
            AnyEncoder::Conv2d(net) => Encoder::latent_dim(net),
            AnyEncoder::Conv1d(net) => Encoder::latent_dim(net),
            AnyEncoder::Layers(net) => Encoder::latent_dim(net),
        }
    }
}

/// Any built-in decoder.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AnyDecoder<B: Backend> {
    /// [`MlpDecoder`].
    Mlp(MlpDecoder<B>),
    /// [`ConvDecoder`].
    Conv2d(ConvDecoder<B>),
    /// [`Conv1dDecoder`].
    Conv1d(Conv1dDecoder<B>),
    /// [`LayerDecoder`] (a net plugin's).
    Layers(LayerDecoder<B>),
}

impl<B: Backend> Decoder<B> for AnyDecoder<B> {
    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            AnyDecoder::Mlp(net) => net.forward(z),
            AnyDecoder::Conv2d(net) => net.forward(z),
            AnyDecoder::Conv1d(net) => net.forward(z),
            AnyDecoder::Layers(net) => net.forward(z),
        }
    }
    fn output_dim(&self) -> usize {
        match self {
            AnyDecoder::Mlp(net) => net.output_dim(),
            AnyDecoder::Conv2d(net) => net.output_dim(),
            AnyDecoder::Conv1d(net) => net.output_dim(),
            AnyDecoder::Layers(net) => net.output_dim(),
        }
    }
    fn latent_dim(&self) -> usize {
        match self {
            AnyDecoder::Mlp(net) => Decoder::latent_dim(net),
            AnyDecoder::Conv2d(net) => Decoder::latent_dim(net),
            AnyDecoder::Conv1d(net) => Decoder::latent_dim(net),
            AnyDecoder::Layers(net) => Decoder::latent_dim(net),
        }
    }
    fn forward_logits(&self, z: Tensor<B, 2>) -> Option<SigmoidLogits<B>> {
        match self {
            AnyDecoder::Mlp(net) => net.forward_logits(z),
            AnyDecoder::Conv2d(net) => net.forward_logits(z),
            AnyDecoder::Conv1d(net) => net.forward_logits(z),
            AnyDecoder::Layers(net) => net.forward_logits(z),
        }
    }
}

/// Turns stored bytes (`0..=255`, row-major items) into the `[n, features]` float input the
/// nets take, scaled to `[0, 1]`.
///
/// # Shapes
/// - `bytes`: `n * features` values
/// - output: `[n, features]`
pub fn bytes_to_input<B: Backend>(
    bytes: &[u8],
    features: usize,
    device: &B::Device,
) -> Result<Tensor<B, 2>> {
    if features == 0 || !bytes.len().is_multiple_of(features) {
        return Err(Error::Data(format!(
            "{} bytes is not a whole number of items of {features} features",
            bytes.len()
        )));
    }
    let n = bytes.len() / features;
    let values = byte_values(bytes);
    Ok(Tensor::<B, 1>::from_floats(values.as_slice(), device).reshape([n, features]))
}

/// Stored item bytes as the values models see, in `[0, 1]` (byte / 255).
pub fn byte_values(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&b| f32::from(b) / 255.0).collect()
}

/// Reads a tensor back to the host as a flat row-major `Vec<E>` (converting its elements);
/// `what` names the values in the error (`cannot read {what}: ...`).
pub fn tensor_values<E, B, const D: usize, K>(t: Tensor<B, D, K>, what: &str) -> Result<Vec<E>>
where
    E: Element,
    B: Backend,
    K: BasicOps<B>,
{
    t.into_data()
        .convert::<E>()
        .into_vec()
        .map_err(|e| Error::Data(format!("cannot read {what}: {e:?}")))
}
