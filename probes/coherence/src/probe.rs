//! The computation: cross-generation, reconstruction and joint coherence.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use rensou_api::probe::{Latents, Of, ProbeContext};
use rensou_api::rng::{derive_seed, rng_for};
use rensou_api::ItemSet;
use rensou_plot::ImageTile;

use crate::config::CoherenceConfig;
use crate::error::{CoherenceError, Result};
use crate::figure::{self, Grid};

/// Latents decoded (and classified) in one call to the model and the classifiers.
const BATCH: usize = 1024;
/// Most classes of `figure_label` the figure shows (one or more rows each).
const MAX_FIGURE_CLASSES: usize = 20;
/// File name of the figure.
pub const FIGURE_FILE: &str = "coherence.png";

/// One modality of the model with its data.
struct Modal<'a> {
    name: String,
    set: &'a ItemSet,
    latents: &'a Latents,
    shape: Vec<usize>,
    item_len: usize,
    /// The configured labels this modality carries, in config order.
    labels: Vec<String>,
}

impl Modal<'_> {
    fn carries(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }

    /// Label `label` of the items at `indices`.
    fn truth(&self, label: &str, indices: &[usize]) -> Result<Vec<i64>> {
        let values = self.set.label(label)?;
        Ok(indices.iter().map(|&i| values[i]).collect())
    }

    /// Encoder locations of the items at `indices`, `[indices.len(), dim]`.
    fn locations(&self, indices: &[usize]) -> Vec<f32> {
        indices
            .iter()
            .flat_map(|&i| self.latents.row(i).iter().copied())
            .collect()
    }
}

/// Decodes `z` (`[n, dim]`) as modality `target`, checking the length.
fn decode(ctx: &ProbeContext<'_>, target: &Modal<'_>, z: &[f32], dim: usize) -> Result<Vec<f32>> {
    let n = z.len() / dim;
    let items = ctx.model.decode(&target.name, z)?;
    if items.len() != n * target.item_len {
        return Err(CoherenceError::Inconsistent(format!(
            "the model decoded {n} latents of `{}` into {} values, expected {}",
            target.name,
            items.len(),
            n * target.item_len
        )));
    }
    Ok(items)
}

/// Classifies `items` of `target` for `label`, checking the length.
fn classify(
    ctx: &ProbeContext<'_>,
    target: &Modal<'_>,
    label: &str,
    items: &[f32],
) -> Result<Vec<i64>> {
    let n = items.len() / target.item_len;
    let predictions = ctx.classifiers.predict(&target.name, label, items)?;
    if predictions.len() != n {
        return Err(CoherenceError::Inconsistent(format!(
            "the `{label}` classifier of `{}` returned {} predictions for {n} items",
            target.name,
            predictions.len()
        )));
    }
    Ok(predictions)
}

/// Decodes `z` as `target` in batches and classifies every label in `labels`.
fn generate(
    ctx: &ProbeContext<'_>,
    target: &Modal<'_>,
    z: &[f32],
    dim: usize,
    labels: &[String],
) -> Result<BTreeMap<String, Vec<i64>>> {
    let mut out: BTreeMap<String, Vec<i64>> =
        labels.iter().map(|l| (l.clone(), Vec::new())).collect();
    if labels.is_empty() {
        return Ok(out);
    }
    for chunk in z.chunks(BATCH * dim) {
        let items = decode(ctx, target, chunk, dim)?;
        for label in labels {
            let predictions = classify(ctx, target, label, &items)?;
            if let Some(v) = out.get_mut(label) {
                v.extend(predictions);
            }
        }
    }
    Ok(out)
}

fn accuracy(predictions: &[i64], truth: &[i64]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let hits = predictions
        .iter()
        .zip(truth)
        .filter(|(p, t)| p == t)
        .count();
    hits as f64 / truth.len() as f64
}

