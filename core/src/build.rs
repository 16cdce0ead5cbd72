//! Building a paired dataset from any set of modalities.
//!
//! Nothing here names a modality: the builder asks each configured modality for its items,
//! finds the labels they all share (same name, same value meanings — `number` and `colour` for
//! OSCN and CMNIST), and pairs items within each class of shared label values by seeded random
//! permutations, `pairs_per_item` times over.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::modality::{
    ClassCounts, ItemRequest, ItemSet, LabelSpec, Modality, ModalityConfig, SourceEnv, Split,
    Supply,
};
use crate::progress::Progress;
use crate::registry::config_type_name;
use crate::rng::{derive_seed, rng_for};
use crate::store::{write_dataset, DatasetContents, Provenance};
use crate::{Error, Result};

fn default_pairs_per_item() -> usize {
    2
}

/// The dataset configuration (`rensou data build --config FILE`).
///
/// ```toml
/// seed = 0
/// pairs_per_item = 2
/// [[modalities]]
/// type = "oscn"
/// [[modalities]]
/// type = "cmnist"
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Seed of every random choice (generation and pairing).
    #[serde(default)]
    pub seed: u64,
    /// How many pairs each item of the largest modality of a class appears in (their `dm`).
    #[serde(default = "default_pairs_per_item")]
    pub pairs_per_item: usize,
    /// The modalities, in order.
    pub modalities: Vec<Box<dyn ModalityConfig>>,
}

impl DataConfig {
    /// A config with the given modality configs and default seed and pairing.
    pub fn new(modalities: Vec<Box<dyn ModalityConfig>>) -> Self {
        DataConfig {
            seed: 0,
            pairs_per_item: default_pairs_per_item(),
            modalities,
        }
    }

    /// Parses TOML text (`origin` names the file in errors) and validates it.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let cfg: DataConfig = toml::from_str(text).map_err(|e| Error::ConfigParse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Data(format!("cannot serialise config: {e}")))
    }

    /// Checks every field and every modality's config.
    pub fn validate(&self) -> Result<()> {
        if self.modalities.is_empty() {
            return Err(Error::config(
                "modalities",
                "at least one modality is needed",
            ));
        }
        if !(1..=64).contains(&self.pairs_per_item) {
            return Err(Error::config(
                "pairs_per_item",
                format!("must be in 1..=64, got {}", self.pairs_per_item),
            ));
        }
        let mut seen = Vec::new();
        for m in &self.modalities {
            let name = config_type_name(&**m)?;
            if seen.contains(&name) {
                return Err(Error::config(
                    "modalities",
                    format!("modality `{name}` is listed twice"),
                ));
            }
            m.validate()?;
            seen.push(name);
        }
        Ok(())
    }
}

