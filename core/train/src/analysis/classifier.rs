//! Label classifiers on items (object count, digit, colour), shared by every probe of a run:
//! the modality's encoder net followed by `Linear(latent, classes)` (the paper's count
//! classifier), trained once on the training split and cached.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use rensou_api::modality::{ItemSet, Split};
use rensou_api::probe::Classifiers;
use rensou_api::rng::derive_seed;
use rensou_api::{Error, Result};
use rensou_model::nn::{tensor_values, AnyEncoder, Encoder, NetConfig};
use rensou_store::DatasetFile;

/// An encoder net and a linear head over its location output.
#[derive(Module, Debug)]
pub struct LabelClassifier<B: Backend> {
    encoder: AnyEncoder<B>,
    head: Linear<B>,
}

impl<B: Backend> LabelClassifier<B> {
    /// Logits for items scaled to `[0, 1]`.
    ///
    /// # Shapes
    /// - `x`: `[n, features]`
    /// - output: `[n, classes]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = self.encoder.forward(x).loc; // [n, latent]
        self.head.forward(h) // [n, classes]
    }
}

/// Training settings of the classifiers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    /// Epochs over the training split.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// At most this many training items (seeded subset); 0 = all.
    pub max_train: usize,
    /// Width of the encoder's output (the paper: the latent size, 20).
    pub latent_dim: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            epochs: 3,
            batch_size: 128,
            lr: 1e-3,
            max_train: 0,
            latent_dim: 20,
            seed: 0,
        }
    }
}

impl ClassifierConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=1000).contains(&self.epochs) {
            return Err(Error::config("classifier.epochs", "must be in 1..=1000"));
        }
        if !(1..=65536).contains(&self.batch_size) {
            return Err(Error::config(
                "classifier.batch_size",
                "must be in 1..=65536",
            ));
        }
        if !(self.lr > 0.0 && self.lr < 1.0) {
            return Err(Error::config("classifier.lr", "must be in (0, 1)"));
        }
        if self.latent_dim == 0 {
            return Err(Error::config("classifier.latent_dim", "must be at least 1"));
        }
        Ok(())
    }
}

/// Metadata stored beside a cached classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Meta {
    modality: String,
    label: String,
    classes: Vec<i64>,
    item_shape: Vec<usize>,
    test_accuracy: f64,
    train_items: usize,
    dataset_seed: u64,
    dataset_config_hash: u64,
    config: ClassifierConfig,
}

struct Trained<B: Backend> {
    model: LabelClassifier<B>,
    meta: Meta,
}

/// The classifiers trained or loaded so far, keyed by `(modality, label)`.
type TrainedMap<B> = BTreeMap<(String, String), Trained<B>>;

/// The files of the classifier of `label` on `modality` in the cache directory `dir`: its
/// weights (`<modality>-<label>.mpk`) and its record (`<modality>-<label>.json`: what it was
/// trained on and its test accuracy).
pub fn classifier_files(dir: &Path, modality: &str, label: &str) -> (PathBuf, PathBuf) {
    let stem = format!("{modality}-{label}");
    (
        dir.join(format!("{stem}.mpk")),
        dir.join(format!("{stem}.json")),
    )
}

/// [`Classifiers`] trained on a dataset file on first use and cached in a directory as
/// `<modality>-<label>.mpk` + `.json` (reused while the dataset and settings are unchanged).
pub struct CachedClassifiers<B: AutodiffBackend> {
    dataset: PathBuf,
    cache_dir: PathBuf,
    config: ClassifierConfig,
    device: B::Device,
    trained: Mutex<TrainedMap<B::InnerBackend>>,
    log: Mutex<Vec<String>>,
}

fn bytes_to_floats(set: &ItemSet, indices: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * set.item_len());
    for &i in indices {
        out.extend(set.item(i).iter().map(|&b| f32::from(b) / 255.0));
    }
    out
}

fn floats_to_tensor<B: Backend>(
    values: Vec<f32>,
    features: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let n = values.len() / features.max(1);
    Tensor::from_data(TensorData::new(values, [n, features]), device)
}

