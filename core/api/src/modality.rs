//! The modality extension point.
//!
//! A modality is a kind of data (OSCN pictures, coloured digits, sounds). A plugin crate provides
//! a [`ModalityConfig`] (serialised with typetag, so an experiment file says `type = "oscn"`), the
//! [`Modality`] it builds, and a [`ModalityPlugin`] record submitted with `inventory`. Nothing
//! here knows about a burn backend: data is plain bytes and integer labels.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A dataset split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training items.
    Train,
    /// Held-out test items.
    Test,
}

impl Split {
    /// Both splits, in storage order.
    pub const ALL: [Split; 2] = [Split::Train, Split::Test];

    /// The split's name as stored in files (`train`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            other => Err(Error::config(
                "split",
                format!("unknown split `{other}` (expected `train` or `test`)"),
            )),
        }
    }
}

/// One label a modality attaches to every item, and what its values mean.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSpec {
    /// Label name, used as the HDF5 dataset name (`number`, `colour`, `shape`).
    pub name: String,
    /// One line saying what the label is.
    pub description: String,
    /// Names of categorical values (`0 -> "red"`); empty for plain numeric labels such as `number`.
    pub values: BTreeMap<i64, String>,
}

impl LabelSpec {
    /// A numeric label whose values are their own meaning (e.g. `number` 1..=9).
    pub fn numeric(name: &str, description: &str) -> Self {
        LabelSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            values: BTreeMap::new(),
        }
    }

    /// A categorical label with value `i` meaning `names[i]`.
    pub fn categorical(name: &str, description: &str, names: &[&str]) -> Self {
        LabelSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            values: names
                .iter()
                .enumerate()
                .map(|(i, n)| (i as i64, (*n).to_owned()))
                .collect(),
        }
    }
}

/// A set of items of one modality: bytes in row-major item order plus one label array per name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemSet {
    /// Shape of one item (`[32, 32, 3]` for an RGB image, `[samples]` for audio).
    pub shape: Vec<usize>,
    /// `len() * shape.iter().product()` bytes, item after item.
    pub data: Vec<u8>,
    /// Label arrays by name, each of length `len()`.
    pub labels: BTreeMap<String, Vec<i64>>,
}

impl ItemSet {
    /// An empty set of items of the given shape with the given label names.
    pub fn new(shape: Vec<usize>, label_names: &[&str]) -> Self {
        ItemSet {
            shape,
            data: Vec::new(),
            labels: label_names
                .iter()
                .map(|n| ((*n).to_owned(), Vec::new()))
                .collect(),
        }
    }

