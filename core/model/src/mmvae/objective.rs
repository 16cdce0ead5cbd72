//! The MMVAE objectives: `elbo`, `iwae`, `dreg`, `dreg-reference` and their looser variants.
//!
//! Notation: `M` modalities, `K` samples per modality, batch `B`, latent `L`. For
//! `z_{m,k} ~ q_m(z | x_m)`:
//!
//! `lw_{m,k} = log p(z) + sum_d lambda_d log p(x_d | z) - log (1/M) sum_m' q_m'(z | x_m')`
//!
//! - `elbo` (`m_elbo`): `(1/M) sum_r [ sum_d w_rd lambda_d log p(x_d | z_d) - KL(q_r || p) ]`,
//!   averaged over the `K` samples, with `z_d ~ q_d` and importance weights
//!   `w_rd = exp(log q_r(sg z_d) - sg log q_d(sg z_d))` for `d != r` (1 for `d = r`). As in
//!   iffsid/mmvae, the sample and the proposal density are stopped but `q_r` keeps its gradient
//!   (a score-function term for encoder `r`). KL is analytic for every family pair (torch's
//!   formulas, which the reference code picks up), see [`Dist::kl`].
//! - `iwae` (`m_iwae`): `logmeanexp` of `lw` over all `M*K` samples; looser:
//!   `(1/M) sum_m logmeanexp_k lw_{m,k}`.
//! - `dreg` (`m_dreg`): `q` parameters detached inside `lw`; weights `w~ = softmax(lw)` without
//!   gradient, over all `M*K` samples (looser: over `K` within each modality, then averaged over
//!   modalities). Value `sum w~ lw`. Decoders and prior get `sum_k w~_k d lw_k / d theta`;
//!   encoders get `sum_k w~_k^2 (d lw_k / d z_k)(d z_k / d phi)`.
//! - `dreg-reference`: same value and decoder gradient; encoders get `w~_k` once (what the
//!   reference code computed, its gradient hook never firing).
//!
//! # How `dreg` gets `w~^2` without hooks
//! The weights are only known after the forward pass, so `z` cannot be pre-scaled. Instead the
//! decoders, prior and mixture density are fed `z_in = sg(z)` marked as requiring gradient, the
//! surrogate `-mean_b sum sg(w~) lw(z_in)` is back-propagated (decoders, prior, and
//! `g = d loss / d z_in`), and a second, cheap backward pass of `sum z * sg(w~ * g)` runs
//! through the encoders only. The two gradient sets touch disjoint parameters and are merged.
//! Cost: one forward, one full backward, one encoder-only backward (the encoders see `B` rows,
//! the decoders `M*K*B`).

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{backend::Backend, Tensor};

use super::{Mmvae, ObjectiveConfig, ObjectiveKind};
use crate::dist::{logsumexp, Dist};
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
    /// gradient for every kind except `dreg`, whose encoder gradient needs
    /// [`Mmvae::loss_and_grads`] (here it gives the `dreg-reference` one).
    pub loss: Tensor<B, 1>,
    pub(crate) dreg: Option<DregParts<B>>,
}

/// What the second backward pass of `dreg` needs.
#[derive(Clone, Debug)]
pub(crate) struct DregParts<B: Backend> {
    /// The standard noise of each modality's samples, `M` x `[K, B, L]`, to rebuild the
    /// samples on a fresh graph for the encoder pass.
    noise: Vec<Tensor<B, 3>>,
    /// The detached samples fed to the rest of the model, `[M*K, B, L]`.
    z_in: Tensor<B, 3>,
    /// `w~`, detached, `[M*K, B]`.
    weights: Tensor<B, 2>,
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