fn joined<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.into_iter().map(String::as_str).collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// Collects the model's modalities with their items, latents and labels.
fn modalities<'a>(cfg: &CoherenceConfig, ctx: &'a ProbeContext<'_>) -> Result<Vec<Modal<'a>>> {
    let names = ctx.model.modalities();
    if names.is_empty() {
        return Err(CoherenceError::Inconsistent(
            "the model has no modalities".into(),
        ));
    }
    let dim = ctx.model.latent_dim();
    if dim == 0 {
        return Err(CoherenceError::Inconsistent(
            "the model's latent dimension is 0".into(),
        ));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let set = ctx
            .data
            .sets
            .get(&name)
            .ok_or_else(|| CoherenceError::MissingModality {
                modality: name.clone(),
                what: format!("no items; the data has {}", joined(ctx.data.sets.keys())),
            })?;
        let latents = ctx
            .latents
            .get(&name)
            .ok_or_else(|| CoherenceError::MissingModality {
                modality: name.clone(),
                what: "no latents were computed".into(),
            })?;
        if latents.n != set.len() || latents.dim != dim || latents.loc.len() != latents.n * dim {
            return Err(CoherenceError::Inconsistent(format!(
                "`{name}` has {} items but {} latents of dimension {} ({} values; the model's \
                 dimension is {dim})",
                set.len(),
                latents.n,
                latents.dim,
                latents.loc.len()
            )));
        }
        for (label, values) in &set.labels {
            if values.len() != set.len() {
                return Err(CoherenceError::Inconsistent(format!(
                    "label `{label}` of `{name}` has {} values for {} items",
                    values.len(),
                    set.len()
                )));
            }
        }
        let shape = ctx.model.item_shape(&name)?;
        let item_len = shape.iter().product();
        if item_len == 0 {
            return Err(CoherenceError::Inconsistent(format!(
                "`{name}` has an empty item shape {shape:?}"
            )));
        }
        let labels = cfg
            .labels
            .iter()
            .filter(|l| set.labels.contains_key(*l))
            .cloned()
            .collect();
        out.push(Modal {
            name,
            set,
            latents,
            shape,
            item_len,
            labels,
        });
    }
    Ok(out)
}

/// `predictions` as value → fraction.
fn distribution(predictions: &[i64]) -> Value {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for &p in predictions {
        *counts.entry(p).or_insert(0) += 1;
    }
    let n = predictions.len().max(1) as f64;
    Value::Object(
        counts
            .into_iter()
            .map(|(k, c)| (k.to_string(), json!(c as f64 / n)))
            .collect(),
    )
}

/// Runs the probe (see [`CoherenceConfig`]); returns the metrics.
/// Labels whose coherences are typed metrics (the shared vocabulary's); every checked label's
/// are in `metrics.json`.
pub(crate) const METRIC_LABELS: [&str; 2] = [rensou_api::vocab::NUMBER, rensou_api::vocab::COLOUR];