    /// Bytes per item.
    pub fn item_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match self.item_len() {
            0 => 0,
            n => self.data.len() / n,
        }
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of item `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn item(&self, i: usize) -> &[u8] {
        let n = self.item_len();
        &self.data[i * n..(i + 1) * n]
    }

    /// Appends one item with its labels (`labels` in any order; every label of the set must be given).
    pub fn push(&mut self, item: &[u8], labels: &[(&str, i64)]) -> Result<()> {
        if item.len() != self.item_len() {
            return Err(Error::Data(format!(
                "item has {} bytes, shape {:?} needs {}",
                item.len(),
                self.shape,
                self.item_len()
            )));
        }
        if labels.len() != self.labels.len() {
            return Err(Error::Data(format!(
                "item has {} labels, the set has {}",
                labels.len(),
                self.labels.len()
            )));
        }
        for (name, value) in labels {
            self.labels
                .get_mut(*name)
                .ok_or_else(|| Error::Data(format!("unknown label `{name}`")))?
                .push(*value);
        }
        self.data.extend_from_slice(item);
        Ok(())
    }

    /// Label array `name`.
    pub fn label(&self, name: &str) -> Result<&[i64]> {
        self.labels
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::Data(format!("no label `{name}`")))
    }

    /// The items at `indices`, in that order (indices may repeat).
    pub fn select(&self, indices: &[usize]) -> ItemSet {
        let n = self.item_len();
        let mut data = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            data.extend_from_slice(&self.data[i * n..(i + 1) * n]);
        }
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), indices.iter().map(|&i| v[i]).collect()))
            .collect();
        ItemSet {
            shape: self.shape.clone(),
            data,
            labels,
        }
    }

    /// Checks that data and label lengths agree with the shape.
    pub fn validate(&self) -> Result<()> {
        let n = self.item_len();
        if n == 0 {
            return Err(Error::Data(format!("item shape {:?} is empty", self.shape)));
        }
        if !self.data.len().is_multiple_of(n) {
            return Err(Error::Data(format!(
                "{} bytes is not a whole number of items of shape {:?}",
                self.data.len(),
                self.shape
            )));
        }
        let len = self.data.len() / n;
        for (name, values) in &self.labels {
            if values.len() != len {
                return Err(Error::Data(format!(
                    "label `{name}` has {} values for {len} items",
                    values.len()
                )));
            }
        }
        Ok(())
    }
}

/// Number of items wanted per class, a class being one combination of values of `label_names`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts {
    /// The labels that define a class, in key order.
    pub label_names: Vec<String>,
    /// Items per class; keys hold one value per entry of `label_names`.
    pub counts: BTreeMap<Vec<i64>, usize>,
}

impl ClassCounts {
    /// Total number of items over all classes.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// The requested classes in terms of the labels a generative modality can key on (`known`,
    /// in the modality's order): per class, for each known label its value if the request keys
    /// on it (else `None`: drawn per item), and the class's item count; in key order.
    ///
    /// Errors (attributed to `modality`) name a label it cannot key on, a label requested
    /// twice, or a key without one value per label.
    pub fn keyed_by(
        &self,
        modality: &str,
        known: &[&str],
    ) -> Result<Vec<(Vec<Option<i64>>, usize)>> {
        let fail = |message: String| Error::Modality {
            name: modality.to_owned(),
            source: message.into(),
        };
        let mut at: Vec<Option<usize>> = vec![None; known.len()];
        for (i, name) in self.label_names.iter().enumerate() {
            let Some(slot) = known.iter().position(|k| k == name) else {
                let keys: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                let keys = match keys.as_slice() {
                    [one] => format!("{one} only"),
                    _ => keys.join(" and/or "),
                };
                return Err(fail(format!(
                    "cannot make items per class of label `{name}`: {modality} classes are \
                     keyed by {keys}"
                )));
            };
            if at[slot].replace(i).is_some() {
                return Err(fail(format!("class request names label `{name}` twice")));
            }
        }
        self.counts
            .iter()
            .map(|(key, &count)| {
                if key.len() != self.label_names.len() {
                    return Err(fail(format!(
                        "class key {key:?} has {} values, the request's labels {:?} need {}",
                        key.len(),
                        self.label_names,
                        self.label_names.len()
                    )));
                }
                Ok((at.iter().map(|a| a.map(|i| key[i])).collect(), count))
            })
            .collect()
    }
}

/// How a modality obtains its items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Supply {
    /// Items come from a fixed source (e.g. MNIST files); their number is what the source holds.
    Fixed,
    /// Items are generated; any number per class can be made.
    Generative,
}

/// What the dataset builder asks a modality for.
pub struct ItemRequest<'a> {
    /// Which split.
    pub split: Split,
    /// Seed for this modality and split (already derived from the user's seed).
    pub seed: u64,
    /// For generative modalities: how many items of each class to make. `None` means the
    /// modality's own default size. Fixed modalities ignore it.
    pub classes: Option<&'a ClassCounts>,
    /// Called with the number of items finished since the last call (for progress bars).
    pub progress: &'a (dyn Fn(u64) + Sync),
}

/// The likelihood family a modality suggests for its decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Likelihood {
    /// Normal with fixed scale.
    Normal,
    /// Laplace with fixed scale.
    Laplace,
}

/// The network architecture a modality suggests by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetKind {
    /// Multi-layer perceptron on the flattened item.
    Mlp,
    /// 2-D convolutions (images `[H, W, C]`).
    Conv2d,
    /// 1-D convolutions (signals `[T]` or `[T, C]`).
    Conv1d,
}

/// What a modality suggests for its model ([`Modality::default_net`], [`Modality::likelihood`]);
/// the dataset builder stores it with the modality's items, and training uses it for a
/// modality whose net or likelihood the run's config leaves open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggested {
    /// Network architecture.
    pub net: NetKind,
    /// Likelihood family.
    pub likelihood: Likelihood,
}

impl Suggested {
    /// What `modality` suggests.
    pub fn of(modality: &dyn Modality) -> Self {
        Suggested {
            net: modality.default_net(),
            likelihood: modality.likelihood(),
        }
    }
}

impl NetKind {
    /// The name stored in datasets and configs (`mlp`, `conv2d`, `conv1d`).
    pub fn as_str(self) -> &'static str {
        match self {
            NetKind::Mlp => "mlp",
            NetKind::Conv2d => "conv2d",
            NetKind::Conv1d => "conv1d",
        }
    }

    /// The kind named `name` ([`as_str`](Self::as_str)).
    pub fn parse(name: &str) -> Option<Self> {
        [NetKind::Mlp, NetKind::Conv2d, NetKind::Conv1d]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

impl Likelihood {
    /// The name stored in datasets and configs (`normal`, `laplace`).
    pub fn as_str(self) -> &'static str {
        match self {
            Likelihood::Normal => "normal",
            Likelihood::Laplace => "laplace",
        }
    }

    /// The family named `name` ([`as_str`](Self::as_str)).
    pub fn parse(name: &str) -> Option<Self> {
        [Likelihood::Normal, Likelihood::Laplace]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// Where external data sources live; filled by the binary from flags like `--mnist DIR`.
#[derive(Clone, Debug, Default)]
pub struct SourceEnv {
    /// Directories by source name (`"mnist" -> /data/mnist`).
    pub dirs: BTreeMap<String, PathBuf>,
}

/// A kind of data. Built from a [`ModalityConfig`]; object safe, backend free.
pub trait Modality: Send + Sync {
    /// The modality's name; equals its plugin's name (`oscn`).
    fn name(&self) -> &str;
    /// Shape of one item.
    fn item_shape(&self) -> Vec<usize>;
    /// The labels every item carries.
    fn labels(&self) -> Vec<LabelSpec>;
    /// Whether items are generated or read from a fixed source.
    fn supply(&self) -> Supply;
    /// Produces the items of one split.
    fn items(&self, request: &ItemRequest<'_>) -> Result<ItemSet>;
    /// Likelihood family suggested for this data.
    fn likelihood(&self) -> Likelihood {
        Likelihood::Normal
    }
    /// Network architecture suggested for this data.
    fn default_net(&self) -> NetKind {
        NetKind::Mlp
    }
    /// Where the items came from (source files and versions), stored as provenance.
    fn provenance(&self) -> String {
        format!("{}: generated", self.name())
    }
}

/// A file presenting one item in a form other than a picture (a WAV file for a sound), written
/// by `rensou data preview` and beside training grids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviewFile {
    /// File name extension without the dot (`wav`).
    pub extension: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// The serialisable configuration of a modality; `#[typetag::serde(tag = "type")]` makes
/// `type = "<name>"` select the implementation in TOML.
#[typetag::serde(tag = "type")]
pub trait ModalityConfig: Debug + Send + Sync {
    /// Checks every field once; errors name the field and its allowed range.
    fn validate(&self) -> Result<()>;
    /// Builds the modality (after validation); `env` says where external sources are.
    fn build(&self, env: &SourceEnv) -> Result<Box<dyn Modality>>;
    /// A copy of this config (trait objects cannot derive `Clone`).
    fn clone_box(&self) -> Box<dyn ModalityConfig>;
    /// Files presenting one item beyond the picture every `[H, W]` / `[H, W, C]` item gets
    /// (e.g. a WAV file rendered from a spectrogram). `values` hold one item of `shape` in
    /// row-major order, in `[0, 1]` (stored bytes / 255, or a decoder's output), so decoded and
    /// cross-generated items can be presented too. Needs no data source: it works from the
    /// config stored in a dataset file. Default: no files.
    fn preview_files(&self, shape: &[usize], values: &[f32]) -> Result<Vec<PreviewFile>> {
        let _ = (shape, values);
        Ok(Vec::new())
    }
}

impl dyn ModalityConfig {
    /// Writes [`preview_files`](ModalityConfig::preview_files) for one item as
    /// `<dir>/<name>.<extension>` (atomically; `dir` is created only when there is a file) and
    /// returns how many files were written.
    pub fn write_preview_files(
        &self,
        shape: &[usize],
        values: &[f32],
        dir: &std::path::Path,
        name: &str,
    ) -> Result<usize> {
        let files = self.preview_files(shape, values)?;
        if !files.is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        }
        for file in &files {
            let path = dir.join(format!("{name}.{}", file.extension));
            crate::fsutil::write_bytes_atomically(&path, &file.bytes)?;
        }
        Ok(files.len())
    }
}

impl Clone for Box<dyn ModalityConfig> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The registration record of a modality plugin, submitted with
/// `rensou_api::inventory::submit! { ModalityPlugin { .. } }`.
pub struct ModalityPlugin {
    /// Plugin name; must equal the typetag name of its config.
    pub name: &'static str,
    /// One line for `rensou list`.
    pub description: &'static str,
    /// The default configuration.
    pub default_config: fn() -> Box<dyn ModalityConfig>,
}

inventory::collect!(ModalityPlugin);
