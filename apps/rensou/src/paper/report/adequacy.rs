//! How well each model learned, and the rule that reads every verdict beside it.
//!
//! A claim about the latents of a model that reconstructs numbers at chance says nothing about
//! number sense (SPEC.md, "How well the models must have learned"). So the report measures,
//! per model and across seeds, what the shared classifiers make of its generations
//! (reconstruction, cross-generation and joint coherence, from the coherence probe) and its
//! test objective, and judges each claim's primary comparison by [`judge`]:
//!
//! - **cannot be judged** when a compared model reconstructs the claim's label on the claim's
//!   modality at chance: the 95% interval across seeds reaches down to chance (with one seed,
//!   the mean is at or below it). Chance is the accuracy of a generation that always looks like
//!   the commonest class: the largest class share of the label in the test split, computed
//!   from the dataset ([`chance_levels`]).
//! - judged, **with its adequacy beside it**, when both are above chance but one is below
//!   [`ADEQUATE`] (mean reconstruction accuracy);
//! - judged plainly when both reach [`ADEQUATE`].

use std::collections::BTreeMap;
use std::path::Path;

use rensou_api::probe::Of;
use rensou_api::stats::MeanCi;
use rensou_api::Split;
use serde::Serialize;

use super::comparison::{summarise, ReadScalars};
use super::sections::fmt_ci;
use super::Inputs;
use crate::paper::doc::Block;
use crate::paper::layout::task_id;
use crate::paper::ModelKind;

/// The mean reconstruction accuracy of the claim's label at which a model counts as having
/// learned it (the paper calls its models' generations "clear and accurate, with a few
/// errors").
pub const ADEQUATE: f64 = 0.8;

/// The labels the shared classifiers judge.
pub const LABELS: [&str; 2] = ["number", "colour"];

/// The rule, as the report and `summary.json` state it.
pub fn rule() -> String {
    format!(
        "A claim's verdict is read beside how well the compared models learned the claim's \
         label (number for claims 1, 2 and 4; colour for claim 3) on the claim's modality, \
         measured as the shared classifier's accuracy on the model's reconstructions of the \
         test split. If either model's 95% interval across seeds reaches down to chance (with \
         one seed: its mean is at or below chance), the claim **cannot be judged** for that \
         modality, whatever the test says. Chance is the largest class share of the label in \
         the test split (a generation that always looks like the commonest class scores \
         that). Above chance but with a mean below {ADEQUATE}, the verdict is given with the \
         adequacy numbers beside it. Both at or above {ADEQUATE}: the verdict stands alone."
    )
}

/// Chance level of each label on each modality: `label -> modality -> share`.
pub type Chance = BTreeMap<String, BTreeMap<String, f64>>;

/// The largest class share of each of [`LABELS`] in the test split of `dataset`, per modality
/// (a modality without the label has no entry); empty when the file cannot be read.
pub fn chance_levels(dataset: &Path, modalities: &[String]) -> Chance {
    let mut chance = Chance::new();
    let Ok(file) = rensou_store::DatasetFile::open(dataset) else {
        return chance;
    };
    for m in modalities {
        let Ok(labels) = file.read_labels(Split::Test, m) else {
            continue;
        };
        for label in LABELS {
            if let Some(share) = labels.get(label).and_then(|v| largest_share(v)) {
                chance
                    .entry(label.to_owned())
                    .or_default()
                    .insert(m.clone(), share);
            }
        }
    }
    chance
}

/// The largest share of one value among `values` (None when empty).
fn largest_share(values: &[i64]) -> Option<f64> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(*v).or_default() += 1;
    }
    let top = counts.values().max()?;
    Some(*top as f64 / values.len() as f64)
}

/// Whether `c` (a metric's values across seeds) is at chance: its interval reaches `chance`,
/// or with one seed its value does. `None` without values.
pub fn at_chance(c: &MeanCi, chance: f64) -> Option<bool> {
    if c.n == 0 || c.mean.is_nan() {
        return None;
    }
    Some(if c.lo.is_finite() {
        c.lo <= chance
    } else {
        c.mean <= chance
    })
}

