//! The paper's MLP encoder and decoder.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{backend::Backend, Tensor};

use super::{sigmoid_clamped, Decoder, Encoder, EncoderOutput, ScaleActivation, SigmoidLogits};

/// Configuration of [`MlpEncoder`]: `input -> hidden[0] -> ... -> hidden[n-1]` (each
/// `Linear + ReLU`), then a location head and a scale head (`Linear(hidden[n-1], latent)`).
#[derive(Config, Debug)]
pub struct MlpEncoderConfig {
    /// Input features (3072 for a 32x32x3 image).
    pub input_dim: usize,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Hidden widths (paper: four layers of 400).
    #[config(default = "vec![400, 400, 400, 400]")]
    pub hidden: Vec<usize>,
    /// Scale activation (paper: softmax times latent dim).
    #[config(default = "ScaleActivation::Softmax")]
    pub scale_activation: ScaleActivation,
    /// Added to the scale.
    #[config(default = 1e-6)]
    pub scale_eps: f64,
}

impl MlpEncoderConfig {
    /// Builds the encoder with burn's default (Kaiming uniform) initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MlpEncoder<B> {
        let mut hidden = Vec::with_capacity(self.hidden.len());
        let mut width = self.input_dim;
        for &h in &self.hidden {
            hidden.push(LinearConfig::new(width, h).init(device));
            width = h;
        }
        MlpEncoder {
            hidden,
            loc: LinearConfig::new(width, self.latent_dim).init(device),
            scale: LinearConfig::new(width, self.latent_dim).init(device),
            scale_activation: self.scale_activation,
            scale_eps: self.scale_eps,
            input_dim: self.input_dim,
            latent_dim: self.latent_dim,
        }
    }
}

/// MLP encoder (the paper's: 3072/2352 -> 400 x 4 -> 20 location + 20 scale).
#[derive(Module, Debug)]
pub struct MlpEncoder<B: Backend> {
    /// Hidden layers, each followed by ReLU.
    pub hidden: Vec<Linear<B>>,
    /// Location head.
    pub loc: Linear<B>,
    /// Scale head (before the activation).
    pub scale: Linear<B>,
    /// Scale activation.
    pub scale_activation: ScaleActivation,
    /// Added to the scale.
    pub scale_eps: f64,
    /// Input features.
    pub input_dim: usize,
    /// Latent dimension.
    pub latent_dim: usize,
}

impl<B: Backend> Encoder<B> for MlpEncoder<B> {
    /// # Shapes
    /// - `x`: `[batch, input_dim]`
    /// - output: `loc`, `scale` each `[batch, latent_dim]`
    fn forward(&self, x: Tensor<B, 2>) -> EncoderOutput<B> {
        let mut h = x; // [batch, input_dim]
        for layer in &self.hidden {
            h = relu(layer.forward(h)); // [batch, hidden_i]
        }
        let loc = self.loc.forward(h.clone()); // [batch, latent]
        let raw = self.scale.forward(h); // [batch, latent]
        let scale = self.scale_activation.apply(raw, self.scale_eps); // [batch, latent]
        EncoderOutput { loc, scale }
    }
    fn input_dim(&self) -> usize {
        self.input_dim
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

/// Configuration of [`MlpDecoder`]: `latent -> hidden[0] -> ... -> hidden[n-1]` (each
/// `Linear + ReLU`), then `Linear(hidden[n-1], output)` and a sigmoid clamped to
/// `[clamp_eps, 1 - clamp_eps]`.
#[derive(Config, Debug)]
pub struct MlpDecoderConfig {
    /// Latent dimension.
    pub latent_dim: usize,
    /// Output features.
    pub output_dim: usize,
    /// Hidden widths (paper: four layers of 400).
    #[config(default = "vec![400, 400, 400, 400]")]
    pub hidden: Vec<usize>,
    /// Output clamp.
    #[config(default = 1e-6)]
    pub clamp_eps: f64,
}

impl MlpDecoderConfig {
    /// Builds the decoder with burn's default (Kaiming uniform) initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MlpDecoder<B> {
        let mut hidden = Vec::with_capacity(self.hidden.len());
        let mut width = self.latent_dim;
        for &h in &self.hidden {
            hidden.push(LinearConfig::new(width, h).init(device));
            width = h;
        }
        MlpDecoder {
            hidden,
            out: LinearConfig::new(width, self.output_dim).init(device),
            clamp_eps: self.clamp_eps,
            latent_dim: self.latent_dim,
            output_dim: self.output_dim,
        }
    }
}

/// MLP decoder (the paper's: 20 -> 400 x 4 -> 3072/2352, sigmoid clamped).
#[derive(Module, Debug)]
pub struct MlpDecoder<B: Backend> {
    /// Hidden layers, each followed by ReLU.
    pub hidden: Vec<Linear<B>>,
    /// Output layer (before the sigmoid).
    pub out: Linear<B>,
    /// Output clamp `[clamp_eps, 1 - clamp_eps]`.
    pub clamp_eps: f64,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Output features.
    pub output_dim: usize,
}

impl<B: Backend> Decoder<B> for MlpDecoder<B> {
    /// # Shapes
    /// - `z`: `[n, latent_dim]`
    /// - output: `[n, output_dim]`
    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = z; // [n, latent]
        for layer in &self.hidden {
            h = relu(layer.forward(h)); // [n, hidden_i]
        }
        sigmoid_clamped(self.out.forward(h), self.clamp_eps) // [n, output_dim]
    }
    fn forward_logits(&self, z: Tensor<B, 2>) -> Option<SigmoidLogits<B>> {
        let mut h = z; // [n, latent]
        for layer in &self.hidden {
            h = relu(layer.forward(h)); // [n, hidden_i]
        }
        Some(SigmoidLogits {
            logits: self.out.forward(h), // [n, output_dim]
            eps: self.clamp_eps,
            chw: None,
        })
    }
    fn output_dim(&self) -> usize {
        self.output_dim
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}
