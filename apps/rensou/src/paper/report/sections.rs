//! The report's sections as document blocks ([`Block`]): the claims with their verdicts, the
//! coherence and classifier tables, the models beyond the paper, and the configuration and wall
//! times. Numbers come from [`super::comparison`]; figures from [`super::figures`].

use std::collections::BTreeMap;
use std::time::Instant;

use rensou_api::probe::Better;
use rensou_api::stats::{MeanCi, Welch};

use super::adequacy::{self, Judgement};
use super::claims::{Resolved, CLAIMS};
use super::comparison::{
    outcome, rows_beside, BesideRow, Comparison, Judged, Outcome, ReadScalars,
};
use super::{figures, Inputs};
use crate::paper::doc::Block;
use crate::paper::layout::task_id;
use crate::paper::{Preset, Stage};

/// A mean with its interval and the number of seeds behind it (every table cell shows n).
pub fn fmt_ci(c: &MeanCi) -> String {
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

fn fmt_test(t: &Welch) -> String {
    format!("{} / {}", fmt_p(t.p), fmt_g(t.hedges_g))
}

/// How the comparison of a multimodal model (`mmvae`, a fusion's) with the modality's VAE on a
/// claim and modality is read: its [`Judgement`] from the two models' reconstructions.
pub type JudgeFn<'a> = dyn Fn(&str, usize, &str) -> Judgement + 'a;

/// The verdict line of a claim, from its primary comparisons, each read beside its models'
/// adequacy (`judge`, see [`super::adequacy`]); `seeds` is the number of seeds the study
/// planned, so a verdict resting on fewer says so. Returns the line and each verdict as data.
pub fn verdict(
    claim: usize,
    comps: &[&Comparison],
    seeds: usize,
    judge: &JudgeFn<'_>,
) -> (String, Vec<Judged>) {
    let mut judged = Vec::new();
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
            let judgement = judge("mmvae", claim, &c.modality);
            let m = &c.modality;
            let mut line = match (&judgement, outcome(&c.mmvae, &c.vae, t, c.better)) {
                (Judgement::CannotJudge { reason }, _) => {
                    format!("**cannot be judged** for {m}: {reason} (the test alone: {numbers})")
                }
                (_, Outcome::NotTestable(why)) => format!("**not testable** for {m} ({why})"),
                (_, Outcome::Reproduced) => format!("**reproduced** for {m} ({numbers})"),
                (_, Outcome::Reversed) => format!(
                    "**reversed** for {m} (the VAE is {}: {numbers})",
                    match c.better {
                        Better::Higher => "higher",
                        Better::Lower => "lower, which is better here",
                    }
                ),
                (_, Outcome::NotReproduced) => format!("**not reproduced** for {m} ({numbers})"),
            };
            match &judgement {
                Judgement::BelowAdequate { notes } => line.push_str(&format!(
                    ", from models below adequacy (reconstruction accuracy, adequate from {}: \
                     {})",
                    adequacy::ADEQUATE,
                    notes.join(", ")
                )),
                Judgement::Unknown => line.push_str(
                    ", adequacy unknown (no reconstruction accuracy recorded for these models)",
                ),
                Judgement::Adequate | Judgement::CannotJudge { .. } => {}
            }
            if c.mmvae.n < seeds || c.vae.n < seeds {
                line.push_str(&format!(
                    ", **on incomplete seeds**: {} of {seeds} for the MMVAE, {} of {seeds} for \
                     the VAE (failed or unfinished runs are missing)",
                    c.mmvae.n, c.vae.n
                ));
            }
            judged.push(Judged::new(
                claim, m, "mmvae", &c.mmvae, &c.vae, t, c.better, judgement,
            ));
            line
        })
        .collect();
    let line = if parts.is_empty() {
        format!("Claim {claim}: no data.")
    } else {
        format!("Verdict: {}.", parts.join("; "))
    };
    (line, judged)
}