pub(crate) fn run(cfg: &CoherenceConfig, ctx: &ProbeContext<'_>) -> Result<Value> {
    cfg.check()?;
    let mods = modalities(cfg, ctx)?;
    let dim = ctx.model.latent_dim();
    let mut notes: Vec<String> = Vec::new();

    // Pairs: row i of every modality.
    let n_total = mods[0].set.len();
    if let Some(m) = mods.iter().find(|m| m.set.len() != n_total) {
        return Err(CoherenceError::Inconsistent(format!(
            "row i of every modality must be a pair, but `{}` has {n_total} items and `{}` {}",
            mods[0].name,
            m.name,
            m.set.len()
        )));
    }
    if n_total == 0 {
        return Err(CoherenceError::Inconsistent(format!(
            "the {} split has no items",
            ctx.data.split
        )));
    }
    let seed = cfg.seed.unwrap_or(ctx.seed);
    let indices: Vec<usize> = if cfg.max_items > 0 && cfg.max_items < n_total {
        let mut rng = rng_for(seed, &["coherence", "items"]);
        let mut v = rand::seq::index::sample(&mut rng, n_total, cfg.max_items).into_vec();
        v.sort_unstable();
        v
    } else {
        (0..n_total).collect()
    };

    // Labels.
    let checked: Vec<&String> = cfg
        .labels
        .iter()
        .filter(|l| mods.iter().any(|m| m.carries(l)))
        .collect();
    for label in cfg.labels.iter().filter(|l| !checked.contains(l)) {
        notes.push(format!("label `{label}` skipped: no modality carries it"));
    }
    if checked.is_empty() {
        let present: BTreeSet<&String> = mods.iter().flat_map(|m| m.set.labels.keys()).collect();
        return Err(CoherenceError::NoLabels {
            wanted: joined(&cfg.labels),
            present: joined(present),
        });
    }
    let mut chance = Map::new();
    for label in &checked {
        let mut values = BTreeSet::new();
        for m in mods.iter().filter(|m| m.carries(label)) {
            values.extend(m.set.label(label)?.iter().copied());
        }
        chance.insert((*label).clone(), json!(1.0 / values.len().max(1) as f64));
    }
    let mut classifier_accuracy = Map::new();
    for m in &mods {
        let mut per = Map::new();
        for label in &m.labels {
            per.insert(
                label.clone(),
                json!(ctx.classifiers.accuracy(&m.name, label)?),
            );
        }
        classifier_accuracy.insert(m.name.clone(), Value::Object(per));
    }

    // Reconstruction (m -> m) and cross-generation (m -> n), from posterior locations.
    ctx.progress.stage(
        "coherence: cross-generation",
        Some((mods.len() * mods.len()) as u64),
    );
    let mut reconstruction = Map::new();
    let mut cross = Map::new();
    let mut cross_sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for source in &mods {
        let z = source.locations(&indices);
        let mut per_target = Map::new();
        for target in &mods {
            let same = source.name == target.name;
            let mut labels = Vec::new();
            for label in &target.labels {
                if same {
                    labels.push(label.clone());
                } else if source.carries(label) {
                    let (s, t) = (
                        source.truth(label, &indices)?,
                        target.truth(label, &indices)?,
                    );
                    let differ = s.iter().zip(&t).filter(|(a, b)| a != b).count();
                    if differ == 0 {
                        labels.push(label.clone());
                    } else {
                        notes.push(format!(
                            "`{label}` not checked for {} -> {}: it differs between the two in \
                             {differ} of {} pairs, so pairs do not share it",
                            source.name,
                            target.name,
                            indices.len()
                        ));
                    }
                }
            }
            let predictions = generate(ctx, target, &z, dim, &labels)?;
            let mut per_label = Map::new();
            for label in &labels {
                let truth = target.truth(label, &indices)?;
                let acc = predictions.get(label).map_or(0.0, |p| accuracy(p, &truth));
                if METRIC_LABELS.contains(&label.as_str()) {
                    let (metric, of) = if same {
                        ("reconstruction", Of::Modality(&target.name))
                    } else {
                        ("cross", Of::Pair(&source.name, &target.name))
                    };
                    ctx.record(&format!("{metric}.{label}"), of, acc)?;
                }
                per_label.insert(label.clone(), json!(acc));
                if !same {
                    let e = cross_sums.entry(label.clone()).or_insert((0.0, 0));
                    e.0 += acc;
                    e.1 += 1;
                }
            }
            if same {
                reconstruction.insert(target.name.clone(), Value::Object(per_label));
            } else if !per_label.is_empty() {
                per_target.insert(target.name.clone(), Value::Object(per_label));
            }
            ctx.progress.advance(1);
        }
        if mods.len() > 1 {
            cross.insert(source.name.clone(), Value::Object(per_target));
        }
    }
    let cross_mean: Map<String, Value> = cross_sums
        .iter()
        .map(|(label, (sum, n))| (label.clone(), json!(sum / *n as f64)))
        .collect();

    // Joint coherence from prior samples.
    let joint = if mods.len() < 2 {
        notes.push(
            "single-modality model: only reconstruction accuracy applies (no cross or joint \
             coherence)"
                .to_owned(),
        );
        Value::Null
    } else if cfg.joint_samples == 0 {
        Value::Null
    } else {
        joint_coherence(cfg, ctx, &mods, &checked, seed, &mut notes)?
    };

    // The figure.
    let figure_file = if cfg.figure_per_class == 0 {
        None
    } else {
        figure_grid(cfg, ctx, &mods, seed, &mut notes)?
            .map(|grid| -> Result<&str> {
                let png = figure::render(&grid)?;
                ctx.write_file(FIGURE_FILE, &png)?;
                Ok(FIGURE_FILE)
            })
            .transpose()?
    };

    Ok(json!({
        "source": "cross-generations and reconstructions decode the posterior location (encoder \
                   mean) of each item, no posterior sampling; joint coherence decodes prior \
                   samples (model.sample_prior)",
        "split": ctx.data.split.as_str(),
        "items": indices.len(),
        "items_in_split": n_total,
        "seed": seed,
        "modalities": mods.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        "labels": checked,
        "chance": chance,
        "classifier_test_accuracy": classifier_accuracy,
        "reconstruction": reconstruction,
        "cross": cross,
        "cross_mean": cross_mean,
        "joint": joint,
        "figure": figure_file,
        "notes": notes,
    }))
}

