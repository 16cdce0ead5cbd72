//! rensou fusion plugin `mmvaeplus`: MMVAE+ (Palumbo, Daunhawer & Vogt, ICLR 2023).
//!
//! Every modality `m` has a latent `u = [w, z]`: a private `w` (`private_dim` dimensions, the
//! first ones) and a shared `z` (the model's `latent_dim`). The encoder of `m` gives the expert
//! `q_m(u | x_m)`; the shared latent is joined as in the MMVAE, by the mixture of experts of the
//! `z` parts. A modality cross-generated from another one draws its private latent from its own
//! learned auxiliary prior `r_d(w) = family(0, softmax(a_d) * private_dim)` (`a_d` a parameter
//! of the model, trained when `learn_aux_prior`). With samples `u_r ~ q_r` and, for `d != r`,
//! `u_{r->d} = [w_{r->d} ~ r_d, z_r]` (`u_{r->r} = u_r`), the log weights are
//!
//! `lw_r = sum_d lambda_d log p(x_d | u_{r->d}) + beta (log p(z_r) + log p(w_r)
//!         - log (1/M) sum_m q_m(z_r | x_m) - log q_r(w_r | x_r))`
//!
//! with `p(z)` the model's prior and `p(w)` its family with scale 1 (the authors' fixed prior on
//! `u`). The objectives are the looser (per-modality) ones of the authors' code:
//!
//! - `iwae-looser`: `(1/M) sum_r logmeanexp_k lw_r`;
//! - `dreg-looser` (the default): the doubly reparameterised gradient, `q` detached inside
//!   `lw`, weights `w~ = softmax_k(lw_r)`, value `(1/M) sum_r sum_k w~ lw_r`, encoders getting
//!   `w~^2`-scaled path gradients (two backward passes, as `moe`'s `dreg`);
//! - `dreg-reference-looser`: what the authors' `m_dreg` computes: the same value, but `q` is
//!   not detached and their gradient hook sits on a copy the loss never uses, so the gradient
//!   is the IWAE one.
//!
//! Probes, grids and coherence analyse the shared latent `z` (the location of `q_m`'s `z`
//! part); the private latents are there through `encode_private`. Generation from a shared
//! latent draws the private one from the target's auxiliary prior, reconstruction uses the
//! item's own.
//!
//! One deviation from the authors' networks: rensou's encoders have one scale head over
//! `[w, z]` (the MMVAE's `softmax(h) * dim`), where theirs normalise `w` and `z` separately.
//!
//! Noise: first one `[K, batch, private + latent]` tensor per modality (posterior family) for
//! `u_r`; then, for `r` and `d != r` in row-major order, one `[K, batch, private]` tensor (prior
//! family) for `w_{r->d}`.
#![warn(missing_docs)]

use burn::tensor::activation::softmax;
use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use rensou_api::{Error, Result};
use rensou_model::dist::{logsumexp, Dist};
use rensou_model::fusion::{
    experts, fusion_table, FusionDesign, FusionMath, FusionModel, FusionParam, FusionPlugin, Noise,
};
use rensou_model::mmvae::{
    EncoderPass, MmvaeConfig, ObjectiveConfig, ObjectiveKind, ObjectiveOutput, MAX_LATENT_DIM,
};

fn default_private_dim() -> usize {
    20
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// MMVAE+'s shared and private latents, auxiliary priors and looser objectives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MmvaePlus {
    /// Dimensions of each modality's private latent `w` (20, as the shared latent).
    #[serde(default = "default_private_dim")]
    pub private_dim: usize,
    /// Weight of the prior and posterior terms in the log weights (1; the authors' `beta`).
    #[serde(default = "one")]
    pub beta: f64,
    /// Train the auxiliary priors' scales (true, as the authors).
    #[serde(default = "yes")]
    pub learn_aux_prior: bool,
}

impl Default for MmvaePlus {
    fn default() -> Self {
        MmvaePlus {
            private_dim: default_private_dim(),
            beta: one(),
            learn_aux_prior: true,
        }
    }
}

#[typetag::serde(name = "mmvaeplus")]
impl FusionDesign for MmvaePlus {
    fn validate(&self, _model: &MmvaeConfig) -> Result<()> {
        if !(1..=MAX_LATENT_DIM).contains(&self.private_dim) {
            return Err(Error::config(
                "model.fusion.private_dim",
                format!("must be in 1..={MAX_LATENT_DIM}, got {}", self.private_dim),
            ));
        }
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(Error::config(
                "model.fusion.beta",
                format!("must be finite and > 0, got {}", self.beta),
            ));
        }
        Ok(())
    }

    fn objectives(&self) -> Vec<(ObjectiveKind, bool)> {
        vec![
            (ObjectiveKind::Dreg, true),
            (ObjectiveKind::DregReference, true),
            (ObjectiveKind::Iwae, true),
        ]
    }

    fn private_dim(&self) -> usize {
        self.private_dim
    }

    fn parameters(&self, model: &MmvaeConfig) -> Vec<FusionParam> {
        // One auxiliary prior per modality: logits `a_d`, scale `softmax(a_d) * private_dim`.
        let aux = FusionParam {
            shape: [1, self.private_dim],
            init: 0.0,
        };
        vec![aux; model.modalities.len()]
    }

    fn clone_box(&self) -> Box<dyn FusionDesign> {
        Box::new(self.clone())
    }
}

