//! The computation: class means, equations, decoding, classification, metrics.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use rensou_api::probe::{Of, ProbeContext, ProbeData};
use rensou_api::rng::derive_seed;

use crate::config::ArithmeticConfig;
use crate::error::{ArithmeticError, Result};
use crate::figure::{self, FigureRow};

/// Samples decoded (and classified) in one call to the model and the classifiers.
const BATCH: usize = 2048;
/// Most valid triples `all_triples` evaluates before asking the user to restrict the classes.
pub const MAX_TRIPLES: usize = 100_000;
/// File name of the figure.
pub const FIGURE_FILE: &str = "arithmetic.png";

/// An equation `a + b − c`.
pub type Triple = [i64; 3];

/// `a + b − c`, if it does not overflow.
pub fn target(t: Triple) -> Option<i64> {
    t[0].checked_add(t[1])?.checked_sub(t[2])
}

/// `"a+b-c"`.
pub fn equation_name(t: Triple) -> String {
    format!("{}+{}-{}", t[0], t[1], t[2])
}

/// Per-class mean latents of one modality, keyed by label value (ascending).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassMeans {
    /// Latent dimension.
    pub dim: usize,
    /// Label value → (number of items, mean location `[dim]`).
    pub classes: BTreeMap<i64, (usize, Vec<f32>)>,
}

impl ClassMeans {
    /// Averages the rows of `loc` (`[labels.len(), dim]`) by label value (in `f64`).
    pub fn new(loc: &[f32], dim: usize, labels: &[i64]) -> Result<Self> {
        if dim == 0 {
            return Err(ArithmeticError::Inconsistent(
                "the latent dimension is 0".into(),
            ));
        }
        if loc.len() != labels.len() * dim {
            return Err(ArithmeticError::Inconsistent(format!(
                "{} latent values for {} labelled items of dimension {dim}",
                loc.len(),
                labels.len()
            )));
        }
        let mut sums: BTreeMap<i64, (usize, Vec<f64>)> = BTreeMap::new();
        for (row, &label) in loc.chunks_exact(dim).zip(labels) {
            let entry = sums.entry(label).or_insert_with(|| (0, vec![0.0; dim]));
            entry.0 += 1;
            for (s, &v) in entry.1.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        let classes = sums
            .into_iter()
            .map(|(label, (count, sum))| {
                let mean = sum.iter().map(|s| (s / count as f64) as f32).collect();
                (label, (count, mean))
            })
            .collect();
        Ok(ClassMeans { dim, classes })
    }

    /// The class values, ascending.
    pub fn values(&self) -> Vec<i64> {
        self.classes.keys().copied().collect()
    }

    /// Whether `value` is a class.
    pub fn has(&self, value: i64) -> bool {
        self.classes.contains_key(&value)
    }

    /// Mean latent of class `value`.
    pub fn mean(&self, value: i64) -> Option<&[f32]> {
        self.classes.get(&value).map(|(_, m)| m.as_slice())
    }

    /// z = mean\[a\] + mean\[b\] − mean\[c\], if all three are classes.
    pub fn combine(&self, t: Triple) -> Option<Vec<f32>> {
        let (a, b, c) = (self.mean(t[0])?, self.mean(t[1])?, self.mean(t[2])?);
        Some(
            a.iter()
                .zip(b)
                .zip(c)
                .map(|((a, b), c)| a + b - c)
                .collect(),
        )
    }

    /// Every valid triple: `a`, `b`, `c` classes, `a ≠ c`, `a + b − c` a class.
    pub fn valid_triples(&self) -> Vec<Triple> {
        let values = self.values();
        let mut out = Vec::new();
        for &a in &values {
            for &b in &values {
                for &c in &values {
                    let t = [a, b, c];
                    if a != c && target(t).is_some_and(|r| self.has(r)) {
                        out.push(t);
                    }
                }
            }
        }
        out
    }
}

/// What one equation gave.
#[derive(Clone, Debug, PartialEq)]
pub struct TripleResult {
    /// Classifier output for each decoded sample.
    pub predictions: Vec<i64>,
    /// Classifier output for z itself, decoded without sampling.
    pub location_prediction: i64,
}

impl TripleResult {
    /// Fraction of samples classified as `target`.
    pub fn accuracy(&self, target: i64) -> f64 {
        if self.predictions.is_empty() {
            return 0.0;
        }
        let hits = self.predictions.iter().filter(|&&p| p == target).count();
        hits as f64 / self.predictions.len() as f64
    }

    /// Prediction → count.
    pub fn histogram(&self) -> BTreeMap<i64, usize> {
        let mut h = BTreeMap::new();
        for &p in &self.predictions {
            *h.entry(p).or_insert(0) += 1;
        }
        h
    }

