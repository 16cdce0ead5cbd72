//! Evaluating a model's objective: the fusion plugin computes it (see [`crate::fusion`]); this
//! module checks the inputs, gives the fusion the model's parts ([`FusionModel`]) and runs the
//! backward passes.
//!
//! # Two-pass gradients (true DReG)
//! The DReG encoder gradient scales each sample's path gradient by `w~^2`, where `w~` is only
//! known after the forward pass, so `z` cannot be pre-scaled. A fusion that needs it feeds the
//! decoders, prior and mixture density `z_in = sg(z)` marked as requiring gradient and returns
//! an [`EncoderPass`]: the surrogate loss is back-propagated (decoders, prior, and
//! `g = d loss / d z_in`), then a second, cheap backward pass of `sum z * sg(w~ * g)` runs
//! through the encoders only, with `z` rebuilt from the same noise. The two gradient sets touch
//! disjoint parameters and are merged.

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{backend::Backend, Tensor};

use super::{Mmvae, ObjectiveConfig};
use crate::fusion::{FusionModel, Noise};
use crate::nn::{likelihood_sum, sigmoid_likelihood_sum, Decoder, Encoder, SigmoidLikelihood};
use rensou_api::{Error, Result};

/// The result of evaluating an objective on a batch.
#[derive(Clone, Debug)]
pub struct ObjectiveOutput<B: Backend> {
    /// The objective estimate per batch item (for `dreg*`: the surrogate `sum w~ lw`, as the
    /// reference reports it).
    ///
    /// # Shapes
    /// `[batch]`
    pub value: Tensor<B, 1>,
    /// The training loss `-mean(value)`, shape `[1]`. Back-propagating it gives the objective's
    /// gradient for every objective except true DReG, whose encoder gradient needs
    /// [`Mmvae::loss_and_grads`] (here it gives the `dreg-reference` one).
    pub loss: Tensor<B, 1>,
    /// What a second, encoder-only backward pass needs, when the fusion asks for one.
    pub encoder_pass: Option<EncoderPass<B>>,
}

impl<B: Backend> ObjectiveOutput<B> {
    /// An output whose loss is `-mean(value)` and that needs no second pass.
    pub fn new(value: Tensor<B, 1>) -> Self {
        let loss = value.clone().mean().neg(); // [1]
        ObjectiveOutput {
            value,
            loss,
            encoder_pass: None,
        }
    }
}

/// What the second, encoder-only backward pass of true DReG needs (see the module docs).
#[derive(Clone, Debug)]
pub struct EncoderPass<B: Backend> {
    /// The standard noise of each modality's own samples, `M` x `[K, B, L]`: the samples are
    /// rebuilt as `cat_m rsample(q_m, noise_m)` on a fresh graph for the encoder pass.
    pub noise: Vec<Tensor<B, 3>>,
    /// The detached samples (marked as requiring gradient) the rest of the model was fed,
    /// `[M*K, B, L]`, in the same order.
    pub z_in: Tensor<B, 3>,
    /// The extra factor of each sample's path gradient (DReG: `w~`), detached, `[M*K, B]`.
    pub weights: Tensor<B, 2>,
}

impl<B: Backend, E: Encoder<B>, D: Decoder<B>> Mmvae<B, E, D> {
    /// Checks the inputs: one `[batch, features_m]` tensor per modality, equal batch sizes.
    fn check_inputs(&self, xs: &[Tensor<B, 2>]) -> Result<usize> {
        let m = self.num_modalities();
        if xs.len() != m {
            return Err(Error::Data(format!(
                "{} input tensors for a model of {m} modalities",
                xs.len()
            )));
        }
        let batch = xs[0].dims()[0];
        if batch == 0 {
            return Err(Error::Data("empty batch".into()));
        }
        for (spec, x) in self.config.modalities.iter().zip(xs) {
            let [b, f] = x.dims();
            if b != batch || f != spec.features() {
                return Err(Error::Data(format!(
                    "`{}` input is [{b}, {f}], expected [{batch}, {}]",
                    spec.name,
                    spec.features()
                )));
            }
        }
        Ok(batch)
    }