/// Judges the comparison of `models` (`(display name, model)`) on claim label `label` and
/// `modality` from their reconstructions ([`judge`]); [`Judgement::Unknown`] where the label's
/// chance level there is unknown.
pub fn judge_models(
    read: &ReadScalars<'_>,
    seeds: usize,
    chance: &Chance,
    label: &str,
    modality: &str,
    models: &[(&str, &str)],
) -> Judgement {
    let Some(c) = chance.get(label).and_then(|c| c.get(modality)).copied() else {
        return Judgement::Unknown;
    };
    let recons: Vec<(&str, MeanCi)> = models
        .iter()
        .map(|(name, model)| (*name, reconstruction(read, model, seeds, label, modality)))
        .collect();
    judge(label, modality, &recons, c)
}

/// How a claim's primary comparison on one modality may be read.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Judgement {
    /// Both models learned the label: the verdict stands alone.
    Adequate,
    /// Above chance, but a model is below [`ADEQUATE`]: the verdict carries these notes.
    BelowAdequate {
        /// Each model's reconstruction accuracy, e.g. `MMVAE 0.620 [0.58, 0.66]`.
        notes: Vec<String>,
    },
    /// A model is at chance: no verdict.
    CannotJudge {
        /// Why, e.g. `MMVAE reconstructions of oscn at chance for number (...)`.
        reason: String,
    },
    /// No reconstruction accuracy was recorded (the coherence probe did not run or failed).
    Unknown,
}

/// Judges a comparison of `label` on `modality` from each compared model's reconstruction
/// accuracy across seeds (`(display name, values)`) and the label's chance level there.
pub fn judge(label: &str, modality: &str, models: &[(&str, MeanCi)], chance: f64) -> Judgement {
    let mut notes = Vec::new();
    let mut below = false;
    for (name, c) in models {
        match at_chance(c, chance) {
            None => return Judgement::Unknown,
            Some(true) => {
                return Judgement::CannotJudge {
                    reason: format!(
                        "{name} reconstructions of {modality} at chance for {label}: {} vs \
                         chance {chance:.3}",
                        fmt_ci(c)
                    ),
                }
            }
            Some(false) => {
                below |= c.mean < ADEQUATE;
                notes.push(format!("{name} {}", fmt_ci(c)));
            }
        }
    }
    if below {
        Judgement::BelowAdequate { notes }
    } else {
        Judgement::Adequate
    }
}

/// One cell of the adequacy table: a metric of one model, across seeds.
#[derive(Clone, Debug, Serialize)]
pub struct AdequacyRow {
    /// The model.
    pub model: String,
    /// `reconstruction`, `cross`, `joint` or `test loss`.
    pub measure: String,
    /// What it is of: a modality, `a -> b`, or empty for the whole model.
    pub of: String,
    /// The label judged (none for the test loss).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Its values across seeds.
    pub values: MeanCi,
    /// The label's chance level there, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chance: Option<f64>,
    /// Whether the values are at chance (see [`at_chance`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_chance: Option<bool>,
}

/// The accuracy of `label` of one generation of `model` across seeds.
fn accuracy(read: &ReadScalars<'_>, model: &str, seeds: usize, metric: &str, of: Of) -> MeanCi {
    let v: Vec<f64> = (0..seeds)
        .filter_map(|s| read(model, s, "coherence")?.get(metric, of))
        .collect();
    summarise(&v)
}

/// The reconstruction accuracy of `label` on `modality` of `model` across seeds.
pub fn reconstruction(
    read: &ReadScalars<'_>,
    model: &str,
    seeds: usize,
    label: &str,
    modality: &str,
) -> MeanCi {
    accuracy(
        read,
        model,
        seeds,
        &format!("reconstruction.{label}"),
        Of::Modality(modality),
    )
}

