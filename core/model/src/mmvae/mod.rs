//! The multimodal VAE for any number `M >= 1` of modalities.
//!
//! One [`Mmvae`] holds an encoder and a decoder per modality and a prior
//! `p(z) = family(0, softmax(theta) * latent_dim)`. How the unimodal posteriors ("experts")
//! `q_m(z | x_m)` are joined, and the objective trained, is the config's fusion plugin (see
//! [`crate::fusion`]): by default the MMVAE's mixture of experts (Shi et al. 2019),
//! `q(z | x_1:M) = (1/M) sum_m q_m(z | x_m)`. A single-modality VAE is the `M = 1` case of the
//! same code: every fusion then reduces to the one posterior.
//!
//! The model is generic over the encoder and decoder types, so a user brings their own nets
//! ([`Mmvae::from_parts`]); [`MmvaeConfig::init`] builds the built-in ones from config
//! ([`AnyEncoder`], [`AnyDecoder`]).
//!
//! # Objectives
//! See [`ObjectiveKind`] (the estimators; each fusion implements some of them) and
//! [`objective`](Mmvae::objective). All values are per batch item;
//! the training loss is `-mean_batch(objective)`. The reference code sums over the batch
//! instead; under Adam that only rescales the gradient, which Adam's normalisation removes
//! (up to its epsilon), so the choice does not change training.
//!
//! # Performance
//! [`FusionModel::log_likelihood`] runs a decoder once on every sample block it is given (the
//! mixture of experts concatenates every modality's `K` samples into one `[M*K*B, latent]`
//! block, not `M^2` decoder calls), the likelihood is reduced in one pass per modality, and
//! nothing leaves the device inside a step.

mod config;
mod objective;
mod train;

pub use config::{
    MmvaeConfig, ModalityNetConfig, ObjectiveConfig, ObjectiveKind, ObjectiveName, PriorConfig,
    MAX_LATENT_DIM,
};
pub use objective::{EncoderPass, ObjectiveOutput};
pub use train::{bench_train_steps, paper_adam, train_step, BenchResult, StepResult};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{backend::Backend, Tensor};

use crate::dist::Dist;
use crate::fusion::{FusionModel, ResolvedFusion};
use crate::nn::{AnyDecoder, AnyEncoder, Decoder, Encoder};
use rensou_api::{Error, Result};

/// The multimodal VAE.
///
/// # Type parameters
/// - `E`: the encoder type (one per modality), e.g. [`AnyEncoder`]
/// - `D`: the decoder type, e.g. [`AnyDecoder`]
#[derive(Module, Debug)]
pub struct Mmvae<B: Backend, E, D> {
    /// One encoder per modality, in config order.
    pub encoders: Vec<E>,
    /// One decoder per modality, in config order.
    pub decoders: Vec<D>,
    /// Prior logits `theta`, `[1, latent]`; the prior scale is `softmax(theta) * latent`.
    /// Detached in every use unless `config.prior.learnable`.
    pub prior_theta: Param<Tensor<B, 2>>,
    /// The fusion's own parameters ([`FusionDesign::parameters`]); `None` when it has none
    /// (checkpoints from before fusions load as `None`).
    ///
    /// [`FusionDesign::parameters`]: crate::fusion::FusionDesign::parameters
    pub fusion_params: Option<Vec<Param<Tensor<B, 2>>>>,
    config: MmvaeConfig,
    weights: Vec<f64>,
    /// The config's fusion, resolved once when the model is built.
    #[module(skip)]
    fusion: ResolvedFusion,
}

/// Touches every float parameter so lazily initialised ones get their values.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const N: usize>(&mut self, param: &Param<Tensor<B, N>>) {
        let _ = param.val();
    }
}

impl MmvaeConfig {
    /// Validates the config and builds the model with the built-in nets it names.
    pub fn init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<Mmvae<B, AnyEncoder<B>, AnyDecoder<B>>> {
        self.validate()?;
        let mut encoders = Vec::with_capacity(self.modalities.len());
        let mut decoders = Vec::with_capacity(self.modalities.len());
        for m in &self.modalities {
            let latent = self.net_latent_dim();
            encoders.push(m.net.init_encoder(&m.item_shape, latent, device)?);
            decoders.push(m.net.init_decoder(&m.item_shape, latent, device)?);
        }
        Mmvae::from_parts(self.clone(), encoders, decoders, device)
    }
}