    /// `lambda_d log p(x_d | dec_d(z))` for one modality `d`, decoder run once on all rows.
    ///
    /// # Shapes
    /// - `z`: `[n, batch, L]`
    /// - `x`: `[batch, features_d]`
    /// - output: `[n, batch]`
    fn weighted_log_likelihood(&self, d: usize, z: Tensor<B, 3>, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, batch, latent] = z.dims();
        let spec = &self.config.modalities[d];
        let z = z.reshape([n * batch, latent]); // [n*batch, L]
        match self.decoders[d].forward_logits(z.clone()) {
            // One fused pass: sigmoid, clamp, log-density, sum over features, weight.
            Some(out) => sigmoid_likelihood_sum(
                out.logits, // [n*batch, features_d]
                match out.chw {
                    Some([h, w, c]) => x
                        .reshape([batch, h, w, c])
                        .permute([0, 3, 1, 2]) // [batch, C, H, W]
                        .reshape([batch, h * w * c]),
                    None => x,
                }, // [batch, features_d], in the logits' order
                SigmoidLikelihood {
                    family: spec.likelihood.into(),
                    scale: spec.likelihood_scale,
                    eps: out.eps,
                    weight: self.weights[d],
                },
            )
            .reshape([n, batch]), // [n, batch]
            None => {
                let loc = self.decoders[d]
                    .forward(z) // [n*batch, features_d]
                    .reshape([n, batch, spec.features()]); // [n, batch, features_d]
                likelihood_sum(spec.likelihood.into(), spec.likelihood_scale, loc, x) // [n, batch]
                    .mul_scalar(self.weights[d])
            }
        }
    }

    /// Evaluates an objective on a batch with fresh noise.
    ///
    /// # Shapes
    /// - `xs`: one `[batch, features_m]` per modality (flattened items in `[0, 1]`)
    /// - output: `value` `[batch]`, `loss` `[1]`
    pub fn objective(
        &self,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
    ) -> Result<ObjectiveOutput<B>> {
        self.objective_with_noise(xs, objective, None)
    }

    /// Evaluates an objective with caller-supplied standard noise (one `[K, batch, L]` tensor
    /// per modality, of the posterior family: see
    /// [`DistFamily::standard_noise`](crate::dist::DistFamily::standard_noise)), or fresh noise
    /// when `None`.
    ///
    /// # Shapes
    /// - `xs`: one `[batch, features_m]` per modality
    /// - `noise`: one `[K, batch, L]` per modality
    /// - output: `value` `[batch]`, `loss` `[1]`
    pub fn objective_with_noise(
        &self,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: Option<Vec<Tensor<B, 3>>>,
    ) -> Result<ObjectiveOutput<B>> {
        self.forward_objective(xs, objective, noise, false)
    }

    pub(crate) fn forward_objective(
        &self,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: Option<Vec<Tensor<B, 3>>>,
        two_pass: bool,
    ) -> Result<ObjectiveOutput<B>> {
        objective.validate()?;
        self.check_inputs(xs)?;
        // The fusion was resolved when the model was built: no registry lookup here.
        self.fusion.check_objective(objective)?;
        let fusion = self.fusion.on::<B>()?;
        let mut noise = match noise {
            Some(given) => Noise::given(given),
            None => Noise::fresh(),
        };
        let out = fusion.objective(self, xs, objective, &mut noise, two_pass)?;
        noise.finish()?;
        Ok(out)
    }

    /// Reparameterised samples of every modality's posterior with the given standard noise,
    /// concatenated over modalities.
    ///
    /// # Shapes
    /// - `xs`: one `[batch, features_m]` per modality; `noise`: `M` x `[K, batch, L]`
    /// - output: `[M*K, batch, L]`
    fn samples_with_noise(
        &self,
        xs: &[Tensor<B, 2>],
        noise: Vec<Tensor<B, 3>>,
    ) -> Result<Tensor<B, 3>> {
        let zs = xs
            .iter()
            .zip(noise)
            .enumerate()
            .map(|(i, (x, eps))| Ok(self.expert(i, x.clone())?.rsample_with_noise(eps)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(zs, 0))
    }
}

