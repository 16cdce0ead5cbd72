//! The probe extension point: analyses of a trained model.
//!
//! A probe is a crate that provides a [`ProbeConfig`] (typetag: `[[probes]] type = "tsne"`) and a
//! [`ProbePlugin`] record submitted with inventory. Probes never see the burn backend: they get a
//! [`ProbeContext`] with the model behind the object-safe [`ModelView`] (plain `f32` arrays in and
//! out), the dataset split with its labels, the encoder locations of every item, shared cached
//! [`Classifiers`], and a directory of their own for figures. Whatever a probe returns is written
//! to `RUN/probes/<name>/metrics.json` by the runner ([`run_probes`]).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::modality::{ItemSet, LabelSpec, Split};
use crate::progress::Progress;
use crate::{Error, Result};

/// Encoder outputs for `n` items: row-major `[n, dim]` arrays.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latents {
    /// Number of items.
    pub n: usize,
    /// Latent dimension.
    pub dim: usize,
    /// Posterior locations (the paper's latents), `[n, dim]`.
    pub loc: Vec<f32>,
    /// Posterior scales, `[n, dim]`.
    pub scale: Vec<f32>,
}

impl Latents {
    /// Location of item `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.loc[i * self.dim..(i + 1) * self.dim]
    }
}

/// A trained model as probes see it: object safe, backend free, plain arrays.
///
/// Items go in as stored bytes (`n * item_len` values, row-major, `0..=255`); generated items come
/// out as likelihood locations in `[0, 1]` (`n * item_len` values, same layout as items).
pub trait ModelView: Send + Sync {
    /// Modality names, in model order.
    fn modalities(&self) -> Vec<String>;
    /// Latent dimension.
    fn latent_dim(&self) -> usize;
    /// Item shape of `modality` (e.g. `[32, 32, 3]`).
    fn item_shape(&self, modality: &str) -> Result<Vec<usize>>;
    /// Encodes items of `modality` into the shared latent (the one every probe analyses).
    fn encode(&self, modality: &str, items: &[u8]) -> Result<Latents>;
    /// Size of each modality's private latent (MMVAE+'s `w`); 0 when the model has none.
    fn private_dim(&self) -> usize {
        0
    }
    /// Encodes items of `modality` into its private latent, `None` when the model has none.
    fn encode_private(&self, modality: &str, items: &[u8]) -> Result<Option<Latents>> {
        let _ = (modality, items);
        Ok(None)
    }
    /// Decodes latents `[n, dim]` (row-major) into items of `modality`, values in `[0, 1]`.
    fn decode(&self, modality: &str, z: &[f32]) -> Result<Vec<f32>>;
    /// `n` samples from the prior, `[n, dim]`, seeded.
    fn sample_prior(&self, n: usize, seed: u64) -> Result<Vec<f32>>;
    /// `n` samples from the prior's family with location `loc` (`[dim]`) and the prior's scale,
    /// `[n, dim]`, seeded (the paper decodes arithmetic results this way).
    fn sample_at(&self, loc: &[f32], n: usize, seed: u64) -> Result<Vec<f32>>;
    /// One line: model kind, backend and device (for reports).
    fn describe(&self) -> String;
}

/// Label classifiers on items of a modality (count of OSCN objects, CMNIST digit, colour, ...),
/// shared by all probes of a run: trained once on the training split, cached in the run
/// directory, their test accuracy known.
pub trait Classifiers: Send + Sync {
    /// Predicts `label` for `n` items of `modality` given as values in `[0, 1]` (`n * item_len`).
    fn predict(&self, modality: &str, label: &str, items: &[f32]) -> Result<Vec<i64>>;
    /// Test-split accuracy of the classifier for (`modality`, `label`).
    fn accuracy(&self, modality: &str, label: &str) -> Result<f64>;
}

