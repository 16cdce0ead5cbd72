//! Model and objective configuration.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::dist::DistFamily;
use crate::fusion::{fusion_type_name, resolve_design, FusionDesign, DEFAULT_FUSION};
use crate::nn::NetConfig;
use rensou_api::modality::Likelihood;
use rensou_api::{Error, Result};

fn default_latent_dim() -> usize {
    20
}
fn default_prior_family() -> DistFamily {
    DistFamily::Laplace
}
fn default_likelihood() -> Likelihood {
    Likelihood::Normal
}
fn default_likelihood_scale() -> f64 {
    0.75
}
fn default_k() -> usize {
    20
}

/// The prior `p(z) = family(0, softmax(theta) * latent_dim)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorConfig {
    /// Family (MMVAE: `laplace`; the paper's single-modality VAEs: `normal`).
    #[serde(default = "default_prior_family")]
    pub family: DistFamily,
    /// Whether `theta` is trained (the reference keeps it fixed).
    #[serde(default)]
    pub learnable: bool,
    /// Initial value of every entry of `theta` (0 gives scale 1 in every dimension).
    #[serde(default)]
    pub theta: f64,
}

impl Default for PriorConfig {
    fn default() -> Self {
        PriorConfig {
            family: default_prior_family(),
            learnable: false,
            theta: 0.0,
        }
    }
}

/// One modality's part of the model: its data shape, networks and likelihood.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalityNetConfig {
    /// The modality's name (`oscn`, `cmnist`); unique within the model.
    pub name: String,
    /// Shape of one item (`[32, 32, 3]`).
    pub item_shape: Vec<usize>,
    /// Encoder/decoder architecture (default: the paper's MLP).
    #[serde(default)]
    pub net: NetConfig,
    /// Likelihood family of `p(x | z)` (default `normal`).
    #[serde(default = "default_likelihood")]
    pub likelihood: Likelihood,
    /// Fixed likelihood scale (0.75).
    #[serde(default = "default_likelihood_scale")]
    pub likelihood_scale: f64,
    /// Likelihood weight lambda; `None` means `max input features / this modality's features`
    /// (OSCN 1, CMNIST 3072/2352).
    #[serde(default)]
    pub weight: Option<f64>,
}

impl ModalityNetConfig {
    /// A modality with the paper's defaults (MLP, Normal likelihood, scale 0.75, automatic weight).
    pub fn new(name: impl Into<String>, item_shape: Vec<usize>) -> Self {
        ModalityNetConfig {
            name: name.into(),
            item_shape,
            net: NetConfig::default(),
            likelihood: default_likelihood(),
            likelihood_scale: default_likelihood_scale(),
            weight: None,
        }
    }

    /// Number of features of one item (product of the item shape).
    pub fn features(&self) -> usize {
        self.item_shape.iter().product()
    }
}

/// The model: latent size, prior, posterior family and one entry per modality.
///
/// A single-modality VAE is the same model with one modality.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MmvaeConfig {
    /// Latent dimension (20).
    #[serde(default = "default_latent_dim")]
    pub latent_dim: usize,
    /// Prior.
    #[serde(default)]
    pub prior: PriorConfig,
    /// Family of every unimodal posterior `q_m(z | x_m)` (default `normal`).
    #[serde(default)]
    pub posterior: DistFamily,
    /// The modalities, in model order (the order inputs are passed in).
    pub modalities: Vec<ModalityNetConfig>,
    /// How the modalities' posteriors are joined, and the objective that goes with it: a fusion
    /// plugin's config (`[model.fusion] type = "poe"`). `None` (absent) means
    /// [`DEFAULT_FUSION`], the MMVAE's mixture of experts, with its default settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<Box<dyn FusionDesign>>,
}

impl MmvaeConfig {
    /// A config with the paper's defaults for the given modalities.
    pub fn new(modalities: Vec<ModalityNetConfig>) -> Self {
        MmvaeConfig {
            latent_dim: default_latent_dim(),
            prior: PriorConfig::default(),
            posterior: DistFamily::Normal,
            modalities,
            fusion: None,
        }
    }

    /// The same config with fusion `design`.
    pub fn with_fusion(mut self, design: Box<dyn FusionDesign>) -> Self {
        self.fusion = Some(design);
        self
    }