impl<B: Backend, E: Encoder<B>, D: Decoder<B>> FusionModel<B> for Mmvae<B, E, D> {
    fn num_modalities(&self) -> usize {
        Mmvae::num_modalities(self)
    }

    fn latent_dim(&self) -> usize {
        Mmvae::latent_dim(self)
    }

    fn prior(&self) -> crate::dist::Dist<B, 2> {
        Mmvae::prior(self)
    }

    fn expert(&self, m: usize, x: Tensor<B, 2>) -> Result<crate::dist::Dist<B, 2>> {
        Mmvae::expert(self, m, x)
    }

    fn private_dim(&self) -> usize {
        self.config().private_dim()
    }

    fn log_likelihood(&self, d: usize, u: Tensor<B, 3>, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.weighted_log_likelihood(d, u, x)
    }

    fn fusion_params(&self) -> Vec<Tensor<B, 2>> {
        self.fusion_params
            .iter()
            .flatten()
            .map(|p| p.val())
            .collect()
    }
}

/// Moves every parameter gradient found in `grads` into `out`, adding where `out` already has one.
struct MergeGrads<'a, B: AutodiffBackend> {
    grads: &'a mut B::Gradients,
    out: &'a mut GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for MergeGrads<'_, B> {
    fn visit_float<const N: usize>(&mut self, param: &Param<Tensor<B, N>>) {
        let Some(grad) = param.val().grad_remove(self.grads) else {
            return;
        };
        let merged = match self.out.remove::<B::InnerBackend, N>(param.id) {
            Some(previous) => previous.add(grad),
            None => grad,
        };
        self.out.register::<B::InnerBackend, N>(param.id, merged);
    }
}

impl<B, E, D> Mmvae<B, E, D>
where
    B: AutodiffBackend,
    E: Encoder<B>,
    D: Decoder<B>,
    Mmvae<B, E, D>: AutodiffModule<B>,
{
    /// The training loss and the gradients of every parameter, for any objective (including
    /// the two-pass `dreg`, see the module docs).
    ///
    /// # Shapes
    /// - `xs`: one `[batch, features_m]` per modality
    /// - output loss: `[1]`, detached
    pub fn loss_and_grads(
        &self,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
    ) -> Result<(Tensor<B::InnerBackend, 1>, GradientsParams)> {
        self.loss_and_grads_with_noise(xs, objective, None)
    }

    /// [`loss_and_grads`](Self::loss_and_grads) with caller-supplied noise (see
    /// [`objective_with_noise`](Self::objective_with_noise)).
    pub fn loss_and_grads_with_noise(
        &self,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: Option<Vec<Tensor<B, 3>>>,
    ) -> Result<(Tensor<B::InnerBackend, 1>, GradientsParams)> {
        let out = self.forward_objective(xs, objective, noise, true)?;
        let loss = out.loss.clone().detach().inner(); // [1]
        let mut grads = out.loss.backward();
        let encoder_grad = match out.encoder_pass.as_ref() {
            None => None,
            Some(parts) => {
                // d loss / d z_in, scaled once more by w~ (the DReG w~^2 on the encoder path).
                let g = parts.z_in.grad(&grads).ok_or_else(|| {
                    Error::Data(
                        "two-pass objective: the loss has no gradient at the samples z".into(),
                    )
                })?; // [M*K, batch, L]
                let w = parts.weights.clone().inner().unsqueeze_dim::<3>(2); // [M*K, batch, 1]
                Some(Tensor::<B, 3>::from_inner(g.mul(w))) // [M*K, batch, L]
            }
        };
        let mut params = GradientsParams::from_module::<B, Self>(&mut grads, self);
        if let (Some(parts), Some(g)) = (out.encoder_pass, encoder_grad) {
            // The samples again, on a graph of their own: the first backward may already have
            // released the encoder nodes it did not need (burn's autodiff memory management),
            // which left the encoders without gradient in some runs.
            let z = self.samples_with_noise(xs, parts.noise)?; // [M*K, batch, L]
            let surrogate = z.mul(g).sum(); // [1]
            let mut grads2 = surrogate.backward();
            self.visit(&mut MergeGrads::<B> {
                grads: &mut grads2,
                out: &mut params,
            });
        }
        Ok((loss, params))
    }
}
