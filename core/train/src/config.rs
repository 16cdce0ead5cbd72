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

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::DatasetModality;
use rensou_api::modality::{Likelihood, NetKind};
use rensou_api::{Error, Result};
use rensou_model::dist::DistFamily;
use rensou_model::fusion::FusionDesign;
use rensou_model::mmvae::{
    MmvaeConfig, ModalityNetConfig, ObjectiveConfig, ObjectiveKind, ObjectiveName, PriorConfig,
};
use rensou_model::nn::{Conv2dNet, MlpNet, NetConfig};

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
        (Value::Array(xa), Value::Array(xb)) if xa.len() == xb.len() => xa
            .iter()
            .zip(xb)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
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

/// Values given on the command line: the top layer of the config pipeline, over the stored
/// run's and the `--config` file's (see [`RunSpec::resolve_with`]).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `data.file`.
    pub data: Option<PathBuf>,
    /// `data.modalities`.
    pub modalities: Option<Vec<String>>,
    /// Every modality's net (conv only where the items allow it).
    pub net: Option<NetChoice>,
    /// `model.fusion` (a plugin's default config, from `--fusion NAME`).
    pub fusion: Option<Box<dyn FusionDesign>>,
    /// The `[training]` fields given (`--epochs`, `--objective dreg-looser`, ...).
    pub training: TrainingSpec,
}

impl Overrides {
    /// The flags as a spec layer (the net choice applies after the nets are resolved).
    fn layer(&self) -> RunSpec {
        let mut spec = RunSpec::default();
        spec.data.file = self.data.clone();
        spec.data.modalities = self.modalities.clone();
        spec.model.fusion = self.fusion.clone();
        spec.training = self.training.clone();
        spec
    }
}

/// The `[training]` section of one layer (a file, the flags, a stored run): every field
/// optional. [`Self::resolve`] decides the defaults, once.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// Number of epochs (50).
    #[serde(default)]
    pub epochs: Option<usize>,
    /// Pairs per optimisation step (128).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Adam learning rate (1e-3).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Linear learning-rate warm-up steps (0).
    #[serde(default)]
    pub warmup_steps: Option<usize>,
    /// Adam with AMSGrad (true).
    #[serde(default)]
    pub amsgrad: Option<bool>,
    /// Samples per modality `K` (20).
    #[serde(default)]
    pub k: Option<usize>,
    /// The objective by its one spelling (`dreg`, `dreg-looser`, `elbo`); default: the
    /// fusion's own (the mixture of experts: `dreg`).
    #[serde(default)]
    pub objective: Option<ObjectiveName>,
    /// Not a setting: the looser variant is part of the objective's name. Read only to refuse
    /// it with that advice ([`Self::resolve`]); leave it `None`.
    #[serde(default)]
    pub looser: Option<bool>,
    /// Seed (0).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Grid every this many epochs (1).
    #[serde(default)]
    pub grid_every: Option<usize>,
    /// A seeded subset of this many training pairs.
    #[serde(default)]
    pub max_train_pairs: Option<usize>,
    /// A seeded subset of this many test pairs.
    #[serde(default)]
    pub max_test_pairs: Option<usize>,
}

impl TrainingSpec {
    /// The layer of a resolved section (a stored run's): every field set.
    pub fn of_config(c: &TrainingConfig) -> Self {
        TrainingSpec {
            epochs: Some(c.epochs),
            batch_size: Some(c.batch_size),
            lr: Some(c.lr),
            warmup_steps: Some(c.warmup_steps),
            amsgrad: Some(c.amsgrad),
            k: Some(c.k),
            objective: Some(ObjectiveName::new(c.objective, c.looser)),
            looser: None,
            seed: Some(c.seed),
            grid_every: Some(c.grid_every),
            max_train_pairs: c.max_train_pairs,
            max_test_pairs: c.max_test_pairs,
        }
    }

    /// This layer with `over`'s set fields on top.
    pub fn layered(&self, over: &TrainingSpec) -> TrainingSpec {
        TrainingSpec {
            epochs: over.epochs.or(self.epochs),
            batch_size: over.batch_size.or(self.batch_size),
            lr: over.lr.or(self.lr),
            warmup_steps: over.warmup_steps.or(self.warmup_steps),
            amsgrad: over.amsgrad.or(self.amsgrad),
            k: over.k.or(self.k),
            objective: over.objective.or(self.objective),
            looser: over.looser.or(self.looser),
            seed: over.seed.or(self.seed),
            grid_every: over.grid_every.or(self.grid_every),
            max_train_pairs: over.max_train_pairs.or(self.max_train_pairs),
            max_test_pairs: over.max_test_pairs.or(self.max_test_pairs),
        }
    }

