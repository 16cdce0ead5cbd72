//! The `tsne` probe: t-SNE of each modality's latents, scatter plots by label, and how faithful
//! the embeddings are.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use rensou_api::probe::{Better, MetricSpec, Of, ProbeConfig, ProbeContext, ProbePlugin, Scope};
use rensou_api::typetag;
use rensou_plot as plot;

use crate::error::TsneError;
use crate::metrics::{knn_accuracy, trustworthiness};
use crate::points::Points;
use crate::tsne::Tsne;

/// The probe's name (`type = "tsne"`).
pub const NAME: &str = "tsne";

/// Configuration of the `tsne` probe.
///
/// For every modality (or those in `modalities`), embeds the encoder locations of the analysed
/// split with [`Tsne`] (the same subsample of items for every modality when the split has more
/// than `max_points`), writes `tsne_<modality>_<label>.png` for each label and
/// `tsne_<modality>.csv`, and reports per modality: `trustworthiness` (k = `k`), `knn_accuracy`
/// per label in the embedding and `latent_knn_accuracy` in the latent space (leave-one-out
/// `k`-NN), `kl_divergence`, `n`, `n_total`, `dim`, `perplexity`, `seconds`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsneProbe {
    /// Perplexity (20, the paper's value).
    pub perplexity: f64,
    /// Iterations with early exaggeration (250).
    pub early_exaggeration_iterations: usize,
    /// Plain iterations after them (750).
    pub iterations: usize,
    /// Barnes-Hut accuracy (0.5).
    pub theta: f64,
    /// Seed for the subsample and t-SNE; absent: the run's probe seed.
    pub seed: Option<u64>,
    /// Largest number of items embedded; larger splits are subsampled with the seed (5000).
    pub max_points: usize,
    /// Labels to colour by; absent: every label of the modality with at most
    /// `max_label_values` distinct values.
    pub labels: Option<Vec<String>>,
    /// Largest number of distinct values of a label coloured by default (20).
    pub max_label_values: usize,
    /// Modalities to embed; absent: all.
    pub modalities: Option<Vec<String>>,
    /// Neighbours for trustworthiness and k-NN accuracy (10).
    pub k: usize,
    /// Side of the square figures in pixels (900).
    pub figure_size: u32,
    /// Worker threads, 0: every core (results do not depend on it).
    pub threads: usize,
}

impl Default for TsneProbe {
    fn default() -> Self {
        TsneProbe {
            perplexity: 20.0,
            early_exaggeration_iterations: 250,
            iterations: 750,
            theta: 0.5,
            seed: None,
            max_points: 5000,
            labels: None,
            max_label_values: 20,
            modalities: None,
            k: 10,
            figure_size: 900,
            threads: 0,
        }
    }
}

impl TsneProbe {
    /// The t-SNE parameters of this probe for `seed`.
    pub fn tsne(&self, seed: u64) -> Tsne {
        Tsne {
            perplexity: self.perplexity,
            early_exaggeration_iterations: self.early_exaggeration_iterations,
            iterations: self.iterations,
            theta: self.theta,
            seed,
            threads: self.threads,
            ..Tsne::default()
        }
    }

    fn check(&self) -> crate::Result<()> {
        self.tsne(0).validate()?;
        let bad = |field: &str, message: &str| Err(TsneError::parameter(field, message));
        if self.max_points < 8 {
            return bad("tsne.max_points", "must be at least 8");
        }
        if self.k == 0 || self.k > 1000 {
            return bad("tsne.k", "must be in 1..=1000");
        }
        if self.max_label_values == 0 {
            return bad("tsne.max_label_values", "must be at least 1");
        }
        if !(64..=8192).contains(&self.figure_size) {
            return bad("tsne.figure_size", "must be in 64..=8192 pixels");
        }
        if let Some(labels) = &self.labels {
            if labels.iter().any(String::is_empty) {
                return bad("tsne.labels", "names must not be empty");
            }
        }
        if let Some(m) = &self.modalities {
            if m.is_empty() {
                return bad(
                    "tsne.modalities",
                    "must name at least one modality (or be absent)",
                );
            }
        }
        Ok(())
    }

