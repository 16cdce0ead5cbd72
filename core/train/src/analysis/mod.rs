//! Running probes on a trained run: the backend-generic side of the probe extension point.
//!
//! [`MmvaeView`] puts a trained model behind the object-safe [`ModelView`];
//! [`CachedClassifiers`] trains the shared label classifiers once and caches them;
//! [`probe_run`] loads a run, encodes the chosen split, exports the latents to `RUN/latents.h5`
//! and runs the probes into `RUN/probes/<name>/`.

mod classifier;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

pub use classifier::{classifier_files, CachedClassifiers, ClassifierConfig, LabelClassifier};

use crate::{load_run_with_epoch, Model};
use rensou_api::probe::{run_probes, Latents, ModelView, ProbeConfig, ProbeData};
use rensou_api::progress::Progress;
use rensou_api::{Error, Result, Split};
use rensou_model::mmvae::MmvaeConfig;
use rensou_store::{write_latents, DatasetFile};

/// The directory of a run where the probes write (`probes/<probe>/`, and `summary.json`).
pub const PROBES_DIR: &str = "probes";

/// Items per forward pass when encoding or decoding for probes.
const CHUNK: usize = 1024;

/// A trained model behind [`ModelView`] (inference only: use a non-autodiff backend).
pub struct MmvaeView<B: Backend> {
    model: Mutex<Model<B>>,
    config: MmvaeConfig,
    device: B::Device,
    description: String,
}

fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>> {
    rensou_model::nn::tensor_values(t, "a tensor")
}

impl<B: Backend> MmvaeView<B> {
    /// Wraps `model`; `description` names the run, backend and device.
    pub fn new(model: Model<B>, device: B::Device, description: String) -> Self {
        MmvaeView {
            config: model.config().clone(),
            model: Mutex::new(model),
            device,
            description,
        }
    }

    fn index(&self, modality: &str) -> Result<usize> {
        self.config.modality_index(modality).ok_or_else(|| {
            Error::Data(format!(
                "the model has no modality `{modality}` (it has: {})",
                self.modalities().join(", ")
            ))
        })
    }

