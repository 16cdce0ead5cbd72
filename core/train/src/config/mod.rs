//! Run configuration: what a user writes ([`RunSpec`], every field optional) and the resolved
//! [`RunConfig`] a run stores in `RUN/config.toml` and rebuilds its model from.
//!
//! ```toml
//! [data]
//! file = "data/oscn-cmnist.h5"
//! modalities = ["oscn", "cmnist"]   # default: every modality in the file
//!
//! [model]
//! latent_dim = 20
//! net = "mlp"                        # or "conv" (conv where the items allow it), or a table
//! [model.prior]
//! family = "laplace"                 # default: laplace for >= 2 modalities, normal for 1
//! [[model.modalities]]               # optional per-modality settings
//! name = "oscn"
//! net = { type = "conv2d", channels = [32, 64, 128] }
//!
//! [training]
//! epochs = 50
//! batch_size = 128
//! lr = 1e-3
//! warmup_steps = 0                   # linear learning-rate warm-up (0: none, as the paper)
//! amsgrad = true
//! k = 20
//! objective = "dreg"                 # elbo, iwae, dreg, dreg-reference; -looser for the
//!                                    # looser variant (dreg-looser); default: the fusion's own
//! seed = 0
//! grid_every = 1
//! max_train_pairs = 20000            # optional: a seeded subset for quick runs
//! ```

mod spec;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use rensou_api::{Error, Result};
use rensou_model::fusion::FusionDesign;
use rensou_model::mmvae::{MmvaeConfig, ObjectiveConfig, ObjectiveKind};

pub use rensou_model::nn::{NetChoice, NetSpec};
pub use spec::{DataSpec, ModalitySpec, ModelSpec, Overrides, PriorSpec, RunSpec, TrainingSpec};

/// File name of the resolved config inside a run directory.
pub const RUN_CONFIG_FILE: &str = "config.toml";

/// The largest `training.k` a config may ask for (the paper trains with 20).
pub const MAX_K: usize = 10_000;
/// The largest `training.batch_size` a config may ask for (the paper uses 128).
pub const MAX_BATCH_SIZE: usize = 65_536;
pub use rensou_api::rng::MAX_SEED;

fn default_epochs() -> usize {
    50
}
fn default_batch_size() -> usize {
    128
}
fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn default_lr() -> f64 {
    1e-3
}
fn default_true() -> bool {
    true
}
fn default_k() -> usize {
    20
}
fn default_objective() -> ObjectiveKind {
    ObjectiveKind::Dreg
}
fn default_grid_every() -> usize {
    1
}

/// Which data a run trains on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The dataset file (HDF5 written by `rensou data build`).
    pub file: PathBuf,
    /// The modalities trained on, in model order.
    pub modalities: Vec<String>,
}

/// The training section: optimiser, objective, schedule and data subset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Number of epochs (50).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Pairs per optimisation step (128).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Adam learning rate (1e-3).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Linear learning-rate warm-up over this many optimisation steps (0: none, as the
    /// paper). Step `s` (counted from 1 over the whole run) uses `lr * min(1, s / warmup)`.
    /// With the reference's estimator an encoder can run away from the prior in the first
    /// few dozen full-rate Adam steps and never get gradient again; a warm-up avoids that.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warmup_steps: usize,
    /// Adam with AMSGrad (true, as the reference).
    #[serde(default = "default_true")]
    pub amsgrad: bool,
    /// Samples per modality `K` (20).
    #[serde(default = "default_k")]
    pub k: usize,
    /// The estimator (`dreg`).
    #[serde(default = "default_objective")]
    pub objective: ObjectiveKind,
    /// The looser variant of the estimator (false).
    #[serde(default)]
    pub looser: bool,
    /// Seed of everything random in the run: initialisation, shuffles, sampling noise (0).
    #[serde(default)]
    pub seed: u64,
    /// Write a reconstruction grid every this many epochs (1); 0 means only at the end.
    #[serde(default = "default_grid_every")]
    pub grid_every: usize,
    /// Train on a seeded random subset of this many training pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_train_pairs: Option<usize>,
    /// Evaluate on a seeded random subset of this many test pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_test_pairs: Option<usize>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            lr: default_lr(),
            warmup_steps: 0,
            amsgrad: true,
            k: default_k(),
            objective: default_objective(),
            looser: false,
            seed: 0,
            grid_every: default_grid_every(),
            max_train_pairs: None,
            max_test_pairs: None,
        }
    }
}

impl TrainingConfig {
    /// The learning rate of optimisation step `step` (counted from 1 over the whole run):
    /// `lr`, scaled linearly from `lr / warmup_steps` up to `lr` during the warm-up.
    pub fn lr_at(&self, step: usize) -> f64 {
        if self.warmup_steps == 0 {
            self.lr
        } else {
            self.lr * (step as f64 / self.warmup_steps as f64).clamp(0.0, 1.0)
        }
    }

    /// Checks every field; errors name it (`training.batch_size`).
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("training.epochs", "must be >= 1"));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(Error::config(
                "training.batch_size",
                format!("must be in 1..={MAX_BATCH_SIZE}, got {}", self.batch_size),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config(
                "training.lr",
                format!("must be finite and > 0, got {}", self.lr),
            ));
        }
        if !(1..=MAX_K).contains(&self.k) {
            return Err(Error::config(
                "training.k",
                format!("must be in 1..={MAX_K}, got {}", self.k),
            ));
        }
        if self.seed > MAX_SEED {
            return Err(Error::config(
                "training.seed",
                format!(
                    "must be at most {MAX_SEED} (a TOML integer, stored with the run), got {}",
                    self.seed
                ),
            ));
        }
        if self.looser && !self.objective.has_looser() {
            return Err(Error::config(
                "training.looser",
                "`elbo` has no looser variant (use iwae, dreg or dreg-reference)",
            ));
        }
        for (field, value) in [
            ("training.max_train_pairs", self.max_train_pairs),
            ("training.max_test_pairs", self.max_test_pairs),
        ] {
            if value == Some(0) {
                return Err(Error::config(field, "must be >= 1 when given"));
            }
        }
        Ok(())
    }

    /// The objective this section asks for.
    pub fn objective_config(&self) -> ObjectiveConfig {
        ObjectiveConfig::new(self.objective, self.k).with_looser(self.looser)
    }
}

