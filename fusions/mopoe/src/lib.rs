//! rensou fusion plugin `mopoe`: the mixture of products of experts of MoPoE-VAE (Sutter,
//! Daunhawer & Vogt 2021).
//!
//! Every non-empty subset `S` of the `M` modalities has the product-of-experts posterior
//! `q_S(z | x_S) ∝ prod_{m in S} q_m(z | x_m)` (times a standard-normal prior expert when
//! `prior_expert`), and the joint posterior is their uniform mixture
//! `q(z | x_1:M) = 1/(2^M - 1) sum_S q_S`. The objective (`elbo`) is MoPoE's ELBO with the
//! KL of the mixture bounded by the mean KL of its components, as the authors' code does:
//!
//! `1/(2^M - 1) sum_S [ mean_k sum_{d=1..M} lambda_d log p(x_d | z_{S,k}) - KL(q_S || p) ]`,
//! `z_{S,k} ~ q_S`.
//!
//! Every subset reconstructs every modality. The expectation over the mixture is taken
//! exactly, over every subset (the authors sample one subset per batch item), which costs
//! `2^M - 1` decoder passes over `K * batch` samples per modality. A modality's latent for
//! probes and cross-generation is the location of `q_{m}`.
//!
//! Noise: one standard-normal `[K, batch, L]` tensor per subset, subsets ordered by bit mask
//! `b = 1 .. 2^M - 1` (modality `m` is in the subset when bit `m` of `b` is set).
#![warn(missing_docs)]

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use rensou_api::{Error, Result};
use rensou_model::dist::{product_of_normals, with_prior_expert, Dist};
use rensou_model::fusion::{
    elbo_terms, experts, fusion_table, require_normal_experts, ElboTerm, FusionDesign, FusionMath,
    FusionModel, FusionPlugin, Noise,
};
use rensou_model::mmvae::{MmvaeConfig, ObjectiveConfig, ObjectiveKind, ObjectiveOutput};

/// MoPoE-VAE's mixture of products of experts and its objective.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mopoe {
    /// Multiply a standard-normal prior expert `N(0, I)` into every subset's product (false;
    /// the authors' code adds it to the full set only).
    #[serde(default)]
    pub prior_expert: bool,
}

/// The most modalities `mopoe` accepts (`2^M - 1` subsets are decoded every step).
pub const MAX_MODALITIES: usize = 8;

#[typetag::serde(name = "mopoe")]
impl FusionDesign for Mopoe {
    fn validate(&self, model: &MmvaeConfig) -> Result<()> {
        require_normal_experts(model, "mopoe")?;
        let m = model.modalities.len();
        if m > MAX_MODALITIES {
            return Err(Error::config(
                "model.modalities",
                format!(
                    "`mopoe` decodes all 2^M - 1 subsets every step; at most {MAX_MODALITIES} \
                     modalities, got {m}"
                ),
            ));
        }
        Ok(())
    }

    fn objectives(&self) -> Vec<(ObjectiveKind, bool)> {
        vec![(ObjectiveKind::Elbo, false)] // MoPoE's ELBO
    }

    fn decoded_blocks(&self, modalities: usize) -> usize {
        (1 << modalities.min(MAX_MODALITIES)) - 1 // every subset, to every modality
    }

    fn clone_box(&self) -> Box<dyn FusionDesign> {
        Box::new(self.clone())
    }
}

inventory::submit! {
    FusionPlugin {
        name: "mopoe",
        description: "mixture of products of experts (MoPoE-VAE, Sutter et al. 2021): elbo over every subset",
        default_config: || Box::new(Mopoe::default()),
        table: fusion_table::<Mopoe>,
    }
}

impl FusionMath for Mopoe {
    fn objective<B: Backend>(
        &self,
        model: &dyn FusionModel<B>,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: &mut Noise<B>,
        _two_pass: bool,
    ) -> Result<ObjectiveOutput<B>> {
        let experts = experts(model, xs)?; // M x [batch, L]
        let m = experts.len();
        let mut terms = Vec::with_capacity((1 << m) - 1);
        for mask in 1usize..1 << m {
            let members: Vec<&Dist<B, 2>> = (0..m)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| &experts[i])
                .collect();
            terms.push(ElboTerm {
                q: product_of_normals(&members, self.prior_expert)?, // [batch, L]
                targets: (0..m).collect(), // every subset reconstructs every modality
            });
        }
        let subsets = terms.len() as f64;
        let value = elbo_terms(model, terms, objective.k, noise, xs)?
            .into_iter()
            .reduce(|a, b| a.add(b)) // [batch]
            .ok_or_else(|| Error::Data("mopoe: no subsets".into()))?
            .div_scalar(subsets);
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
