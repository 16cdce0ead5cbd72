//! rensou fusion plugin `poe`: the product of experts of MVAE (Wu & Goodman 2018).
//!
//! The joint posterior of a set `S` of modalities is the product of their Gaussian experts and
//! (by default) a standard-normal prior expert,
//! `q_S(z | x_S) ∝ N(0, I) prod_{m in S} q_m(z | x_m)`, computed in closed form
//! ([`product_of_normals`]). The objective (`elbo`) is MVAE's: the ELBO of the joint posterior
//! plus the ELBO of each modality alone,
//!
//! `sum_{S in sets} [ mean_k sum_{d in S} lambda_d log p(x_d | z_{S,k}) - KL(q_S || p) ]`,
//! `z_{S,k} ~ q_S`,
//!
//! where the sets are `{1..M}`, then `{1}`, ..., `{M}` (`unimodal_terms`, on by default; one
//! set when `M = 1`), then `random_subsets` subsets of 2 to `M - 1` modalities drawn uniformly
//! each step (MVAE's sub-sampled training for more than two modalities; 0 by default). Each
//! set reconstructs only its own modalities. The KL is analytic against the model's prior (the
//! paper's Laplace, or a Normal). A modality's latent for probes and cross-generation is the
//! location of `q_{m}` (with the prior expert when `prior_expert`).
//!
//! Noise: one standard-normal `[K, batch, L]` tensor per set, in the order above.
#![warn(missing_docs)]

use burn::tensor::{backend::Backend, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use rensou_api::{Error, Result};
use rensou_model::dist::{product_of_normals, with_prior_expert, Dist};
use rensou_model::fusion::{
    elbo_terms, experts, fusion_table, require_normal_experts, ElboTerm, FusionDesign, FusionMath,
    FusionModel, FusionPlugin, Noise,
};
use rensou_model::mmvae::{MmvaeConfig, ObjectiveConfig, ObjectiveKind, ObjectiveOutput};

fn yes() -> bool {
    true
}

/// MVAE's product of experts and its objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Poe {
    /// Multiply in a standard-normal prior expert `N(0, I)` (true, as MVAE).
    #[serde(default = "yes")]
    pub prior_expert: bool,
    /// Add each modality's own ELBO to the joint one (true, as MVAE).
    #[serde(default = "yes")]
    pub unimodal_terms: bool,
    /// Subsets of 2 to `M - 1` modalities drawn per step and added as ELBO terms (MVAE's
    /// sub-sampling; 0). Needs `M >= 3`.
    #[serde(default)]
    pub random_subsets: usize,
}

impl Default for Poe {
    fn default() -> Self {
        Poe {
            prior_expert: true,
            unimodal_terms: true,
            random_subsets: 0,
        }
    }
}

/// The largest `random_subsets` a config may ask for.
pub const MAX_RANDOM_SUBSETS: usize = 64;

#[typetag::serde(name = "poe")]
impl FusionDesign for Poe {
    fn validate(&self, model: &MmvaeConfig) -> Result<()> {
        require_normal_experts(model, "poe")?;
        if self.random_subsets > MAX_RANDOM_SUBSETS {
            return Err(Error::config(
                "model.fusion.random_subsets",
                format!(
                    "must be in 0..={MAX_RANDOM_SUBSETS}, got {}",
                    self.random_subsets
                ),
            ));
        }
        if self.random_subsets > 0 && model.modalities.len() < 3 {
            return Err(Error::config(
                "model.fusion.random_subsets",
                format!(
                    "subsets of 2 to M - 1 modalities need M >= 3; the model has {}",
                    model.modalities.len()
                ),
            ));
        }
        Ok(())
    }

    fn objectives(&self) -> Vec<(ObjectiveKind, bool)> {
        vec![(ObjectiveKind::Elbo, false)] // MVAE's ELBO
    }

    fn decoded_blocks(&self, _modalities: usize) -> usize {
        // The joint, the modality's own term, and at most every random subset.
        1 + usize::from(self.unimodal_terms) + self.random_subsets
    }

    fn clone_box(&self) -> Box<dyn FusionDesign> {
        Box::new(self.clone())
    }
}

inventory::submit! {
    FusionPlugin {
        name: "poe",
        description: "product of experts (MVAE, Wu & Goodman 2018): elbo over the joint and each modality",
        default_config: || Box::new(Poe::default()),
        table: fusion_table::<Poe>,
    }
}

impl Poe {
    /// The sets whose ELBOs are summed this step (modality indices), in noise order.
    fn sets<B: Backend>(&self, m: usize, device: &B::Device) -> Vec<Vec<usize>> {
        let mut sets = vec![(0..m).collect::<Vec<_>>()];
        if self.unimodal_terms && m > 1 {
            sets.extend((0..m).map(|i| vec![i]));
        }
        if self.random_subsets > 0 && m >= 3 {
            // Subsets of 2..=M-1 modalities as bit masks; drawn with the backend's generator,
            // so a seeded run draws the same subsets.
            let candidates: Vec<usize> = (1..(1usize << m) - 1)
                .filter(|b| (2..m).contains(&(b.count_ones() as usize)))
                .collect();
            let draws = Tensor::<B, 1>::random(
                [self.random_subsets],
                Distribution::Uniform(0.0, 1.0),
                device,
            )
            .into_data()
            .iter::<f64>()
            .collect::<Vec<_>>();
            for u in draws {
                let pick = ((u * candidates.len() as f64) as usize).min(candidates.len() - 1);
                let mask = candidates[pick];
                sets.push((0..m).filter(|i| mask & (1 << i) != 0).collect());
            }
        }
        sets
    }
}

impl FusionMath for Poe {
    fn objective<B: Backend>(
        &self,
        model: &dyn FusionModel<B>,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: &mut Noise<B>,
        _two_pass: bool,
    ) -> Result<ObjectiveOutput<B>> {
        let experts = experts(model, xs)?; // M x [batch, L]
        let terms = self
            .sets::<B>(experts.len(), &xs[0].device())
            .into_iter()
            .map(|set| {
                let members: Vec<&Dist<B, 2>> = set.iter().map(|&i| &experts[i]).collect();
                Ok(ElboTerm {
                    q: product_of_normals(&members, self.prior_expert)?, // [batch, L]
                    targets: set, // each set reconstructs its own modalities
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let value = elbo_terms(model, terms, objective.k, noise, xs)?
            .into_iter()
            .reduce(|a, b| a.add(b)) // [batch]
            .ok_or_else(|| Error::Data("poe: no ELBO terms".into()))?;
        Ok(ObjectiveOutput::new(value))
    }

    fn unimodal_posterior<B: Backend>(
        &self,
        _model: &dyn FusionModel<B>,
        _m: usize,
        expert: Dist<B, 2>,
    ) -> Dist<B, 2> {
        with_prior_expert(expert, self.prior_expert)
    }
}
