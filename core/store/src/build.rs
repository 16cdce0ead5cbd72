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

use crate::{write_dataset, DatasetContents, Provenance};
use rensou_api::modality::{
    ClassCounts, ItemRequest, ItemSet, LabelSpec, Modality, ModalityConfig, SourceEnv, Split,
    Supply,
};
use rensou_api::progress::Progress;
use rensou_api::registry::config_type_name;
use rensou_api::rng::{derive_seed, rng_for};
use rensou_api::{Error, Result};

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
    /// The modalities, in order (none in a file: the command's default, oscn and cmnist).
    #[serde(default)]
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
        let cfg = Self::parse_toml(text, origin)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text without validating it: for a caller that fills in defaults (every field
    /// of a file is optional) and then validates once.
    pub fn parse_toml(text: &str, origin: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::toml_parse(origin, text, &e))
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
        if self.seed > rensou_api::rng::MAX_SEED {
            return Err(Error::config(
                "seed",
                format!(
                    "must be at most {} (a TOML integer, stored in the dataset), got {}",
                    rensou_api::rng::MAX_SEED,
                    self.seed
                ),
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

/// The labels to pair by: every label that at least two modalities carry, provided every
/// modality carrying it gives its values the same meanings (same name; categorical values that
/// two of them name must have the same names). Sorted.
///
/// With OSCN and CMNIST that is `colour` and `number`; adding a sound modality that has a
/// `number` but no `colour` keeps both: pictures are paired by number and colour, the sound by
/// number alone.
pub fn shared_labels(specs: &[Vec<LabelSpec>]) -> Vec<String> {
    let compatible = |a: &LabelSpec, b: &LabelSpec| {
        a.values.is_empty() == b.values.is_empty()
            && b.values
                .iter()
                .all(|(k, v)| a.values.get(k).is_none_or(|av| av == v))
    };
    let mut names: Vec<&String> = specs.iter().flatten().map(|l| &l.name).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| {
            let carriers: Vec<&LabelSpec> = specs
                .iter()
                .filter_map(|s| s.iter().find(|l| &l.name == *name))
                .collect();
            carriers.len() >= 2
                && carriers
                    .iter()
                    .enumerate()
                    .all(|(i, a)| carriers[i + 1..].iter().all(|b| compatible(a, b)))
        })
        .cloned()
        .collect()
}

/// The labels of `shared` that `specs` (one modality's labels) carries, in `shared`'s order.
fn own_labels(shared: &[String], specs: &[LabelSpec]) -> Vec<String> {
    shared
        .iter()
        .filter(|n| specs.iter().any(|l| &l.name == *n))
        .cloned()
        .collect()
}

/// `counts` summed over the labels not in `labels` (which must be a subset of its labels).
fn project_counts(counts: &ClassCounts, labels: &[String]) -> ClassCounts {
    let at: Vec<usize> = labels
        .iter()
        .filter_map(|l| counts.label_names.iter().position(|c| c == l))
        .collect();
    let mut out = ClassCounts {
        label_names: at.iter().map(|&i| counts.label_names[i].clone()).collect(),
        counts: BTreeMap::new(),
    };
    for (key, &n) in &counts.counts {
        let k: Vec<i64> = at.iter().map(|&i| key[i]).collect();
        *out.counts.entry(k).or_insert(0) += n;
    }
    out
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
/// `groups[m]` holds modality `m`'s items by class key, the key being the values of the labels
/// `key_labels[m]`. The modality with the most key labels defines the classes; every other
/// modality's key labels must be a subset of its (a sound keyed by `number` pairs with pictures
/// keyed by `number` and `colour`: its items of number 3 serve every colour class of number 3).
///
/// For a class with `n` items in the largest of the modalities keyed like the classes,
/// `pairs_per_item * n` pairs are made; each modality fills its column from a stream of
/// consecutive seeded permutations of its items of the class's key, so with equal class sizes
/// every item appears exactly `pairs_per_item` times.
pub fn pair_indices(
    groups: &[BTreeMap<Vec<i64>, Vec<usize>>],
    key_labels: &[Vec<String>],
    pairs_per_item: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    let mut rng = rng_for(seed, &["pairing"]);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    if key_labels.len() != groups.len() {
        return Err(Error::Data(format!(
            "pairing: {} modalities but {} key label lists",
            groups.len(),
            key_labels.len()
        )));
    }
    let Some(driver) = (0..groups.len()).max_by_key(|&m| (key_labels[m].len(), usize::MAX - m))
    else {
        return Ok(columns);
    };
    let classes = &key_labels[driver];
    // Where each modality's key labels sit in the class key.
    let mut positions = Vec::with_capacity(groups.len());
    for labels in key_labels {
        let at = labels
            .iter()
            .map(|l| classes.iter().position(|c| c == l))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| {
                Error::Data(format!(
                    "cannot pair items keyed by {labels:?} with items keyed by {classes:?}: \
                     one modality's pairing labels must include every other's"
                ))
            })?;
        positions.push(at);
    }
    let finest: Vec<usize> = (0..groups.len())
        .filter(|&m| key_labels[m].len() == classes.len())
        .collect();
    // Per modality: the key whose permutation stream is open, and what is left of it.
    let mut streams: Vec<BTreeMap<Vec<i64>, Vec<usize>>> = vec![BTreeMap::new(); groups.len()];
    for key in groups[driver].keys() {
        let own: Vec<Vec<i64>> = positions
            .iter()
            .map(|at| at.iter().map(|&i| key[i]).collect())
            .collect();
        let sizes: Vec<usize> = groups
            .iter()
            .zip(&own)
            .map(|(g, k)| g.get(k).map_or(0, Vec::len))
            .collect();
        if sizes.contains(&0) {
            return Err(Error::Data(format!(
                "class {key:?} has items in some modalities but not in others (sizes {sizes:?})"
            )));
        }
        let pairs = pairs_per_item * finest.iter().map(|&m| sizes[m]).max().unwrap_or(0);
        for (m, col) in columns.iter_mut().enumerate() {
            let items = &groups[m][&own[m]];
            let left = streams[m].entry(own[m].clone()).or_default();
            let mut taken = 0;
            while taken < pairs {
                if left.is_empty() {
                    let mut perm = items.clone();
                    perm.shuffle(&mut rng);
                    // Kept reversed, so taking from the end yields the permutation's order.
                    perm.reverse();
                    *left = perm;
                }
                let take = (pairs - taken).min(left.len());
                col.extend(left.drain(left.len() - take..).rev());
                taken += take;
            }
            if key_labels[m].len() == classes.len() {
                // A modality keyed like the classes never sees this key again.
                left.clear();
            }
        }
    }
    for (m, g) in groups.iter().enumerate() {
        if let Some(extra) = g.keys().find(|k| !streams[m].contains_key(*k)) {
            return Err(Error::Data(format!(
                "class {extra:?} of {:?} has items in some modalities but not in others",
                key_labels[m]
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
    let keys: Vec<Vec<String>> = specs.iter().map(|s| own_labels(&shared, s)).collect();
    if modalities.len() > 1 {
        if let Some(m) = keys.iter().position(Vec::is_empty) {
            return Err(Error::Data(format!(
                "modality `{}` shares no label with the others ({}) to pair by",
                names[m],
                names.join(", ")
            )));
        }
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
        suggested: names
            .iter()
            .cloned()
            .zip(
                modalities
                    .iter()
                    .map(|m| rensou_api::Suggested::of(m.as_ref())),
            )
            .collect(),
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
            let wanted_classes = match &counts {
                Some(c) if m.supply() == Supply::Generative => Some(project_counts(c, &keys[i])),
                _ => None,
            };
            let request = ItemRequest {
                split,
                seed: derive_seed(config.seed, &[m.name(), split.as_str()]),
                classes: wanted_classes.as_ref(),
                progress: &advance,
            };
            let set = m.items(&request)?;
            check_items(&**m, &specs[i], &set)?;
            if !keys[i].is_empty() {
                let mut these = ClassCounts {
                    label_names: keys[i].clone(),
                    counts: BTreeMap::new(),
                };
                for key in class_keys(&set, &keys[i])? {
                    *these.counts.entry(key).or_insert(0) += 1;
                }
                counts = Some(match counts.take() {
                    // Finer classes (more labels) set the sizes from here on.
                    Some(c) if c.label_names.len() >= these.label_names.len() => {
                        let mut c = c;
                        if c.label_names == these.label_names {
                            // Several sources keyed alike: each class as large as its largest.
                            for (k, n) in these.counts {
                                let e = c.counts.entry(k).or_insert(0);
                                *e = (*e).max(n);
                            }
                        }
                        c
                    }
                    _ => these,
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
                .zip(&keys)
                .map(|(s, k)| group_by_class(s, k))
                .collect::<Result<_>>()?;
            let columns = pair_indices(
                &groups,
                &keys,
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

    fn keyed(m: usize) -> Vec<Vec<String>> {
        vec![vec!["number".to_owned()]; m]
    }

    #[test]
    fn equal_classes_use_each_item_pairs_per_item_times() {
        let a = groups(&[(1, 5), (2, 3)]);
        let b = groups(&[(1, 5), (2, 3)]);
        let cols = pair_indices(&[a.clone(), b.clone()], &keyed(2), 2, 9).unwrap();
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
        assert_eq!(cols, pair_indices(&[a, b], &keyed(2), 2, 9).unwrap());
    }

    #[test]
    fn missing_class_is_an_error() {
        let a = groups(&[(1, 2), (2, 2)]);
        let b = groups(&[(1, 2)]);
        assert!(pair_indices(&[a.clone(), b.clone()], &keyed(2), 1, 0).is_err());
        assert!(pair_indices(&[b, a], &keyed(2), 1, 0).is_err());
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

    #[test]
    fn a_coarser_modality_serves_every_finer_class_of_its_key() {
        // Pictures keyed by (number, colour), sounds by number only.
        let pictures = |offset: usize| -> BTreeMap<Vec<i64>, Vec<usize>> {
            let mut g = BTreeMap::new();
            let mut next = offset;
            for number in 1..=2 {
                for colour in 0..3 {
                    g.insert(vec![colour, number], (next..next + 4).collect());
                    next += 4;
                }
            }
            g
        };
        let sound: BTreeMap<Vec<i64>, Vec<usize>> =
            BTreeMap::from([(vec![1], (0..12).collect()), (vec![2], (12..24).collect())]);
        let fine = vec!["colour".to_owned(), "number".to_owned()];
        let keys = vec![fine.clone(), vec!["number".to_owned()], fine];
        let (a, b) = (pictures(0), pictures(100));
        let cols = pair_indices(&[a.clone(), sound.clone(), b.clone()], &keys, 2, 3).unwrap();
        assert_eq!(cols[0].len(), 2 * 24);
        let key_of = |g: &BTreeMap<Vec<i64>, Vec<usize>>, i: usize| {
            g.iter().find(|(_, v)| v.contains(&i)).unwrap().0.clone()
        };
        for ((&i, &s), &j) in cols[0].iter().zip(&cols[1]).zip(&cols[2]) {
            let (ka, kb) = (key_of(&a, i), key_of(&b, j));
            assert_eq!(ka, kb, "pictures share number and colour");
            assert_eq!(
                key_of(&sound, s),
                vec![ka[1]],
                "the sound shares the number"
            );
        }
        for col in &cols {
            let mut uses = BTreeMap::new();
            for &i in col {
                *uses.entry(i).or_insert(0) += 1;
            }
            assert!(uses.values().all(|&c| c == 2), "{uses:?}");
            assert_eq!(uses.len(), 24);
        }
        // Keys that are not nested cannot be paired.
        let other = vec![vec!["colour".to_owned()], vec!["number".to_owned()]];
        assert!(pair_indices(&[a, sound], &other, 1, 0).is_err());
    }

    #[test]
    fn labels_carried_by_two_modalities_pair_them() {
        let colour = LabelSpec::categorical("colour", "", &["red", "green"]);
        let number = LabelSpec::numeric("number", "");
        let pitch = LabelSpec::categorical("pitch", "", &["low"]);
        let pictures = vec![number.clone(), colour.clone()];
        let sound = vec![number.clone(), pitch];
        assert_eq!(
            shared_labels(&[pictures.clone(), pictures.clone(), sound.clone()]),
            ["colour", "number"]
        );
        assert_eq!(
            own_labels(&["colour".into(), "number".into()], &sound),
            ["number"]
        );
        let counts = ClassCounts {
            label_names: vec!["colour".into(), "number".into()],
            counts: BTreeMap::from([(vec![0, 1], 3), (vec![1, 1], 4), (vec![0, 2], 5)]),
        };
        let by_number = project_counts(&counts, &["number".into()]);
        assert_eq!(by_number.label_names, ["number"]);
        assert_eq!(
            by_number.counts,
            BTreeMap::from([(vec![1], 7), (vec![2], 5)])
        );
        // A meaning clash anywhere drops the label.
        let clash = vec![LabelSpec::categorical("colour", "", &["green"]), number];
        assert_eq!(
            shared_labels(&[pictures.clone(), pictures, clash]),
            ["number"]
        );
    }
}