/// The data a probe analyses: one split of every modality of the model, row i of each a pair.
#[derive(Clone, Debug)]
pub struct ProbeData {
    /// Which split.
    pub split: Split,
    /// Items and labels per modality.
    pub sets: BTreeMap<String, ItemSet>,
    /// Label specs per modality (value names for legends).
    pub label_specs: BTreeMap<String, Vec<LabelSpec>>,
}

/// Everything a probe gets.
pub struct ProbeContext<'a> {
    /// The trained model.
    pub model: &'a dyn ModelView,
    /// Shared classifiers.
    pub classifiers: &'a dyn Classifiers,
    /// The analysed split.
    pub data: &'a ProbeData,
    /// Encoder outputs for every item of `data`, per modality.
    pub latents: &'a BTreeMap<String, Latents>,
    /// The probe's own output directory (`RUN/probes/<name>/`), already created.
    pub out_dir: PathBuf,
    /// Seed for the probe's random choices.
    pub seed: u64,
    /// Progress reporting.
    pub progress: &'a dyn Progress,
    /// The declared metrics and the values recorded so far.
    scalars: Mutex<Scalars>,
}

impl ProbeContext<'_> {
    /// Records the value of declared metric `metric` ([`ProbeConfig::metrics`]) for `of` (the
    /// model, a modality, or a source -> target pair, as the metric's [`Scope`] says). A
    /// non-finite value is not recorded (a report counts that run as missing for the metric);
    /// recording twice keeps the last value. Errors for a metric the probe did not declare or a
    /// scope other than declared, so a typo fails the probe instead of a report quietly missing
    /// a number.
    pub fn record(&self, metric: &str, of: Of<'_>, value: f64) -> Result<()> {
        let mut scalars = self.scalars.lock().unwrap_or_else(|e| e.into_inner());
        let spec = scalars.spec(metric).ok_or_else(|| {
            Error::Data(format!(
                "metric `{metric}` is not declared by the probe (ProbeConfig::metrics)"
            ))
        })?;
        if spec.scope != of.scope() {
            return Err(Error::Data(format!(
                "metric `{metric}` is declared for {:?} but recorded for {of:?}",
                spec.scope
            )));
        }
        if value.is_finite() {
            scalars
                .values
                .entry(metric.to_owned())
                .or_default()
                .insert(of.key(), value);
        }
        Ok(())
    }

    /// Writes `bytes` (a PNG, CSV, ...) as `file` in the probe's directory, atomically, and
    /// returns its path.
    pub fn write_file(&self, file: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.out_dir.join(file);
        crate::fsutil::write_bytes_atomically(&path, bytes)?;
        Ok(path)
    }
}

/// A probe's configuration; typetag makes `type = "<name>"` select the implementation.
#[typetag::serde(tag = "type")]
pub trait ProbeConfig: Debug + Send + Sync {
    /// Checks every field once; errors name the field and the allowed range.
    fn validate(&self) -> Result<()>;
    /// Runs the probe; the returned JSON becomes `metrics.json`. Figures go through
    /// [`ProbeContext::write_file`].
    fn run(&self, ctx: &ProbeContext<'_>) -> Result<serde_json::Value>;
    /// A copy of this config (trait objects cannot derive `Clone`).
    fn clone_box(&self) -> Box<dyn ProbeConfig>;
    /// The scalar metrics this probe reports through [`ProbeContext::record`]; reports find them
    /// by name in `scalars.json`. The default declares none.
    fn metrics(&self) -> Vec<MetricSpec> {
        Vec::new()
    }
}

/// Which way a metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Higher values are better (accuracy, silhouette).
    Higher,
    /// Lower values are better (error, distance to a target).
    Lower,
}

/// What one value of a metric describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The whole model (one value).
    Model,
    /// One modality (one value per modality).
    Modality,
    /// A source -> target pair of modalities (cross-generation).
    Pair,
}

/// The subject of one recorded value ([`ProbeContext::record`], [`Scalars::get`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Of<'a> {
    /// The whole model.
    Model,
    /// One modality.
    Modality(&'a str),
    /// From the first modality to the second.
    Pair(&'a str, &'a str),
}

