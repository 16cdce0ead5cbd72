//! The `cluster` probe: silhouette, k-means ARI/NMI, linear-probe accuracy and the magnitude
//! metric of every modality's latents.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use rensou_api::probe::{Better, MetricSpec, Of, ProbeConfig, ProbeContext, ProbePlugin, Scope};
use rensou_api::rng::derive_seed;
use rensou_api::{typetag, Error};

use crate::compare::{adjusted_rand_index, normalized_mutual_info};
use crate::kmeans::{KMeans, KMeansFit};
use crate::linear::{LinearProbe, Softmax};
use crate::magnitude::{magnitude, Magnitude};
use crate::matrix::Matrix;
use crate::silhouette::Silhouette;

/// The plugin's name (`type = "cluster"`).
pub const NAME: &str = "cluster";

/// The label the magnitude metric is computed for.
pub const NUMBER_LABEL: &str = "number";

/// Configuration of the `cluster` probe (`[[probes]] type = "cluster"`).
///
/// For every modality: the silhouette of its latents by each label, k-means with `k` = the
/// label's number of values scored by ARI and NMI against the label, cross-validated
/// linear-probe accuracy for each label, and, when the modality has a `number` label (analysed
/// or not), the magnitude metric. Unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterProbe {
    /// Labels to analyse; empty (the default) means every label with at most
    /// `max_label_values` distinct values. A listed label a modality lacks is skipped there.
    pub labels: Vec<String>,
    /// Largest number of distinct values of a label analysed by default (20).
    pub max_label_values: usize,
    /// Silhouettes are exact up to this many items and computed on a seeded sample of this many
    /// items above it (10,000); 0 means always exact.
    pub silhouette_sample: usize,
    /// k-means restarts (10).
    pub kmeans_restarts: usize,
    /// k-means iterations per restart (300).
    pub kmeans_max_iter: usize,
    /// k-means relative tolerance (1e-4, as scikit-learn).
    pub kmeans_tol: f64,
    /// Stratified folds of the linear probe (5).
    pub folds: usize,
    /// Inverse L2 strength of the linear probe (1.0, scikit-learn's `C`).
    pub probe_c: f64,
    /// L-BFGS iterations of the linear probe (500).
    pub probe_max_iter: usize,
    /// Seed of the probe's random choices; absent means the run's seed for this probe.
    pub seed: Option<u64>,
    /// Worker threads (0: all cores); results do not depend on it.
    pub threads: usize,
    /// Whether to draw the magnitude figures (true).
    pub figures: bool,
}

impl Default for ClusterProbe {
    fn default() -> Self {
        ClusterProbe {
            labels: Vec::new(),
            max_label_values: 20,
            silhouette_sample: 10_000,
            kmeans_restarts: 10,
            kmeans_max_iter: 300,
            kmeans_tol: 1e-4,
            folds: 5,
            probe_c: 1.0,
            probe_max_iter: 500,
            seed: None,
            threads: 0,
            figures: true,
        }
    }
}

fn field(name: &str) -> String {
    format!("{NAME}.{name}")
}

impl ClusterProbe {
    fn check(&self) -> rensou_api::Result<()> {
        if self.max_label_values < 2 {
            return Err(Error::config(
                field("max_label_values"),
                "must be at least 2",
            ));
        }
        if self.kmeans_restarts == 0 || self.kmeans_restarts > 1000 {
            return Err(Error::config(
                field("kmeans_restarts"),
                "must be in 1..=1000",
            ));
        }
        if self.kmeans_max_iter == 0 {
            return Err(Error::config(
                field("kmeans_max_iter"),
                "must be at least 1",
            ));
        }
        if !(self.kmeans_tol.is_finite() && self.kmeans_tol >= 0.0) {
            return Err(Error::config(
                field("kmeans_tol"),
                format!("must be finite and non-negative; got {}", self.kmeans_tol),
            ));
        }
        if !(2..=100).contains(&self.folds) {
            return Err(Error::config(field("folds"), "must be in 2..=100"));
        }
        if !(self.probe_c.is_finite() && self.probe_c > 0.0) {
            return Err(Error::config(
                field("probe_c"),
                format!("must be finite and positive; got {}", self.probe_c),
            ));
        }
        if self.probe_max_iter == 0 {
            return Err(Error::config(field("probe_max_iter"), "must be at least 1"));
        }
        if self.silhouette_sample == 1 {
            return Err(Error::config(
                field("silhouette_sample"),
                "must be 0 (never sample) or at least 2",
            ));
        }
        if self.threads > 1024 {
            return Err(Error::config(
                field("threads"),
                "must be in 0..=1024 (0: all cores)",
            ));
        }
        if self.labels.iter().any(String::is_empty) {
            return Err(Error::config(
                field("labels"),
                "label names must not be empty",
            ));
        }
        Ok(())
    }

