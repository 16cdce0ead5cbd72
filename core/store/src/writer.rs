//! Writing a paired dataset.

use std::collections::BTreeMap;
use std::path::Path;

use hdf5::types::VarLenUnicode;
use hdf5::H5Type;
use ndarray::{ArrayD, IxDyn};

use super::{hdf5_err, FORMAT_NAME, FORMAT_VERSION};
use rensou_api::modality::{ItemSet, LabelSpec, Split, Suggested};
use rensou_api::{Error, Result};

/// Where a dataset came from, stored as root attributes.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// The user's seed.
    pub seed: u64,
    /// The generating configuration, as TOML text.
    pub config_toml: String,
    /// One line per modality: where its items came from.
    pub sources: Vec<String>,
}

/// Everything a dataset file holds.
#[derive(Clone, Debug, Default)]
pub struct DatasetContents {
    /// Modality names in the order they were configured.
    pub modalities: Vec<String>,
    /// Label specs per modality.
    pub label_specs: BTreeMap<String, Vec<LabelSpec>>,
    /// Paired items per split: every modality's set has the same length; row i is pair i.
    pub splits: BTreeMap<Split, BTreeMap<String, ItemSet>>,
    /// Provenance attributes.
    pub provenance: Provenance,
    /// What each modality suggests for its model (stored as the modality group's `net` and
    /// `likelihood` attributes); a modality without an entry stores none.
    pub suggested: BTreeMap<String, Suggested>,
}

/// Writes the scalar attribute `name` on `loc`; errors name `path`.
fn scalar_attr<T: H5Type>(loc: &hdf5::Location, name: &str, value: &T, path: &Path) -> Result<()> {
    loc.new_attr::<T>()
        .shape(())
        .create(name)
        .and_then(|a| a.write_scalar(value))
        .map_err(|e| hdf5_err(path, format!("attribute {name}: {e}")))
}

/// Writes the string attribute `name` on `loc`; errors name `path`.
pub(crate) fn str_attr(loc: &hdf5::Location, name: &str, value: &str, path: &Path) -> Result<()> {
    let v: VarLenUnicode = value
        .parse()
        .map_err(|e| hdf5_err(path, format!("attribute {name}: {e}")))?;
    scalar_attr(loc, name, &v, path)
}

fn u64_attr(loc: &hdf5::Location, name: &str, value: u64, path: &Path) -> Result<()> {
    scalar_attr(loc, name, &value, path)
}

/// Writes `contents` to `target` atomically (temporary file, then rename). Data is chunked and
/// deflate-compressed.
pub fn write_dataset(target: &Path, contents: &DatasetContents) -> Result<()> {
    for (split, sets) in &contents.splits {
        let mut lens = sets.values().map(ItemSet::len);
        if let Some(first) = lens.next() {
            if lens.any(|n| n != first) {
                return Err(Error::Data(format!(
                    "split {split}: modalities have different numbers of rows"
                )));
            }
        }
        for set in sets.values() {
            set.validate()?;
        }
    }
    rensou_api::fsutil::write_atomically(target, |tmp| write_to(tmp, contents))
}

fn write_to(path: &Path, contents: &DatasetContents) -> Result<()> {
    let file = hdf5::File::create(path).map_err(|e| hdf5_err(path, e))?;
    str_attr(&file, "format", FORMAT_NAME, path)?;
    u64_attr(&file, "format_version", u64::from(FORMAT_VERSION), path)?;
    u64_attr(&file, "seed", contents.provenance.seed, path)?;
    str_attr(&file, "config", &contents.provenance.config_toml, path)?;
    str_attr(&file, "modalities", &contents.modalities.join(","), path)?;
    str_attr(
        &file,
        "provenance",
        &contents.provenance.sources.join("\n"),
        path,
    )?;
    str_attr(
        &file,
        "created_by",
        concat!("rensou ", env!("CARGO_PKG_VERSION")),
        path,
    )?;
    for (split, sets) in &contents.splits {
        let g = file
            .create_group(split.as_str())
            .map_err(|e| hdf5_err(path, e))?;
        let pairs = sets.values().next().map_or(0, ItemSet::len);
        u64_attr(&g, "pairs", pairs as u64, path)?;
        for name in &contents.modalities {
            let set = sets
                .get(name)
                .ok_or_else(|| Error::Data(format!("split {split} lacks modality {name}")))?;
            let specs = contents
                .label_specs
                .get(name)
                .ok_or_else(|| Error::Data(format!("no label specs for modality {name}")))?;
            write_modality(&g, name, set, specs, contents.suggested.get(name), path)?;
        }
    }
    file.close().map_err(|e| hdf5_err(path, e))
}

fn write_modality(
    parent: &hdf5::Group,
    name: &str,
    set: &ItemSet,
    specs: &[LabelSpec],
    suggested: Option<&Suggested>,
    path: &Path,
) -> Result<()> {
    let g = parent.create_group(name).map_err(|e| hdf5_err(path, e))?;
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    str_attr(&g, "labels", &names.join(","), path)?;
    if let Some(s) = suggested {
        str_attr(&g, "net", s.net.as_str(), path)?;
        str_attr(&g, "likelihood", s.likelihood.as_str(), path)?;
    }
    let n = set.len();
    let mut shape = vec![n];
    shape.extend_from_slice(&set.shape);
    let data = ArrayD::from_shape_vec(IxDyn(&shape), set.data.clone())
        .map_err(|e| Error::Data(format!("{name}: {e}")))?;
    // Chunks of up to 256 items (about 0.8 MB for 32x32x3) compress well and read fast.
    let mut chunk = shape.clone();
    chunk[0] = n.clamp(1, 256);
    let mut builder = g.new_dataset_builder().with_data(&data);
    if n > 0 {
        builder = builder.chunk(chunk).deflate(3);
    }
    builder.create("data").map_err(|e| hdf5_err(path, e))?;
    let labels = g.create_group("labels").map_err(|e| hdf5_err(path, e))?;
    for spec in specs {
        let values = set.label(&spec.name)?;
        let arr = ndarray::ArrayView1::from(values);
        let mut b = labels.new_dataset_builder().with_data(arr);
        if n > 0 {
            b = b.chunk(n.clamp(1, 65536)).deflate(3);
        }
        let ds = b
            .create(spec.name.as_str())
            .map_err(|e| hdf5_err(path, e))?;
        str_attr(&ds, "description", &spec.description, path)?;
        let meanings: BTreeMap<String, &String> = spec
            .values
            .iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let json = serde_json::to_string(&meanings).map_err(|e| Error::Data(e.to_string()))?;
        str_attr(&ds, "values", &json, path)?;
    }
    Ok(())
}