    /// The section with every default decided: the paper's values
    /// ([`TrainingConfig::default`]), and the objective asked for or else `fusion`'s own
    /// ([`resolve_objective`](rensou_model::fusion::resolve_objective)). Not yet validated
    /// (the whole config is, by its resolver).
    pub fn resolve(&self, fusion: &dyn FusionDesign) -> Result<TrainingConfig> {
        if self.looser.is_some() {
            return Err(Error::config(
                "training.looser",
                "the looser variant is part of the objective's name: write \
                 `objective = \"dreg-looser\"` (or `--objective dreg-looser`)",
            ));
        }
        let d = TrainingConfig::default();
        let k = self.k.unwrap_or(d.k);
        let objective = rensou_model::fusion::resolve_objective(fusion, self.objective, k)?;
        Ok(TrainingConfig {
            epochs: self.epochs.unwrap_or(d.epochs),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            lr: self.lr.unwrap_or(d.lr),
            warmup_steps: self.warmup_steps.unwrap_or(d.warmup_steps),
            amsgrad: self.amsgrad.unwrap_or(d.amsgrad),
            k,
            objective: objective.kind,
            looser: objective.looser,
            seed: self.seed.unwrap_or(d.seed),
            grid_every: self.grid_every.unwrap_or(d.grid_every),
            max_train_pairs: self.max_train_pairs.or(d.max_train_pairs),
            max_test_pairs: self.max_test_pairs.or(d.max_test_pairs),
        })
    }
}

/// A built-in architecture by name (`mlp`, `conv`), with default hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetChoice {
    /// The paper's MLP.
    Mlp,
    /// Noda's CNN (for `[H, W, C]` images whose size survives the conv/deconv round trip,
    /// e.g. 32x32).
    Conv,
    /// 1-D convolutions over time (for `[C, L]` signals and spectrograms, e.g. audio).
    Conv1d,
}

impl NetChoice {
    /// The net for items of `item_shape`: `current` when it is already of this kind, else the
    /// kind's defaults; `None` when the kind does not fit the items (conv on 28x28 or on
    /// non-images).
    pub fn net_for(
        self,
        item_shape: &[usize],
        latent_dim: usize,
        current: Option<&NetConfig>,
    ) -> Option<NetConfig> {
        match (self, current) {
            (NetChoice::Mlp, Some(net @ NetConfig::Mlp(_))) => Some(net.clone()),
            (NetChoice::Mlp, _) => Some(NetConfig::Mlp(MlpNet::default())),
            (NetChoice::Conv, current) => {
                let net = match current {
                    Some(net @ NetConfig::Conv2d(_)) => net.clone(),
                    _ => NetConfig::Conv2d(Conv2dNet::default()),
                };
                net.validate("net", item_shape, latent_dim)
                    .ok()
                    .map(|_| net)
            }
            (NetChoice::Conv1d, current) => {
                let net = match current {
                    Some(net @ NetConfig::Conv1d(_)) => net.clone(),
                    _ => NetConfig::from_kind(NetKind::Conv1d),
                };
                net.validate("net", item_shape, latent_dim)
                    .ok()
                    .map(|_| net)
            }
        }
    }

    /// Makes every modality's net of this kind where the items allow it (keeping the current
    /// net when it already is); the others keep an MLP, with a note each. A kind that fits none
    /// of the modalities is an error (`--net`).
    fn apply_to(self, model: &mut MmvaeConfig) -> Result<Vec<String>> {
        let latent = model.latent_dim;
        self.check_fits_some(&model.modalities, latent, "--net")?;
        let mut notes = Vec::new();
        for m in &mut model.modalities {
            let current = m.net.clone();
            m.net = match self.net_for(&m.item_shape, latent, Some(&current)) {
                Some(net) => net,
                None => {
                    notes.push(self.fallback_note(&m.name, &m.item_shape));
                    match current {
                        NetConfig::Mlp(_) => current,
                        _ => NetConfig::Mlp(MlpNet::default()),
                    }
                }
            };
        }
        Ok(notes)
    }

    /// Refuses this kind when it fits none of `modalities`' items: then it is not a preference
    /// some modalities cannot follow, but a choice that cannot work (`field` names it).
    fn check_fits_some(
        self,
        modalities: &[ModalityNetConfig],
        latent_dim: usize,
        field: &str,
    ) -> Result<()> {
        if modalities
            .iter()
            .any(|m| self.net_for(&m.item_shape, latent_dim, None).is_some())
        {
            return Ok(());
        }
        let shapes: Vec<String> = modalities
            .iter()
            .map(|m| format!("`{}` {:?}", m.name, m.item_shape))
            .collect();
        Err(Error::config(
            field,
            format!(
                "the {self} net fits none of the items ({}); choose a net that fits them",
                shapes.join(", ")
            ),
        ))
    }

