//! When number sense emerges: each claim's primary metric and the models' adequacy against
//! training epochs, mean and 95% band across seeds, from the probes at `--probe-epochs`
//! ([`crate::paper::emergence`]) and at the last epoch.

use rensou_api::probe::{Of, Scalars};
use rensou_api::stats::MeanCi;
use rensou_plot::{bands_grid_png, Band, BandPanel, BandPoint};
use serde::Serialize;

use super::adequacy::Chance;
use super::claims::Resolved;
use super::comparison::summarise;
use super::figures::write_figure;
use super::Inputs;
use crate::paper::doc::Block;
use crate::paper::layout::task_id;
use crate::paper::ModelKind;

/// One point of a curve: a metric's values across seeds at one epoch.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// The epoch.
    pub epoch: usize,
    /// Training pairs seen by then (epoch x pairs per epoch of seed 0's run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs_seen: Option<usize>,
    /// The values across seeds.
    pub values: MeanCi,
}

/// One curve: a metric of one model on one modality (or pair) over training.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// The claim it tests (None: an adequacy metric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<usize>,
    /// The probe's metric name, e.g. `silhouette.number`.
    pub metric: String,
    /// What it measures.
    pub description: String,
    /// The modality, or `a -> b` for a cross-generation.
    pub of: String,
    /// The model.
    pub model: String,
    /// Its points, by epoch.
    pub points: Vec<Point>,
}

/// The curves of a study with probe epochs, as `summary.json` carries them.
#[derive(Clone, Debug, Serialize)]
pub struct Emergence {
    /// The epochs probed (the last is the study's own).
    pub epochs: Vec<usize>,
    /// Every curve.
    pub series: Vec<Series>,
}

/// What one curve reads: probe, metric, and where.
struct Wanted<'a> {
    claim: Option<usize>,
    probe: &'a str,
    metric: &'a str,
    description: String,
    of: Of<'a>,
    of_name: String,
}

/// The models a curve of modality `m` is drawn for: the multimodal models that have it, and
/// its VAE.
fn models_with<'a>(models: &'a [ModelKind], m: &str) -> Vec<&'a ModelKind> {
    models
        .iter()
        .filter(|k| k.modalities.iter().any(|x| x == m))
        .filter(|k| k.modalities.len() > 1 || k.name == format!("vae-{m}"))
        .collect()
}

/// Reads one model's curve of `w` at `epochs` across `seeds`; `pairs` is the model's training
/// pairs per epoch, where known.
fn curve(
    inputs: &Inputs<'_>,
    model: &str,
    pairs: Option<usize>,
    w: &Wanted<'_>,
    epochs: &[usize],
) -> Vec<Point> {
    let layout = inputs.layout;
    let last = inputs.plan.epochs;
    epochs
        .iter()
        .map(|&epoch| {
            let values: Vec<f64> = (0..inputs.plan.seeds as u64)
                .filter_map(|s| {
                    let id = task_id(model, s);
                    let dir = if epoch == last {
                        layout.probe_dir(&id, w.probe)
                    } else {
                        layout.snapshot_probe_dir(&id, epoch, w.probe)
                    };
                    Scalars::read(&dir).ok().flatten()?.get(w.metric, w.of)
                })
                .collect();
            Point {
                epoch,
                pairs_seen: pairs.map(|p| p * epoch),
                values: summarise(&values),
            }
        })
        .collect()
}