/// Every adequacy measure of every model: per label, reconstruction on each modality,
/// cross-generation between each ordered pair and joint coherence (multimodal models); and the
/// final test loss.
pub fn rows(
    models: &[ModelKind],
    seeds: usize,
    chance: &Chance,
    read: &ReadScalars<'_>,
    test_loss: &dyn Fn(&str, usize) -> Option<f64>,
) -> Vec<AdequacyRow> {
    let mut rows = Vec::new();
    for model in models {
        let mods = &model.modalities;
        for label in LABELS {
            let row =
                |measure: &str, of: String, values: MeanCi, chance: Option<f64>| AdequacyRow {
                    model: model.name.clone(),
                    measure: measure.to_owned(),
                    of,
                    label: Some(label.to_owned()),
                    at_chance: chance.and_then(|c| at_chance(&values, c)),
                    values,
                    chance,
                };
            let chance_on = |m: &str| chance.get(label).and_then(|c| c.get(m)).copied();
            for m in mods.iter().filter(|m| chance_on(m).is_some()) {
                let v = reconstruction(read, &model.name, seeds, label, m);
                rows.push(row("reconstruction", m.clone(), v, chance_on(m)));
            }
            for a in mods {
                for b in mods.iter().filter(|b| *b != a && chance_on(b).is_some()) {
                    let metric = format!("cross.{label}");
                    let v = accuracy(read, &model.name, seeds, &metric, Of::Pair(a, b));
                    rows.push(row("cross", format!("{a} -> {b}"), v, chance_on(b)));
                }
            }
            if mods.len() > 1 {
                // Joint coherence has no chance level of its own: a model whose every
                // modality always shows the same class agrees perfectly.
                let v = accuracy(
                    read,
                    &model.name,
                    seeds,
                    &format!("joint.{label}"),
                    Of::Model,
                );
                rows.push(row("joint", String::new(), v, None));
            }
        }
        let losses: Vec<f64> = (0..seeds)
            .filter_map(|s| test_loss(&model.name, s))
            .collect();
        rows.push(AdequacyRow {
            model: model.name.clone(),
            measure: "test loss".into(),
            of: String::new(),
            label: None,
            values: summarise(&losses),
            chance: None,
            at_chance: None,
        });
    }
    rows
}

/// A table cell: the values, marked when at chance.
fn cell(r: &AdequacyRow) -> String {
    let v = fmt_ci(&r.values);
    match r.at_chance {
        Some(true) => format!("{v} **at chance**"),
        _ => v,
    }
}