    fn fallback_note(self, name: &str, shape: &[usize]) -> String {
        format!("`{name}` items {shape:?} do not fit the {self} net; it keeps an MLP")
    }
}

impl fmt::Display for NetChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetChoice::Mlp => "mlp",
            NetChoice::Conv => "conv",
            NetChoice::Conv1d => "conv1d",
        })
    }
}

impl std::str::FromStr for NetChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mlp" => Ok(NetChoice::Mlp),
            "conv" | "conv2d" | "cnn" => Ok(NetChoice::Conv),
            "conv1d" => Ok(NetChoice::Conv1d),
            other => Err(Error::config(
                "net",
                format!("unknown net `{other}` (expected `mlp`, `conv` or `conv1d`)"),
            )),
        }
    }
}

/// A net in a user's file: a name (`net = "conv"`) or a full table
/// (`net = { type = "mlp", hidden = [64, 64] }`).
#[derive(Clone, Debug, PartialEq)]
pub enum NetSpec {
    /// A built-in by name, default hyper-parameters.
    Choice(NetChoice),
    /// A complete net config.
    Full(NetConfig),
}

impl<'de> Deserialize<'de> for NetSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct NetVisitor;
        impl<'de> Visitor<'de> for NetVisitor {
            type Value = NetSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"mlp\", \"conv\" or a net table such as { type = \"mlp\", hidden = [400] }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<NetSpec, E> {
                v.parse().map(NetSpec::Choice).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<NetSpec, A::Error> {
                NetConfig::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(NetSpec::Full)
            }
        }
        deserializer.deserialize_any(NetVisitor)
    }
}

/// The data section of a user's file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// The dataset file (`--data`).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Modalities to train on (`--modalities`); default: every modality of the file.
    #[serde(default)]
    pub modalities: Option<Vec<String>>,
}

/// The prior in a user's file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorSpec {
    /// Family; default Laplace for two or more modalities, Normal for one (the paper's
    /// single-modality VAEs were Normal throughout).
    #[serde(default)]
    pub family: Option<DistFamily>,
    /// Whether `theta` is learnt (false).
    #[serde(default)]
    pub learnable: Option<bool>,
    /// Initial `theta` (0: scale 1).
    #[serde(default)]
    pub theta: Option<f64>,
}

/// Per-modality settings in a user's file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalitySpec {
    /// The modality (`oscn`).
    pub name: String,
    /// Its net (default: the model's `net`).
    #[serde(default)]
    pub net: Option<NetSpec>,
    /// Likelihood family (normal).
    #[serde(default)]
    pub likelihood: Option<Likelihood>,
    /// Fixed likelihood scale (0.75).
    #[serde(default)]
    pub likelihood_scale: Option<f64>,
    /// Likelihood weight (default: max features / features).
    #[serde(default)]
    pub weight: Option<f64>,
}

/// The model section of a user's file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Latent dimension (20).
    #[serde(default)]
    pub latent_dim: Option<usize>,
    /// Posterior family (normal).
    #[serde(default)]
    pub posterior: Option<DistFamily>,
    /// The prior.
    #[serde(default)]
    pub prior: PriorSpec,
    /// Default net of every modality (`mlp`). A name applies where it fits (`conv` leaves
    /// non-square or 28x28 items with an MLP); a table applies where it validates, same rule.
    #[serde(default)]
    pub net: Option<NetSpec>,
    /// Per-modality settings, by name; entries for modalities not trained on are ignored.
    #[serde(default)]
    pub modalities: Vec<ModalitySpec>,
    /// The fusion (`[model.fusion] type = "poe"`); absent: the mixture of experts.
    #[serde(default)]
    pub fusion: Option<Box<dyn FusionDesign>>,
}

/// What a user writes: every field optional; resolved against the data file by
/// [`resolve`](Self::resolve).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Data.
    #[serde(default)]
    pub data: DataSpec,
    /// Model.
    #[serde(default)]
    pub model: ModelSpec,
    /// Training (every field optional; defaults decided in [`TrainingSpec::resolve`]).
    #[serde(default)]
    pub training: TrainingSpec,
}