    /// The most frequent prediction (the smallest on ties) and its fraction.
    pub fn modal(&self) -> Option<(i64, f64)> {
        let h = self.histogram();
        let (&value, &count) = h.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0)))?;
        Some((value, count as f64 / self.predictions.len() as f64))
    }
}

/// Decodes and classifies latents of one modality, checking every length.
pub(crate) struct Decoder<'a> {
    ctx: &'a ProbeContext<'a>,
    modality: &'a str,
    label: &'a str,
    dim: usize,
    item_len: usize,
}

impl Decoder<'_> {
    /// Decodes `z` (`[n, dim]`) into items (`[n, item_len]`, values in `[0, 1]`).
    pub(crate) fn decode(&self, z: &[f32]) -> Result<Vec<f32>> {
        let n = z.len() / self.dim;
        let items = self.ctx.model.decode(self.modality, z)?;
        if items.len() != n * self.item_len {
            return Err(ArithmeticError::Inconsistent(format!(
                "the model decoded {n} latents of `{}` into {} values, expected {}",
                self.modality,
                items.len(),
                n * self.item_len
            )));
        }
        Ok(items)
    }

    /// Classifies decoded items.
    pub(crate) fn classify(&self, items: &[f32]) -> Result<Vec<i64>> {
        let n = items.len() / self.item_len;
        let predictions = self
            .ctx
            .classifiers
            .predict(self.modality, self.label, items)?;
        if predictions.len() != n {
            return Err(ArithmeticError::Inconsistent(format!(
                "the `{}` classifier of `{}` returned {} predictions for {n} items",
                self.label,
                self.modality,
                predictions.len()
            )));
        }
        Ok(predictions)
    }

    /// Decodes and classifies `z` (`[n, dim]`), at most [`BATCH`] latents at a time.
    pub(crate) fn decode_and_classify(&self, z: &[f32]) -> Result<Vec<i64>> {
        let mut out = Vec::with_capacity(z.len() / self.dim);
        for chunk in z.chunks(BATCH * self.dim) {
            out.extend(self.classify(&self.decode(chunk)?)?);
        }
        Ok(out)
    }

    /// `samples` latents of the prior's family located at `loc`.
    pub(crate) fn sample_at(&self, loc: &[f32], samples: usize, seed: u64) -> Result<Vec<f32>> {
        let z = self.ctx.model.sample_at(loc, samples, seed)?;
        if z.len() != samples * self.dim {
            return Err(ArithmeticError::Inconsistent(format!(
                "the model returned {} values for {samples} samples of dimension {}",
                z.len(),
                self.dim
            )));
        }
        Ok(z)
    }
}

/// The seed of the samples of equation `t`: the same equation always gets the same samples.
fn triple_seed(seed: u64, t: Triple) -> u64 {
    derive_seed(seed, &["arithmetic", &equation_name(t)])
}

/// Evaluates `triples` (all of whose operands are classes), decoding in batches.
fn evaluate(
    dec: &Decoder<'_>,
    means: &ClassMeans,
    triples: &[Triple],
    samples: usize,
    seed: u64,
) -> Result<BTreeMap<Triple, TripleResult>> {
    let per_batch = (BATCH / samples).max(1);
    let mut out = BTreeMap::new();
    dec.ctx
        .progress
        .stage("arithmetic: equations", Some(triples.len() as u64));
    for chunk in triples.chunks(per_batch) {
        let mut locs = Vec::with_capacity(chunk.len() * dec.dim);
        let mut z = Vec::with_capacity(chunk.len() * samples * dec.dim);
        for &t in chunk {
            let loc = means.combine(t).ok_or_else(|| {
                ArithmeticError::Inconsistent(format!(
                    "equation {} uses a number with no items",
                    equation_name(t)
                ))
            })?;
            z.extend(dec.sample_at(&loc, samples, triple_seed(seed, t))?);
            locs.extend(loc);
        }
        let predictions = dec.decode_and_classify(&z)?;
        let location_predictions = dec.decode_and_classify(&locs)?;
        for (i, &t) in chunk.iter().enumerate() {
            out.insert(
                t,
                TripleResult {
                    predictions: predictions[i * samples..(i + 1) * samples].to_vec(),
                    location_prediction: location_predictions[i],
                },
            );
        }
        dec.ctx.progress.advance(chunk.len() as u64);
    }
    Ok(out)
}