/// The section that opens the report: how well each model learned (one table, one row per
/// model and generation, a column per label), the rule and the classifiers' own accuracy.
/// Returns the rows.
pub fn section(
    inputs: &Inputs<'_>,
    read: &ReadScalars<'_>,
    chance: &Chance,
    blocks: &mut Vec<Block>,
) -> Vec<AdequacyRow> {
    let layout = inputs.layout;
    let seeds = inputs.plan.seeds;
    let test_loss = |model: &str, seed: usize| {
        rensou_train::read_metrics(&layout.run_dir(&task_id(model, seed as u64)))
            .ok()?
            .last()
            .map(|m| m.test_loss)
    };
    let rows = rows(inputs.models, seeds, chance, read, &test_loss);
    blocks.push(Block::Heading(2, "How well the models learned".into()));
    let chances: Vec<String> = chance
        .iter()
        .flat_map(|(label, per)| {
            per.iter()
                .map(move |(m, c)| format!("{label} on {m}: {c:.3}"))
        })
        .collect();
    blocks.push(Block::Para(format!(
        "Accuracy of the shared classifiers on each model's generations from the test split: \
         reconstruction (m -> m), cross-generation (a -> b: b generated from a, judged \
         against a's label) and joint coherence (prior samples whose modalities agree), mean \
         [95% interval] across seeds; and the final test loss (lower is better). Chance \
         (largest class share in the test split): {}.",
        if chances.is_empty() {
            "unknown (the dataset could not be read)".to_owned()
        } else {
            chances.join(", ")
        }
    )));
    blocks.push(Block::Para(format!("**The rule.** {}", rule())));
    let mut table: Vec<Vec<String>> = Vec::new();
    type Key = (usize, String, usize, String);
    let mut keyed: BTreeMap<Key, BTreeMap<String, String>> = BTreeMap::new();
    let order = |model: &str| inputs.models.iter().position(|m| m.name == model);
    let rank = |measure: &str| {
        ["reconstruction", "cross", "joint", "test loss"]
            .iter()
            .position(|m| *m == measure)
            .unwrap_or(4)
    };
    for r in &rows {
        let key = (
            order(&r.model).unwrap_or(usize::MAX),
            r.model.clone(),
            rank(&r.measure),
            match r.measure.as_str() {
                "reconstruction" => format!("{} -> {} (reconstruction)", r.of, r.of),
                "joint" => "joint (prior samples)".into(),
                "test loss" => "test loss".into(),
                _ => r.of.clone(),
            },
        );
        let column = r.label.clone().unwrap_or_else(|| "value".into());
        keyed.entry(key).or_default().insert(column, cell(r));
    }
    for ((_, model, _, what), cells) in keyed {
        let get = |c: &str| cells.get(c).cloned().unwrap_or_else(|| "-".into());
        if what == "test loss" {
            table.push(vec![model, what, get("value"), String::new()]);
        } else {
            table.push(vec![model, what, get("number"), get("colour")]);
        }
    }
    blocks.push(Block::Table(
        ["model", "generation", "number accuracy", "colour accuracy"]
            .map(String::from)
            .to_vec(),
        table,
    ));
    if layout.classifiers().is_dir() {
        let acc = |m: &str, l: &str| {
            std::fs::read_to_string(layout.classifier_record(m, l))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["test_accuracy"].as_f64())
                .map_or("n/a".to_owned(), |a| format!("{a:.4}"))
        };
        let list = inputs
            .modalities
            .iter()
            .flat_map(|m| LABELS.map(move |l| (m, l)))
            .filter(|(m, l)| layout.classifier_record(m, l).is_file())
            .map(|(m, l)| format!("{m}/{l}: {}", acc(m, l)))
            .collect();
        blocks.push(Block::Para(
            "Test accuracy of the shared classifiers themselves (the ceiling of every accuracy \
             above):"
                .into(),
        ));
        blocks.push(Block::List(list));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(values: &[f64]) -> MeanCi {
        summarise(values)
    }

    #[test]
    fn chance_is_the_commonest_class_share() {
        assert_eq!(largest_share(&[1, 1, 2, 3]), Some(0.5));
        assert_eq!(largest_share(&[0, 1, 2, 3]), Some(0.25));
        assert_eq!(largest_share(&[]), None);
    }

    #[test]
    fn an_interval_reaching_chance_cannot_be_judged() {
        let chance = 1.0 / 9.0;
        // The quick preset's MMVAE: reconstructions at chance.
        let mm = ci(&[0.112, 0.109, 0.117]);
        let vae = ci(&[0.63, 0.60, 0.66]);
        let j = judge("number", "oscn", &[("MMVAE", mm), ("VAE", vae)], chance);
        let Judgement::CannotJudge { reason } = j else {
            panic!("{j:?}")
        };
        assert!(
            reason.starts_with("MMVAE reconstructions of oscn at chance for number: 0.113")
                && reason.contains("chance 0.111"),
            "{reason}"
        );
        // Below chance counts too; so does one seed at chance.
        let below = ci(&[0.05, 0.06, 0.04]);
        assert!(matches!(
            judge("number", "oscn", &[("VAE", below)], chance),
            Judgement::CannotJudge { .. }
        ));
        assert!(matches!(
            judge("number", "oscn", &[("VAE", ci(&[0.11]))], chance),
            Judgement::CannotJudge { .. }
        ));
        // A wide interval that reaches chance, though its mean is well above it.
        let wide = ci(&[0.1, 0.5, 0.9]);
        assert!(wide.mean > 0.4 && wide.lo < chance);
        assert!(matches!(
            judge("number", "oscn", &[("MMVAE", wide)], chance),
            Judgement::CannotJudge { .. }
        ));
    }

    #[test]
    fn above_chance_below_adequate_carries_the_numbers_and_adequate_stands_alone() {
        let chance = 0.25;
        let mm = ci(&[0.60, 0.62, 0.64]);
        let vae = ci(&[0.95, 0.96, 0.97]);
        let j = judge("colour", "cmnist", &[("MMVAE", mm), ("VAE", vae)], chance);
        let Judgement::BelowAdequate { notes } = j else {
            panic!("{j:?}")
        };
        assert_eq!(notes.len(), 2);
        assert!(notes[0].starts_with("MMVAE 0.620 ["), "{notes:?}");
        assert_eq!(
            judge("colour", "cmnist", &[("MMVAE", vae), ("VAE", vae)], chance),
            Judgement::Adequate
        );
        // Exactly at the threshold is adequate.
        assert_eq!(
            judge("colour", "cmnist", &[("VAE", ci(&[0.79, 0.81]))], chance),
            Judgement::Adequate
        );
    }

    #[test]
    fn no_recorded_accuracy_is_unknown() {
        assert_eq!(
            judge("number", "oscn", &[("MMVAE", ci(&[]))], 0.1),
            Judgement::Unknown
        );
    }
}
