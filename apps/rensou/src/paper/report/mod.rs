//! The study report: the paper's four claims tested across seeds, figures, configuration and
//! wall times. Every number and verdict is computed from the runs' own metrics files.
//!
//! - [`adequacy`]: how well each model learned, and the rule that reads every verdict beside it.
//! - [`claims`]: the claims and their metrics, as data.
//! - [`emergence`]: the claims' and the adequacy's metrics over training (`--probe-epochs`).
//! - [`comparison`]: the statistics (means, intervals, Welch's t, Hedges' g, outcomes).
//! - [`sections`] and [`figures`]: the document, as blocks rendered to Markdown and HTML.
//! - [`write`]: reads the runs and writes `report.md`, `report.html` and `summary.json`.

mod adequacy;
mod claims;
mod comparison;
mod emergence;
mod figures;
mod sections;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rensou_api::probe::Scalars;

use super::doc::{html, markdown, Block};
use super::layout::{task_id, StudyLayout};
use super::{ModelKind, Plan, Stage};

/// What the report is made from.
pub struct Inputs<'a> {
    /// The study directory.
    pub layout: &'a StudyLayout,
    /// The settings.
    pub plan: &'a Plan,
    /// The models.
    pub models: &'a [ModelKind],
    /// The modalities of the dataset.
    pub modalities: &'a [String],
    /// Backend and device.
    pub backend: &'a str,
    /// The dataset file.
    pub dataset: &'a Path,
    /// Tasks (`<model>-s<seed>`) not finished yet: the report uses the others.
    pub missing: &'a [String],
}

impl Inputs<'_> {
    /// The paper's pair: the modalities of the first model (`mmvae`).
    fn pair(&self) -> &[String] {
        self.models
            .first()
            .map_or(&[][..], |m| m.modalities.as_slice())
    }
}

/// Writes report.md, report.html and summary.json; returns their paths.
pub fn write(
    inputs: &Inputs<'_>,
    stages: &mut Vec<Stage>,
    report_start: Instant,
    start: Instant,
) -> anyhow::Result<Vec<PathBuf>> {
    let layout = inputs.layout;
    let plan = inputs.plan;
    let fig_dir = layout.figures();
    std::fs::create_dir_all(&fig_dir)
        .with_context(|| format!("cannot create {}", fig_dir.display()))?;

    // Per-run typed probe scalars.
    let read = |model: &str, seed: usize, probe: &str| {
        Scalars::read(&layout.probe_dir(&task_id(model, seed as u64), probe))
            .ok()
            .flatten()
    };
    let metrics = claims::resolve(&claims::declared_by_registry)?;
    let comparisons = comparison::compare(inputs.pair(), plan.seeds, &metrics, &read);
    let chance = adequacy::chance_levels(inputs.dataset, inputs.modalities);
    let judge = |model: &str, claim: usize, modality: &str| {
        let label = claims::claim(claim).map_or("number", |c| c.label);
        let name = if model == "mmvae" { "MMVAE" } else { model };
        adequacy::judge_models(
            &read,
            plan.seeds,
            &chance,
            label,
            modality,
            &[(name, model), ("VAE", &format!("vae-{modality}"))],
        )
    };

    // The claims and the fusions are judged first: the figure that opens the report shows
    // every verdict.
    let mut claim_blocks = Vec::new();
    let (verdicts, mut judged) =
        sections::claims(&comparisons, plan.seeds, &judge, &mut claim_blocks);
    let mut fusion_blocks = Vec::new();
    let (fusion_rows, fusion_judged) =
        sections::fusions(inputs, &mut fusion_blocks, &metrics, &read, &judge)?;
    judged.extend(fusion_judged);

    let mut blocks = Vec::new();
    sections::introduction(inputs, &mut blocks);
    if let Some(figure) = figures::at_a_glance(layout, &judged)? {
        blocks.push(Block::Heading(2, "The claims at a glance".into()));
        blocks.push(Block::Images(vec![figure]));
    }
    let adequacy_rows = adequacy::section(inputs, &read, &chance, &mut blocks);
    blocks.extend(claim_blocks);
    let emergence = emergence::section(inputs, &metrics, &chance, &mut blocks)?;
    let all_rows = sections::all_modalities(inputs, &mut blocks, &metrics, &read);
    blocks.extend(fusion_blocks);
    figures::section(inputs, &mut blocks)?;
    sections::configuration(inputs, &mut blocks, stages, report_start, start)?;

    let md_path = layout.report_md();
    let html_path = layout.report_html();
    let json_path = layout.summary();
    rensou_api::fsutil::write_bytes_atomically(&md_path, markdown(&blocks).as_bytes())?;
    rensou_api::fsutil::write_bytes_atomically(
        &html_path,
        html("rensou paper report", &blocks, layout.root()).as_bytes(),
    )?;
    let summary = serde_json::json!({
        "plan": plan,
        "backend": inputs.backend,
        "rensou_version": env!("CARGO_PKG_VERSION"),
        "burn_version": "0.21.0",
        "claims": claims::titles(),
        "verdicts": verdicts,
        "judgements": judged,
        "adequacy": {
            "rule": adequacy::rule(),
            "adequate_from": adequacy::ADEQUATE,
            "chance": chance,
            "rows": adequacy_rows,
        },
        "emergence": emergence,
        "comparisons": comparisons,
        "all_modalities": all_rows,
        "fusions": fusion_rows,
        "stages": stages,
        "missing_tasks": inputs.missing,
        "wall_seconds": start.elapsed().as_secs_f64(),
    });
    rensou_api::fsutil::write_bytes_atomically(
        &json_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(vec![md_path, html_path, json_path])
}