fn joined<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.into_iter().map(String::as_str).collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// Finds the modality's items, labels and latents, with errors that say what is there.
fn lookup<'a>(
    cfg: &ArithmeticConfig,
    ctx: &'a ProbeContext<'_>,
) -> Result<(&'a [i64], &'a rensou_api::probe::Latents)> {
    let data: &ProbeData = ctx.data;
    let m = &cfg.modality;
    let model_modalities = ctx.model.modalities();
    let missing = || ArithmeticError::MissingModality {
        modality: m.clone(),
        present: joined(&model_modalities),
    };
    if !model_modalities.contains(m) {
        return Err(missing());
    }
    let set = data.sets.get(m).ok_or_else(missing)?;
    let labels = set
        .labels
        .get(&cfg.label)
        .ok_or_else(|| ArithmeticError::MissingLabel {
            modality: m.clone(),
            label: cfg.label.clone(),
            present: joined(set.labels.keys()),
        })?;
    let latents = ctx.latents.get(m).ok_or_else(|| {
        ArithmeticError::Inconsistent(format!("no latents were computed for `{m}`"))
    })?;
    if latents.n != labels.len() || latents.loc.len() != latents.n * latents.dim {
        return Err(ArithmeticError::Inconsistent(format!(
            "`{m}` has {} labelled items but {} latents ({} values of dimension {})",
            labels.len(),
            latents.n,
            latents.loc.len(),
            latents.dim
        )));
    }
    if latents.dim != ctx.model.latent_dim() {
        return Err(ArithmeticError::Inconsistent(format!(
            "latents of `{m}` have dimension {}, the model {}",
            latents.dim,
            ctx.model.latent_dim()
        )));
    }
    if labels.is_empty() {
        return Err(ArithmeticError::Inconsistent(format!(
            "`{m}` has no items in the {} split",
            data.split
        )));
    }
    Ok((labels, latents))
}