impl RunSpec {
    /// Parses a user's TOML file (not yet resolved).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::toml_parse(path, text, &e))
    }

    /// Reads a user's TOML file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        Self::from_toml(&text, path)
    }

    /// Reads a user's TOML file given to resume the run stored as `stored`: what the file
    /// leaves out is the run's, not the defaults, so a file that sets only `k = 7` differs from
    /// the run in `training.k` alone.
    pub fn read_over(path: &Path, stored: &RunConfig) -> Result<Self> {
        Ok(Self::of_run(stored).layered(Self::read(path)?))
    }

    /// The spec of a stored run: every field set to the run's. The bottom layer when a run is
    /// resumed.
    pub fn of_run(stored: &RunConfig) -> Self {
        let m = &stored.model;
        RunSpec {
            data: DataSpec {
                file: Some(stored.data.file.clone()),
                modalities: Some(stored.data.modalities.clone()),
            },
            model: ModelSpec {
                latent_dim: Some(m.latent_dim),
                posterior: Some(m.posterior),
                prior: PriorSpec {
                    family: Some(m.prior.family),
                    learnable: Some(m.prior.learnable),
                    theta: Some(m.prior.theta),
                },
                net: None,
                modalities: m
                    .modalities
                    .iter()
                    .map(|s| ModalitySpec {
                        name: s.name.clone(),
                        net: Some(NetSpec::Full(s.net.clone())),
                        likelihood: Some(s.likelihood),
                        likelihood_scale: Some(s.likelihood_scale),
                        weight: s.weight,
                    })
                    .collect(),
                fusion: m.fusion.clone(),
            },
            training: TrainingSpec::of_config(&stored.training),
        }
    }

    /// This spec with `over`'s settings on top: every field `over` sets replaces this one's.
    /// The nets are one setting: a layer that names a net (`net` or `[[model.modalities]]`)
    /// replaces all of them.
    pub fn layered(mut self, over: RunSpec) -> RunSpec {
        let (data, model) = (&mut self.data, &mut self.model);
        data.file = over.data.file.or(data.file.take());
        data.modalities = over.data.modalities.or(data.modalities.take());
        model.latent_dim = over.model.latent_dim.or(model.latent_dim);
        model.posterior = over.model.posterior.or(model.posterior);
        let prior = &mut model.prior;
        prior.family = over.model.prior.family.or(prior.family);
        prior.learnable = over.model.prior.learnable.or(prior.learnable);
        prior.theta = over.model.prior.theta.or(prior.theta);
        if over.model.net.is_some() || !over.model.modalities.is_empty() {
            model.net = over.model.net;
            model.modalities = over.model.modalities;
        }
        model.fusion = over.model.fusion.or(model.fusion.take());
        self.training = self.training.layered(&over.training);
        self
    }

    /// The whole pipeline: this spec (the stored run's and/or a file's layers) with the
    /// command line's `overrides` on top, resolved against its data file (item shapes read
    /// from it) into a validated config. Returns the config and notes for the user.
    pub fn resolve_with(&self, overrides: &Overrides) -> Result<(RunConfig, Vec<String>)> {
        let spec = self.clone().layered(overrides.layer());
        let file = spec.data.file.as_deref().ok_or_else(|| {
            Error::config(
                "data.file",
                "no dataset given (use --data FILE or [data] file)",
            )
        })?;
        let available = super::dataset_modalities(file)?;
        let (config, mut notes) = spec.resolve_choosing(&available, overrides.net)?;
        if let Some(warning) = rensou_store::DatasetFile::open(file)?.provenance_warning() {
            notes.push(warning);
        }
        Ok((config, notes))
    }

    /// Resolves the spec into a complete, validated config. `available` lists the data file's
    /// modalities with their item shapes, in file order. Returns the config and notes for the
    /// user.
    pub fn resolve(&self, available: &[DatasetModality]) -> Result<(RunConfig, Vec<String>)> {
        self.resolve_choosing(available, None)
    }

    /// [`Self::resolve`], with every modality's net of kind `net` where given (`--net`).
    fn resolve_choosing(
        &self,
        available: &[DatasetModality],
        net: Option<NetChoice>,
    ) -> Result<(RunConfig, Vec<String>)> {
        let file = self.data.file.clone().ok_or_else(|| {
            Error::config(
                "data.file",
                "no dataset given (use --data FILE or [data] file)",
            )
        })?;
        let names: Vec<String> = match &self.data.modalities {
            Some(names) => names.clone(),
            None => available.iter().map(|m| m.name.clone()).collect(),
        };
        if names.is_empty() {
            return Err(Error::config(
                "data.modalities",
                "needs at least one modality",
            ));
        }
        let known = || {
            available
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, spec) in self.model.modalities.iter().enumerate() {
            if !available.iter().any(|m| m.name == spec.name) {
                return Err(Error::config(
                    format!("model.modalities[{i}].name"),
                    format!(
                        "`{}` is not a modality of {} (it has {})",
                        spec.name,
                        file.display(),
                        known()
                    ),
                ));
            }
        }
        let latent_dim = self.model.latent_dim.unwrap_or(20);
        let mut notes = Vec::new();
        let mut modalities = Vec::with_capacity(names.len());
        for name in &names {
            let found = available.iter().find(|m| &m.name == name).ok_or_else(|| {
                Error::config(
                    "data.modalities",
                    format!(
                        "`{name}` is not a modality of {} (it has {})",
                        file.display(),
                        known()
                    ),
                )
            })?;
            let shape = found.item_shape.clone();
            // The modality's own suggestion, where it fits the items (else the MLP).
            let suggested = match found.suggested_net {
                Some(kind) => {
                    let net = NetConfig::from_kind(kind);
                    if net.validate("net", &shape, latent_dim).is_ok() {
                        net
                    } else {
                        notes.push(format!(
                            "`{name}` suggests a {} net, which does not fit its items \
                             {shape:?}; it gets an MLP",
                            kind.as_str()
                        ));
                        NetConfig::default()
                    }
                }
                None => NetConfig::default(),
            };
            let own = self.model.modalities.iter().find(|m| &m.name == name);
            let mut m = ModalityNetConfig::new(name.clone(), shape.clone());
            m.net = match own.and_then(|o| o.net.as_ref()) {
                // An explicit per-modality net must fit; validation reports it if not.
                Some(NetSpec::Full(net)) => net.clone(),
                Some(NetSpec::Choice(choice)) => {
                    choice.net_for(&shape, latent_dim, None).ok_or_else(|| {
                        Error::config(
                            format!("model.modalities.{name}.net"),
                            format!("`{name}` items {shape:?} do not fit the {choice} net"),
                        )
                    })?
                }
                None => match &self.model.net {
                    None => suggested,
                    // A named kind ("conv": the CNN where the items allow it) keeps the MLP for
                    // the modalities it does not fit, as documented; one that fits none of them
                    // is an error (checked below, once every modality is known).
                    Some(NetSpec::Choice(choice)) => {
                        match choice.net_for(&shape, latent_dim, None) {
                            Some(net) => net,
                            None => {
                                notes.push(choice.fallback_note(name, &shape));
                                NetConfig::default()
                            }
                        }
                    }
                    // A net given in full is an explicit choice: one that cannot work on these
                    // items is an error naming the field, never replaced by an MLP. Only the
                    // modality's own suggestion may fall back (above).
                    Some(NetSpec::Full(net)) => {
                        net.validate("model.net", &shape, latent_dim).map_err(|e| {
                            Error::config(
                                "model.net",
                                format!("does not fit `{name}` items {shape:?}: {e}"),
                            )
                        })?;
                        net.clone()
                    }
                },
            };
            if let Some(l) = found.suggested_likelihood {
                m.likelihood = l;
            }
            if let Some(own) = own {
                if let Some(l) = own.likelihood {
                    m.likelihood = l;
                }
                if let Some(s) = own.likelihood_scale {
                    m.likelihood_scale = s;
                }
                m.weight = own.weight;
            }
            modalities.push(m);
        }
        if let Some(NetSpec::Choice(choice)) = &self.model.net {
            choice.check_fits_some(&modalities, latent_dim, "model.net")?;
        }
        let default_family = if names.len() >= 2 {
            DistFamily::Laplace
        } else {
            DistFamily::Normal
        };
        let prior = PriorConfig {
            family: self.model.prior.family.unwrap_or(default_family),
            learnable: self.model.prior.learnable.unwrap_or(false),
            theta: self.model.prior.theta.unwrap_or(0.0),
        };
        let mut model = MmvaeConfig {
            latent_dim,
            prior,
            posterior: self.model.posterior.unwrap_or(DistFamily::Normal),
            modalities,
            fusion: normalised_fusion(self.model.fusion.clone())?,
        };
        if let Some(choice) = net {
            notes.extend(choice.apply_to(&mut model)?);
        }
        let training = self.training.resolve(&*model.fusion_design()?)?;
        let config = RunConfig {
            data: DataConfig {
                file,
                modalities: names,
            },
            model,
            training,
        };
        config.validate()?;
        Ok((config, notes))
    }
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
