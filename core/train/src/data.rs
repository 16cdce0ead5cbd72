//! The training data: every selected modality's train and test items, kept as bytes and turned
//! into float batches on the fly (240,000 OSCN + CMNIST pairs take 1.3 GB as bytes, 5.2 GB as
//! `f32`).

use burn::tensor::{backend::Backend, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::config::RunConfig;
use rensou_api::modality::{ItemSet, Split};
use rensou_api::rng::{derive_seed, DataRng};
use rensou_api::{Error, Result};
use rensou_model::nn::bytes_to_input;
use rensou_store::DatasetFile;

/// One split of the paired data: one [`ItemSet`] per modality, in model order; row `i` of
/// every set is pair `i`.
#[derive(Clone, Debug)]
pub struct SplitData {
    /// Items per modality, in model order.
    pub sets: Vec<ItemSet>,
}

impl SplitData {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.sets.first().map_or(0, ItemSet::len)
    }

    /// Whether the split has no pairs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The model input of pairs `indices`: one `[indices.len(), features_m]` tensor per
    /// modality, values in `[0, 1]`.
    pub fn batch<B: Backend>(
        &self,
        indices: &[usize],
        device: &B::Device,
    ) -> Result<Vec<Tensor<B, 2>>> {
        let n = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::Data(format!("pair {bad} out of range ({n} pairs)")));
        }
        self.sets
            .iter()
            .map(|set| {
                let features = set.item_len();
                let mut bytes = Vec::with_capacity(indices.len() * features);
                for &i in indices {
                    bytes.extend_from_slice(set.item(i));
                }
                bytes_to_input::<B>(&bytes, features, device) // [batch, features]
            })
            .collect()
    }

    /// Pairs to show in reconstruction grids: the first pair of each `number` 1..=9 (by the
    /// first modality that has that label), or the first nine pairs when no modality has it.
    pub fn grid_indices(&self) -> Vec<usize> {
        let numbers = self.sets.iter().find_map(|s| s.label("number").ok());
        match numbers {
            Some(numbers) => {
                let mut out = Vec::new();
                for v in 1..=9 {
                    if let Some(i) = numbers.iter().position(|&x| x == v) {
                        out.push(i);
                    }
                }
                if out.is_empty() {
                    (0..self.len().min(9)).collect()
                } else {
                    out
                }
            }
            None => (0..self.len().min(9)).collect(),
        }
    }
}

/// The train and test splits of a run.
#[derive(Clone, Debug)]
pub struct PairedData {
    /// Training pairs.
    pub train: SplitData,
    /// Test pairs.
    pub test: SplitData,
}

/// A seeded subset: the first `max` of a random permutation of `0..n` (sorted), or `None` when
/// `max` keeps everything.
pub fn subset_indices(n: usize, max: Option<usize>, seed: u64, split: Split) -> Option<Vec<usize>> {
    let max = max?;
    if max >= n {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = DataRng::seed_from_u64(derive_seed(seed, &["subset", split.as_str()]));
    order.shuffle(&mut rng);
    order.truncate(max);
    order.sort_unstable();
    Some(order)
}

/// The order in which epoch `epoch` (1-based) visits the `n` training pairs: a permutation
/// seeded by `derive_seed(seed, ["epoch", epoch])`, so it depends on nothing else.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = DataRng::seed_from_u64(derive_seed(seed, &["epoch", &epoch.to_string()]));
    order.shuffle(&mut rng);
    order
}

impl PairedData {
    /// Reads the run's modalities (train and test) from its data file, checks their item shapes
    /// against the model, and keeps the configured subsets.
    pub fn load(config: &RunConfig) -> Result<Self> {
        let file = DatasetFile::open(&config.data.file)?;
        for name in &config.data.modalities {
            if !file.modalities().iter().any(|m| m == name) {
                return Err(Error::config(
                    "data.modalities",
                    format!(
                        "`{name}` is not a modality of {} (it has {})",
                        config.data.file.display(),
                        file.modalities().join(", ")
                    ),
                ));
            }
        }
        let t = &config.training;
        let train = Self::read_split(&file, config, Split::Train, t.max_train_pairs)?;
        let test = Self::read_split(&file, config, Split::Test, t.max_test_pairs)?;
        if train.is_empty() {
            return Err(Error::Data(format!(
                "{} has no training pairs",
                config.data.file.display()
            )));
        }
        if test.is_empty() {
            return Err(Error::Data(format!(
                "{} has no test pairs",
                config.data.file.display()
            )));
        }
        Ok(PairedData { train, test })
    }

    fn read_split(
        file: &DatasetFile,
        config: &RunConfig,
        split: Split,
        max: Option<usize>,
    ) -> Result<SplitData> {
        if !file.splits().contains(&split) {
            return Err(Error::Data(format!(
                "{} has no {split} split",
                config.data.file.display()
            )));
        }
        let n = file.pairs(split)?;
        let subset = subset_indices(n, max, config.training.seed, split);
        let mut sets = Vec::with_capacity(config.model.modalities.len());
        for m in &config.model.modalities {
            // One modality at a time, so a subset never holds two full copies at once.
            let set = file.read(split, &m.name)?;
            if set.shape != m.item_shape {
                return Err(Error::config(
                    format!("model.modalities.{}.item_shape", m.name),
                    format!(
                        "the model expects items of shape {:?} but {} has {:?}",
                        m.item_shape,
                        config.data.file.display(),
                        set.shape
                    ),
                ));
            }
            sets.push(match &subset {
                Some(idx) => set.select(idx),
                None => set,
            });
        }
        Ok(SplitData { sets })
    }
}