    fn run_inner(&self, ctx: &ProbeContext<'_>) -> crate::Result<Value> {
        let seed = self.seed.unwrap_or(ctx.seed);
        let modalities: Vec<&String> = match &self.modalities {
            None => ctx.latents.keys().collect(),
            Some(names) => {
                for m in names {
                    if !ctx.latents.contains_key(m) {
                        return Err(TsneError::parameter(
                            "tsne.modalities",
                            format!(
                                "no modality `{m}` (the model has {:?})",
                                ctx.latents.keys().collect::<Vec<_>>()
                            ),
                        ));
                    }
                }
                names.iter().collect()
            }
        };
        if let Some(wanted) = &self.labels {
            for l in wanted {
                let found = modalities.iter().any(|m| {
                    ctx.data
                        .sets
                        .get(*m)
                        .is_some_and(|s| s.labels.contains_key(l))
                });
                if !found {
                    return Err(TsneError::parameter(
                        "tsne.labels",
                        format!("no analysed modality has a label `{l}`"),
                    ));
                }
            }
        }
        let mut per_modality = Map::new();
        // One subsample for all modalities of the same size keeps the pairs aligned.
        let mut subsamples: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for modality in modalities {
            let latents = &ctx.latents[modality];
            let n_total = latents.n;
            if latents.loc.len() != n_total * latents.dim {
                return Err(TsneError::Input(format!(
                    "latents of `{modality}`: {} values for {n_total} x {}",
                    latents.loc.len(),
                    latents.dim
                )));
            }
            let empty = BTreeMap::new();
            let all_labels = ctx.data.sets.get(modality).map_or(&empty, |s| &s.labels);
            for (name, values) in all_labels {
                if values.len() != n_total {
                    return Err(TsneError::Input(format!(
                        "`{modality}` has {n_total} latents but {} `{name}` labels",
                        values.len()
                    )));
                }
            }
            let labels: Vec<(&String, &Vec<i64>)> = all_labels
                .iter()
                .filter(|(name, values)| match &self.labels {
                    Some(wanted) => wanted.contains(name),
                    None => values.iter().collect::<BTreeSet<_>>().len() <= self.max_label_values,
                })
                .collect();
            let chosen = subsamples
                .entry(n_total)
                .or_insert_with(|| subsample(n_total, self.max_points, seed))
                .clone();
            let n = chosen.len();
            let mut data = Vec::with_capacity(n * latents.dim);
            for &i in &chosen {
                data.extend_from_slice(latents.row(i));
            }
            let high = Points::new(&data, latents.dim)?;
            let start = Instant::now();
            let tsne = self.tsne(rensou_api::rng::derive_seed(seed, &["tsne", modality]));
            let total = tsne.early_exaggeration_iterations + tsne.iterations;
            ctx.progress.stage(
                &format!("t-SNE of {modality} ({n} points)"),
                Some(total as u64),
            );
            let embedding = tsne.fit_with_progress(high, &mut |_, _| ctx.progress.advance(1))?;
            let seconds_tsne = start.elapsed().as_secs_f64();
            let low = Points::from_pairs(&embedding.points)?;
            let k = self.k.min(n.saturating_sub(1) / 2);
            let trust = if k >= 1 {
                let t = trustworthiness(high, low, k)?;
                ctx.record("trustworthiness", Of::Modality(modality), t)?;
                json!(t)
            } else {
                Value::Null
            };
            let specs = ctx.data.label_specs.get(modality);
            let xy: Vec<(f32, f32)> = embedding.points.iter().map(|p| (p[0], p[1])).collect();
            let mut knn = Map::new();
            let mut latent_knn = Map::new();
            let mut figures = Vec::new();
            for (name, values) in &labels {
                let sub: Vec<i64> = chosen.iter().map(|&i| values[i]).collect();
                if k >= 1 {
                    let acc = knn_accuracy(low, &sub, k)?;
                    if KNN_METRIC_LABELS.contains(&name.as_str()) {
                        ctx.record(&format!("knn_accuracy.{name}"), Of::Modality(modality), acc)?;
                    }
                    knn.insert((*name).clone(), json!(acc));
                    latent_knn.insert((*name).clone(), json!(knn_accuracy(high, &sub, k)?));
                }
                let names = specs
                    .and_then(|s| s.iter().find(|s| &s.name == *name))
                    .map(|s| s.values.clone())
                    .unwrap_or_default();
                let title = format!(
                    "t-SNE of {modality} latents by {name} (n = {n}, perplexity {})",
                    embedding.perplexity.round()
                );
                let png = plot::scatter_png(
                    &title,
                    &xy,
                    &sub,
                    &names,
                    (self.figure_size, self.figure_size * 7 / 8),
                )?;
                let file = format!("tsne_{}_{}.png", file_part(modality), file_part(name));
                ctx.write_file(&file, &png)?;
                figures.push(file);
            }
            let csv = embedding_csv(&embedding.points, &chosen, &labels);
            let csv_file = format!("tsne_{}.csv", file_part(modality));
            ctx.write_file(&csv_file, csv.as_bytes())?;
            ctx.progress.message(&format!(
                "t-SNE of {modality}: {n} points in {seconds_tsne:.1} s, trustworthiness {}",
                trust
                    .as_f64()
                    .map_or_else(|| "n/a".to_owned(), |t| format!("{t:.4}"))
            ));
            per_modality.insert(
                modality.clone(),
                json!({
                    "n": n,
                    "n_total": n_total,
                    "dim": latents.dim,
                    "perplexity": embedding.perplexity,
                    "neighbours": embedding.neighbours,
                    "learning_rate": embedding.learning_rate,
                    "final_learning_rate": embedding.final_learning_rate,
                    "k": k,
                    "trustworthiness": trust,
                    "knn_accuracy": knn,
                    "latent_knn_accuracy": latent_knn,
                    "kl_divergence": embedding.kl_divergence,
                    "seconds": seconds_tsne,
                    "seconds_affinities": embedding.seconds_affinities,
                    "seconds_optimisation": embedding.seconds_optimisation,
                    "figures": figures,
                    "csv": csv_file,
                }),
            );
        }
        Ok(json!({
            "split": ctx.data.split.as_str(),
            "seed": seed,
            "config": serde_json::to_value(self).unwrap_or(Value::Null),
            "modalities": per_modality,
        }))
    }
}