/// Joint coherence: prior samples decoded into every modality; a sample is coherent for a label
/// when all modalities carrying it are classified alike.
fn joint_coherence(
    cfg: &CoherenceConfig,
    ctx: &ProbeContext<'_>,
    mods: &[Modal<'_>],
    checked: &[&String],
    seed: u64,
    notes: &mut Vec<String>,
) -> Result<Value> {
    let dim = ctx.model.latent_dim();
    let n = cfg.joint_samples;
    let joint_seed = derive_seed(seed, &["coherence", "joint"]);
    ctx.progress
        .stage("coherence: joint", Some(mods.len() as u64));
    let z = ctx.model.sample_prior(n, joint_seed)?;
    if z.len() != n * dim {
        return Err(CoherenceError::Inconsistent(format!(
            "the model returned {} values for {n} prior samples of dimension {dim}",
            z.len()
        )));
    }
    let mut predictions: BTreeMap<String, BTreeMap<String, Vec<i64>>> = BTreeMap::new();
    let mut distributions = Map::new();
    for m in mods {
        let p = generate(ctx, m, &z, dim, &m.labels)?;
        distributions.insert(
            m.name.clone(),
            Value::Object(
                p.iter()
                    .map(|(l, v)| (l.clone(), distribution(v)))
                    .collect(),
            ),
        );
        predictions.insert(m.name.clone(), p);
        ctx.progress.advance(1);
    }
    let mut by_label = Map::new();
    let mut all_agree = vec![true; n];
    let mut any = false;
    for label in checked {
        let carriers: Vec<&Vec<i64>> = mods
            .iter()
            .filter_map(|m| predictions.get(&m.name)?.get(*label))
            .collect();
        if carriers.len() < 2 {
            notes.push(format!(
                "joint coherence of `{label}` skipped: fewer than two modalities carry it"
            ));
            continue;
        }
        any = true;
        let mut hits = 0usize;
        for (i, agree_all) in all_agree.iter_mut().enumerate() {
            let first = carriers[0][i];
            let agree = carriers.iter().all(|p| p[i] == first);
            hits += usize::from(agree);
            *agree_all &= agree;
        }
        let coherence = hits as f64 / n.max(1) as f64;
        if METRIC_LABELS.contains(&label.as_str()) {
            ctx.record(&format!("joint.{label}"), Of::Model, coherence)?;
        }
        by_label.insert((*label).clone(), json!(coherence));
    }
    let all_labels = if any {
        json!(all_agree.iter().filter(|&&a| a).count() as f64 / n.max(1) as f64)
    } else {
        Value::Null
    };
    Ok(json!({
        "samples": n,
        "seed": joint_seed,
        "by_label": by_label,
        "all_labels": all_labels,
        "predicted_distribution": distributions,
    }))
}

/// The cross-generation figure: rows are test pairs (a few per class of `figure_label`),
/// columns per source modality its item and what each modality decodes from it.
fn figure_grid(
    cfg: &CoherenceConfig,
    ctx: &ProbeContext<'_>,
    mods: &[Modal<'_>],
    seed: u64,
    notes: &mut Vec<String>,
) -> Result<Option<Grid>> {
    if let Some(m) = mods.iter().find(|m| !figure::is_image_shape(&m.shape)) {
        notes.push(format!(
            "no figure: item shape {:?} of `{}` is not an image ([H, W], [H, W, 1] or [H, W, 3])",
            m.shape, m.name
        ));
        return Ok(None);
    }
    let Some(keyed) = mods
        .iter()
        .find(|m| m.set.labels.contains_key(&cfg.figure_label))
    else {
        notes.push(format!(
            "no figure: no modality carries `{}`",
            cfg.figure_label
        ));
        return Ok(None);
    };
    // A few items per class, picked at random with the seed.
    let values = keyed.set.label(&cfg.figure_label)?;
    let mut order: Vec<usize> = (0..values.len()).collect();
    rand::seq::SliceRandom::shuffle(
        order.as_mut_slice(),
        &mut rng_for(seed, &["coherence", "figure"]),
    );
    let mut per_class: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for i in order {
        let rows = per_class.entry(values[i]).or_default();
        if rows.len() < cfg.figure_per_class {
            rows.push(i);
        }
    }
    if per_class.len() > MAX_FIGURE_CLASSES {
        notes.push(format!(
            "figure shows the first {MAX_FIGURE_CLASSES} of {} classes of `{}`",
            per_class.len(),
            cfg.figure_label
        ));
        per_class = per_class.into_iter().take(MAX_FIGURE_CLASSES).collect();
    }
    let rows: Vec<usize> = per_class.values().flatten().copied().collect();
    let row_labels = per_class
        .iter()
        .flat_map(|(v, rows)| {
            rows.iter()
                .map(move |_| format!("{} {v}", cfg.figure_label))
        })
        .collect();

    let mut columns = Vec::new();
    let mut cells: Vec<Vec<ImageTile>> = vec![Vec::new(); rows.len()];
    for source in mods {
        columns.push(source.name.clone());
        for (r, &i) in rows.iter().enumerate() {
            cells[r].push(ImageTile::from_u8(&source.shape, source.set.item(i))?);
        }
        let z = source.locations(&rows);
        for target in mods {
            columns.push(format!("{} \u{2192} {}", source.name, target.name));
            let items = decode(ctx, target, &z, ctx.model.latent_dim())?;
            // Captions: the target classifier's verdict on the figure label, a cross if wrong.
            let verdicts = if target.carries(&cfg.figure_label) {
                let truth = target.truth(&cfg.figure_label, &rows)?;
                let predicted = classify(ctx, target, &cfg.figure_label, &items)?;
                predicted
                    .iter()
                    .zip(&truth)
                    .map(|(p, t)| {
                        Some(if p == t {
                            format!("{p}")
                        } else {
                            format!("{p} \u{2717}")
                        })
                    })
                    .collect()
            } else {
                vec![None; rows.len()]
            };
            for ((r, item), caption) in items
                .chunks_exact(target.item_len)
                .enumerate()
                .zip(verdicts)
            {
                let tile = ImageTile::from_unit_f32(&target.shape, item)?;
                cells[r].push(match caption {
                    Some(c) => tile.with_caption(c),
                    None => tile,
                });
            }
        }
    }
    Ok(Some(Grid {
        columns,
        row_labels,
        cells,
    }))
}
