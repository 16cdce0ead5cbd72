//! Reading a paired dataset, with errors that say what is wrong with a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdf5::types::{TypeDescriptor, VarLenUnicode};
use hdf5::H5Type;

use super::{FORMAT_NAME, FORMAT_VERSION};
use rensou_api::modality::{ItemSet, LabelSpec, Likelihood, NetKind, Split};
use rensou_api::{Error, Result};

/// What a file says about one label of one modality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelInfo {
    /// The label's spec (name, description, value names).
    pub spec: LabelSpec,
}

/// What a file says about one modality of one split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModalityInfo {
    /// Modality name.
    pub name: String,
    /// Shape of one item.
    pub item_shape: Vec<usize>,
    /// Labels stored for it.
    pub labels: Vec<LabelInfo>,
    /// The net its modality suggests (`None` in files written before rensou stored it).
    pub suggested_net: Option<NetKind>,
    /// The likelihood its modality suggests (`None` likewise).
    pub suggested_likelihood: Option<Likelihood>,
}

/// Per label name, a histogram `value -> count`.
pub type LabelHistograms = BTreeMap<String, BTreeMap<i64, usize>>;

/// Counts and histograms of one split.
#[derive(Clone, Debug)]
pub struct SplitSummary {
    /// The split.
    pub split: Split,
    /// Number of pairs.
    pub pairs: usize,
    /// Per modality: item shape and, per label, a histogram `value -> count`.
    pub modalities: Vec<(ModalityInfo, LabelHistograms)>,
}

/// Everything `rensou data info` prints.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Root attributes: format version.
    pub format_version: u64,
    /// Seed used to build it.
    pub seed: u64,
    /// Generator config (TOML text).
    pub config_toml: String,
    /// Source lines.
    pub provenance: String,
    /// Writer version.
    pub created_by: String,
    /// Splits in storage order.
    pub splits: Vec<SplitSummary>,
}

/// An open rensou dataset file.
pub struct DatasetFile {
    path: PathBuf,
    file: hdf5::File,
    modalities: Vec<String>,
    splits: Vec<Split>,
}

/// Reads the scalar attribute `name` of `loc`; `kind` ("a string") names the expected type
/// in the error.
fn read_scalar_attr<T: H5Type>(
    loc: &hdf5::Location,
    name: &str,
    kind: &str,
    path: &Path,
) -> Result<T> {
    let attr = loc.attr(name).map_err(|_| Error::Format {
        path: path.to_path_buf(),
        message: format!("attribute `{name}` is missing on {}", loc.name()),
    })?;
    attr.read_scalar::<T>().map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: format!("attribute `{name}` is not {kind}: {e}"),
    })
}

fn read_str_attr(loc: &hdf5::Location, name: &str, path: &Path) -> Result<String> {
    let v: VarLenUnicode = read_scalar_attr(loc, name, "a string", path)?;
    Ok(v.as_str().to_owned())
}

fn read_u64_attr(loc: &hdf5::Location, name: &str, path: &Path) -> Result<u64> {
    read_scalar_attr(loc, name, "an integer", path)
}

/// Whether a stored type is the documented one: `uint8` item data, integer labels.
fn type_ok(found: &TypeDescriptor, labels: bool) -> bool {
    if labels {
        matches!(
            found,
            TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)
        )
    } else {
        matches!(found, TypeDescriptor::Unsigned(hdf5::types::IntSize::U1))
    }
}