impl<B: Backend, E: Encoder<B>, D: Decoder<B>> Mmvae<B, E, D> {
    /// Assembles a model from a config and one encoder and decoder per modality (in config
    /// order), checking that their sizes match the config. Parameters are materialised here
    /// (burn initialises lazily), so clones of the new model share its weights.
    pub fn from_parts(
        config: MmvaeConfig,
        encoders: Vec<E>,
        decoders: Vec<D>,
        device: &B::Device,
    ) -> Result<Self> {
        config.validate()?;
        let m = config.modalities.len();
        if encoders.len() != m || decoders.len() != m {
            return Err(Error::config(
                "model.modalities",
                format!(
                    "{m} modalities but {} encoders and {} decoders",
                    encoders.len(),
                    decoders.len()
                ),
            ));
        }
        for (i, spec) in config.modalities.iter().enumerate() {
            let features = spec.features();
            let (enc, dec) = (&encoders[i], &decoders[i]);
            if enc.input_dim() != features || dec.output_dim() != features {
                return Err(Error::config(
                    format!("model.modalities[{i}].net"),
                    format!(
                        "`{}` items have {features} features but the encoder takes {} and the \
                         decoder gives {}",
                        spec.name,
                        enc.input_dim(),
                        dec.output_dim()
                    ),
                ));
            }
            let latent = config.net_latent_dim();
            if enc.latent_dim() != latent || dec.latent_dim() != latent {
                return Err(Error::config(
                    format!("model.modalities[{i}].net"),
                    format!(
                        "latent dim (private + shared) is {latent} but the encoder gives {} \
                         and the decoder takes {}",
                        enc.latent_dim(),
                        dec.latent_dim()
                    ),
                ));
            }
        }
        // The fusion is resolved here, once; it must exist on this backend before anything is
        // trained with it.
        let fusion = ResolvedFusion::of_config(&config)?;
        fusion.on::<B>()?;
        let fusion_params: Vec<Param<Tensor<B, 2>>> = fusion
            .design()
            .parameters(&config)
            .into_iter()
            .map(|p| Param::from_tensor(Tensor::full(p.shape, p.init, device)))
            .collect();
        let fusion_params = (!fusion_params.is_empty()).then_some(fusion_params);
        let theta = Tensor::<B, 2>::full([1, config.latent_dim], config.prior.theta, device);
        let weights = config.likelihood_weights();
        let model = Mmvae {
            encoders,
            decoders,
            prior_theta: Param::from_tensor(theta),
            fusion_params,
            config,
            weights,
            fusion,
        };
        // burn initialises parameters lazily, and a clone of a not-yet-initialised module draws
        // its own weights; materialise them now so that clones (`valid()`, records taken before
        // the first step) hold the same weights as the model.
        model.visit(&mut Materialize);
        Ok(model)
    }

    /// The config the model was built from.
    pub fn config(&self) -> &MmvaeConfig {
        &self.config
    }