impl Of<'_> {
    /// Its scope.
    pub fn scope(&self) -> Scope {
        match self {
            Of::Model => Scope::Model,
            Of::Modality(_) => Scope::Modality,
            Of::Pair(..) => Scope::Pair,
        }
    }

    /// Its key in [`Scalars::values`]: `""`, the modality, or `source->target`.
    pub fn key(&self) -> String {
        match self {
            Of::Model => String::new(),
            Of::Modality(m) => (*m).to_owned(),
            Of::Pair(a, b) => format!("{a}->{b}"),
        }
    }
}

/// A scalar metric a probe declares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSpec {
    /// Its name, unique within the probe (`silhouette.number`).
    pub name: String,
    /// One line for reports (`silhouette by number`).
    pub description: String,
    /// Which way is better.
    pub better: Better,
    /// What one value describes.
    pub scope: Scope,
}

impl MetricSpec {
    /// A declaration.
    pub fn new(name: &str, description: &str, better: Better, scope: Scope) -> Self {
        MetricSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            better,
            scope,
        }
    }
}

/// File name of a probe's typed scalars inside its directory.
pub const SCALARS_FILE: &str = "scalars.json";

/// The typed scalar metrics of one probe run (`RUN/probes/<name>/scalars.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scalars {
    /// What the probe declared.
    pub specs: Vec<MetricSpec>,
    /// `metric -> subject -> value`, the subject keyed by [`Of::key`]. Only finite values are
    /// present.
    pub values: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Scalars {
    /// Declared metrics, no values yet; errors on an empty or repeated name.
    pub fn declared(specs: Vec<MetricSpec>) -> Result<Self> {
        let mut seen = std::collections::BTreeSet::new();
        for spec in &specs {
            if spec.name.is_empty() || !seen.insert(spec.name.as_str()) {
                return Err(Error::Plugin(format!(
                    "a probe declares the metric name `{}` {}",
                    spec.name,
                    if spec.name.is_empty() {
                        "(empty)"
                    } else {
                        "twice"
                    }
                )));
            }
        }
        Ok(Scalars {
            specs,
            values: BTreeMap::new(),
        })
    }

    /// The declaration of `metric`.
    pub fn spec(&self, metric: &str) -> Option<&MetricSpec> {
        self.specs.iter().find(|s| s.name == metric)
    }

    /// The value of `metric` for `of`.
    pub fn get(&self, metric: &str, of: Of<'_>) -> Option<f64> {
        self.values.get(metric)?.get(&of.key()).copied()
    }

    /// Reads `dir/scalars.json`; `Ok(None)` when the file does not exist (the probe did not
    /// finish), an error when it exists but cannot be read.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(SCALARS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Format {
                path,
                message: format!("not a probe's scalars file: {e}"),
            })
    }
}

impl Clone for Box<dyn ProbeConfig> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The registration record of a probe plugin.
pub struct ProbePlugin {
    /// Plugin name; equals the typetag name of its config.
    pub name: &'static str,
    /// One line for `rensou list`.
    pub description: &'static str,
    /// The default configuration.
    pub default_config: fn() -> Box<dyn ProbeConfig>,
}

inventory::collect!(ProbePlugin);

/// The typetag name (`type = ...`) of a probe config.
pub fn probe_type_name(config: &dyn ProbeConfig) -> Result<String> {
    crate::registry::typetag_name(config, "a probe config")
}