/// The resolved configuration of a training run, stored as `RUN/config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The data.
    pub data: DataConfig,
    /// The model, complete (item shapes filled in from the data).
    pub model: MmvaeConfig,
    /// The training schedule.
    pub training: TrainingConfig,
}

impl RunConfig {
    /// Checks every section, and that the data modalities are the model's, in order.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.training.validate()?;
        rensou_model::fusion::check_objective(&*self.model.fusion_design()?, &self.objective())?;
        let names: Vec<&str> = self
            .model
            .modalities
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        if names != self.data.modalities {
            return Err(Error::config(
                "data.modalities",
                format!(
                    "{:?} must name the model's modalities in order ({names:?})",
                    self.data.modalities
                ),
            ));
        }
        Ok(())
    }

    /// The objective to train with.
    pub fn objective(&self) -> ObjectiveConfig {
        self.training.objective_config()
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::config("run config", e.to_string()))
    }

    /// Parses and validates TOML text; `path` is used in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let config: RunConfig =
            toml::from_str(text).map_err(|e| Error::toml_parse(path, text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a resolved config file (`RUN/config.toml`).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        Self::from_toml(&text, path)
    }

    /// Why a run stored with config `stored` cannot be resumed with `self`: the first field that
    /// differs, other than `training.epochs` and `data.file` (which a resumed run may change).
    pub fn resume_conflict(&self, stored: &RunConfig) -> Option<String> {
        let mut a = self.clone();
        a.training.epochs = stored.training.epochs;
        a.data.file = stored.data.file.clone();
        if &a == stored {
            return None;
        }
        let (va, vb) = match (toml::Value::try_from(&a), toml::Value::try_from(stored)) {
            (Ok(va), Ok(vb)) => (va, vb),
            _ => return Some("the config".into()),
        };
        Some(first_difference("", &va, &vb).unwrap_or_else(|| "the config".into()))
    }

    /// Whether a checkpoint written under `stored` can be loaded under `self`: the model and
    /// the data modalities must be the same. Returns the first differing field otherwise.
    pub fn checkpoint_conflict(&self, stored: &RunConfig) -> Option<String> {
        if self.model == stored.model && self.data.modalities == stored.data.modalities {
            return None;
        }
        let mut a = stored.clone();
        a.model = self.model.clone();
        a.data.modalities = self.data.modalities.clone();
        let (va, vb) = match (toml::Value::try_from(&a), toml::Value::try_from(stored)) {
            (Ok(va), Ok(vb)) => (va, vb),
            _ => return Some("model".into()),
        };
        Some(first_difference("", &va, &vb).unwrap_or_else(|| "model".into()))
    }
}

/// Dotted path of the first difference between two TOML values, with both values.
fn first_difference(path: &str, a: &toml::Value, b: &toml::Value) -> Option<String> {
    use toml::Value;
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Table(ta), Value::Table(tb)) => {
            let keys: std::collections::BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
            for k in keys {
                match (ta.get(k), tb.get(k)) {
                    (Some(x), Some(y)) => {
                        if let Some(d) = first_difference(&join(k), x, y) {
                            return Some(d);
                        }
                    }
                    (x, y) => {
                        let show =
                            |v: Option<&Value>| v.map_or("(unset)".to_owned(), |v| v.to_string());
                        return Some(format!(
                            "`{}` ({} vs the run's {})",
                            join(k),
                            show(x),
                            show(y)
                        ));
                    }
                }
            }
            None
        }
        // Arrays of tables (the modalities) name the entry that differs; arrays of plain values
        // (an item shape, hidden widths) are one setting, shown whole.
        (Value::Array(xa), Value::Array(xb))
            if xa.len() == xb.len() && xa.iter().chain(xb).any(Value::is_table) =>
        {
            xa.iter()
                .zip(xb)
                .enumerate()
                .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y))
        }
        _ if a == b => None,
        _ => Some(format!("`{path}` ({a} vs the run's {b})")),
    }
}

/// `design`, or `None` where it is the default fusion with its default settings (how runs
/// from before fusions were stored), so that both forms compare equal on resume.
pub fn normalised_fusion(
    design: Option<Box<dyn FusionDesign>>,
) -> Result<Option<Box<dyn FusionDesign>>> {
    let Some(design) = design else {
        return Ok(None);
    };
    let default = rensou_model::fusion::resolve_design(None)?;
    Ok(if design == default {
        None
    } else {
        Some(design)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_rises_linearly_to_the_learning_rate() {
        let mut t = TrainingConfig::default();
        assert_eq!(t.lr_at(1), 1e-3);
        t.warmup_steps = 4;
        let lrs: Vec<f64> = (1..=6).map(|s| t.lr_at(s)).collect();
        assert_eq!(lrs, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3]);
        // Absent from a stored config when unused, so older run directories still resume.
        let text = toml::to_string(&TrainingConfig::default()).unwrap();
        assert!(!text.contains("warmup_steps"), "{text}");
    }
}
