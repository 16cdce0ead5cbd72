//! The layers of the config pipeline: what a user's file, the command line and a stored run
//! each say ([`RunSpec`], every field optional), merged in one order ([`RunSpec::layered`]:
//! stored run, then `--config` file, then flags) and resolved once, against the data file, into
//! the validated [`RunConfig`] that training, probes and the study accept
//! ([`RunSpec::resolve_with`]). Every default is decided here.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{normalised_fusion, DataConfig, RunConfig, TrainingConfig};
use crate::DatasetModality;
use rensou_api::modality::Likelihood;
use rensou_api::{Error, Result};
use rensou_model::dist::DistFamily;
use rensou_model::fusion::FusionDesign;
use rensou_model::mmvae::{MmvaeConfig, ModalityNetConfig, ObjectiveName, PriorConfig};
use rensou_model::nn::{NetChoice, NetConfig, NetSpec};

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
        let dataset = rensou_store::DatasetFile::open(file)?;
        let available = crate::modalities_of(&dataset)?;
        let (config, mut notes) = spec.resolve_choosing(&available, overrides.net)?;
        notes.extend(dataset.provenance_warning());
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