    /// The labels of `labels` this probe analyses, in name order.
    fn chosen<'a>(&self, labels: &'a BTreeMap<String, Vec<i64>>) -> Vec<(&'a str, &'a [i64])> {
        labels
            .iter()
            .filter(|(name, values)| {
                if self.labels.is_empty() {
                    distinct(values) <= self.max_label_values
                } else {
                    self.labels.iter().any(|l| l == *name)
                }
            })
            .map(|(name, values)| (name.as_str(), values.as_slice()))
            .collect()
    }

    /// The labels with declared per-label metrics: the shared vocabulary's `number` and
    /// `colour` (the ones reports compare) and every label the config names.
    fn declared_labels(&self) -> Vec<&str> {
        let mut labels = vec![NUMBER_LABEL, rensou_api::vocab::COLOUR];
        for l in &self.labels {
            if !labels.contains(&l.as_str()) {
                labels.push(l);
            }
        }
        labels
    }

    /// Records `metric` (`<kind>.<label>` or `magnitude.<stat>`) for `modality` when it is
    /// declared ([`ProbeConfig::metrics`]); other labels stay in `metrics.json` only.
    fn record(
        &self,
        ctx: &ProbeContext<'_>,
        metric: &str,
        modality: &str,
        value: f64,
    ) -> rensou_api::Result<()> {
        let declared = metric.starts_with("magnitude.")
            || metric
                .split_once('.')
                .is_some_and(|(_, label)| self.declared_labels().contains(&label));
        if declared {
            ctx.record(metric, Of::Modality(modality), value)?;
        }
        Ok(())
    }

    /// Analyses one modality's latents; `skipped` collects what could not be computed.
    fn modality(
        &self,
        ctx: &ProbeContext<'_>,
        seed: u64,
        modality: &str,
        x: &Matrix,
        labels: &[(&str, &[i64])],
        numbers: Option<&[i64]>,
    ) -> rensou_api::Result<Value> {
        let mut skipped: Vec<String> = Vec::new();
        let mut out = Map::new();
        out.insert("items".into(), json!(x.n()));
        out.insert("dim".into(), json!(x.dim()));

        // Silhouette: every label on one shared sample.
        let sil = Silhouette {
            sample_size: self.silhouette_sample,
            seed: derive_seed(seed, &[modality, "silhouette"]),
            threads: self.threads,
        };
        let label_arrays: Vec<&[i64]> = labels.iter().map(|(_, v)| *v).collect();
        let scores = sil.scores(x, &label_arrays)?;
        let mut sil_map = Map::new();
        for ((name, _), score) in labels.iter().zip(scores.scores) {
            if let Ok(v) = &score {
                self.record(ctx, &format!("silhouette.{name}"), modality, *v)?;
            }
            sil_map.insert(
                (*name).into(),
                option_value(score, "silhouette", name, &mut skipped),
            );
        }
        out.insert("silhouette".into(), Value::Object(sil_map));
        out.insert("silhouette_items".into(), json!(scores.items));
        ctx.progress.advance(1);

        // k-means with k = the label's number of values; one fit per k.
        let mut fits: BTreeMap<usize, KMeansFit> = BTreeMap::new();
        let mut km_map = Map::new();
        for (name, values) in labels {
            let k = distinct(values);
            if k < 2 || k > x.n() {
                skipped.push(format!("kmeans/{name}: {k} distinct values"));
                km_map.insert((*name).into(), Value::Null);
                continue;
            }
            let fit = match fits.entry(k) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let km = KMeans {
                        k,
                        n_init: self.kmeans_restarts,
                        max_iter: self.kmeans_max_iter,
                        tol: self.kmeans_tol,
                        seed: derive_seed(seed, &[modality, "kmeans", &k.to_string()]),
                        threads: self.threads,
                    };
                    e.insert(km.fit(x)?)
                }
            };
            let pred: Vec<i64> = fit.labels.iter().map(|&l| l as i64).collect();
            let ari = adjusted_rand_index(values, &pred)?;
            let nmi = normalized_mutual_info(values, &pred)?;
            self.record(ctx, &format!("kmeans_ari.{name}"), modality, ari)?;
            self.record(ctx, &format!("kmeans_nmi.{name}"), modality, nmi)?;
            km_map.insert(
                (*name).into(),
                json!({
                    "k": k,
                    "ari": finite(ari),
                    "nmi": finite(nmi),
                    "inertia": finite(fit.inertia),
                    "iterations": fit.iterations,
                }),
            );
        }
        out.insert("kmeans".into(), Value::Object(km_map));
        ctx.progress.advance(1);

        // Linear probe.
        let mut lin_map = Map::new();
        for (name, values) in labels {
            let probe = LinearProbe {
                folds: self.folds,
                softmax: Softmax {
                    c: self.probe_c,
                    max_iter: self.probe_max_iter,
                    ..Softmax::default()
                },
                seed: derive_seed(seed, &[modality, "linear", name]),
                threads: self.threads,
            };
            let value = match probe.score(x, values) {
                Ok(s) => {
                    self.record(ctx, &format!("linear_probe.{name}"), modality, s.accuracy)?;
                    json!({
                    "accuracy": finite(s.accuracy),
                    "accuracy_std": finite(s.accuracy_std),
                    "fold_accuracies": s.fold_accuracies.iter().map(|&a| finite(a)).collect::<Vec<_>>(),
                    "majority": finite(s.majority),
                    "classes": s.classes,
                    })
                }
                Err(e) => {
                    skipped.push(format!("linear_probe/{name}: {e}"));
                    Value::Null
                }
            };
            lin_map.insert((*name).into(), value);
        }
        out.insert("linear_probe".into(), Value::Object(lin_map));
        ctx.progress.advance(1);

        // Magnitude.
        if let Some(numbers) = numbers {
            match magnitude(x, numbers) {
                Ok(m) => {
                    if let Some(r) = m.abs_pearson_r() {
                        self.record(ctx, "magnitude.abs_pearson_r", modality, r)?;
                    }
                    if let Some(rho) = m.spearman_rho {
                        self.record(ctx, "magnitude.spearman_rho", modality, rho)?;
                    }
                    let mut value = magnitude_json(&m);
                    if self.figures {
                        let files = crate::figures::write(ctx, modality, &m)?;
                        if let Value::Object(map) = &mut value {
                            map.insert("figures".into(), json!(files));
                        }
                    }
                    out.insert("magnitude".into(), value);
                }
                Err(e) => skipped.push(format!("magnitude: {e}")),
            }
        }
        ctx.progress.advance(1);
        out.insert("skipped".into(), json!(skipped));
        Ok(Value::Object(out))
    }
}

