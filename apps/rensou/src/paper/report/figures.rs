//! The report's figures: those it draws (training curves, the fusions' effect sizes, under
//! `figures/`) and those of the runs it shows (t-SNE, grids, latent arithmetic of seed 0).

use std::path::PathBuf;

use rensou_api::probe::Better;
use rensou_train::read_metrics;

use rensou_plot::{ForestRow, ForestStyle};

use super::adequacy::Judgement;
use super::comparison::{BesideRow, Judged};
use super::Inputs;
use crate::paper::doc::Block;
use crate::paper::layout::{task_id, StudyLayout};

/// A figure: its caption and its path relative to the study directory.
pub type Figure = (String, PathBuf);

/// Writes a figure of the report as `figures/<name>`; returns its relative path.
pub fn write_figure(layout: &StudyLayout, name: &str, png: &[u8]) -> anyhow::Result<PathBuf> {
    let rel = StudyLayout::relative().figure(name);
    rensou_api::fsutil::write_bytes_atomically(&layout.root().join(&rel), png)?;
    Ok(rel)
}

/// A heatmap of Hedges' g of every fusion's model against the single-modality VAE on each
/// primary claim metric (signed so that positive means the fusion is better), written to
/// `figures/fusions-effect.png`; `None` when no primary metric has a finite g.
pub fn fusion_effects(layout: &StudyLayout, rows: &[BesideRow]) -> anyhow::Result<Option<Figure>> {
    let primary: Vec<&BesideRow> = rows.iter().filter(|r| r.primary).collect();
    let mut models: Vec<&str> = Vec::new();
    let mut columns: Vec<(usize, &str, &str)> = Vec::new();
    for r in &primary {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
        let col = (r.claim, r.metric.as_str(), r.modality.as_str());
        if !columns.contains(&col) {
            columns.push(col);
        }
    }
    let matrix: Vec<Vec<f64>> = models
        .iter()
        .map(|model| {
            columns
                .iter()
                .map(|&(claim, metric, modality)| {
                    primary
                        .iter()
                        .find(|r| {
                            r.model == *model
                                && r.claim == claim
                                && r.metric == metric
                                && r.modality == modality
                        })
                        .map_or(f64::NAN, |r| match r.better {
                            Better::Higher => r.vs_vae.hedges_g,
                            Better::Lower => -r.vs_vae.hedges_g,
                        })
                })
                .collect()
        })
        .collect();
    if !matrix.iter().flatten().any(|g| g.is_finite()) {
        return Ok(None);
    }
    let labels: Vec<String> = columns
        .iter()
        .map(|(claim, _, modality)| format!("claim {claim} {modality}"))
        .collect();
    let png = rensou_plot::heatmap_png(
        "Hedges' g vs the single-modality VAE (primary metrics; > 0: the fusion is better)",
        &matrix,
        &models,
        &labels,
    )?;
    Ok(Some((
        "effect size of each fusion's model against the VAE, per claim and modality".into(),
        write_figure(layout, "fusions-effect.png", &png)?,
    )))
}

/// The figure that opens the report: every verdict's effect size (Hedges' g of the multimodal
/// model against the modality's VAE, signed so that positive is the direction the claim
/// predicts) with its approximate 95% interval, one row per claim, modality and multimodal
/// model, coloured by outcome and greyed where the claim cannot be judged; written to
/// `figures/claims.png`. `None` when there is no verdict.
pub fn at_a_glance(layout: &StudyLayout, judged: &[Judged]) -> anyhow::Result<Option<Figure>> {
    if judged.is_empty() {
        return Ok(None);
    }
    let mut sorted: Vec<&Judged> = judged.iter().collect();
    sorted.sort_by(|a, b| (a.claim, &a.modality).cmp(&(b.claim, &b.modality)));
    let rows: Vec<ForestRow> = sorted
        .iter()
        .map(|j| {
            let title = super::claims::claim(j.claim).map_or("", |c| c.title);
            ForestRow {
                label: format!("{}. {title} · {} · {}", j.claim, j.modality, j.model),
                estimate: j.g,
                lo: j.g_interval.0,
                hi: j.g_interval.1,
                style: match j.outcome.as_str() {
                    "reproduced" => ForestStyle::Positive,
                    "reversed" => ForestStyle::Negative,
                    "cannot be judged" => ForestStyle::Muted,
                    _ => ForestStyle::Neutral,
                },
                note: format!(
                    "{}{} (n = {}/{})",
                    j.outcome,
                    match j.judgement {
                        Judgement::BelowAdequate { .. } => ", below adequacy",
                        _ => "",
                    },
                    j.n.0,
                    j.n.1
                ),
            }
        })
        .collect();
    let png = rensou_plot::forest_png(
        "The claims at a glance: Hedges' g, multimodal model vs VAE (> 0: as the paper claims)",
        "Hedges' g with 95% interval",
        &rows,
        (1100, 0),
    )?;
    Ok(Some((
        "each claim's effect size per modality; grey: cannot be judged (a model reconstructs \
         the claim's label at chance)"
            .into(),
        write_figure(layout, "claims.png", &png)?,
    )))
}