/// The title, what was reproduced how, whether the study is incomplete and what the preset
/// scales down.
pub fn introduction(inputs: &Inputs<'_>, blocks: &mut Vec<Block>) {
    let plan = inputs.plan;
    blocks.push(Block::Heading(
        1,
        "rensou paper report: number sense in a multimodal VAE".into(),
    ));
    blocks.push(Block::Para(format!(
        "Reproduction of Noda, Soda & Yamashita (Frontiers in Neuroscience 18:1330512, 2024): \
         an MMVAE on paired OSCN pictures and coloured MNIST digits against single-modality \
         VAEs, {} seeds each, preset `{:?}`. Latents are encoder locations on the test split. \
         Intervals are 95% t intervals across seeds; tests are Welch's t-tests of MMVAE vs VAE \
         (two-sided); effect sizes are Hedges' g (positive: MMVAE higher).",
        plan.seeds, plan.preset
    )));
    if plan.preset == Preset::Quick {
        blocks.push(Block::Para(
            "**This is a smoke-scale run.** The quick preset checks in minutes that the whole \
             pipeline works; its models train far too briefly to learn the task, so most of \
             its claims cannot be judged (see how well the models learned, below), and a \
             verdict it does give rests on models below adequacy. For results, run \
             `rensou paper --preset standard --jobs 2` (about 2 hours on 2 CPU cores) or the \
             paper's own budget on a GPU (`--preset paper`)."
                .into(),
        ));
    }
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
}

