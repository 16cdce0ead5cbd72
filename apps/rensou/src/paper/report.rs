//! The study report: the paper's four claims tested across seeds, figures, configuration and
//! wall times. Every number and verdict is computed from the runs' own metrics files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rensou_api::probe::{Better, MetricSpec, Of, Scalars};
use rensou_api::stats::{mean_ci, welch, MeanCi, Welch};
use rensou_train::read_metrics;
use serde::Serialize;
use serde_json::Value;

use super::doc::{html, markdown, Block};
use super::{ModelKind, Plan, Stage};

/// What the report is made from.
pub struct Inputs<'a> {
    /// The study directory.
    pub out: &'a Path,
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

/// One metric of one claim: a typed metric its probe declares ([`ProbeConfig::metrics`]) and
/// records in `RUN/probes/<probe>/scalars.json`.
///
/// [`ProbeConfig::metrics`]: rensou_api::probe::ProbeConfig::metrics
#[derive(Clone, Copy, Debug)]
struct ClaimMetric {
    claim: usize,
    probe: &'static str,
    /// The metric's declared name.
    metric: &'static str,
    /// Modalities it applies to (None: all).
    only: Option<&'static str>,
    /// The metric that decides the claim's verdict.
    primary: bool,
}

/// A claim metric with what its probe declares: its description and which way is better.
#[derive(Clone, Debug)]
struct Resolved {
    def: ClaimMetric,
    description: String,
    better: Better,
}

const fn cm(
    claim: usize,
    probe: &'static str,
    metric: &'static str,
    only: Option<&'static str>,
    primary: bool,
) -> ClaimMetric {
    ClaimMetric {
        claim,
        probe,
        metric,
        only,
        primary,
    }
}

const CLAIMS: [&str; 4] = [
    "Number separability of the latents",
    "Magnitude (ordinal) structure of the latents",
    "Colour clustering of CMNIST latents",
    "Latent arithmetic z(a) + z(b) - z(c)",
];

const METRICS: &[ClaimMetric] = &[
    cm(1, "cluster", "silhouette.number", None, true),
    cm(1, "cluster", "kmeans_ari.number", None, false),
    cm(1, "cluster", "kmeans_nmi.number", None, false),
    cm(1, "cluster", "linear_probe.number", None, false),
    cm(1, "tsne", "knn_accuracy.number", None, false),
    cm(2, "cluster", "magnitude.abs_pearson_r", None, true),
    cm(2, "cluster", "magnitude.spearman_rho", None, false),
    cm(3, "cluster", "silhouette.colour", Some("cmnist"), true),
    cm(3, "cluster", "kmeans_ari.colour", Some("cmnist"), false),
    cm(4, "arithmetic", "all_triples.accuracy", Some("oscn"), true),
    cm(4, "arithmetic", "equations.accuracy", Some("oscn"), false),
];

/// The claims' metrics with their declarations; an error names a metric its probe does not
/// declare (the table above and the probes disagree).
fn resolve(declared: &dyn Fn(&str) -> Vec<MetricSpec>) -> anyhow::Result<Vec<Resolved>> {
    METRICS
        .iter()
        .map(|def| {
            let spec = declared(def.probe)
                .into_iter()
                .find(|s| s.name == def.metric)
                .with_context(|| {
                    format!(
                        "the report compares `{}` of probe `{}`, which the linked probe does not \
                         declare",
                        def.metric, def.probe
                    )
                })?;
            Ok(Resolved {
                def: *def,
                description: spec.description,
                better: spec.better,
            })
        })
        .collect()
}

/// What a linked probe's default config declares (empty for a probe not linked).
fn declared_by_registry(probe: &str) -> Vec<MetricSpec> {
    rensou_api::registry::ProbeRegistry::collect()
        .ok()
        .and_then(|r| {
            r.get(probe)
                .ok()
                .map(|plugin| (plugin.default_config)().metrics())
        })
        .unwrap_or_default()
}

/// A run's typed scalars: `(model, seed, probe) -> scalars`, `None` when the probe has none
/// (not run, failed, or the file is unreadable).
type ReadScalars<'a> = dyn Fn(&str, usize, &str) -> Option<Scalars> + 'a;

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// A comparison of the multimodal model with the single-modality one on one metric.
#[derive(Clone, Debug, Serialize)]
struct Comparison {
    claim: usize,
    metric: String,
    modality: String,
    primary: bool,
    better: Better,
    mmvae: MeanCi,
    vae: MeanCi,
    mmvae_values: Vec<f64>,
    vae_values: Vec<f64>,
    test: Welch,
}