fn histogram_json(h: &BTreeMap<i64, usize>) -> Value {
    Value::Object(h.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

/// Runs the probe (see [`ArithmeticConfig`]); returns the metrics.
pub(crate) fn run(cfg: &ArithmeticConfig, ctx: &ProbeContext<'_>) -> Result<Value> {
    cfg.check()?;
    let (labels, latents) = lookup(cfg, ctx)?;
    let m = cfg.modality.as_str();
    let shape = ctx.model.item_shape(m)?;
    let item_len: usize = shape.iter().product();
    if item_len == 0 {
        return Err(ArithmeticError::Inconsistent(format!(
            "`{m}` has an empty item shape {shape:?}"
        )));
    }
    let dim = latents.dim;
    let means = ClassMeans::new(&latents.loc, dim, labels)?;
    let classes = means.values();
    let seed = cfg.seed.unwrap_or(ctx.seed);
    let dec = Decoder {
        ctx,
        modality: m,
        label: &cfg.label,
        dim,
        item_len,
    };
    let mut notes: Vec<String> = Vec::new();

    // Sanity row: the class means themselves, decoded and classified.
    let mean_z: Vec<f32> = means
        .classes
        .values()
        .flat_map(|(_, mean)| mean.iter().copied())
        .collect();
    let mean_items = dec.decode(&mean_z)?;
    let mean_predictions = dec.classify(&mean_items)?;
    let means_correct = classes
        .iter()
        .zip(&mean_predictions)
        .filter(|(c, p)| c == p)
        .count();

    // Which equations to evaluate.
    let mut wanted: BTreeSet<Triple> = BTreeSet::new();
    let mut skipped = Vec::new();
    for &t in &cfg.equations {
        if let Some(missing) = t.iter().find(|v| !means.has(**v)) {
            skipped.push(json!({
                "equation": equation_name(t),
                "reason": format!("{missing} is not a class of `{}` in the data", cfg.label),
            }));
        } else {
            wanted.insert(t);
        }
    }
    let valid = if cfg.all_triples {
        let valid = means.valid_triples();
        if valid.len() > MAX_TRIPLES {
            return Err(ArithmeticError::Inconsistent(format!(
                "`{}` has {} classes, giving {} valid triples (more than {MAX_TRIPLES}); set \
                 `all_triples = false` and name the equations",
                cfg.label,
                classes.len(),
                valid.len()
            )));
        }
        if valid.is_empty() {
            notes.push("no valid triple exists for these classes".to_owned());
        }
        wanted.extend(valid.iter().copied());
        valid
    } else {
        Vec::new()
    };
    let wanted: Vec<Triple> = wanted.into_iter().collect();
    let results = evaluate(&dec, &means, &wanted, cfg.samples, seed)?;
    let result = |t: &Triple| {
        results.get(t).ok_or_else(|| {
            ArithmeticError::Inconsistent(format!(
                "equation {} was not evaluated",
                equation_name(*t)
            ))
        })
    };

    // Named equations.
    let mut equations = Vec::new();
    for t in cfg
        .equations
        .iter()
        .filter(|t| means.has(t[0]) && means.has(t[1]) && means.has(t[2]))
    {
        let r = result(t)?;
        let goal = target(*t);
        let (modal, modal_fraction) = r.modal().map_or((None, 0.0), |(v, f)| (Some(v), f));
        equations.push(json!({
            "equation": equation_name(*t),
            "a": t[0],
            "b": t[1],
            "c": t[2],
            "target": goal,
            "target_is_class": goal.is_some_and(|g| means.has(g)),
            "accuracy": goal.map_or(0.0, |g| r.accuracy(g)),
            "modal_prediction": modal,
            "modal_fraction": modal_fraction,
            "location_prediction": r.location_prediction,
            "predictions": histogram_json(&r.histogram()),
        }));
    }

    let named: Vec<f64> = equations
        .iter()
        .filter_map(|e| e["accuracy"].as_f64())
        .collect();
    if !named.is_empty() {
        let mean = named.iter().sum::<f64>() / named.len() as f64;
        ctx.record("equations.accuracy", Of::Modality(m), mean)?;
    }

    // Every valid triple.
    let all = if cfg.all_triples {
        let mut sum = 0.0;
        let mut modal_hits = 0usize;
        let mut location_hits = 0usize;
        let mut by_target: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
        for t in &valid {
            let r = result(t)?;
            let goal = target(*t).unwrap_or(i64::MIN);
            let acc = r.accuracy(goal);
            sum += acc;
            modal_hits += usize::from(r.modal().is_some_and(|(v, _)| v == goal));
            location_hits += usize::from(r.location_prediction == goal);
            let e = by_target.entry(goal).or_insert((0.0, 0));
            e.0 += acc;
            e.1 += 1;
        }
        let n = valid.len().max(1) as f64;
        if !valid.is_empty() {
            ctx.record("all_triples.accuracy", Of::Modality(m), sum / n)?;
        }
        json!({
            "rule": "a, b, c classes of the data, a != c, a + b - c a class of the data",
            "count": valid.len(),
            "accuracy": sum / n,
            "modal_accuracy": modal_hits as f64 / n,
            "location_accuracy": location_hits as f64 / n,
            "by_target": Value::Object(by_target.iter().map(|(k, (s, c))| {
                (k.to_string(), json!({ "count": c, "accuracy": s / *c as f64 }))
            }).collect()),
        })
    } else {
        Value::Null
    };

    // The figure.
    let figure_file = if cfg.figure_equations.is_empty() {
        None
    } else if !figure::is_image_shape(&shape) {
        notes.push(format!(
            "no figure: item shape {shape:?} of `{m}` is not an image ([H, W], [H, W, 1] or [H, W, 3])"
        ));
        None
    } else {
        let mean_item = |value: i64| -> Option<&[f32]> {
            let i = classes.iter().position(|&c| c == value)?;
            mean_items.get(i * item_len..(i + 1) * item_len)
        };
        let mut rows = Vec::new();
        for &t in &cfg.figure_equations {
            let (Some(a), Some(b), Some(c), Some(loc)) = (
                mean_item(t[0]),
                mean_item(t[1]),
                mean_item(t[2]),
                means.combine(t),
            ) else {
                notes.push(format!(
                    "figure row {} left out: an operand is not a class",
                    equation_name(t)
                ));
                continue;
            };
            let z = dec.sample_at(&loc, cfg.samples, triple_seed(seed, t))?;
            let z = &z[..cfg.figure_samples * dim];
            let items = dec.decode(z)?;
            let predictions = dec.classify(&items)?;
            rows.push(FigureRow {
                triple: t,
                operands: [a.to_vec(), b.to_vec(), c.to_vec()],
                samples: items,
                predictions,
            });
        }
        let sanity = figure::SanityRow {
            classes: classes.clone(),
            items: mean_items.clone(),
            predictions: mean_predictions.clone(),
        };
        let png = figure::render(&shape, &rows, &sanity)?;
        ctx.write_file(FIGURE_FILE, &png)?;
        Some(FIGURE_FILE)
    };

    let chance = 1.0 / classes.len() as f64;
    let classifier_accuracy = ctx.classifiers.accuracy(m, &cfg.label)?;
    Ok(json!({
        "modality": m,
        "label": cfg.label,
        "split": ctx.data.split.as_str(),
        "decoding": format!(
            "z = mean[a] + mean[b] - mean[c] of the encoder locations; {} samples of the prior's \
             family located at z (model.sample_at), decoded and classified; `location_*` decodes \
             z itself",
            cfg.samples
        ),
        "samples_per_equation": cfg.samples,
        "seed": seed,
        "classes": classes,
        "class_sizes": Value::Object(means.classes.iter().map(|(k, (n, _))| (k.to_string(), json!(n))).collect()),
        "chance": chance,
        "classifier_test_accuracy": classifier_accuracy,
        "class_means": {
            "accuracy": means_correct as f64 / classes.len() as f64,
            "predictions": Value::Object(classes.iter().zip(&mean_predictions)
                .map(|(c, p)| (c.to_string(), json!(p))).collect()),
        },
        "equations": equations,
        "skipped_equations": skipped,
        "all_triples": all,
        "figure": figure_file,
        "notes": notes,
    }))
}