/// What a build produced, for the summary the binary prints.
#[derive(Clone, Debug)]
pub struct BuildReport {
    /// Modality names.
    pub modalities: Vec<String>,
    /// The labels used for pairing.
    pub shared_labels: Vec<String>,
    /// Per split: pairs, and items per modality before pairing.
    pub splits: Vec<(Split, usize, BTreeMap<String, usize>)>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Labels shared by all modalities with compatible value meanings (same name; categorical values
/// that both name must have the same names).
pub fn shared_labels(specs: &[Vec<LabelSpec>]) -> Vec<String> {
    let Some((first, rest)) = specs.split_first() else {
        return Vec::new();
    };
    let mut shared: Vec<String> = first
        .iter()
        .filter(|l| {
            rest.iter().all(|other| {
                other.iter().any(|o| {
                    o.name == l.name
                        && o.values.is_empty() == l.values.is_empty()
                        && o.values
                            .iter()
                            .all(|(k, v)| l.values.get(k).is_none_or(|lv| lv == v))
                })
            })
        })
        .map(|l| l.name.clone())
        .collect();
    shared.sort();
    shared
}

/// The class key (values of `labels`) of every item of `set`.
fn class_keys(set: &ItemSet, labels: &[String]) -> Result<Vec<Vec<i64>>> {
    let columns: Vec<&[i64]> = labels.iter().map(|l| set.label(l)).collect::<Result<_>>()?;
    Ok((0..set.len())
        .map(|i| columns.iter().map(|c| c[i]).collect())
        .collect())
}

/// Item indices of `set` grouped by class key.
fn group_by_class(set: &ItemSet, labels: &[String]) -> Result<BTreeMap<Vec<i64>, Vec<usize>>> {
    let mut groups: BTreeMap<Vec<i64>, Vec<usize>> = BTreeMap::new();
    for (i, key) in class_keys(set, labels)?.into_iter().enumerate() {
        groups.entry(key).or_default().push(i);
    }
    Ok(groups)
}

/// Checks that a modality delivered what it promised: shape, label names, known label values.
fn check_items(m: &dyn Modality, specs: &[LabelSpec], set: &ItemSet) -> Result<()> {
    set.validate()?;
    if set.shape != m.item_shape() {
        return Err(Error::Data(format!(
            "modality `{}` produced items of shape {:?}, it declares {:?}",
            m.name(),
            set.shape,
            m.item_shape()
        )));
    }
    for spec in specs {
        let values = set.label(&spec.name).map_err(|_| {
            Error::Data(format!(
                "modality `{}` produced no `{}` label",
                m.name(),
                spec.name
            ))
        })?;
        if !spec.values.is_empty() {
            if let Some(bad) = values.iter().find(|v| !spec.values.contains_key(v)) {
                return Err(Error::Data(format!(
                    "modality `{}`: label `{}` has value {bad}, which its spec does not name",
                    m.name(),
                    spec.name
                )));
            }
        }
    }
    Ok(())
}

/// Pairs items of several modalities within classes. Returns, per modality, the item indices of
/// each pair (all of the same length), in a seeded random pair order.
///
/// For a class with `n` items in the largest modality, `pairs_per_item * n` pairs are made; each
/// modality fills its column with consecutive seeded permutations of its items of that class, so
/// with equal class sizes every item appears exactly `pairs_per_item` times.
pub fn pair_indices(
    groups: &[BTreeMap<Vec<i64>, Vec<usize>>],
    pairs_per_item: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    let mut rng = rng_for(seed, &["pairing"]);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    let Some(first) = groups.first() else {
        return Ok(columns);
    };
    for key in first.keys() {
        let sizes: Vec<usize> = groups
            .iter()
            .map(|g| g.get(key).map_or(0, Vec::len))
            .collect();
        if sizes.contains(&0) {
            return Err(Error::Data(format!(
                "class {key:?} has items in some modalities but not in others (sizes {sizes:?})"
            )));
        }
        let pairs = pairs_per_item * sizes.iter().copied().max().unwrap_or(0);
        for (col, g) in columns.iter_mut().zip(groups) {
            let items = &g[key];
            let mut taken = 0;
            while taken < pairs {
                let mut perm = items.clone();
                perm.shuffle(&mut rng);
                let take = (pairs - taken).min(perm.len());
                col.extend_from_slice(&perm[..take]);
                taken += take;
            }
        }
    }
    for g in &groups[1..] {
        if let Some(extra) = g.keys().find(|k| !first.contains_key(*k)) {
            return Err(Error::Data(format!(
                "class {extra:?} has items in some modalities but not in others"
            )));
        }
    }
    // Shuffle pair order so rows are not sorted by class.
    let mut order: Vec<usize> = (0..columns[0].len()).collect();
    order.shuffle(&mut rng);
    Ok(columns
        .into_iter()
        .map(|c| order.iter().map(|&i| c[i]).collect())
        .collect())
}

/// Builds the paired dataset described by `config` and writes it to `out` atomically.
pub fn build_dataset(
    config: &DataConfig,
    env: &SourceEnv,
    out: &Path,
    progress: &dyn Progress,
) -> Result<BuildReport> {
    let start = Instant::now();
    config.validate()?;
    let modalities: Vec<Box<dyn Modality>> = config
        .modalities
        .iter()
        .map(|c| c.build(env))
        .collect::<Result<_>>()?;
    let names: Vec<String> = modalities.iter().map(|m| m.name().to_owned()).collect();
    let specs: Vec<Vec<LabelSpec>> = modalities.iter().map(|m| m.labels()).collect();
    let shared = if modalities.len() > 1 {
        shared_labels(&specs)
    } else {
        Vec::new()
    };
    if modalities.len() > 1 && shared.is_empty() {
        return Err(Error::Data(format!(
            "modalities {} share no label to pair by",
            names.join(", ")
        )));
    }
    // Fixed-source modalities first: their sizes set the class counts generative ones match.
    let mut order: Vec<usize> = (0..modalities.len()).collect();
    order.sort_by_key(|&i| (modalities[i].supply() != Supply::Fixed, i));

    let mut contents = DatasetContents {
        modalities: names.clone(),
        label_specs: names.iter().cloned().zip(specs.iter().cloned()).collect(),
        splits: BTreeMap::new(),
        provenance: Provenance {
            seed: config.seed,
            config_toml: config.to_toml()?,
            sources: modalities.iter().map(|m| m.provenance()).collect(),
        },
    };
    let mut report = BuildReport {
        modalities: names.clone(),
        shared_labels: shared.clone(),
        splits: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for split in Split::ALL {
        let mut sets: Vec<Option<ItemSet>> = vec![None; modalities.len()];
        let mut counts: Option<ClassCounts> = None;
        for &i in &order {
            let m = &modalities[i];
            let wanted = counts.as_ref().map(|c| c.total() as u64);
            progress.stage(&format!("{} {split}", m.name()), wanted);
            let advance = |n: u64| progress.advance(n);
            let request = ItemRequest {
                split,
                seed: derive_seed(config.seed, &[m.name(), split.as_str()]),
                classes: if m.supply() == Supply::Generative {
                    counts.as_ref()
                } else {
                    None
                },
                progress: &advance,
            };
            let set = m.items(&request)?;
            check_items(&**m, &specs[i], &set)?;
            if !shared.is_empty() {
                let mut these = ClassCounts {
                    label_names: shared.clone(),
                    counts: BTreeMap::new(),
                };
                for key in class_keys(&set, &shared)? {
                    *these.counts.entry(key).or_insert(0) += 1;
                }
                counts = Some(match counts.take() {
                    None => these,
                    Some(mut c) => {
                        // Several fixed sources: each class is as large as its largest source.
                        for (k, n) in these.counts {
                            let e = c.counts.entry(k).or_insert(0);
                            *e = (*e).max(n);
                        }
                        c
                    }
                });
            }
            sets[i] = Some(set);
        }
        let sets: Vec<ItemSet> = sets.into_iter().flatten().collect();
        progress.stage(&format!("pairing {split}"), None);
        let paired: Vec<ItemSet> = if shared.is_empty() {
            sets.clone()
        } else {
            let groups: Vec<_> = sets
                .iter()
                .map(|s| group_by_class(s, &shared))
                .collect::<Result<_>>()?;
            let columns = pair_indices(
                &groups,
                config.pairs_per_item,
                derive_seed(config.seed, &[split.as_str()]),
            )?;
            sets.iter()
                .zip(&columns)
                .map(|(s, c)| s.select(c))
                .collect()
        };
        let item_counts = names
            .iter()
            .cloned()
            .zip(sets.iter().map(ItemSet::len))
            .collect();
        report
            .splits
            .push((split, paired.first().map_or(0, ItemSet::len), item_counts));
        contents
            .splits
            .insert(split, names.iter().cloned().zip(paired).collect());
    }
    progress.stage("writing HDF5", None);
    write_dataset(out, &contents)?;
    report.elapsed = start.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(keys: &[(i64, usize)]) -> BTreeMap<Vec<i64>, Vec<usize>> {
        let mut next = 0;
        keys.iter()
            .map(|&(k, n)| {
                let v: Vec<usize> = (next..next + n).collect();
                next += n;
                (vec![k], v)
            })
            .collect()
    }

    #[test]
    fn equal_classes_use_each_item_pairs_per_item_times() {
        let a = groups(&[(1, 5), (2, 3)]);
        let b = groups(&[(1, 5), (2, 3)]);
        let cols = pair_indices(&[a.clone(), b.clone()], 2, 9).unwrap();
        assert_eq!(cols[0].len(), 16);
        for (col, g) in cols.iter().zip([&a, &b]) {
            let mut counts = BTreeMap::new();
            for &i in col {
                *counts.entry(i).or_insert(0) += 1;
            }
            assert!(counts.values().all(|&c| c == 2));
            assert_eq!(counts.len(), g.values().map(Vec::len).sum::<usize>());
        }
        // Paired items share their class.
        let class_of = |g: &BTreeMap<Vec<i64>, Vec<usize>>, i: usize| {
            g.iter().find(|(_, v)| v.contains(&i)).unwrap().0.clone()
        };
        for (&i, &j) in cols[0].iter().zip(&cols[1]) {
            assert_eq!(class_of(&a, i), class_of(&b, j));
        }
        assert_eq!(cols, pair_indices(&[a, b], 2, 9).unwrap());
    }

    #[test]
    fn missing_class_is_an_error() {
        let a = groups(&[(1, 2), (2, 2)]);
        let b = groups(&[(1, 2)]);
        assert!(pair_indices(&[a.clone(), b.clone()], 1, 0).is_err());
        assert!(pair_indices(&[b, a], 1, 0).is_err());
    }

    #[test]
    fn shared_labels_need_matching_meanings() {
        let colour = LabelSpec::categorical("colour", "", &["red", "green"]);
        let other = LabelSpec::categorical("colour", "", &["green", "red"]);
        let number = LabelSpec::numeric("number", "");
        let shape = LabelSpec::categorical("shape", "", &["square"]);
        let a = vec![number.clone(), colour.clone(), shape];
        assert_eq!(
            shared_labels(&[a.clone(), vec![colour, number.clone()]]),
            ["colour", "number"]
        );
        assert_eq!(shared_labels(&[a, vec![other, number]]), ["number"]);
    }
}