/// A mean with its interval and the number of seeds behind it (every table cell shows n).
fn fmt_ci(c: &MeanCi) -> String {
    if c.n == 0 || c.mean.is_nan() {
        "n/a (n = 0)".into()
    } else if c.lo.is_nan() {
        format!("{:.3} (n = {})", c.mean, c.n)
    } else {
        format!("{:.3} [{:.3}, {:.3}] (n = {})", c.mean, c.lo, c.hi, c.n)
    }
}

fn fmt_g(g: f64) -> String {
    if g.is_nan() {
        "n/a".into()
    } else {
        format!("{g:.2}")
    }
}

fn fmt_p(p: f64) -> String {
    if p.is_nan() {
        "n/a".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// What one primary comparison says about its claim.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    /// The MMVAE is better (in the metric's declared direction), Welch p < 0.05.
    Reproduced,
    /// The VAE is better, Welch p < 0.05.
    Reversed,
    /// No difference at p < 0.05.
    NotReproduced,
    /// No test possible, with the reason.
    NotTestable(&'static str),
}

/// The outcome of one primary comparison: `a` the MMVAE's values across seeds, `b` the VAE's,
/// `better` the metric's declared direction.
fn outcome(a: &MeanCi, b: &MeanCi, t: &Welch, better: Better) -> Outcome {
    if a.n < 2 || b.n < 2 {
        return Outcome::NotTestable("needs at least 2 seeds with finite values per model");
    }
    // Zero up to rounding (the mean of equal values need not be exactly one of them).
    let flat = |c: &MeanCi| c.sd <= 1e-9 * c.mean.abs().max(1.0);
    if flat(a) && flat(b) {
        // Welch's test is undefined without variance; a difference of constants is no evidence.
        return Outcome::NotTestable("no variance across seeds in either model");
    }
    if t.p.is_nan() {
        return Outcome::NotTestable("the test is undefined for these values");
    }
    let a_better = match better {
        Better::Higher => a.mean > b.mean,
        Better::Lower => a.mean < b.mean,
    };
    match (t.p < 0.05, a_better) {
        (true, true) => Outcome::Reproduced,
        (true, false) => Outcome::Reversed,
        (false, _) => Outcome::NotReproduced,
    }
}

/// The verdict line of a claim, from its primary comparisons; `seeds` is the number of seeds
/// the study planned, so a verdict resting on fewer says so.
fn verdict(claim: usize, comps: &[&Comparison], seeds: usize) -> String {
    let parts: Vec<String> = comps
        .iter()
        .filter(|c| c.primary)
        .map(|c| {
            let t = &c.test;
            let numbers = format!(
                "MMVAE {:.3} vs VAE {:.3}; Hedges' g = {}, Welch p = {}",
                c.mmvae.mean,
                c.vae.mean,
                fmt_g(t.hedges_g),
                fmt_p(t.p)
            );
            let mut line = match outcome(&c.mmvae, &c.vae, t, c.better) {
                Outcome::NotTestable(why) => {
                    format!("**not testable** for {} ({why})", c.modality)
                }
                Outcome::Reproduced => format!("**reproduced** for {} ({numbers})", c.modality),
                Outcome::Reversed => format!(
                    "**reversed** for {} (the VAE is {}: {numbers})",
                    c.modality,
                    match c.better {
                        Better::Higher => "higher",
                        Better::Lower => "lower, which is better here",
                    }
                ),
                Outcome::NotReproduced => {
                    format!("**not reproduced** for {} ({numbers})", c.modality)
                }
            };
            if c.mmvae.n < seeds || c.vae.n < seeds {
                line.push_str(&format!(
                    ", **on incomplete seeds**: {} of {seeds} for the MMVAE, {} of {seeds} for \
                     the VAE (failed or unfinished runs are missing)",
                    c.mmvae.n, c.vae.n
                ));
            }
            line
        })
        .collect();
    if parts.is_empty() {
        format!("Claim {claim}: no data.")
    } else {
        format!("Verdict: {}.", parts.join("; "))
    }
}

/// One metric of one model on one modality, beside the paper's MMVAE (`mmvae`, the mixture of
/// experts) and the modality's VAE.
#[derive(Clone, Debug, Serialize)]
struct BesideRow {
    model: String,
    claim: usize,
    metric: String,
    modality: String,
    primary: bool,
    better: Better,
    /// The model's values across seeds.
    values: MeanCi,
    mmvae: Option<MeanCi>,
    vae: MeanCi,
    vs_vae: Welch,
    /// `None` for a modality `mmvae` does not have, or when the model is `mmvae` itself.
    vs_mmvae: Option<Welch>,
}

/// Every claim metric of `model` on each of `modalities`, against the modality's VAE and
/// (where it has the modality) the paper's `mmvae`.
fn rows_beside(
    model: &str,
    modalities: &[String],
    pair: &[String],
    seeds: usize,
    metrics: &[Resolved],
    read: &ReadScalars<'_>,
) -> Vec<BesideRow> {
    let mut rows = Vec::new();
    for r in metrics {
        for m in modalities {
            if r.def.only.is_some_and(|o| o != m) {
                continue;
            }
            let values = |name: &str| metric_values(read, &r.def, name, m, seeds);
            let a = values(model);
            let vae = values(&format!("vae-{m}"));
            let mm = (pair.contains(m) && model != "mmvae").then(|| values("mmvae"));
            rows.push(BesideRow {
                model: model.to_owned(),
                claim: r.def.claim,
                metric: r.description.clone(),
                modality: m.clone(),
                primary: r.def.primary,
                better: r.better,
                values: mean_ci(&a, 0.95),
                mmvae: mm.as_ref().map(|v| mean_ci(v, 0.95)),
                vae: mean_ci(&vae, 0.95),
                vs_vae: welch(&a, &vae),
                vs_mmvae: mm.as_ref().map(|v| welch(&a, v)),
            });
        }
    }
    rows
}

fn fmt_test(t: &Welch) -> String {
    format!("{} / {}", fmt_p(t.p), fmt_g(t.hedges_g))
}

/// The section on the MMVAE over every modality (when the study has more than two): each
/// metric of each modality beside the paper's two-modality MMVAE and the modality's VAE.
fn all_modalities_section(
    inputs: &Inputs<'_>,
    blocks: &mut Vec<Block>,
    metrics: &[Resolved],
    read: &ReadScalars<'_>,
) -> Vec<BesideRow> {
    let Some(all) = super::all_modalities_model(inputs.modalities) else {
        return Vec::new();
    };
    let pair = inputs.pair();
    let rows = rows_beside(
        &all,
        inputs.modalities,
        pair,
        inputs.plan.seeds,
        metrics,
        read,
    );
    blocks.push(Block::Heading(
        2,
        format!(
            "Beyond the paper: an MMVAE on {}",
            inputs.modalities.join(", ")
        ),
    ));
    blocks.push(Block::Para(format!(
        "`{all}` is trained on all {} modalities with the same settings. Each metric of the \
         claims above, per modality, beside the paper's two-modality MMVAE (`mmvae`, on {}) and \
         the modality's own VAE; p and g compare `{all}` with the VAE (Welch, Hedges' g: \
         positive means `{all}` is higher) and with `mmvae`.",
        inputs.modalities.len(),
        pair.join(" and ")
    )));
    let table = rows
        .iter()
        .map(|r| {
            vec![
                format!("{}{}", r.metric, if r.primary { " (primary)" } else { "" }),
                r.modality.clone(),
                fmt_ci(&r.values),
                r.mmvae.as_ref().map_or("-".into(), fmt_ci),
                fmt_ci(&r.vae),
                fmt_test(&r.vs_vae),
                r.vs_mmvae.as_ref().map_or("-".into(), fmt_test),
            ]
        })
        .collect();
    blocks.push(Block::Table(
        vec![
            "metric".into(),
            "modality".into(),
            format!("{all} [95% CI]"),
            "mmvae [95% CI]".into(),
            "VAE [95% CI]".into(),
            "vs VAE: p / g".into(),
            "vs mmvae: p / g".into(),
        ],
        table,
    ));
    rows
}

/// A heatmap of Hedges' g of every fusion's model against the single-modality VAE on each
/// primary claim metric (signed so that positive means the fusion is better), written to
/// `figures/fusions-effect.png`; `None` when no primary metric has a finite g.
fn fusion_effect_figure(
    out: &Path,
    rows: &[BesideRow],
) -> anyhow::Result<Option<(String, PathBuf)>> {
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
    let rel = PathBuf::from("figures/fusions-effect.png");
    rensou_api::fsutil::write_bytes_atomically(&out.join(&rel), &png)?;
    Ok(Some((
        "effect size of each fusion's model against the VAE, per claim and modality".into(),
        rel,
    )))
}

/// The word for an outcome in the fusion table.
fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Reproduced => "reproduced",
        Outcome::Reversed => "reversed",
        Outcome::NotReproduced => "not reproduced",
        Outcome::NotTestable(_) => "not testable",
    }
}