/// A section per claim: its verdict and a table of its metrics. Returns the verdicts by claim.
pub fn claims(
    comparisons: &[Comparison],
    seeds: usize,
    judge: &JudgeFn<'_>,
    blocks: &mut Vec<Block>,
) -> (BTreeMap<usize, String>, Vec<Judged>) {
    let mut verdicts = BTreeMap::new();
    let mut all = Vec::new();
    for claim in CLAIMS {
        let comps: Vec<&Comparison> = comparisons.iter().filter(|c| c.claim == claim.id).collect();
        blocks.push(Block::Heading(
            2,
            format!("Claim {}: {}", claim.id, claim.title),
        ));
        let (v, judged) = verdict(claim.id, &comps, seeds, judge);
        all.extend(judged);
        verdicts.insert(claim.id, v.clone());
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
    (verdicts, all)
}

/// The section on the MMVAE over every modality (when the study has more than two): each
/// metric of each modality beside the paper's two-modality MMVAE and the modality's VAE.
pub fn all_modalities(
    inputs: &Inputs<'_>,
    blocks: &mut Vec<Block>,
    metrics: &[Resolved],
    read: &ReadScalars<'_>,
) -> Vec<BesideRow> {
    let Some(all) = crate::paper::all_modalities_model(inputs.modalities) else {
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

/// The section comparing fusions (when the plan names any): every claim metric of every
/// fusion's model on the paper's pair, against the VAEs (with the claim's outcome for a
/// primary metric) and against the mixture of experts (`mmvae`).
pub fn fusions(
    inputs: &Inputs<'_>,
    blocks: &mut Vec<Block>,
    metrics: &[Resolved],
    read: &ReadScalars<'_>,
    judge: &JudgeFn<'_>,
) -> anyhow::Result<(Vec<BesideRow>, Vec<Judged>)> {
    let fusions = &inputs.plan.fusions;
    let mut judged = Vec::new();
    if fusions.is_empty() {
        return Ok((Vec::new(), judged));
    }
    let pair = inputs.pair();
    let seeds = inputs.plan.seeds;
    let fusion_model = crate::paper::fusion_model;
    let rows: Vec<BesideRow> = fusions
        .iter()
        .flat_map(|f| rows_beside(&fusion_model(f), pair, pair, seeds, metrics, read))
        .collect();
    blocks.push(Block::Heading(
        2,
        "Beyond the paper: which kind of multimodal learning?".into(),
    ));
    let objectives: Vec<String> = fusions
        .iter()
        .map(|f| {
            let model = fusion_model(f);
            let path = inputs
                .layout
                .run_dir(&task_id(&model, 0))
                .join(rensou_train::RUN_CONFIG_FILE);
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
                let j = Judged::new(
                    r.claim,
                    &r.modality,
                    &r.model,
                    &r.values,
                    &r.vae,
                    &r.vs_vae,
                    r.better,
                    judge(&r.model, r.claim, &r.modality),
                );
                let word = format!("{} ({})", fmt_test(&r.vs_vae), j.outcome);
                judged.push(j);
                word
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
    if let Some(figure) = figures::fusion_effects(inputs.layout, &rows)? {
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
    Ok((rows, judged))
}

/// The configuration, versions and wall times: the report's own time is added to `stages`,
/// `start` is when this invocation began.
pub fn configuration(
    inputs: &Inputs<'_>,
    blocks: &mut Vec<Block>,
    stages: &mut Vec<Stage>,
    report_start: Instant,
    start: Instant,
) -> anyhow::Result<()> {
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
    blocks.push(Block::Code(serde_json::to_string_pretty(inputs.plan)?));
    let config = inputs
        .layout
        .run_dir(&task_id("mmvae", 0))
        .join(rensou_train::RUN_CONFIG_FILE);
    if let Ok(cfg) = std::fs::read_to_string(config) {
        blocks.push(Block::Para("The MMVAE run configuration (seed 0):".into()));
        blocks.push(Block::Code(cfg));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::comparison::summarise;
    use super::*;
    use rensou_api::stats::welch;

    fn comparison(mmvae: &[f64], vae: &[f64]) -> Comparison {
        Comparison {
            claim: 1,
            metric: "m".into(),
            modality: "oscn".into(),
            primary: true,
            better: Better::Higher,
            mmvae: summarise(mmvae),
            vae: summarise(vae),
            mmvae_values: mmvae.to_vec(),
            vae_values: vae.to_vec(),
            test: welch(mmvae, vae),
        }
    }

    fn adequate(_: &str, _: usize, _: &str) -> Judgement {
        Judgement::Adequate
    }

    fn says(mmvae: &[f64], vae: &[f64], seeds: usize) -> String {
        let c = comparison(mmvae, vae);
        verdict(1, &[&c], seeds, &adequate).0
    }

    #[test]
    fn a_claim_whose_models_are_at_chance_cannot_be_judged() {
        let c = comparison(&[0.80, 0.82, 0.79, 0.81], &[0.20, 0.22, 0.19, 0.21]);
        let at_chance = |model: &str, claim: usize, m: &str| {
            assert_eq!((model, claim, m), ("mmvae", 1, "oscn"));
            Judgement::CannotJudge {
                reason: "MMVAE reconstructions of oscn at chance for number".into(),
            }
        };
        let (v, judged) = verdict(1, &[&c], 4, &at_chance);
        assert!(
            v.contains("**cannot be judged** for oscn: MMVAE reconstructions of oscn at chance")
                && !v.contains("**reproduced**"),
            "{v}"
        );
        assert_eq!(judged[0].outcome, "cannot be judged");
        let below = |_: &str, _: usize, _: &str| Judgement::BelowAdequate {
            notes: vec!["MMVAE 0.620".into(), "VAE 0.700".into()],
        };
        let (v, judged) = verdict(1, &[&c], 4, &below);
        assert!(
            v.contains("**reproduced** for oscn")
                && v.contains("below adequacy")
                && v.contains("MMVAE 0.620, VAE 0.700"),
            "{v}"
        );
        assert_eq!(judged[0].outcome, "reproduced");
        assert!(judged[0].g > 0.0 && judged[0].g_interval.0 < judged[0].g);
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
        assert_eq!(fmt_ci(&summarise(&[])), "n/a (n = 0)");
        assert_eq!(fmt_ci(&summarise(&[0.5])), "0.500 (n = 1)");
        assert!(fmt_ci(&summarise(&[0.4, 0.6])).ends_with("(n = 2)"));
        assert_eq!(
            fmt_ci(&summarise(&[0.5, 0.6, 0.7])),
            "0.600 [0.352, 0.848] (n = 3)"
        );
        assert_eq!(fmt_p(0.008_049_893_100_837_813), "0.0080");
        assert_eq!(fmt_p(3e-5), "3.0e-5");
        assert_eq!(fmt_g(3.2), "3.20");
    }

    #[test]
    fn a_lower_is_better_metric_reverses_the_direction() {
        let mut c = comparison(&[0.20, 0.22, 0.19, 0.21], &[0.80, 0.82, 0.79, 0.81]);
        c.better = Better::Lower;
        let v = verdict(1, &[&c], 4, &adequate).0;
        assert!(v.contains("**reproduced** for oscn"), "{v}");
        let mut c = comparison(&[0.80, 0.82, 0.79, 0.81], &[0.20, 0.22, 0.19, 0.21]);
        c.better = Better::Lower;
        let v = verdict(1, &[&c], 4, &adequate).0;
        assert!(
            v.contains("**reversed**") && v.contains("lower, which is better"),
            "{v}"
        );
    }
}