impl DatasetFile {
    /// Checks the element type of dataset `ds` (at `p`): `uint8` for item data, an integer type
    /// for labels. Other types would be converted silently by HDF5 (float pixels in `[0, 1]`
    /// become black bytes).
    fn check_dtype(&self, ds: &hdf5::Dataset, p: &str, labels: bool) -> Result<()> {
        let found = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| Error::Format {
                path: self.path.clone(),
                message: format!("cannot read the type of `{p}`: {e}"),
            })?;
        if type_ok(&found, labels) {
            return Ok(());
        }
        let expected = if labels {
            "an integer type (int64)"
        } else {
            "uint8 (bytes 0..=255; scale float pixels in [0, 1] by 255 and round)"
        };
        Err(Error::Format {
            path: self.path.clone(),
            message: format!("`{p}` holds {found} values, expected {expected}"),
        })
    }

    /// Checks label values against what the file declares: a categorical label (with named
    /// values) takes only those; `number` only the study's numbers.
    fn check_label_values(&self, p: &str, spec: &LabelSpec, values: &[i64]) -> Result<()> {
        let bad = |i: usize, v: i64, allowed: String| Error::Format {
            path: self.path.clone(),
            message: format!("`{p}` row {i} is {v}, outside the declared values ({allowed})"),
        };
        if !spec.values.is_empty() {
            if let Some((i, &v)) = values
                .iter()
                .enumerate()
                .find(|(_, v)| !spec.values.contains_key(v))
            {
                let allowed: Vec<String> = spec
                    .values
                    .iter()
                    .map(|(k, n)| format!("{k} = {n}"))
                    .collect();
                return Err(bad(i, v, allowed.join(", ")));
            }
        } else if spec.name == rensou_api::vocab::NUMBER {
            let range = rensou_api::vocab::NUMBERS;
            if let Some((i, &v)) = values.iter().enumerate().find(|(_, v)| !range.contains(v)) {
                return Err(bad(
                    i,
                    v,
                    format!("numbers {}..={}", range.start(), range.end()),
                ));
            }
        }
        Ok(())
    }

    /// Opens `path` and checks that it is a rensou dataset of a supported version.
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot open", path, e))?;
        if !meta.is_file() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: "not a regular file".into(),
            });
        }
        let file = hdf5::File::open(path).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: format!("cannot be opened as HDF5 (not an HDF5 file, or truncated): {e}"),
        })?;
        let format = read_str_attr(&file, "format", path).map_err(|_| Error::Format {
            path: path.to_path_buf(),
            message: format!("it has no `format` attribute; expected an HDF5 file written by `rensou data build` (format `{FORMAT_NAME}`)"),
        })?;
        if format != FORMAT_NAME {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: format!("its format is `{format}`, expected `{FORMAT_NAME}`"),
            });
        }
        let version = read_u64_attr(&file, "format_version", path)?;
        if version != u64::from(FORMAT_VERSION) {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: format!(
                    "format version {version} is not supported (this rensou reads version {FORMAT_VERSION})"
                ),
            });
        }
        let modalities: Vec<String> = read_str_attr(&file, "modalities", path)?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if modalities.is_empty() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: "it lists no modalities".into(),
            });
        }
        let splits: Vec<Split> = Split::ALL
            .into_iter()
            .filter(|s| file.link_exists(s.as_str()))
            .collect();
        if splits.is_empty() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: "it has neither a `train` nor a `test` group".into(),
            });
        }
        Ok(DatasetFile {
            path: path.to_path_buf(),
            file,
            modalities,
            splits,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Modality names, in configured order.
    pub fn modalities(&self) -> &[String] {
        &self.modalities
    }

    /// Splits present in the file.
    pub fn splits(&self) -> &[Split] {
        &self.splits
    }

    /// The seed the dataset was built with.
    pub fn seed(&self) -> Result<u64> {
        read_u64_attr(&self.file, "seed", &self.path)
    }

    /// The generating configuration (TOML text).
    pub fn config_toml(&self) -> Result<String> {
        read_str_attr(&self.file, "config", &self.path)
    }

    /// A warning when the file's stored build config (its root `config` attribute) is not TOML:
    /// the file still reads, but how it was built cannot be shown or rebuilt from it, and
    /// classifier caches key on the raw text. `None` when it is TOML (or missing, which
    /// [`Self::config_toml`] reports).
    pub fn provenance_warning(&self) -> Option<String> {
        let text = self.config_toml().ok()?;
        let err = text.parse::<toml::Table>().err()?;
        let why = err
            .message()
            .lines()
            .next()
            .unwrap_or("not TOML")
            .to_owned();
        Some(format!(
            "{}: its stored build config (root attribute `config`) is not TOML ({why}); the \
             data is read as it is, but how it was built cannot be shown or rebuilt from it",
            self.path.display()
        ))
    }

    /// The configuration of every modality the file was built with, by modality name (parsed
    /// from the stored config; no data source is opened). Useful for a modality's
    /// [`ModalityConfig::preview_files`](rensou_api::ModalityConfig::preview_files).
    pub fn modality_configs(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Box<dyn rensou_api::ModalityConfig>>> {
        let config = crate::build::DataConfig::from_toml(&self.config_toml()?, &self.path)?;
        config
            .modalities
            .into_iter()
            .map(|m| Ok((rensou_api::registry::config_type_name(&*m)?, m)))
            .collect()
    }

    fn missing(&self, what: &str) -> Error {
        Error::Format {
            path: self.path.clone(),
            message: format!("`{what}` is missing"),
        }
    }

    fn modality_group(&self, split: Split, modality: &str) -> Result<hdf5::Group> {
        if !self.modalities.iter().any(|m| m == modality) {
            return Err(Error::Data(format!(
                "{} has no modality `{modality}` (it has: {})",
                self.path.display(),
                self.modalities.join(", ")
            )));
        }
        let p = format!("/{}/{modality}", split.as_str());
        self.file.group(&p).map_err(|_| self.missing(&p))
    }

    /// Item shape and label specs of `modality` in `split`, without reading the data.
    pub fn modality_info(&self, split: Split, modality: &str) -> Result<ModalityInfo> {
        let g = self.modality_group(split, modality)?;
        let p = format!("/{}/{modality}/data", split.as_str());
        let ds = g.dataset("data").map_err(|_| self.missing(&p))?;
        let shape = ds.shape();
        if shape.len() < 2 {
            return Err(Error::Format {
                path: self.path.clone(),
                message: format!("`{p}` has shape {shape:?}; expected [N, item dims...]"),
            });
        }
        let lp = format!("/{}/{modality}/labels", split.as_str());
        let lg = g.group("labels").map_err(|_| self.missing(&lp))?;
        let mut labels = Vec::new();
        let listed = read_str_attr(&g, "labels", &self.path)?;
        for name in listed
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
        {
            let ds = lg
                .dataset(&name)
                .map_err(|_| self.missing(&format!("{lp}/{name}")))?;
            let description = read_str_attr(&ds, "description", &self.path)?;
            let values_json = read_str_attr(&ds, "values", &self.path)?;
            let raw: BTreeMap<String, String> =
                serde_json::from_str(&values_json).map_err(|e| Error::Format {
                    path: self.path.clone(),
                    message: format!("`{lp}/{name}` has a bad `values` attribute: {e}"),
                })?;
            let mut values = BTreeMap::new();
            for (k, v) in raw {
                let k: i64 = k.parse().map_err(|_| Error::Format {
                    path: self.path.clone(),
                    message: format!("`{lp}/{name}` names a non-integer value `{k}`"),
                })?;
                values.insert(k, v);
            }
            labels.push(LabelInfo {
                spec: LabelSpec {
                    name,
                    description,
                    values,
                },
            });
        }
        // Optional attributes: absent in older files; an unknown name is a damaged file.
        let optional = |name: &str| -> Result<Option<String>> {
            if g.attr_names()
                .is_ok_and(|names| names.iter().any(|n| n == name))
            {
                read_str_attr(&g, name, &self.path).map(Some)
            } else {
                Ok(None)
            }
        };
        let bad = |attr: &str, value: &str| Error::Format {
            path: self.path.clone(),
            message: format!(
                "`/{}/{modality}` has an unknown `{attr}` attribute `{value}`",
                split.as_str()
            ),
        };
        let suggested_net = optional("net")?
            .map(|v| NetKind::parse(&v).ok_or_else(|| bad("net", &v)))
            .transpose()?;
        let suggested_likelihood = optional("likelihood")?
            .map(|v| Likelihood::parse(&v).ok_or_else(|| bad("likelihood", &v)))
            .transpose()?;
        Ok(ModalityInfo {
            name: modality.to_owned(),
            item_shape: shape[1..].to_vec(),
            labels,
            suggested_net,
            suggested_likelihood,
        })
    }

    /// Number of pairs in `split`.
    pub fn pairs(&self, split: Split) -> Result<usize> {
        let g = self
            .file
            .group(split.as_str())
            .map_err(|_| self.missing(split.as_str()))?;
        Ok(read_u64_attr(&g, "pairs", &self.path)? as usize)
    }

    /// Reads only the labels of `modality` in `split` (no item data).
    pub fn read_labels(&self, split: Split, modality: &str) -> Result<BTreeMap<String, Vec<i64>>> {
        let info = self.modality_info(split, modality)?;
        let g = self.modality_group(split, modality)?;
        let n = self.pairs(split)?;
        let mut labels = BTreeMap::new();
        for l in &info.labels {
            let p = format!("/{}/{modality}/labels/{}", split.as_str(), l.spec.name);
            let ds = g
                .dataset(&format!("labels/{}", l.spec.name))
                .map_err(|_| self.missing(&p))?;
            self.check_dtype(&ds, &p, true)?;
            if ds.shape().first() != Some(&n) || ds.ndim() != 1 {
                return Err(Error::Format {
                    path: self.path.clone(),
                    message: format!("`{p}` has shape {:?}, the split has {n} pairs", ds.shape()),
                });
            }
            let values: Vec<i64> = ds.read_raw().map_err(|e| Error::Format {
                path: self.path.clone(),
                message: format!("cannot read `{p}` (damaged file?): {e}"),
            })?;
            if values.len() != n {
                return Err(Error::Format {
                    path: self.path.clone(),
                    message: format!("`{p}` has {} rows, the split has {n} pairs", values.len()),
                });
            }
            self.check_label_values(&p, &l.spec, &values)?;
            labels.insert(l.spec.name.clone(), values);
        }
        Ok(labels)
    }

    /// Reads all items and labels of `modality` in `split`.
    pub fn read(&self, split: Split, modality: &str) -> Result<ItemSet> {
        let info = self.modality_info(split, modality)?;
        let g = self.modality_group(split, modality)?;
        let p = format!("/{}/{modality}/data", split.as_str());
        let ds = g.dataset("data").map_err(|_| self.missing(&p))?;
        self.check_dtype(&ds, &p, false)?;
        let n = self.pairs(split)?;
        // Checked before the (possibly large) read.
        if ds.shape().first() != Some(&n) {
            return Err(Error::Format {
                path: self.path.clone(),
                message: format!("`{p}` has shape {:?}, the split has {n} pairs", ds.shape()),
            });
        }
        let data: Vec<u8> = ds.read_raw().map_err(|e| Error::Format {
            path: self.path.clone(),
            message: format!("cannot read `{p}` (damaged file?): {e}"),
        })?;
        let set = ItemSet {
            shape: info.item_shape,
            data,
            labels: self.read_labels(split, modality)?,
        };
        if set.len() != n {
            return Err(Error::Format {
                path: self.path.clone(),
                message: format!("`{p}` has {} rows, the split has {n} pairs", set.len()),
            });
        }
        set.validate()?;
        Ok(set)
    }

    /// Counts, shapes, label histograms and provenance, reading labels only.
    pub fn summary(&self) -> Result<Summary> {
        let mut splits = Vec::new();
        for &split in &self.splits {
            let mut modalities = Vec::new();
            for m in &self.modalities {
                let info = self.modality_info(split, m)?;
                let hists = self
                    .read_labels(split, m)?
                    .into_iter()
                    .map(|(name, values)| {
                        let mut h = BTreeMap::new();
                        for v in values {
                            *h.entry(v).or_insert(0) += 1;
                        }
                        (name, h)
                    })
                    .collect();
                modalities.push((info, hists));
            }
            splits.push(SplitSummary {
                split,
                pairs: self.pairs(split)?,
                modalities,
            });
        }
        Ok(Summary {
            format_version: read_u64_attr(&self.file, "format_version", &self.path)?,
            seed: self.seed()?,
            config_toml: self.config_toml()?,
            provenance: read_str_attr(&self.file, "provenance", &self.path)?,
            created_by: read_str_attr(&self.file, "created_by", &self.path)?,
            splits,
        })
    }
}