/// The section comparing fusions (when the plan names any): every claim metric of every
/// fusion's model on the paper's pair, against the VAEs (with the claim's outcome for a
/// primary metric) and against the mixture of experts (`mmvae`).
fn fusion_section(
    inputs: &Inputs<'_>,
    blocks: &mut Vec<Block>,
    metrics: &[Resolved],
    read: &ReadScalars<'_>,
) -> anyhow::Result<Vec<BesideRow>> {
    let fusions = &inputs.plan.fusions;
    if fusions.is_empty() {
        return Ok(Vec::new());
    }
    let pair = inputs.pair();
    let seeds = inputs.plan.seeds;
    let rows: Vec<BesideRow> = fusions
        .iter()
        .flat_map(|f| rows_beside(&super::fusion_model(f), pair, pair, seeds, metrics, read))
        .collect();
    blocks.push(Block::Heading(
        2,
        "Beyond the paper: which kind of multimodal learning?".into(),
    ));
    let objectives: Vec<String> = fusions
        .iter()
        .map(|f| {
            let model = super::fusion_model(f);
            let path = run_dir(inputs.out, &model, 0).join(rensou_train::RUN_CONFIG_FILE);
            match rensou_train::RunConfig::read(&path) {
                Ok(c) => {
                    let private = c.model.private_dim();
                    let latents = if private > 0 {
                        format!(
                            "; probes analyse its shared latent ({} dims), not the private \
                             latents ({private} dims per modality)",
                            c.model.latent_dim
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "`{f}`: model `{model}`, objective `{}`{latents}",
                        c.objective().name()
                    )
                }
                Err(_) => format!("`{f}`: model `{model}` (no finished run of seed 0)"),
            }
        })
        .collect();
    blocks.push(Block::Para(format!(
        "The same pair ({}) and settings with each joint posterior (fusion). Every claim \
         metric per fusion; \"vs VAE\" tests the fusion's model against the modality's VAE \
         (for a primary metric with the claim's outcome, as above), \"vs moe\" against the \
         paper's mixture of experts (`mmvae`). Welch p / Hedges' g (positive: the fusion's \
         model is higher). Latents are each modality's unimodal posterior location as the \
         fusion defines it (product of experts: the expert times the prior expert). Cross- and \
         joint coherence per fusion are in the coherence table.",
        pair.join(" and ")
    )));
    blocks.push(Block::List(objectives));
    let table = rows
        .iter()
        .map(|r| {
            let vs_vae = if r.primary {
                format!(
                    "{} ({})",
                    fmt_test(&r.vs_vae),
                    outcome_word(&outcome(&r.values, &r.vae, &r.vs_vae, r.better))
                )
            } else {
                fmt_test(&r.vs_vae)
            };
            vec![
                r.model.clone(),
                format!(
                    "{}: {}{}",
                    r.claim,
                    r.metric,
                    if r.primary { " (primary)" } else { "" }
                ),
                r.modality.clone(),
                fmt_ci(&r.values),
                fmt_ci(&r.vae),
                r.mmvae.as_ref().map_or("-".into(), fmt_ci),
                vs_vae,
                r.vs_mmvae.as_ref().map_or("-".into(), fmt_test),
            ]
        })
        .collect();
    if let Some(figure) = fusion_effect_figure(inputs.out, &rows)? {
        blocks.push(Block::Images(vec![figure]));
    }
    blocks.push(Block::Table(
        [
            "model",
            "claim: metric",
            "modality",
            "fusion [95% CI]",
            "VAE [95% CI]",
            "moe [95% CI]",
            "vs VAE: p / g",
            "vs moe: p / g",
        ]
        .map(String::from)
        .to_vec(),
        table,
    ));
    Ok(rows)
}

/// The values of metric `def` for modality `m` of `model`, one per seed that has them.
fn metric_values(
    read: &ReadScalars<'_>,
    def: &ClaimMetric,
    model: &str,
    m: &str,
    seeds: usize,
) -> Vec<f64> {
    (0..seeds)
        .filter_map(|s| read(model, s, def.probe)?.get(def.metric, Of::Modality(m)))
        .collect()
}

/// The compute step of the claims: every claim metric on every modality of the paper's pair,
/// the MMVAE's values across seeds against the modality's VAE.
fn compare(
    pair: &[String],
    seeds: usize,
    metrics: &[Resolved],
    read: &ReadScalars<'_>,
) -> Vec<Comparison> {
    let mut comparisons = Vec::new();
    for r in metrics {
        for m in pair {
            if r.def.only.is_some_and(|o| o != m) {
                continue;
            }
            let values = |model: &str| metric_values(read, &r.def, model, m, seeds);
            let mm = values("mmvae");
            let vae = values(&format!("vae-{m}"));
            comparisons.push(Comparison {
                claim: r.def.claim,
                metric: r.description.clone(),
                modality: m.clone(),
                primary: r.def.primary,
                better: r.better,
                mmvae: mean_ci(&mm, 0.95),
                vae: mean_ci(&vae, 0.95),
                test: welch(&mm, &vae),
                mmvae_values: mm,
                vae_values: vae,
            });
        }
    }
    comparisons
}

fn run_dir(out: &Path, model: &str, seed: usize) -> PathBuf {
    out.join("runs").join(format!("{model}-s{seed}"))
}

/// Writes report.md, report.html and summary.json; returns their paths.
pub fn write(
    inputs: &Inputs<'_>,
    stages: &mut Vec<Stage>,
    report_start: Instant,
    start: Instant,
) -> anyhow::Result<Vec<PathBuf>> {
    let out = inputs.out;
    let plan = inputs.plan;
    let seeds = plan.seeds;
    let fig_dir = out.join("figures");
    std::fs::create_dir_all(&fig_dir)
        .with_context(|| format!("cannot create {}", fig_dir.display()))?;

    // Per-run typed probe scalars.
    let read = |model: &str, seed: usize, probe: &str| {
        Scalars::read(&run_dir(out, model, seed).join("probes").join(probe))
            .ok()
            .flatten()
    };
    let metrics = resolve(&declared_by_registry)?;
    let pair = inputs.pair();
    let comparisons = compare(pair, seeds, &metrics, &read);

    let mut blocks = vec![
        Block::Heading(
            1,
            "rensou paper report: number sense in a multimodal VAE".into(),
        ),
        Block::Para(format!(
            "Reproduction of Noda, Soda & Yamashita (Frontiers in Neuroscience 18:1330512, 2024): \
             an MMVAE on paired OSCN pictures and coloured MNIST digits against single-modality \
             VAEs, {} seeds each, preset `{:?}`. Latents are encoder locations on the test split. \
             Intervals are 95% t intervals across seeds; tests are Welch's t-tests of MMVAE vs VAE \
             (two-sided); effect sizes are Hedges' g (positive: MMVAE higher).",
            seeds, plan.preset
        )),
    ];
    if !inputs.missing.is_empty() {
        blocks.push(Block::Para(format!(
            "**Incomplete study: {} task(s) are not finished** ({}). Every number below comes \
             from the finished runs only; `rensou paper report` rewrites this report as more \
             finish.",
            inputs.missing.len(),
            inputs.missing.join(", ")
        )));
    }
    let scaled = plan.scaled_down();
    if !scaled.is_empty() {
        blocks.push(Block::Para(
            "This preset scales SPEC.md's setup down:".into(),
        ));
        blocks.push(Block::List(scaled));
    }

    // Claims.
    let mut verdicts = BTreeMap::new();
    for (i, title) in CLAIMS.iter().enumerate() {
        let claim = i + 1;
        let comps: Vec<&Comparison> = comparisons.iter().filter(|c| c.claim == claim).collect();
        blocks.push(Block::Heading(2, format!("Claim {claim}: {title}")));
        let v = verdict(claim, &comps, seeds);
        verdicts.insert(claim, v.clone());
        blocks.push(Block::Para(v));
        let rows: Vec<Vec<String>> = comps
            .iter()
            .map(|c| {
                vec![
                    format!("{}{}", c.metric, if c.primary { " (primary)" } else { "" }),
                    c.modality.clone(),
                    fmt_ci(&c.mmvae),
                    fmt_ci(&c.vae),
                    if c.test.t.is_nan() {
                        "n/a".into()
                    } else {
                        format!("{:.2} ({:.1})", c.test.t, c.test.df)
                    },
                    fmt_p(c.test.p),
                    fmt_g(c.test.hedges_g),
                ]
            })
            .collect();
        blocks.push(Block::Table(
            [
                "metric",
                "modality",
                "MMVAE mean [95% CI]",
                "VAE mean [95% CI]",
                "Welch t (df)",
                "p",
                "Hedges' g",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        ));
    }

    // Extras the paper does not report: coherence and classifier accuracies (MMVAE only).
    blocks.push(Block::Heading(
        2,
        "Beyond the paper: cross-modal coherence".into(),
    ));
    let mut rows = Vec::new();
    let multimodal: Vec<&ModelKind> = inputs
        .models
        .iter()
        .filter(|m| m.modalities.len() > 1)
        .collect();
    for model in &multimodal {
        let mods = &model.modalities;
        for (src, dst) in mods.iter().flat_map(|a| mods.iter().map(move |b| (a, b))) {
            let (metric, of) = if src == dst {
                ("reconstruction.number", Of::Modality(src))
            } else {
                ("cross.number", Of::Pair(src, dst))
            };
            let vals: Vec<f64> = (0..seeds)
                .filter_map(|s| read(&model.name, s, "coherence")?.get(metric, of))
                .collect();
            rows.push(vec![
                model.name.clone(),
                format!("{src} -> {dst}"),
                fmt_ci(&mean_ci(&vals, 0.95)),
            ]);
        }
        let joint: Vec<f64> = (0..seeds)
            .filter_map(|s| read(&model.name, s, "coherence")?.get("joint.number", Of::Model))
            .collect();
        rows.push(vec![
            model.name.clone(),
            "joint (prior samples)".into(),
            fmt_ci(&mean_ci(&joint, 0.95)),
        ]);
    }
    blocks.push(Block::Para(
        "Number accuracy of the MMVAE's generations, judged by the shared classifiers \
         (chance 1/9); the row m -> m is reconstruction."
            .into(),
    ));
    blocks.push(Block::Table(
        vec![
            "model".into(),
            "generation".into(),
            "number accuracy [95% CI]".into(),
        ],
        rows,
    ));
    if out.join("classifiers").is_dir() {
        let acc = |m: &str, l: &str| {
            read_json(&out.join("classifiers").join(format!("{m}-{l}.json")))
                .and_then(|v| v["test_accuracy"].as_f64())
                .map_or("n/a".to_owned(), |a| format!("{a:.4}"))
        };
        let list = inputs
            .modalities
            .iter()
            .flat_map(|m| ["number", "colour"].map(move |l| (m, l)))
            .filter(|(m, l)| {
                out.join("classifiers")
                    .join(format!("{m}-{l}.json"))
                    .is_file()
            })
            .map(|(m, l)| format!("{m}/{l}: {}", acc(m, l)))
            .collect();
        blocks.push(Block::Para(
            "Test accuracy of the shared classifiers:".into(),
        ));
        blocks.push(Block::List(list));
    }

    let all_rows = all_modalities_section(inputs, &mut blocks, &metrics, &read);
    let fusion_rows = fusion_section(inputs, &mut blocks, &metrics, &read)?;

    // Figures (seed 0).
    blocks.push(Block::Heading(2, "Figures (seed 0)".into()));
    blocks.push(Block::Heading(
        3,
        "t-SNE of the latents (the paper's figure 2)".into(),
    ));
    for model in inputs.models {
        for m in &model.modalities {
            let imgs: Vec<(String, PathBuf)> = ["number", "colour", "shape"]
                .iter()
                .map(|l| {
                    (
                        format!("{} / {m} by {l}", model.name),
                        PathBuf::from(format!(
                            "runs/{}-s0/probes/tsne/tsne_{m}_{l}.png",
                            model.name
                        )),
                    )
                })
                .filter(|(_, p)| out.join(p).is_file())
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
        let dir = out.join(format!("runs/{}-s0/grids", model.name));
        let mut pngs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        pngs.sort();
        if let Some(last) = pngs.last().and_then(|p| p.strip_prefix(out).ok()) {
            gens.push((format!("{}: last epoch", model.name), last.to_path_buf()));
        }
    }
    blocks.push(Block::Images(gens));
    blocks.push(Block::Heading(3, "Latent arithmetic (figure 3)".into()));
    let arith: Vec<(String, PathBuf)> = inputs
        .models
        .iter()
        .map(|m| {
            (
                format!("{} arithmetic", m.name),
                PathBuf::from(format!(
                    "runs/{}-s0/probes/arithmetic/arithmetic.png",
                    m.name
                )),
            )
        })
        .filter(|(_, p)| out.join(p).is_file())
        .collect();
    blocks.push(Block::Images(arith));
    blocks.push(Block::Heading(3, "Training curves".into()));
    let mut curves = Vec::new();
    for model in inputs.models {
        let mut series = Vec::new();
        for s in 0..seeds {
            if let Ok(metrics) = read_metrics(&run_dir(out, &model.name, s)) {
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
        let rel = PathBuf::from(format!("figures/curves-{}.png", model.name));
        rensou_api::fsutil::write_bytes_atomically(&out.join(&rel), &png)?;
        curves.push((format!("{} training curves", model.name), rel));
    }
    blocks.push(Block::Images(curves));

    // Configuration, versions, wall times.
    stages.push(Stage {
        name: "report".into(),
        kind: "report".into(),
        seconds: report_start.elapsed().as_secs_f64(),
        skipped: false,
    });
    let total: f64 = stages.iter().map(|s| s.seconds).sum();
    let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
    for s in stages.iter() {
        *by_kind.entry(s.kind.clone()).or_insert(0.0) += s.seconds;
    }
    blocks.push(Block::Heading(
        2,
        "Configuration, versions and wall time".into(),
    ));
    blocks.push(Block::List(vec![
        format!("rensou {} with burn 0.21.0; backend: {}", env!("CARGO_PKG_VERSION"), inputs.backend),
        format!("dataset: `{}`", inputs.dataset.display()),
        format!("wall time of this invocation: {:.1} s (stages below: each task's recorded training and probe time; \"already done\" marks work done by an earlier invocation or another worker)", start.elapsed().as_secs_f64()),
    ]));
    blocks.push(Block::Table(
        vec!["stage kind".into(), "seconds".into(), "share".into()],
        by_kind
            .iter()
            .map(|(k, s)| {
                vec![
                    k.clone(),
                    format!("{s:.1}"),
                    format!("{:.0}%", 100.0 * s / total.max(1e-9)),
                ]
            })
            .collect(),
    ));
    blocks.push(Block::Table(
        vec!["stage".into(), "seconds".into(), "note".into()],
        stages
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    format!("{:.1}", s.seconds),
                    if s.skipped {
                        "already done".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect(),
    ));
    blocks.push(Block::Code(serde_json::to_string_pretty(plan)?));
    if let Ok(cfg) = std::fs::read_to_string(run_dir(out, "mmvae", 0).join("config.toml")) {
        blocks.push(Block::Para("The MMVAE run configuration (seed 0):".into()));
        blocks.push(Block::Code(cfg));
    }

    let md_path = out.join("report.md");
    let html_path = out.join("report.html");
    let json_path = out.join("summary.json");
    rensou_api::fsutil::write_bytes_atomically(&md_path, markdown(&blocks).as_bytes())?;
    rensou_api::fsutil::write_bytes_atomically(
        &html_path,
        html("rensou paper report", &blocks, out).as_bytes(),
    )?;
    let summary = serde_json::json!({
        "plan": plan,
        "backend": inputs.backend,
        "rensou_version": env!("CARGO_PKG_VERSION"),
        "burn_version": "0.21.0",
        "claims": CLAIMS,
        "verdicts": verdicts,
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

#[cfg(test)]
mod tests {
    use super::*;
    use rensou_api::probe::Scope;

    fn comparison(mmvae: &[f64], vae: &[f64]) -> Comparison {
        Comparison {
            claim: 1,
            metric: "m".into(),
            modality: "oscn".into(),
            primary: true,
            better: Better::Higher,
            mmvae: mean_ci(mmvae, 0.95),
            vae: mean_ci(vae, 0.95),
            mmvae_values: mmvae.to_vec(),
            vae_values: vae.to_vec(),
            test: welch(mmvae, vae),
        }
    }

    fn says(mmvae: &[f64], vae: &[f64], seeds: usize) -> String {
        let c = comparison(mmvae, vae);
        verdict(1, &[&c], seeds)
    }

    #[test]
    fn a_clear_effect_is_reproduced_and_its_reverse_reversed() {
        let hi = [0.80, 0.82, 0.79, 0.81];
        let lo = [0.20, 0.22, 0.19, 0.21];
        let v = says(&hi, &lo, 4);
        assert!(v.contains("**reproduced** for oscn"), "{v}");
        assert!(!v.contains("incomplete"), "{v}");
        let v = says(&lo, &hi, 4);
        assert!(v.contains("**reversed** for oscn"), "{v}");
        let v = says(&[0.5, 0.6, 0.4], &[0.55, 0.45, 0.5], 3);
        assert!(v.contains("**not reproduced**"), "{v}");
    }

    #[test]
    fn zero_variance_and_too_few_seeds_are_not_testable() {
        let v = says(&[0.5, 0.5, 0.5], &[0.4, 0.4, 0.4], 3);
        assert!(
            v.contains("**not testable**") && v.contains("no variance"),
            "{v}"
        );
        let v = says(&[0.9], &[0.1, 0.2], 2);
        assert!(
            v.contains("**not testable**") && v.contains("at least 2 seeds"),
            "{v}"
        );
        assert!(v.contains("1 of 2 for the MMVAE"), "{v}");
        let v = says(&[], &[], 3);
        assert!(
            v.contains("**not testable**") && v.contains("0 of 3"),
            "{v}"
        );
    }

    #[test]
    fn missing_seeds_are_named_in_the_verdict() {
        let v = says(&[0.80, 0.82, 0.79], &[0.20, 0.22, 0.19, 0.21], 4);
        assert!(v.contains("**reproduced**"), "{v}");
        assert!(
            v.contains("on incomplete seeds") && v.contains("3 of 4 for the MMVAE"),
            "{v}"
        );
    }

    #[test]
    fn cells_show_their_n() {
        assert_eq!(fmt_ci(&mean_ci(&[], 0.95)), "n/a (n = 0)");
        assert_eq!(fmt_ci(&mean_ci(&[0.5], 0.95)), "0.500 (n = 1)");
        assert!(fmt_ci(&mean_ci(&[0.4, 0.6], 0.95)).ends_with("(n = 2)"));
    }

    #[test]
    fn a_lower_is_better_metric_reverses_the_direction() {
        let mut c = comparison(&[0.20, 0.22, 0.19, 0.21], &[0.80, 0.82, 0.79, 0.81]);
        c.better = Better::Lower;
        let v = verdict(1, &[&c], 4);
        assert!(v.contains("**reproduced** for oscn"), "{v}");
        let mut c = comparison(&[0.80, 0.82, 0.79, 0.81], &[0.20, 0.22, 0.19, 0.21]);
        c.better = Better::Lower;
        let v = verdict(1, &[&c], 4);
        assert!(
            v.contains("**reversed**") && v.contains("lower, which is better"),
            "{v}"
        );
    }

    /// Every claim metric declared as its probe would, higher is better.
    fn declared(probe: &str) -> Vec<MetricSpec> {
        METRICS
            .iter()
            .filter(|d| d.probe == probe)
            .map(|d| MetricSpec::new(d.metric, d.metric, Better::Higher, Scope::Modality))
            .collect()
    }

    /// Scalars of one cluster run: silhouette by number for oscn and cmnist.
    fn cluster(oscn: f64, cmnist: f64) -> Scalars {
        let mut s = Scalars::declared(declared("cluster")).unwrap();
        s.values.insert(
            "silhouette.number".into(),
            BTreeMap::from([("oscn".into(), oscn), ("cmnist".into(), cmnist)]),
        );
        s
    }

    #[test]
    fn the_compute_step_reads_typed_scalars_and_counts_missing_seeds() {
        let metrics = resolve(&declared).unwrap();
        let pair = ["oscn".to_owned(), "cmnist".to_owned()];
        // Seed 2 of the MMVAE failed its cluster probe: no scalars.
        let read = |model: &str, seed: usize, probe: &str| -> Option<Scalars> {
            (probe == "cluster").then_some(())?;
            match (model, seed) {
                ("mmvae", 2) => None,
                ("mmvae", s) => Some(cluster(0.5 + s as f64 * 0.01, 0.3)),
                (_, s) => Some(cluster(0.1 + s as f64 * 0.01, 0.1)),
            }
        };
        let comps = compare(&pair, 4, &metrics, &read);
        let sil: Vec<&Comparison> = comps.iter().filter(|c| c.claim == 1 && c.primary).collect();
        assert_eq!(sil.len(), 2, "one primary comparison per modality");
        let oscn = sil.iter().find(|c| c.modality == "oscn").unwrap();
        assert_eq!(oscn.mmvae_values, vec![0.5, 0.51, 0.53]);
        assert_eq!(oscn.vae.n, 4);
        let v = verdict(1, &sil, 4);
        assert!(v.contains("**reproduced** for oscn"), "{v}");
        assert!(
            v.contains("on incomplete seeds") && v.contains("3 of 4 for the MMVAE"),
            "{v}"
        );
        // Metrics nobody recorded are empty cells, not errors; colour is compared on cmnist only.
        let colour: Vec<&Comparison> = comps.iter().filter(|c| c.claim == 3).collect();
        assert!(colour
            .iter()
            .all(|c| c.modality == "cmnist" && c.mmvae.n == 0));
    }

    #[test]
    fn a_claim_metric_no_probe_declares_is_an_error() {
        let e = resolve(&|_: &str| Vec::new()).unwrap_err();
        assert!(e.to_string().contains("silhouette.number"), "{e}");
        // The linked built-in probes declare every metric the report compares.
        resolve(&declared_by_registry).unwrap();
    }
}
