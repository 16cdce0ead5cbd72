//! rensou fusion plugin `moe`: the MMVAE's mixture of experts (Shi et al. 2019), the joint
//! posterior of the number-sense study and rensou's default.
//!
//! `q(z | x_1:M) = (1/M) sum_m q_m(z | x_m)`. Notation: `M` modalities, `K` samples per
//! modality, batch `B`, latent `L`. For `z_{m,k} ~ q_m(z | x_m)`:
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
//!   encoders get `sum_k w~_k^2 (d lw_k / d z_k)(d z_k / d phi)` (two backward passes, see
//!   [`EncoderPass`]).
//! - `dreg-reference`: same value and decoder gradient; encoders get `w~_k` once (what the
//!   reference code computed, its gradient hook never firing).
//!
//! Noise: one standard-noise tensor `[K, B, L]` per modality, in model order.
//!
//! Every decoder runs once on all `M*K*B` samples (not `M^2` times).
#![warn(missing_docs)]

use burn::tensor::activation::softmax;
use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use rensou_api::Result;
use rensou_model::dist::{logsumexp, Dist};
use rensou_model::fusion::{
    experts, fusion_table, FusionDesign, FusionMath, FusionModel, FusionPlugin, Noise,
};
use rensou_model::mmvae::{
    EncoderPass, MmvaeConfig, ObjectiveConfig, ObjectiveKind, ObjectiveOutput,
};

/// The mixture of experts. It has no settings of its own: the objective (`elbo`, `iwae`,
/// `dreg`, `dreg-reference`, looser variants) and `K` are set in the run's `[training]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moe {}

#[typetag::serde(name = "moe")]
impl FusionDesign for Moe {
    fn validate(&self, _model: &MmvaeConfig) -> Result<()> {
        Ok(())
    }

    fn objectives(&self) -> Vec<(ObjectiveKind, bool)> {
        // Every estimator; every one but elbo has a looser variant. DReG first: the MMVAE paper
        // trains with it, so it is what a run that names no objective trains.
        let kinds = std::iter::once(ObjectiveKind::Dreg).chain(
            ObjectiveKind::ALL
                .into_iter()
                .filter(|&k| k != ObjectiveKind::Dreg),
        );
        kinds
            .flat_map(|kind| {
                let looser = kind.has_looser().then_some((kind, true));
                std::iter::once((kind, false)).chain(looser)
            })
            .collect()
    }

    fn clone_box(&self) -> Box<dyn FusionDesign> {
        Box::new(self.clone())
    }
}

inventory::submit! {
    FusionPlugin {
        name: "moe",
        description: "mixture of experts (MMVAE, Shi et al. 2019): elbo, iwae, dreg, dreg-reference, looser",
        default_config: || Box::new(Moe::default()),
        table: fusion_table::<Moe>,
    }
}

impl FusionMath for Moe {
    fn objective<B: Backend>(
        &self,
        model: &dyn FusionModel<B>,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: &mut Noise<B>,
        two_pass: bool,
    ) -> Result<ObjectiveOutput<B>> {
        let [batch, _] = xs[0].dims();
        let (m, k, latent) = (model.num_modalities(), objective.k, model.latent_dim());
        // Experts, noise and reparameterised samples, per modality.
        let q = experts(model, xs)?; // M x [batch, L]
        let eps: Vec<Tensor<B, 3>> = q
            .iter()
            .map(|d| noise.next(d.family, [k, batch, latent], &d.loc.device()))
            .collect::<Result<_>>()?; // M x [K, batch, L]
        let zs: Vec<Tensor<B, 3>> = q
            .iter()
            .zip(&eps)
            .map(|(d, e)| d.rsample_with_noise(e.clone()))
            .collect(); // M x [K, batch, L]
        let split = two_pass && objective.kind == ObjectiveKind::Dreg;

        Ok(match objective.kind {
            ObjectiveKind::Elbo => ObjectiveOutput::new(elbo(model, &q, &zs, xs)),
            ObjectiveKind::Iwae => {
                let z = Tensor::cat(zs, 0); // [M*K, batch, L]
                let lw = log_weights(model, &q, z, xs); // [M*K, batch]
                ObjectiveOutput::new(if objective.looser {
                    logsumexp(lw.reshape([m, k, batch]), 1) // [M, 1, batch]
                        .sub_scalar((k as f64).ln())
                        .mean_dim(0) // [1, 1, batch]
                        .reshape([batch])
                } else {
                    logsumexp(lw, 0) // [1, batch]
                        .sub_scalar(((m * k) as f64).ln())
                        .reshape([batch])
                })
            }
            ObjectiveKind::Dreg | ObjectiveKind::DregReference => {
                let q_det: Vec<Dist<B, 2>> = q.into_iter().map(Dist::detach).collect();
                let z = Tensor::cat(zs, 0); // [M*K, batch, L]
                let z_in = if split {
                    z.detach().require_grad() // [M*K, batch, L]
                } else {
                    z
                };
                let lw = log_weights(model, &q_det, z_in.clone(), xs); // [M*K, batch]
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
                let mut out = ObjectiveOutput::new(value);
                if split {
                    out.encoder_pass = Some(EncoderPass {
                        noise: eps,
                        z_in,
                        weights,
                    });
                }
                out
            }
        })
    }
}

/// The log importance weights `lw` of samples `z` under experts `q` (pass detached experts for
/// the DReG family).
///
/// # Shapes
/// - `q`: `M` distributions with parameters `[batch, L]`
/// - `z`: `[n, batch, L]`
/// - output: `[n, batch]`
fn log_weights<B: Backend>(
    model: &dyn FusionModel<B>,
    q: &[Dist<B, 2>],
    z: Tensor<B, 3>,
    xs: &[Tensor<B, 2>],
) -> Tensor<B, 2> {
    let [n, batch, _] = z.dims();
    let lpz = model
        .prior()
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
    let lpx = xs
        .iter()
        .enumerate()
        .map(|(d, x)| model.log_likelihood(d, z.clone(), x.clone())) // [n, batch]
        .reduce(|acc, term| acc.add(term));
    let lpz_lqz = lpz.sub(lqz); // [n, batch]
    match lpx {
        Some(lpx) => lpx.add(lpz_lqz), // [n, batch]
        None => lpz_lqz,
    }
}

/// The MMVAE `m_elbo` per batch item.
///
/// # Shapes
/// - `q`: `M` x `[batch, L]`; `zs`: `M` x `[K, batch, L]`
/// - output: `[batch]`
fn elbo<B: Backend>(
    model: &dyn FusionModel<B>,
    q: &[Dist<B, 2>],
    zs: &[Tensor<B, 3>],
    xs: &[Tensor<B, 2>],
) -> Tensor<B, 1> {
    let m = q.len();
    let [_, batch, _] = zs[0].dims();
    let prior = model.prior();
    // lambda_d log p(x_d | z_d), decoder d on its own samples only.
    let lpx: Vec<Tensor<B, 2>> = (0..m)
        .map(|d| model.log_likelihood(d, zs[d].clone(), xs[d].clone()))
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
    let total = (0..m)
        .map(|r| {
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
            term.sub(kl) // [K, batch]
        })
        .reduce(|acc, term| acc.add(term));
    match total {
        Some(total) => total
            .div_scalar(m as f64)
            .mean_dim(0) // [1, batch]
            .reshape([batch]),
        None => Tensor::zeros([batch], &prior.loc.device()),
    }
}