/// The curves: every claim's primary metric on each modality it applies to, for the models
/// that have the modality; reconstruction accuracy of number per modality; and the multimodal
/// models' cross-generation accuracy of number.
pub fn series(inputs: &Inputs<'_>, metrics: &[Resolved], epochs: &[usize]) -> Vec<Series> {
    let pair = inputs.pair();
    let mut wanted: Vec<(Wanted<'_>, Vec<&ModelKind>)> = Vec::new();
    for r in metrics.iter().filter(|r| r.def.primary) {
        for m in pair.iter().filter(|m| r.def.only.is_none_or(|o| o == *m)) {
            wanted.push((
                Wanted {
                    claim: Some(r.def.claim),
                    probe: r.def.probe,
                    metric: r.def.metric,
                    description: r.description.clone(),
                    of: Of::Modality(m),
                    of_name: m.clone(),
                },
                models_with(inputs.models, m),
            ));
        }
    }
    for m in pair {
        wanted.push((
            Wanted {
                claim: None,
                probe: "coherence",
                metric: "reconstruction.number",
                description: "number accuracy of reconstructions".into(),
                of: Of::Modality(m),
                of_name: m.clone(),
            },
            models_with(inputs.models, m),
        ));
    }
    if let [a, b] = pair {
        let multimodal: Vec<&ModelKind> = inputs
            .models
            .iter()
            .filter(|k| k.modalities.len() > 1)
            .collect();
        for (x, y) in [(a, b), (b, a)] {
            wanted.push((
                Wanted {
                    claim: None,
                    probe: "coherence",
                    metric: "cross.number",
                    description: "number accuracy of cross-generations".into(),
                    of: Of::Pair(x, y),
                    of_name: format!("{x} -> {y}"),
                },
                multimodal.clone(),
            ));
        }
    }
    // Training pairs per epoch, from seed 0's metrics, read once per model.
    let pairs: Vec<Option<usize>> = inputs
        .models
        .iter()
        .map(|m| {
            rensou_train::read_metrics(&inputs.layout.run_dir(&task_id(&m.name, 0)))
                .ok()
                .and_then(|metrics| metrics.first().map(|e| e.train_pairs))
        })
        .collect();
    let pairs_of = |name: &str| {
        let i = inputs.models.iter().position(|m| m.name == name)?;
        pairs[i]
    };
    let mut out = Vec::new();
    for (w, models) in &wanted {
        for model in models {
            out.push(Series {
                claim: w.claim,
                metric: w.metric.to_owned(),
                description: w.description.clone(),
                of: w.of_name.clone(),
                model: model.name.clone(),
                points: curve(inputs, &model.name, pairs_of(&model.name), w, epochs),
            });
        }
    }
    out
}

/// The panels of the emergence figure: one per (metric, modality), a band per model.
fn panels(series: &[Series], chance: &Chance) -> Vec<BandPanel> {
    let mut panels: Vec<BandPanel> = Vec::new();
    let mut keys: Vec<(Option<usize>, String, String)> = Vec::new();
    for s in series {
        let key = (s.claim, s.metric.clone(), s.of.clone());
        let i = match keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                keys.push(key);
                let title = match s.claim {
                    Some(c) => format!("claim {c}: {} · {}", s.description, s.of),
                    None => format!("{} · {}", s.description, s.of),
                };
                // Accuracy of number on the generated modality has a chance level.
                let target = s.of.rsplit(" -> ").next().unwrap_or(&s.of);
                let reference = (s.claim.is_none())
                    .then(|| chance.get("number").and_then(|c| c.get(target)))
                    .flatten()
                    .map(|c| (*c, format!("chance {c:.3}")));
                panels.push(BandPanel {
                    title,
                    x_label: "epoch".into(),
                    y_label: s.metric.clone(),
                    series: Vec::new(),
                    reference,
                });
                panels.len() - 1
            }
        };
        panels[i].series.push(Band {
            name: s.model.clone(),
            points: s
                .points
                .iter()
                .map(|p| BandPoint {
                    x: p.epoch as f64,
                    mean: p.values.mean,
                    lo: p.values.lo,
                    hi: p.values.hi,
                })
                .collect(),
        });
    }
    panels
}

/// The section on how the claims and the models' adequacy change over training (when the plan
/// has probe epochs): one figure of every curve, and their numbers in `summary.json`.
pub fn section(
    inputs: &Inputs<'_>,
    metrics: &[Resolved],
    chance: &Chance,
    blocks: &mut Vec<Block>,
) -> anyhow::Result<Option<Emergence>> {
    let plan = inputs.plan;
    blocks.push(Block::Heading(2, "When number sense emerges".into()));
    if plan.probe_epochs.is_empty() {
        blocks.push(Block::Para(
            "This study probed its models at the last epoch only. With `--probe-epochs 1,2,5` \
             (or `--probe-every N`) the probes also run during training, and this section \
             plots each claim's primary metric and the models' reconstructions against the \
             epoch."
                .into(),
        ));
        return Ok(None);
    }
    let mut epochs = plan.probe_epochs.clone();
    epochs.push(plan.epochs);
    let series = series(inputs, metrics, &epochs);
    blocks.push(Block::Para(format!(
        "Every model probed at epochs {} (t-SNE only at the last): each claim's primary metric \
         per modality and model, and the number accuracy of reconstructions and \
         cross-generations (dashed: chance). Lines are means across seeds, bands their 95% \
         intervals; the numbers are in `summary.json` (`emergence`).",
        epochs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )));
    let panels = panels(&series, chance);
    if !panels.is_empty() {
        let png = bands_grid_png(&panels, 3, (460, 320))?;
        let rel = write_figure(inputs.layout, "emergence.png", &png)?;
        blocks.push(Block::Images(vec![(
            "claims and adequacy over training".into(),
            rel,
        )]));
    }
    Ok(Some(Emergence { epochs, series }))
}