    /// Number of modalities `M`.
    pub fn num_modalities(&self) -> usize {
        self.config.modalities.len()
    }

    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        self.config.latent_dim
    }

    /// Likelihood weight lambda of each modality.
    pub fn likelihood_weights(&self) -> &[f64] {
        &self.weights
    }

    /// Index of the modality called `name`.
    pub fn modality_index(&self, name: &str) -> Option<usize> {
        self.config.modality_index(name)
    }

    fn check_modality(&self, m: usize) -> Result<()> {
        if m < self.num_modalities() {
            Ok(())
        } else {
            Err(Error::Data(format!(
                "modality index {m} out of range (the model has {})",
                self.num_modalities()
            )))
        }
    }

    /// The prior `family(0, softmax(theta) * latent)`.
    ///
    /// # Shapes
    /// - `loc`, `scale`: `[1, latent]`
    pub fn prior(&self) -> Dist<B, 2> {
        let theta = self.prior_theta.val(); // [1, latent]
        let theta = if self.config.prior.learnable {
            theta
        } else {
            theta.detach()
        };
        let latent = self.config.latent_dim as f64;
        let scale = softmax(theta, 1).mul_scalar(latent); // [1, latent]
        let loc = scale.zeros_like(); // [1, latent]
        Dist::new(self.config.prior.family, loc, scale)
    }

    /// The posterior given modality `m` alone, as the fusion defines it (the mixture of
    /// experts: the expert itself; a product of experts: the expert times the prior expert).
    /// Probes, grids and cross-generation use its location as an item's latent.
    ///
    /// # Shapes
    /// - `x`: `[batch, features_m]` (row-major flattened items, values in `[0, 1]`)
    /// - output parameters: `[batch, latent]`
    pub fn encode(&self, m: usize, x: Tensor<B, 2>) -> Result<Dist<B, 2>> {
        let expert = self.expert(m, x)?;
        let fusion = self.fusion.on::<B>()?;
        Ok(fusion.unimodal_posterior(self as &dyn FusionModel<B>, m, expert))
    }

    /// The posterior of modality `m`'s private latent (MMVAE+'s `w`: the first
    /// [`private_dim`](MmvaeConfig::private_dim) dimensions of the expert), `None` when the
    /// fusion has none.
    ///
    /// # Shapes
    /// - `x`: `[batch, features_m]`; output parameters `[batch, private]`
    pub fn encode_private(&self, m: usize, x: Tensor<B, 2>) -> Result<Option<Dist<B, 2>>> {
        let p = self.config.private_dim();
        if p == 0 {
            return Ok(None);
        }
        let q = self.expert(m, x)?;
        Ok(Some(Dist::new(
            q.family,
            q.loc.narrow(1, 0, p),
            q.scale.narrow(1, 0, p),
        )))
    }

    /// The expert `q_m(u | x)`: modality `m`'s encoder output as a distribution over
    /// `u = [private, shared]` (only the shared latent unless the fusion has a private one).
    ///
    /// # Shapes
    /// - `x`: `[batch, features_m]` (row-major flattened items, values in `[0, 1]`)
    /// - output parameters: `[batch, private + latent]`
    pub fn expert(&self, m: usize, x: Tensor<B, 2>) -> Result<Dist<B, 2>> {
        self.check_modality(m)?;
        let features = self.config.modalities[m].features();
        let dims = x.dims();
        if dims[1] != features {
            return Err(Error::Data(format!(
                "`{}` input has {} features per item, expected {features}",
                self.config.modalities[m].name, dims[1]
            )));
        }
        let out = self.encoders[m].forward(x); // [batch, latent] x 2
        Ok(Dist::new(self.config.posterior, out.loc, out.scale))
    }

    /// The likelihood location of modality `m` at shared latents `z` (a fusion with private
    /// latents completes them, MMVAE+ with a draw from `m`'s auxiliary prior).
    ///
    /// # Shapes
    /// - `z`: `[n, latent]`
    /// - output: `[n, features_m]`
    pub fn decode(&self, m: usize, z: Tensor<B, 2>) -> Result<Tensor<B, 2>> {
        self.decode_with(m, z, None)
    }

    /// [`decode`](Self::decode) with modality `m`'s own private latent when it is known.
    ///
    /// # Shapes
    /// - `z`: `[n, latent]`; `private`: `[n, private]`; output `[n, features_m]`
    fn decode_with(
        &self,
        m: usize,
        z: Tensor<B, 2>,
        private: Option<Tensor<B, 2>>,
    ) -> Result<Tensor<B, 2>> {
        self.check_modality(m)?;
        let dims = z.dims();
        if dims[1] != self.config.latent_dim {
            return Err(Error::Data(format!(
                "latents have {} dims, the model has {}",
                dims[1], self.config.latent_dim
            )));
        }
        let u = if self.config.private_dim() == 0 {
            z
        } else {
            let fusion = self.fusion.on::<B>()?;
            fusion.decoder_input(self as &dyn FusionModel<B>, m, z, private) // [n, P + L]
        };
        Ok(self.decoders[m].forward(u)) // [n, features_m]
    }

    /// Reconstruction and cross-generation: encodes `x` with modality `m` and decodes every
    /// modality from the posterior location (modality `m` itself with its own private latent,
    /// when the fusion has one). Entry `d` of the result is modality `d`.
    ///
    /// # Shapes
    /// - `x`: `[batch, features_m]`
    /// - output: `M` tensors `[batch, features_d]`
    pub fn reconstruct(&self, m: usize, x: Tensor<B, 2>) -> Result<Vec<Tensor<B, 2>>> {
        let own = self.encode_private(m, x.clone())?.map(|q| q.loc); // [batch, private]
        let z = self.encode(m, x)?.loc; // [batch, latent]
        (0..self.num_modalities())
            .map(|d| {
                let private = if d == m { own.clone() } else { None };
                self.decode_with(d, z.clone(), private)
            })
            .collect()
    }

    /// `n` draws from the prior.
    ///
    /// # Shapes
    /// - output: `[n, latent]`
    pub fn sample_prior(&self, n: usize) -> Tensor<B, 2> {
        let prior = self.prior();
        let device = prior.loc.device();
        let eps = prior
            .family
            .standard_noise::<B, 2>([n, self.config.latent_dim], &device); // [n, latent]
        prior.loc.add(prior.scale.mul(eps)) // [n, latent]
    }
}