fn predict_batches<B: Backend>(
    model: &LabelClassifier<B>,
    items: &[f32],
    features: usize,
    classes: &[i64],
    device: &B::Device,
) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(items.len() / features.max(1));
    for chunk in items.chunks(1024 * features) {
        let x = floats_to_tensor::<B>(chunk.to_vec(), features, device); // [n, features]
        let idx: Vec<i64> = tensor_values(model.forward(x).argmax(1), "predictions")?;
        for i in idx {
            let c = classes
                .get(i as usize)
                .ok_or_else(|| Error::Data(format!("class index {i} out of range")))?;
            out.push(*c);
        }
    }
    Ok(out)
}

fn hash_text(s: &str) -> u64 {
    rensou_api::rng::fnv1a(s)
}

impl<B: AutodiffBackend> CachedClassifiers<B> {
    /// Classifiers for items of `dataset`, cached under `cache_dir`.
    pub fn new(
        dataset: &Path,
        cache_dir: &Path,
        config: ClassifierConfig,
        device: B::Device,
    ) -> Result<Self> {
        config.validate()?;
        Ok(CachedClassifiers {
            dataset: dataset.to_path_buf(),
            cache_dir: cache_dir.to_path_buf(),
            config,
            device,
            trained: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
        })
    }

    /// Lines saying which classifiers were trained or loaded, with their accuracy.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Test accuracies of every classifier used so far, `(modality, label) -> accuracy`.
    pub fn accuracies(&self) -> BTreeMap<(String, String), f64> {
        self.trained
            .lock()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.clone(), v.meta.test_accuracy))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn with_trained<T>(
        &self,
        modality: &str,
        label: &str,
        f: impl FnOnce(&Trained<B::InnerBackend>) -> Result<T>,
    ) -> Result<T> {
        let mut map = self
            .trained
            .lock()
            .map_err(|_| Error::Data("classifier cache lock poisoned".into()))?;
        let key = (modality.to_owned(), label.to_owned());
        if !map.contains_key(&key) {
            let t = self.load_or_train(modality, label)?;
            map.insert(key.clone(), t);
        }
        f(&map[&key])
    }

    fn paths(&self, modality: &str, label: &str) -> (PathBuf, PathBuf) {
        classifier_files(&self.cache_dir, modality, label)
    }

    fn load_or_train(&self, modality: &str, label: &str) -> Result<Trained<B::InnerBackend>> {
        let ds = DatasetFile::open(&self.dataset)?;
        let dataset_seed = ds.seed()?;
        let dataset_config_hash = hash_text(&ds.config_toml()?);
        let info = ds.modality_info(Split::Train, modality)?;
        let features: usize = info.item_shape.iter().product();
        let (record_path, meta_path) = self.paths(modality, label);
        // Workers sharing the cache (parallel tasks of one study) train each classifier once:
        // the first trains it under the lock, the others wait and load it.
        let _lock = rensou_api::fsutil::FileLock::acquire(
            &self.cache_dir.join(format!("{modality}-{label}.lock")),
            |who| {
                self.note(format!(
                    "classifier {modality}/{label}: waiting for {who}, which is training it"
                ))
            },
        )?;
        if let (Ok(bytes), Ok(text)) = (
            std::fs::read(&record_path),
            std::fs::read_to_string(&meta_path),
        ) {
            if let Ok(meta) = serde_json::from_str::<Meta>(&text) {
                if meta.dataset_seed == dataset_seed
                    && meta.dataset_config_hash == dataset_config_hash
                    && meta.config == self.config
                    && meta.item_shape == info.item_shape
                {
                    let model = self.init_model(&info.item_shape, meta.classes.len())?;
                    match NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
                        .load(bytes, &self.device)
                    {
                        Ok(record) => {
                            let model: LabelClassifier<B> = model.load_record(record);
                            self.note(format!(
                                "classifier {modality}/{label}: loaded from {} (test accuracy {:.4})",
                                record_path.display(),
                                meta.test_accuracy
                            ));
                            return Ok(Trained {
                                model: model.valid(),
                                meta,
                            });
                        }
                        // A damaged cache (a truncated file) is rebuilt below.
                        Err(e) => self.note(format!(
                            "classifier {modality}/{label}: the cached {} cannot be read ({}); \
                             retraining it",
                            record_path.display(),
                            e.to_string().replace('\n', " ")
                        )),
                    }
                }
            }
        }
        let train = ds.read(Split::Train, modality)?;
        let test = ds.read(Split::Test, modality)?;
        let train_labels = train.label(label)?;
        let mut classes: Vec<i64> = train_labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        if classes.len() < 2 {
            return Err(Error::Data(format!(
                "label `{label}` of `{modality}` has fewer than two values; nothing to classify"
            )));
        }
        let class_index: BTreeMap<i64, i64> = classes
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as i64))
            .collect();
        // Training items: the distinct items (pairs repeat items), optionally a seeded subset.
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut rng = rensou_api::rng::rng_for(self.config.seed, &["classifier", modality, label]);
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        if self.config.max_train > 0 {
            order.truncate(self.config.max_train);
        }
        B::seed(
            &self.device,
            derive_seed(self.config.seed, &["classifier", modality, label]),
        );
        let mut model = self.init_model(&info.item_shape, classes.len())?;
        let mut optim = AdamConfig::new().init::<B, LabelClassifier<B>>();
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);
        for epoch in 0..self.config.epochs {
            let mut order = order.clone();
            let mut erng = rensou_api::rng::rng_for(
                self.config.seed,
                &["classifier-epoch", modality, label, &epoch.to_string()],
            );
            rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut erng);
            for batch in order.chunks(self.config.batch_size) {
                let x =
                    floats_to_tensor::<B>(bytes_to_floats(&train, batch), features, &self.device); // [b, features]
                let y: Vec<i64> = batch
                    .iter()
                    .map(|&i| class_index[&train_labels[i]])
                    .collect();
                let y =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(y, [batch.len()]), &self.device); // [b]
                let loss = loss_fn.forward(model.forward(x), y); // [1]
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(self.config.lr, model, grads);
            }
        }
        let valid = model.valid();
        let all: Vec<usize> = (0..test.len()).collect();
        let predicted = predict_batches(
            &valid,
            &bytes_to_floats(&test, &all),
            features,
            &classes,
            &self.device,
        )?;
        let truth = test.label(label)?;
        let correct = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
        let meta = Meta {
            modality: modality.to_owned(),
            label: label.to_owned(),
            classes,
            item_shape: info.item_shape.clone(),
            test_accuracy: correct as f64 / truth.len().max(1) as f64,
            train_items: order.len(),
            dataset_seed,
            dataset_config_hash,
            config: self.config.clone(),
        };
        let bytes = NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
            .record(valid.clone().into_record(), ())
            .map_err(|e| Error::Data(format!("cannot serialise classifier: {e}")))?;
        rensou_api::fsutil::write_bytes_atomically(&record_path, &bytes)?;
        let text = serde_json::to_string_pretty(&meta).map_err(|e| Error::Data(e.to_string()))?;
        rensou_api::fsutil::write_bytes_atomically(&meta_path, text.as_bytes())?;
        self.note(format!(
            "classifier {modality}/{label}: trained on {} items for {} epochs, test accuracy {:.4}",
            meta.train_items, self.config.epochs, meta.test_accuracy
        ));
        Ok(Trained { model: valid, meta })
    }

    fn init_model(&self, item_shape: &[usize], classes: usize) -> Result<LabelClassifier<B>> {
        let net = NetConfig::default();
        Ok(LabelClassifier {
            encoder: net.init_encoder(item_shape, self.config.latent_dim, &self.device)?,
            head: LinearConfig::new(self.config.latent_dim, classes).init(&self.device),
        })
    }

    fn note(&self, line: String) {
        if let Ok(mut l) = self.log.lock() {
            l.push(line);
        }
    }
}

impl<B: AutodiffBackend> Classifiers for CachedClassifiers<B> {
    fn predict(&self, modality: &str, label: &str, items: &[f32]) -> Result<Vec<i64>> {
        let device = self.device.clone();
        self.with_trained(modality, label, |t| {
            let features: usize = t.meta.item_shape.iter().product();
            if features == 0 || !items.len().is_multiple_of(features) {
                return Err(Error::Data(format!(
                    "{} values are not a whole number of `{modality}` items of {features} values",
                    items.len()
                )));
            }
            predict_batches(&t.model, items, features, &t.meta.classes, &device)
        })
    }

    fn accuracy(&self, modality: &str, label: &str) -> Result<f64> {
        self.with_trained(modality, label, |t| Ok(t.meta.test_accuracy))
    }
}