    /// The fusion design in use: `fusion`, or the default plugin's default config.
    pub fn fusion_design(&self) -> Result<Box<dyn FusionDesign>> {
        resolve_design(self.fusion.as_deref())
    }

    /// Size of each modality's private latent (the fusion's; 0 for a shared latent only).
    pub fn private_dim(&self) -> usize {
        self.fusion
            .as_ref()
            .map_or(0, |design| design.private_dim())
    }

    /// What the nets see: encoders output and decoders take `private_dim + latent_dim`
    /// dimensions (private first).
    pub fn net_latent_dim(&self) -> usize {
        self.private_dim() + self.latent_dim
    }

    /// The fusion's name (`moe` when the config names none).
    pub fn fusion_name(&self) -> String {
        match &self.fusion {
            Some(design) => fusion_type_name(&**design).unwrap_or_else(|_| "?".into()),
            None => DEFAULT_FUSION.into(),
        }
    }

    /// Checks every field; errors name the field (`model.modalities[1].likelihood_scale`).
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_LATENT_DIM).contains(&self.latent_dim) {
            return Err(Error::config(
                "model.latent_dim",
                format!("must be in 1..={MAX_LATENT_DIM}, got {}", self.latent_dim),
            ));
        }
        if !self.prior.theta.is_finite() {
            return Err(Error::config("model.prior.theta", "must be finite"));
        }
        if self.modalities.is_empty() {
            return Err(Error::config(
                "model.modalities",
                "needs at least one modality",
            ));
        }
        let mut names = BTreeSet::new();
        for (i, m) in self.modalities.iter().enumerate() {
            let field = |f: &str| format!("model.modalities[{i}].{f}");
            if m.name.is_empty() {
                return Err(Error::config(field("name"), "must not be empty"));
            }
            if !names.insert(m.name.as_str()) {
                return Err(Error::config(
                    field("name"),
                    format!("modality `{}` appears twice", m.name),
                ));
            }
            if m.item_shape.is_empty() || m.item_shape.contains(&0) {
                return Err(Error::config(
                    field("item_shape"),
                    format!(
                        "must be non-empty with every size >= 1, got {:?}",
                        m.item_shape
                    ),
                ));
            }
            if !(m.likelihood_scale.is_finite() && m.likelihood_scale > 0.0) {
                return Err(Error::config(
                    field("likelihood_scale"),
                    format!("must be finite and > 0, got {}", m.likelihood_scale),
                ));
            }
            if let Some(w) = m.weight {
                if !(w.is_finite() && w > 0.0) {
                    return Err(Error::config(
                        field("weight"),
                        format!("must be finite and > 0, got {w}"),
                    ));
                }
            }
            m.net
                .validate(&field("net"), &m.item_shape, self.net_latent_dim())?;
        }
        self.fusion_design()?.validate(self)
    }

    /// The likelihood weight lambda of each modality (explicit, or max features / features).
    pub fn likelihood_weights(&self) -> Vec<f64> {
        let max = self
            .modalities
            .iter()
            .map(ModalityNetConfig::features)
            .max()
            .unwrap_or(1) as f64;
        self.modalities
            .iter()
            .map(|m| m.weight.unwrap_or(max / m.features().max(1) as f64))
            .collect()
    }

    /// Index of the modality called `name`.
    pub fn modality_index(&self, name: &str) -> Option<usize> {
        self.modalities.iter().position(|m| m.name == name)
    }
}

/// The largest latent dimension a config may ask for (the paper uses 20).
pub const MAX_LATENT_DIM: usize = 4096;

/// Which estimator of the (multimodal) evidence bound is optimised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    /// MMVAE `m_elbo`: per-modality ELBOs with importance-weighted cross-modal reconstruction.
    Elbo,
    /// MMVAE `m_iwae`: importance-weighted bound over all `M * K` samples.
    Iwae,
    /// Doubly reparameterised IWAE gradient (encoders get `w~^2`), as DReG is defined.
    Dreg,
    /// What the reference code's `dreg` really computed: its gradient hook never fires, so
    /// encoders get `w~` once (q parameters stopped, weights `softmax(lw)`).
    DregReference,
}