    /// Encodes items of `modality` chunk by chunk with `encode` (a posterior of `dim`
    /// dimensions per item).
    fn encode_with(
        &self,
        modality: &str,
        items: &[u8],
        dim: usize,
        encode: impl Fn(&Model<B>, usize, Tensor<B, 2>) -> Result<rensou_model::dist::Dist<B, 2>>,
    ) -> Result<Latents> {
        let m = self.index(modality)?;
        let features = self.config.modalities[m].features();
        if !items.len().is_multiple_of(features) {
            return Err(Error::Data(format!(
                "{} bytes are not a whole number of `{modality}` items",
                items.len()
            )));
        }
        let mut out = Latents {
            n: items.len() / features,
            dim,
            loc: Vec::with_capacity(items.len() / features * dim),
            scale: Vec::with_capacity(items.len() / features * dim),
        };
        self.with_model(|model| {
            for chunk in items.chunks(CHUNK * features) {
                let x = rensou_model::nn::bytes_to_input::<B>(chunk, features, &self.device)?; // [n, features]
                let q = encode(model, m, x)?; // [n, dim] x 2
                out.loc.extend(to_vec(q.loc)?);
                out.scale.extend(to_vec(q.scale)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn with_model<T>(&self, f: impl FnOnce(&Model<B>) -> Result<T>) -> Result<T> {
        let model = self
            .model
            .lock()
            .map_err(|_| Error::Data("model lock poisoned".into()))?;
        f(&model)
    }
}

impl<B: Backend> ModelView for MmvaeView<B> {
    fn modalities(&self) -> Vec<String> {
        self.config
            .modalities
            .iter()
            .map(|m| m.name.clone())
            .collect()
    }

    fn latent_dim(&self) -> usize {
        self.config.latent_dim
    }

    fn item_shape(&self, modality: &str) -> Result<Vec<usize>> {
        Ok(self.config.modalities[self.index(modality)?]
            .item_shape
            .clone())
    }

    fn encode(&self, modality: &str, items: &[u8]) -> Result<Latents> {
        self.encode_with(modality, items, self.config.latent_dim, |model, m, x| {
            model.encode(m, x)
        })
    }

    fn private_dim(&self) -> usize {
        self.config.private_dim()
    }

    fn encode_private(&self, modality: &str, items: &[u8]) -> Result<Option<Latents>> {
        let dim = self.config.private_dim();
        if dim == 0 {
            return Ok(None);
        }
        self.encode_with(modality, items, dim, |model, m, x| {
            model
                .encode_private(m, x)?
                .ok_or_else(|| Error::Data("the model's fusion has no private latent".into()))
        })
        .map(Some)
    }

    fn decode(&self, modality: &str, z: &[f32]) -> Result<Vec<f32>> {
        let m = self.index(modality)?;
        let dim = self.config.latent_dim;
        if !z.len().is_multiple_of(dim) {
            return Err(Error::Data(format!(
                "{} values are not whole latents of {dim}",
                z.len()
            )));
        }
        self.with_model(|model| {
            let mut out = Vec::new();
            for chunk in z.chunks(CHUNK * dim) {
                let t = Tensor::<B, 2>::from_data(
                    TensorData::new(chunk.to_vec(), [chunk.len() / dim, dim]),
                    &self.device,
                ); // [n, latent]
                out.extend(to_vec(model.decode(m, t)?)?); // [n, features]
            }
            Ok(out)
        })
    }

    fn sample_prior(&self, n: usize, seed: u64) -> Result<Vec<f32>> {
        B::seed(&self.device, seed);
        self.with_model(|model| to_vec(model.sample_prior(n)))
    }

    fn sample_at(&self, loc: &[f32], n: usize, seed: u64) -> Result<Vec<f32>> {
        let dim = self.config.latent_dim;
        if loc.len() != dim {
            return Err(Error::Data(format!(
                "location has {} values, latents have {dim}",
                loc.len()
            )));
        }
        B::seed(&self.device, seed);
        self.with_model(|model| {
            let prior = model.prior(); // loc, scale: [1, latent]
            let eps = prior.family.standard_noise::<B, 2>([n, dim], &self.device); // [n, latent]
            let at =
                Tensor::<B, 2>::from_data(TensorData::new(loc.to_vec(), [1, dim]), &self.device); // [1, latent]
            to_vec(at.add(prior.scale.mul(eps))) // [n, latent]
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// Reads one split of `modalities` from a dataset, with label specs.
pub fn load_probe_data(dataset: &Path, modalities: &[String], split: Split) -> Result<ProbeData> {
    let ds = DatasetFile::open(dataset)?;
    let mut sets = BTreeMap::new();
    let mut label_specs = BTreeMap::new();
    for m in modalities {
        sets.insert(m.clone(), ds.read(split, m)?);
        let info = ds.modality_info(split, m)?;
        label_specs.insert(m.clone(), info.labels.into_iter().map(|l| l.spec).collect());
    }
    Ok(ProbeData {
        split,
        sets,
        label_specs,
    })
}

/// Encoder locations and scales of every item of `data`, per modality.
pub fn encode_all(model: &dyn ModelView, data: &ProbeData) -> Result<BTreeMap<String, Latents>> {
    data.sets
        .iter()
        .map(|(m, set)| Ok((m.clone(), model.encode(m, &set.data)?)))
        .collect()
}

/// What [`probe_run`] did.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeRunSummary {
    /// The run directory.
    pub run: PathBuf,
    /// The analysed split.
    pub split: String,
    /// The model, backend and device.
    pub model: String,
    /// Per probe: `ok` with seconds, or the error.
    pub probes: BTreeMap<String, serde_json::Value>,
    /// Test accuracy of every classifier used, `"modality/label" -> accuracy`.
    pub classifiers: BTreeMap<String, f64>,
    /// What the classifier cache did.
    pub classifier_log: Vec<String>,
}

/// Options of [`probe_run`].
pub struct ProbeRunOptions {
    /// The probes to run.
    pub probes: Vec<Box<dyn ProbeConfig>>,
    /// Which split to analyse.
    pub split: Split,
    /// Where classifiers are cached (default `RUN/classifiers`; share one across runs on the
    /// same dataset to train them once).
    pub classifier_dir: Option<PathBuf>,
    /// Classifier training settings.
    pub classifier: ClassifierConfig,
    /// Seed of the probes' random choices.
    pub seed: u64,
}

/// Loads the run in `run_dir`, encodes `options.split`, writes `RUN/latents.h5` and runs the
/// probes into `RUN/probes/`; writes `RUN/probes/summary.json`. A failing probe is reported in
/// the summary; the others still run.
pub fn probe_run<B: AutodiffBackend>(
    run_dir: &Path,
    options: ProbeRunOptions,
    device: &B::Device,
    backend_name: &str,
    progress: &dyn Progress,
) -> Result<ProbeRunSummary> {
    let (model, config, epoch) = load_run_with_epoch::<B::InnerBackend>(run_dir, device)
        .map_err(|e| Error::Data(format!("cannot load the run in {}: {e}", run_dir.display())))?;
    let description = format!(
        "{} on {} ({backend_name}, {device:?})",
        config.data.modalities.join("+"),
        run_dir.display()
    );
    let view = MmvaeView::new(model, device.clone(), description.clone());
    progress.stage(&format!("reading {} split", options.split), None);
    let data = load_probe_data(&config.data.file, &config.data.modalities, options.split)?;
    for m in &config.model.modalities {
        let found = data.sets.get(&m.name).map(|s| s.shape.clone());
        if found.as_ref() != Some(&m.item_shape) {
            return Err(Error::Data(format!(
                "the model takes `{}` items of shape {:?} but {} has {}; probe the run with the \
                 dataset it was trained on",
                m.name,
                m.item_shape,
                config.data.file.display(),
                found.map_or("none".to_owned(), |s| format!("{s:?}"))
            )));
        }
    }
    progress.stage("encoding", None);
    let latents = encode_all(&view, &data)?;
    write_latents(&run_dir.join("latents.h5"), &data, &latents, &description)?;
    let classifier_dir = options
        .classifier_dir
        .clone()
        .unwrap_or_else(|| run_dir.join("classifiers"));
    let classifiers = CachedClassifiers::<B>::new(
        &config.data.file,
        &classifier_dir,
        options.classifier.clone(),
        device.clone(),
    )?;
    let probes_dir = run_dir.join(PROBES_DIR);
    let outcomes = run_probes(
        &options.probes,
        &probes_dir,
        &view,
        &classifiers,
        &data,
        &latents,
        options.seed,
        progress,
    );
    let mut probes = BTreeMap::new();
    for o in outcomes {
        let v = match &o.result {
            Ok(_) => serde_json::json!({ "ok": true, "seconds": o.seconds }),
            Err(e) => {
                serde_json::json!({ "ok": false, "error": e.to_string(), "seconds": o.seconds })
            }
        };
        probes.insert(o.name, v);
    }
    let summary = ProbeRunSummary {
        run: run_dir.to_path_buf(),
        split: options.split.as_str().to_owned(),
        model: description,
        probes,
        classifiers: classifiers
            .accuracies()
            .into_iter()
            .map(|((m, l), a)| (format!("{m}/{l}"), a))
            .collect(),
        classifier_log: classifiers.log(),
    };
    let text = serde_json::to_string_pretty(&summary).map_err(|e| Error::Data(e.to_string()))?;
    rensou_api::fsutil::write_bytes_atomically(&probes_dir.join("summary.json"), text.as_bytes())?;
    log_probe_events(run_dir, epoch, &probes_dir, summary.probes.keys())?;
    Ok(summary)
}

/// Logs the declared scalars of `probes` (in `probes_dir`) into the TensorBoard events of the
/// run that owns `run_dir` ([`crate::events`]), at `epoch`, the epoch of the model probed.
fn log_probe_events<'a>(
    run_dir: &Path,
    epoch: usize,
    probes_dir: &Path,
    probes: impl Iterator<Item = &'a String>,
) -> Result<()> {
    let scalars: Vec<(String, rensou_api::probe::Scalars)> = probes
        .filter_map(|p| {
            let s = rensou_api::probe::Scalars::read(&probes_dir.join(p)).ok()??;
            Some((p.clone(), s))
        })
        .collect();
    if scalars.is_empty() {
        return Ok(());
    }
    crate::events::RunEvents::open(&crate::events::owning_run(run_dir))?.probes(epoch, &scalars)
}