/// The figures section: seed 0's t-SNE maps, last grids and latent arithmetic of every model,
/// and every model's training curves across seeds (drawn here).
pub fn section(inputs: &Inputs<'_>, blocks: &mut Vec<Block>) -> anyhow::Result<()> {
    let layout = inputs.layout;
    let rel = StudyLayout::relative();
    let seed0 = |model: &str| task_id(model, 0);
    blocks.push(Block::Heading(2, "Figures (seed 0)".into()));
    blocks.push(Block::Heading(
        3,
        "t-SNE of the latents (the paper's figure 2)".into(),
    ));
    for model in inputs.models {
        for m in &model.modalities {
            let imgs: Vec<Figure> = ["number", "colour", "shape"]
                .iter()
                .map(|l| {
                    (
                        format!("{} / {m} by {l}", model.name),
                        rel.probe_dir(&seed0(&model.name), "tsne")
                            .join(format!("tsne_{m}_{l}.png")),
                    )
                })
                .filter(|(_, p)| layout.root().join(p).is_file())
                .collect();
            if !imgs.is_empty() {
                blocks.push(Block::Images(imgs));
            }
        }
    }
    blocks.push(Block::Heading(
        3,
        "Reconstructions and cross-generations (figure 1)".into(),
    ));
    let mut gens = Vec::new();
    for model in inputs.models {
        let dir = layout
            .run_dir(&seed0(&model.name))
            .join(rensou_train::GRIDS_DIR);
        let mut pngs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        pngs.sort();
        if let Some(last) = pngs.last().and_then(|p| p.strip_prefix(layout.root()).ok()) {
            gens.push((format!("{}: last epoch", model.name), last.to_path_buf()));
        }
    }
    blocks.push(Block::Images(gens));
    blocks.push(Block::Heading(3, "Latent arithmetic (figure 3)".into()));
    let arith: Vec<Figure> = inputs
        .models
        .iter()
        .map(|m| {
            (
                format!("{} arithmetic", m.name),
                rel.probe_dir(&seed0(&m.name), "arithmetic")
                    .join("arithmetic.png"),
            )
        })
        .filter(|(_, p)| layout.root().join(p).is_file())
        .collect();
    blocks.push(Block::Images(arith));
    blocks.push(Block::Heading(3, "Training curves".into()));
    let mut curves = Vec::new();
    for model in inputs.models {
        let mut series = Vec::new();
        for s in 0..inputs.plan.seeds {
            if let Ok(metrics) = read_metrics(&layout.run_dir(&task_id(&model.name, s as u64))) {
                series.push((
                    format!("train s{s}"),
                    metrics
                        .iter()
                        .map(|e| (e.epoch as f64, e.train_loss))
                        .collect::<Vec<_>>(),
                ));
                series.push((
                    format!("test s{s}"),
                    metrics
                        .iter()
                        .map(|e| (e.epoch as f64, e.test_loss))
                        .collect::<Vec<_>>(),
                ));
            }
        }
        if series.is_empty() {
            continue;
        }
        let png = rensou_plot::lines_png(
            &format!("{}: loss (-objective per pair)", model.name),
            "epoch",
            "loss",
            &series,
        )?;
        let rel = write_figure(layout, &format!("curves-{}.png", model.name), &png)?;
        curves.push((format!("{} training curves", model.name), rel));
    }
    blocks.push(Block::Images(curves));
    Ok(())
}