impl ObjectiveKind {
    /// All kinds, in documentation order.
    pub const ALL: [ObjectiveKind; 4] = [
        ObjectiveKind::Elbo,
        ObjectiveKind::Iwae,
        ObjectiveKind::Dreg,
        ObjectiveKind::DregReference,
    ];

    /// The name used in configs (`elbo`, `iwae`, `dreg`, `dreg-reference`).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectiveKind::Elbo => "elbo",
            ObjectiveKind::Iwae => "iwae",
            ObjectiveKind::Dreg => "dreg",
            ObjectiveKind::DregReference => "dreg-reference",
        }
    }

    /// Whether the kind has a `looser` variant (all but `elbo`).
    pub fn has_looser(self) -> bool {
        !matches!(self, ObjectiveKind::Elbo)
    }
}

impl std::fmt::Display for ObjectiveKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ObjectiveKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ObjectiveKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::config(
                    "objective",
                    format!(
                        "unknown objective `{s}` (expected elbo, iwae, dreg or dreg-reference)"
                    ),
                )
            })
    }
}

/// An objective by its one spelling: the estimator, with `-looser` for the looser variant
/// (`dreg`, `dreg-looser`, `iwae-looser`, `elbo`). The same name on the command line
/// (`--objective dreg-looser`), in a run config (`objective = "dreg-looser"`), in
/// `rensou list` and in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectiveName {
    /// The estimator.
    pub kind: ObjectiveKind,
    /// The looser variant.
    pub looser: bool,
}

impl ObjectiveName {
    /// The name of `kind`, looser or not.
    pub fn new(kind: ObjectiveKind, looser: bool) -> Self {
        ObjectiveName { kind, looser }
    }

    /// The objective with `k` samples per modality.
    pub fn with_k(self, k: usize) -> ObjectiveConfig {
        ObjectiveConfig::new(self.kind, k).with_looser(self.looser)
    }
}

impl std::fmt::Display for ObjectiveName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.looser {
            write!(f, "{}-looser", self.kind)
        } else {
            write!(f, "{}", self.kind)
        }
    }
}

impl std::str::FromStr for ObjectiveName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (base, looser) = match s.strip_suffix("-looser") {
            Some(base) => (base, true),
            None => (s, false),
        };
        let unknown = || {
            Error::config(
                "training.objective",
                format!(
                    "unknown objective `{s}` (expected elbo, iwae, dreg or dreg-reference, the \
                     last three also with -looser, e.g. dreg-looser)"
                ),
            )
        };
        let kind: ObjectiveKind = base.parse().map_err(|_| unknown())?;
        if looser && !kind.has_looser() {
            return Err(Error::config(
                "training.objective",
                format!("`{kind}` has no looser variant (iwae, dreg and dreg-reference have)"),
            ));
        }
        Ok(ObjectiveName { kind, looser })
    }
}

impl<'de> Deserialize<'de> for ObjectiveName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ObjectiveName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The training objective: estimator, `looser` variant and number of samples per modality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// The estimator.
    pub kind: ObjectiveKind,
    /// Looser variant: importance weights (and log-mean-exp) within each modality's `K`
    /// samples, averaged over modalities, instead of over all `M * K` samples.
    #[serde(default)]
    pub looser: bool,
    /// Samples per modality `K` (20).
    #[serde(default = "default_k")]
    pub k: usize,
}

impl ObjectiveConfig {
    /// An objective with `looser = false`.
    pub fn new(kind: ObjectiveKind, k: usize) -> Self {
        ObjectiveConfig {
            kind,
            looser: false,
            k,
        }
    }

    /// The same objective with the looser variant switched on or off.
    pub fn with_looser(mut self, looser: bool) -> Self {
        self.looser = looser;
        self
    }

    /// Checks `k >= 1` and that `looser` is only asked of kinds that have it.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::config("objective.k", "must be >= 1"));
        }
        if self.looser && !self.kind.has_looser() {
            return Err(Error::config(
                "objective.looser",
                "`elbo` has no looser variant (use iwae, dreg or dreg-reference)",
            ));
        }
        Ok(())
    }

    /// Its name (`dreg`, `iwae-looser`).
    pub fn objective_name(&self) -> ObjectiveName {
        ObjectiveName::new(self.kind, self.looser)
    }

    /// A display name (`dreg`, `iwae-looser`).
    pub fn name(&self) -> String {
        self.objective_name().to_string()
    }
}