/// Number of distinct values.
fn distinct(values: &[i64]) -> usize {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// A JSON number, or null for a non-finite value (JSON has no NaN).
fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn option_value(
    r: crate::Result<f64>,
    metric: &str,
    label: &str,
    skipped: &mut Vec<String>,
) -> Value {
    match r {
        Ok(v) => finite(v),
        Err(e) => {
            skipped.push(format!("{metric}/{label}: {e}"));
            Value::Null
        }
    }
}

fn magnitude_json(m: &Magnitude) -> Value {
    let k = m.numbers.len();
    let rows: Vec<Vec<Value>> = m
        .distances
        .chunks_exact(k.max(1))
        .map(|r| r.iter().map(|&v| finite(v)).collect())
        .collect();
    json!({
        "numbers": m.numbers,
        "counts": m.counts,
        "pairs": m.pairs,
        "abs_pearson_r": m.abs_pearson_r().map_or(Value::Null, finite),
        "pearson_r": m.pearson_r.map_or(Value::Null, finite),
        "spearman_rho": m.spearman_rho.map_or(Value::Null, finite),
        "distances": rows,
    })
}

#[typetag::serde(name = "cluster")]
impl ProbeConfig for ClusterProbe {
    fn validate(&self) -> rensou_api::Result<()> {
        self.check()
    }

    fn run(&self, ctx: &ProbeContext<'_>) -> rensou_api::Result<Value> {
        self.check()?;
        let seed = self.seed.unwrap_or(ctx.seed);
        let mut out = Map::new();
        for (modality, latents) in ctx.latents {
            let set = ctx.data.sets.get(modality).ok_or_else(|| {
                Error::Data(format!(
                    "{NAME}: no items or labels for modality `{modality}`"
                ))
            })?;
            let labels = self.chosen(&set.labels);
            for (name, values) in &labels {
                if values.len() != latents.n {
                    return Err(Error::Data(format!(
                        "{NAME}: modality `{modality}` has {} latents but {} `{name}` labels",
                        latents.n,
                        values.len()
                    )));
                }
            }
            let x = Matrix::from_f32(latents.n, latents.dim, &latents.loc)?;
            ctx.progress
                .stage(&format!("probe {NAME}: {modality}"), Some(4));
            // The magnitude metric needs the `number` label whether or not it is analysed.
            let numbers = set.labels.get(NUMBER_LABEL).map(Vec::as_slice);
            if numbers.is_some_and(|v| v.len() != latents.n) {
                return Err(Error::Data(format!(
                    "{NAME}: modality `{modality}` has {} latents but a `{NUMBER_LABEL}` label of \
                     another length",
                    latents.n
                )));
            }
            let value = self.modality(ctx, seed, modality, &x, &labels, numbers)?;
            out.insert(modality.clone(), value);
        }
        Ok(Value::Object(out))
    }

    fn clone_box(&self) -> Box<dyn ProbeConfig> {
        Box::new(self.clone())
    }

    fn metrics(&self) -> Vec<MetricSpec> {
        let mut specs = Vec::new();
        for label in self.declared_labels() {
            specs.extend([
                MetricSpec::new(
                    &format!("silhouette.{label}"),
                    &format!("silhouette by {label}"),
                    Better::Higher,
                    Scope::Modality,
                ),
                MetricSpec::new(
                    &format!("kmeans_ari.{label}"),
                    &format!("k-means ARI by {label}"),
                    Better::Higher,
                    Scope::Modality,
                ),
                MetricSpec::new(
                    &format!("kmeans_nmi.{label}"),
                    &format!("k-means NMI by {label}"),
                    Better::Higher,
                    Scope::Modality,
                ),
                MetricSpec::new(
                    &format!("linear_probe.{label}"),
                    &format!("linear probe accuracy ({label})"),
                    Better::Higher,
                    Scope::Modality,
                ),
            ]);
        }
        specs.extend([
            MetricSpec::new(
                "magnitude.abs_pearson_r",
                "abs. Pearson r: mean distance vs number gap",
                Better::Higher,
                Scope::Modality,
            ),
            MetricSpec::new(
                "magnitude.spearman_rho",
                "Spearman rho: mean distance vs number gap",
                Better::Higher,
                Scope::Modality,
            ),
        ]);
        specs
    }
}

fn default_config() -> Box<dyn ProbeConfig> {
    Box::new(ClusterProbe::default())
}

rensou_api::inventory::submit! {
    ProbePlugin {
        name: NAME,
        description: "silhouette, k-means ARI/NMI and linear-probe accuracy by label; the magnitude (ordinal) metric",
        default_config,
    }
}