    /// The log importance weights `lw` of samples `z` under posteriors `q` (pass detached
    /// posteriors for the DReG family).
    ///
    /// # Shapes
    /// - `q`: `M` distributions with parameters `[batch, L]`
    /// - `z`: `[n, batch, L]`
    /// - output: `[n, batch]`
    fn log_weights(&self, q: &[Dist<B, 2>], z: Tensor<B, 3>, xs: &[Tensor<B, 2>]) -> Tensor<B, 2> {
        let [n, batch, _] = z.dims();
        let prior = self.prior();
        let lpz = prior
            .log_prob_samples(z.clone()) // [n, batch, L]
            .sum_dim(2)
            .reshape([n, batch]); // [n, batch]
        let lqz = if q.len() == 1 {
            q[0].log_prob_samples(z.clone())
                .sum_dim(2)
                .reshape([n, batch]) // [n, batch]
        } else {
            let m = q.len();
            let locs = Tensor::stack::<3>(q.iter().map(|d| d.loc.clone()).collect(), 0) // [M, batch, L]
                .unsqueeze_dim::<4>(1); // [M, 1, batch, L]
            let scales = Tensor::stack::<3>(q.iter().map(|d| d.scale.clone()).collect(), 0) // [M, batch, L]
                .unsqueeze_dim::<4>(1); // [M, 1, batch, L]
            let lq = q[0]
                .family
                .log_prob(z.clone().unsqueeze_dim::<4>(0), locs, scales) // [M, n, batch, L]
                .sum_dim(3); // [M, n, batch, 1]
            logsumexp(lq, 0) // [1, n, batch, 1]
                .reshape([n, batch])
                .sub_scalar((m as f64).ln()) // [n, batch]
        };
        let mut lpx: Option<Tensor<B, 2>> = None;
        for (d, x) in xs.iter().enumerate() {
            let term = self.weighted_log_likelihood(d, z.clone(), x.clone()); // [n, batch]
            lpx = Some(match lpx {
                Some(acc) => acc.add(term),
                None => term,
            });
        }
        let lpz_lqz = lpz.sub(lqz); // [n, batch]
        match lpx {
            Some(lpx) => lpx.add(lpz_lqz), // [n, batch]
            None => lpz_lqz,
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
        split_dreg: bool,
    ) -> Result<ObjectiveOutput<B>> {
        objective.validate()?;
        let batch = self.check_inputs(xs)?;
        let (m, k, latent) = (self.num_modalities(), objective.k, self.latent_dim());
        if let Some(noise) = &noise {
            if noise.len() != m || noise.iter().any(|e| e.dims() != [k, batch, latent]) {
                return Err(Error::Data(format!(
                    "noise must be {m} tensors of shape [{k}, {batch}, {latent}]"
                )));
            }
        }
        // Posteriors and reparameterised samples, per modality.
        let q: Vec<Dist<B, 2>> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| self.encode(i, x.clone()))
            .collect::<Result<_>>()?; // M x [batch, L]
        let split = split_dreg && objective.kind == ObjectiveKind::Dreg;
        // The true DReG pass rebuilds the samples later, so it needs the noise itself.
        let noise = match noise {
            None if split => Some(
                q.iter()
                    .map(|d| {
                        d.family
                            .standard_noise::<B, 3>([k, batch, latent], &d.loc.device())
                    })
                    .collect::<Vec<_>>(),
            ),
            other => other,
        };
        let zs: Vec<Tensor<B, 3>> = match &noise {
            Some(noise) => q
                .iter()
                .zip(noise)
                .map(|(d, eps)| d.rsample_with_noise(eps.clone()))
                .collect(),
            None => q.iter().map(|d| d.rsample(k)).collect(),
        }; // M x [K, batch, L]

        let (value, dreg) = match objective.kind {
            ObjectiveKind::Elbo => (self.elbo(&q, &zs, xs), None),
            ObjectiveKind::Iwae => {
                let z = Tensor::cat(zs, 0); // [M*K, batch, L]
                let lw = self.log_weights(&q, z, xs); // [M*K, batch]
                let value = if objective.looser {
                    logsumexp(lw.reshape([m, k, batch]), 1) // [M, 1, batch]
                        .sub_scalar((k as f64).ln())
                        .mean_dim(0) // [1, 1, batch]
                        .reshape([batch])
                } else {
                    logsumexp(lw, 0) // [1, batch]
                        .sub_scalar(((m * k) as f64).ln())
                        .reshape([batch])
                };
                (value, None)
            }
            ObjectiveKind::Dreg | ObjectiveKind::DregReference => {
                let q_det: Vec<Dist<B, 2>> = q.into_iter().map(Dist::detach).collect();
                let z = Tensor::cat(zs, 0); // [M*K, batch, L]
                let z_in = if split {
                    z.clone().detach().require_grad() // [M*K, batch, L]
                } else {
                    z.clone()
                };
                let lw = self.log_weights(&q_det, z_in.clone(), xs); // [M*K, batch]
                let lw_det = lw.clone().detach();
                let weights = if objective.looser {
                    softmax(lw_det.reshape([m, k, batch]), 1).reshape([m * k, batch])
                // [M*K, batch]
                } else {
                    softmax(lw_det, 0) // [M*K, batch]
                };
                let mut value = weights
                    .clone()
                    .mul(lw)
                    .sum_dim(0) // [1, batch]
                    .reshape([batch]);
                if objective.looser {
                    value = value.div_scalar(m as f64);
                }
                let parts = match (split, noise) {
                    (true, Some(noise)) => Some(DregParts {
                        noise,
                        z_in,
                        weights,
                    }),
                    _ => None,
                };
                (value, parts)
            }
        };
        let loss = value.clone().mean().neg(); // [1]
        Ok(ObjectiveOutput { value, loss, dreg })
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
            .map(|(i, (x, eps))| Ok(self.encode(i, x.clone())?.rsample_with_noise(eps)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(zs, 0))
    }

    /// The MMVAE `m_elbo` per batch item.
    ///
    /// # Shapes
    /// - `q`: `M` x `[batch, L]`; `zs`: `M` x `[K, batch, L]`
    /// - output: `[batch]`
    fn elbo(&self, q: &[Dist<B, 2>], zs: &[Tensor<B, 3>], xs: &[Tensor<B, 2>]) -> Tensor<B, 1> {
        let m = q.len();
        let [_, batch, _] = zs[0].dims();
        let prior = self.prior();
        // lambda_d log p(x_d | z_d), decoder d on its own samples only.
        let lpx: Vec<Tensor<B, 2>> = (0..m)
            .map(|d| self.weighted_log_likelihood(d, zs[d].clone(), xs[d].clone()))
            .collect(); // M x [K, batch]
                        // log q_d(sg z_d), stopped, for the importance-weight denominators.
        let lq_own: Vec<Tensor<B, 2>> = (0..m)
            .map(|d| {
                let [k, b, _] = zs[d].dims();
                q[d].clone()
                    .detach()
                    .log_prob_samples(zs[d].clone().detach())
                    .sum_dim(2)
                    .reshape([k, b]) // [K, batch]
            })
            .collect();
        let mut total: Option<Tensor<B, 2>> = None;
        for r in 0..m {
            let kl = q[r]
                .kl(&prior) // [batch, L]
                .sum_dim(1) // [batch, 1]
                .reshape([1, batch]); // [1, batch]
            let mut term = lpx[r].clone(); // [K, batch]
            for d in (0..m).filter(|&d| d != r) {
                let [k, b, _] = zs[d].dims();
                let lq_r = q[r]
                    .log_prob_samples(zs[d].clone().detach())
                    .sum_dim(2)
                    .reshape([k, b]); // [K, batch]
                let w = lq_r.sub(lq_own[d].clone()).exp(); // [K, batch]
                term = term.add(w.mul(lpx[d].clone())); // [K, batch]
            }
            let term = term.sub(kl); // [K, batch]
            total = Some(match total {
                Some(acc) => acc.add(term),
                None => term,
            });
        }
        match total {
            Some(total) => total
                .div_scalar(m as f64)
                .mean_dim(0) // [1, batch]
                .reshape([batch]),
            None => Tensor::zeros([batch], &self.prior_theta.device()),
        }
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
        let encoder_grad = match out.dreg.as_ref() {
            None => None,
            Some(parts) => {
                // d loss / d z_in, scaled once more by w~ (the DReG w~^2 on the encoder path).
                let g = parts.z_in.grad(&grads).ok_or_else(|| {
                    Error::Data("dreg: the loss has no gradient at the samples z".into())
                })?; // [M*K, batch, L]
                let w = parts.weights.clone().inner().unsqueeze_dim::<3>(2); // [M*K, batch, 1]
                Some(Tensor::<B, 3>::from_inner(g.mul(w))) // [M*K, batch, L]
            }
        };
        let mut params = GradientsParams::from_module::<B, Self>(&mut grads, self);
        if let (Some(parts), Some(g)) = (out.dreg, encoder_grad) {
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