inventory::submit! {
    FusionPlugin {
        name: "mmvaeplus",
        description: "MMVAE+ (Palumbo et al. 2023): shared + private latents, auxiliary priors; dreg-looser, iwae-looser",
        default_config: || Box::new(MmvaePlus::default()),
        table: fusion_table::<MmvaePlus>,
    }
}

impl MmvaePlus {
    /// The auxiliary prior `r_d` of modality `d`, parameters `[1, P]`.
    fn aux_prior<B: Backend>(&self, model: &dyn FusionModel<B>, d: usize) -> Result<Dist<B, 2>> {
        let logits = model.fusion_params().into_iter().nth(d).ok_or_else(|| {
            Error::Data(format!(
                "mmvaeplus: the model holds no auxiliary prior for modality {d}"
            ))
        })?; // [1, P]
        let logits = if self.learn_aux_prior {
            logits
        } else {
            logits.detach()
        };
        let scale = softmax(logits, 1).mul_scalar(self.private_dim as f64); // [1, P]
        Ok(Dist::new(model.prior().family, scale.zeros_like(), scale))
    }

    /// The `(private, shared)` parts of a distribution over `u`.
    fn split<B: Backend>(&self, q: &Dist<B, 2>) -> (Dist<B, 2>, Dist<B, 2>) {
        let [_, n] = q.loc.dims();
        let p = self.private_dim;
        let part = |start, len| {
            Dist::new(
                q.family,
                q.loc.clone().narrow(1, start, len),
                q.scale.clone().narrow(1, start, len),
            )
        };
        (part(0, p), part(p, n - p))
    }
}