/// The outcome of one probe.
#[derive(Debug)]
pub struct ProbeOutcome {
    /// Probe name.
    pub name: String,
    /// Its metrics, or why it failed.
    pub result: Result<serde_json::Value>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Runs `probes` one after another under `probes_dir` (`RUN/probes`): each gets
/// `probes_dir/<name>/`, its metrics are written there atomically as `metrics.json`. A probe that
/// fails (or panics) does not stop the others; its error is returned in its outcome and written
/// to `probes_dir/<name>/error.txt`.
#[allow(clippy::too_many_arguments)]
pub fn run_probes(
    probes: &[Box<dyn ProbeConfig>],
    probes_dir: &Path,
    model: &dyn ModelView,
    classifiers: &dyn Classifiers,
    data: &ProbeData,
    latents: &BTreeMap<String, Latents>,
    seed: u64,
    progress: &dyn Progress,
) -> Vec<ProbeOutcome> {
    probes
        .iter()
        .map(|probe| {
            let start = std::time::Instant::now();
            let name = probe_type_name(&**probe).unwrap_or_else(|_| "unnamed".to_owned());
            let out_dir = probes_dir.join(&name);
            let result: Result<serde_json::Value> = (|| {
                probe.validate()?;
                std::fs::create_dir_all(&out_dir)
                    .map_err(|e| Error::io("cannot create", &out_dir, e))?;
                let ctx = ProbeContext {
                    model,
                    classifiers,
                    data,
                    latents,
                    out_dir: out_dir.clone(),
                    seed: crate::rng::derive_seed(seed, &["probe", &name]),
                    progress,
                    scalars: Mutex::new(Scalars::declared(probe.metrics())?),
                };
                progress.stage(&format!("probe {name}"), None);
                let metrics =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probe.run(&ctx)))
                        .map_err(|p| {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_else(|| "unknown panic".to_owned());
                        Error::Data(format!("probe `{name}` panicked: {msg}"))
                    })??;
                let text = serde_json::to_string_pretty(&metrics)
                    .map_err(|e| Error::Data(format!("probe `{name}` metrics: {e}")))?;
                crate::fsutil::write_bytes_atomically(
                    &out_dir.join("metrics.json"),
                    text.as_bytes(),
                )?;
                let scalars = ctx.scalars.into_inner().unwrap_or_else(|e| e.into_inner());
                let text = serde_json::to_string_pretty(&scalars)
                    .map_err(|e| Error::Data(format!("probe `{name}` scalars: {e}")))?;
                crate::fsutil::write_bytes_atomically(
                    &out_dir.join(SCALARS_FILE),
                    text.as_bytes(),
                )?;
                let _ = std::fs::remove_file(out_dir.join("error.txt"));
                Ok(metrics)
            })();
            if let Err(e) = &result {
                // No scalars of an earlier run may stand for this failed one in a report.
                let _ = std::fs::remove_file(out_dir.join(SCALARS_FILE));
                let _ = std::fs::create_dir_all(&out_dir);
                let _ = crate::fsutil::write_bytes_atomically(
                    &out_dir.join("error.txt"),
                    e.to_string().as_bytes(),
                );
            }
            ProbeOutcome {
                name,
                result,
                seconds: start.elapsed().as_secs_f64(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    struct NoModel;

    impl ModelView for NoModel {
        fn modalities(&self) -> Vec<String> {
            vec!["a".into()]
        }
        fn latent_dim(&self) -> usize {
            1
        }
        fn item_shape(&self, _: &str) -> Result<Vec<usize>> {
            Ok(vec![1])
        }
        fn encode(&self, _: &str, _: &[u8]) -> Result<Latents> {
            Err(Error::Data("not in this test".into()))
        }
        fn decode(&self, _: &str, _: &[f32]) -> Result<Vec<f32>> {
            Err(Error::Data("not in this test".into()))
        }
        fn sample_prior(&self, _: usize, _: u64) -> Result<Vec<f32>> {
            Err(Error::Data("not in this test".into()))
        }
        fn sample_at(&self, _: &[f32], _: usize, _: u64) -> Result<Vec<f32>> {
            Err(Error::Data("not in this test".into()))
        }
        fn describe(&self) -> String {
            "none".into()
        }
    }

    impl Classifiers for NoModel {
        fn predict(&self, _: &str, _: &str, _: &[f32]) -> Result<Vec<i64>> {
            Err(Error::Data("not in this test".into()))
        }
        fn accuracy(&self, _: &str, _: &str) -> Result<f64> {
            Err(Error::Data("not in this test".into()))
        }
    }

    /// Records what `records` says; declares `a.m` (per modality) and `joint` (model).
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Recorder {
        records: Vec<(String, Option<String>, f64)>,
        twice: bool,
    }

    #[typetag::serde(name = "recorder-test")]
    impl ProbeConfig for Recorder {
        fn validate(&self) -> Result<()> {
            Ok(())
        }
        fn run(&self, ctx: &ProbeContext<'_>) -> Result<serde_json::Value> {
            for (metric, modality, value) in &self.records {
                let of = modality.as_deref().map_or(Of::Model, Of::Modality);
                ctx.record(metric, of, *value)?;
            }
            Ok(serde_json::json!({}))
        }
        fn clone_box(&self) -> Box<dyn ProbeConfig> {
            Box::new(self.clone())
        }
        fn metrics(&self) -> Vec<MetricSpec> {
            let mut specs = vec![
                MetricSpec::new("a.m", "a metric", Better::Lower, Scope::Modality),
                MetricSpec::new("joint", "a model metric", Better::Higher, Scope::Model),
            ];
            if self.twice {
                specs.push(specs[0].clone());
            }
            specs
        }
    }

    fn run(records: &[(&str, Option<&str>, f64)], twice: bool, dir: &Path) -> Result<Scalars> {
        let probe = Recorder {
            records: records
                .iter()
                .map(|(m, o, v)| ((*m).to_owned(), o.map(str::to_owned), *v))
                .collect(),
            twice,
        };
        let data = ProbeData {
            split: Split::Test,
            sets: BTreeMap::new(),
            label_specs: BTreeMap::new(),
        };
        let outcome = run_probes(
            &[Box::new(probe)],
            dir,
            &NoModel,
            &NoModel,
            &data,
            &BTreeMap::new(),
            0,
            &NoProgress,
        )
        .remove(0);
        outcome.result?;
        Ok(Scalars::read(&dir.join("recorder-test"))?.expect("scalars.json"))
    }

    #[test]
    fn declared_metrics_are_written_typed() {
        let dir = tempfile::tempdir().unwrap();
        let s = run(
            &[
                ("a.m", Some("x"), 0.5),
                ("joint", None, 2.0),
                ("a.m", Some("y"), f64::NAN),
            ],
            false,
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.get("a.m", Of::Modality("x")), Some(0.5));
        assert_eq!(s.get("joint", Of::Model), Some(2.0));
        // Non-finite values are not recorded: a report counts them as missing.
        assert_eq!(s.get("a.m", Of::Modality("y")), None);
        assert_eq!(s.spec("a.m").map(|m| m.better), Some(Better::Lower));
    }

    #[test]
    fn undeclared_names_wrong_scopes_and_repeated_declarations_fail_the_probe() {
        let dir = tempfile::tempdir().unwrap();
        let e = run(&[("a.n", Some("x"), 1.0)], false, dir.path()).unwrap_err();
        assert!(e.to_string().contains("`a.n` is not declared"), "{e}");
        // A failed run leaves no scalars behind (an earlier run's would mislead a report).
        assert!(!dir.path().join("recorder-test").join(SCALARS_FILE).exists());
        let e = run(&[("a.m", None, 1.0)], false, dir.path()).unwrap_err();
        assert!(e.to_string().contains("declared for Modality"), "{e}");
        let e = run(&[("joint", Some("x"), 1.0)], false, dir.path()).unwrap_err();
        assert!(e.to_string().contains("declared for Model"), "{e}");
        let e = run(&[], true, dir.path()).unwrap_err();
        assert!(e.to_string().contains("`a.m` twice"), "{e}");
    }

    #[test]
    fn pair_keys_name_source_and_target() {
        assert_eq!(Of::Pair("oscn", "cmnist").key(), "oscn->cmnist");
        assert_eq!(Of::Model.key(), "");
        assert_eq!(Of::Modality("oscn").scope(), Scope::Modality);
    }
}