/// `max` sorted indices of `0..n` drawn with `seed` (all of them when `n <= max`).
fn subsample(n: usize, max: usize, seed: u64) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let mut rng = rensou_api::rng::rng_for(seed, &["tsne", "subsample"]);
    let mut chosen = rand::seq::index::sample(&mut rng, n, max).into_vec();
    chosen.sort_unstable();
    chosen
}

/// A name made safe for a file name (letters, digits, `-`, `_`).
fn file_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn embedding_csv(points: &[[f32; 2]], items: &[usize], labels: &[(&String, &Vec<i64>)]) -> String {
    let mut csv = String::from("item,x,y");
    for (name, _) in labels {
        csv.push(',');
        csv.push_str(&file_part(name));
    }
    csv.push('\n');
    for (p, &i) in points.iter().zip(items) {
        let _ = write!(csv, "{i},{},{}", p[0], p[1]);
        for (_, values) in labels {
            let _ = write!(csv, ",{}", values[i]);
        }
        csv.push('\n');
    }
    csv
}

#[typetag::serde(name = "tsne")]
impl ProbeConfig for TsneProbe {
    fn validate(&self) -> rensou_api::Result<()> {
        Ok(self.check()?)
    }

    fn run(&self, ctx: &ProbeContext<'_>) -> rensou_api::Result<Value> {
        Ok(self.run_inner(ctx)?)
    }

    fn clone_box(&self) -> Box<dyn ProbeConfig> {
        Box::new(self.clone())
    }

    fn metrics(&self) -> Vec<MetricSpec> {
        let mut specs = vec![MetricSpec::new(
            "trustworthiness",
            "t-SNE trustworthiness",
            Better::Higher,
            Scope::Modality,
        )];
        specs.extend(KNN_METRIC_LABELS.iter().map(|label| {
            MetricSpec::new(
                &format!("knn_accuracy.{label}"),
                &format!("t-SNE 10-NN accuracy ({label})"),
                Better::Higher,
                Scope::Modality,
            )
        }));
        specs
    }
}

/// Labels whose neighbour accuracy in the embedding is a typed metric (the shared vocabulary's);
/// every analysed label's is in `metrics.json`.
const KNN_METRIC_LABELS: [&str; 2] = [rensou_api::vocab::NUMBER, rensou_api::vocab::COLOUR];

fn default_config() -> Box<dyn ProbeConfig> {
    Box::new(TsneProbe::default())
}

rensou_api::inventory::submit! {
    ProbePlugin {
        name: NAME,
        description: "t-SNE of each modality's latents: scatter plots by label, trustworthiness, k-NN accuracy",
        default_config,
    }
}