impl FusionMath for MmvaePlus {
    fn objective<B: Backend>(
        &self,
        model: &dyn FusionModel<B>,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: &mut Noise<B>,
        two_pass: bool,
    ) -> Result<ObjectiveOutput<B>> {
        let [batch, _] = xs[0].dims();
        let (m, k, latent, p) = (
            model.num_modalities(),
            objective.k,
            model.latent_dim(),
            self.private_dim,
        );
        let device = xs[0].device();
        let experts = experts(model, xs)?; // M x [batch, P + L]
        let eps: Vec<Tensor<B, 3>> = experts
            .iter()
            .map(|q| noise.next(q.family, [k, batch, p + latent], &device))
            .collect::<Result<_>>()?; // M x [K, batch, P + L]
        let u = Tensor::cat(
            experts
                .iter()
                .zip(&eps)
                .map(|(q, e)| q.rsample_with_noise(e.clone()))
                .collect(),
            0,
        ); // [M*K, batch, P + L]
        let true_dreg = objective.kind == ObjectiveKind::Dreg;
        let split = two_pass && true_dreg;
        let u_in = if split { u.detach().require_grad() } else { u };
        let u_of = |r: usize| u_in.clone().narrow(0, r * k, k); // [K, batch, P + L]
                                                                // The experts inside the log weights: detached for true DReG only.
        let parts: Vec<(Dist<B, 2>, Dist<B, 2>)> = experts
            .iter()
            .map(|q| {
                let q = if true_dreg {
                    q.clone().detach()
                } else {
                    q.clone()
                };
                self.split(&q)
            })
            .collect(); // M x (w part [batch, P], z part [batch, L])

        // Cross-generated private latents, then every decoder once on all its inputs.
        let prior = model.prior(); // [1, L]
                                   // Each modality's auxiliary prior once (it was rebuilt for every source modality).
        let auxes: Vec<Dist<B, 2>> = (0..m)
            .map(|d| self.aux_prior(model, d))
            .collect::<Result<_>>()?; // M x [1, P]
        let mut inputs: Vec<Vec<Tensor<B, 3>>> = vec![Vec::with_capacity(m); m]; // [d][r]
        for r in 0..m {
            for (d, row) in inputs.iter_mut().enumerate() {
                if d == r {
                    row.push(u_of(r));
                    continue;
                }
                let aux = &auxes[d];
                let eta = noise.next(aux.family, [k, batch, p], &device)?; // [K, batch, P]
                let w = aux.scale.clone().unsqueeze_dim::<3>(0).mul(eta); // [K, batch, P]
                let z = u_of(r).narrow(2, p, latent); // [K, batch, L]
                row.push(Tensor::cat(vec![w, z], 2)); // [K, batch, P + L]
            }
        }
        let lpx = inputs
            .into_iter()
            .enumerate()
            .map(|(d, row)| model.log_likelihood(d, Tensor::cat(row, 0), xs[d].clone())) // [M*K, batch]
            .reduce(|a, b| a.add(b))
            .ok_or_else(|| Error::Data("mmvaeplus: no modalities".into()))?;

        let std_w = Dist::new(
            prior.family,
            Tensor::<B, 2>::zeros([1, p], &device),
            Tensor::<B, 2>::ones([1, p], &device),
        ); // [1, P]
        let z_locs = Tensor::stack::<3>(parts.iter().map(|(_, z)| z.loc.clone()).collect(), 0) // [M, batch, L]
            .unsqueeze_dim::<4>(1); // [M, 1, batch, L]
        let z_scales = Tensor::stack::<3>(parts.iter().map(|(_, z)| z.scale.clone()).collect(), 0)
            .unsqueeze_dim::<4>(1); // [M, 1, batch, L]
        let sum = |t: Tensor<B, 3>| {
            let [a, b, _] = t.dims();
            t.sum_dim(2).reshape([a, b])
        }; // [a, b, c] -> [a, b]
        let mut penalties = Vec::with_capacity(m);
        for (r, (q_w, q_z)) in parts.iter().enumerate() {
            let (w, z) = (u_of(r).narrow(2, 0, p), u_of(r).narrow(2, p, latent)); // [K, batch, .]
            let lpu =
                sum(prior.log_prob_samples(z.clone())).add(sum(std_w.log_prob_samples(w.clone()))); // [K, batch]
            let lqz = logsumexp(
                q_z.family
                    .log_prob(z.unsqueeze_dim::<4>(0), z_locs.clone(), z_scales.clone()) // [M, K, batch, L]
                    .sum_dim(3), // [M, K, batch, 1]
                0,
            ) // [1, K, batch, 1]
            .reshape([k, batch])
            .sub_scalar((m as f64).ln()); // [K, batch]
            let lqw = sum(q_w.log_prob_samples(w)); // [K, batch]
            penalties.push(lpu.sub(lqz).sub(lqw).mul_scalar(self.beta)); // [K, batch]
        }
        let lw = lpx.add(Tensor::cat(penalties, 0)).reshape([m, k, batch]); // [M, K, batch]

        let value = match objective.kind {
            ObjectiveKind::Iwae => ObjectiveOutput::new(
                logsumexp(lw, 1) // [M, 1, batch]
                    .sub_scalar((k as f64).ln())
                    .mean_dim(0) // [1, 1, batch]
                    .reshape([batch]),
            ),
            ObjectiveKind::Dreg | ObjectiveKind::DregReference => {
                let weights = softmax(lw.clone().detach(), 1); // [M, K, batch]
                let value = weights
                    .clone()
                    .mul(lw)
                    .sum_dim(1) // [M, 1, batch]
                    .mean_dim(0) // [1, 1, batch]
                    .reshape([batch]);
                let mut out = ObjectiveOutput::new(value);
                if split {
                    out.encoder_pass = Some(EncoderPass {
                        noise: eps,
                        z_in: u_in,
                        weights: weights.reshape([m * k, batch]),
                    });
                }
                out
            }
            ObjectiveKind::Elbo => {
                return Err(Error::config(
                    "training.objective",
                    "mmvaeplus trains dreg-looser, dreg-reference-looser or iwae-looser",
                ))
            }
        };
        Ok(value)
    }

    fn unimodal_posterior<B: Backend>(
        &self,
        _model: &dyn FusionModel<B>,
        _m: usize,
        expert: Dist<B, 2>,
    ) -> Dist<B, 2> {
        self.split(&expert).1
    }

    fn decoder_input<B: Backend>(
        &self,
        model: &dyn FusionModel<B>,
        d: usize,
        z: Tensor<B, 2>,
        private: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        let [n, _] = z.dims();
        let w = match (private, self.aux_prior(model, d)) {
            (Some(w), _) => w,
            (None, Ok(aux)) => {
                let eta = aux
                    .family
                    .standard_noise::<B, 2>([n, self.private_dim], &z.device());
                aux.scale.mul(eta) // [n, P]
            }
            // No auxiliary prior (a model built without the fusion's parameters): its location.
            (None, Err(_)) => Tensor::zeros([n, self.private_dim], &z.device()),
        };
        Tensor::cat(vec![w, z], 1) // [n, P + L]
    }
}
