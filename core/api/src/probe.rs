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
    /// Encodes items of `modality`.
    fn encode(&self, modality: &str, items: &[u8]) -> Result<Latents>;
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
}

impl ProbeContext<'_> {
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
    let value = serde_json::to_value(config)
        .map_err(|e| Error::Plugin(format!("cannot serialise a probe config: {e}")))?;
    value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Plugin("a probe config serialised without a `type`".into()))
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
                let _ = std::fs::remove_file(out_dir.join("error.txt"));
                Ok(metrics)
            })();
            if let Err(e) = &result {
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
