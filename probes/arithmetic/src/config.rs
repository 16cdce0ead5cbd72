//! The arithmetic probe's configuration: every field, its default (the paper's protocol) and its
//! validation.

use serde::{Deserialize, Serialize};

use rensou_api::probe::{Better, MetricSpec, ProbeConfig, ProbeContext, ProbePlugin, Scope};
use rensou_api::typetag;

use crate::error::{ArithmeticError, Result};
use crate::NAME;

/// Largest accepted number of samples decoded per equation.
pub const MAX_SAMPLES: usize = 100_000;
/// Largest accepted number of figure rows (equations shown in `arithmetic.png`).
pub const MAX_FIGURE_EQUATIONS: usize = 32;
/// Largest accepted number of result samples shown per figure row.
pub const MAX_FIGURE_SAMPLES: usize = 32;
/// Largest accepted absolute value of an equation operand.
pub const MAX_OPERAND: i64 = 1_000_000;

/// The ten equations the paper reports, as `(a, b, c)` for `a + b − c`.
pub const PAPER_EQUATIONS: [[i64; 3]; 10] = [
    [1, 1, 1],
    [1, 9, 8],
    [1, 8, 4],
    [2, 7, 1],
    [2, 7, 2],
    [3, 3, 3],
    [3, 5, 2],
    [3, 6, 3],
    [5, 3, 5],
    [9, 7, 8],
];

/// Configuration of the arithmetic probe (`[[probes]] type = "arithmetic"`).
///
/// For every equation `(a, b, c)` the probe forms z = mean\[a\] + mean\[b\] − mean\[c\] from the
/// class means of the modality's encoder locations, draws `samples` latents from the prior's
/// family located at z, decodes them and classifies the decoded items; a sample is correct when
/// the classifier says `a + b − c`. Every field is optional; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArithmeticConfig {
    /// The modality whose latents are added and whose decoder renders the result (`oscn`).
    /// Any modality with an integer `label` works.
    pub modality: String,
    /// The label that holds the number (`number`).
    pub label: String,
    /// Latent samples decoded per equation (64, as in the paper).
    pub samples: usize,
    /// Named equations reported one by one, `[a, b, c]` for `a + b − c` (the paper's ten).
    /// An equation whose operands are not classes of the data is reported as skipped.
    pub equations: Vec<[i64; 3]>,
    /// Whether to also evaluate every valid triple: `a`, `b`, `c` classes of the data, `a ≠ c`
    /// and `a + b − c` a class of the data (for numbers 1..=9: 1 ≤ a + b − c ≤ 9) (true).
    pub all_triples: bool,
    /// Equations drawn as rows of `arithmetic.png` (1+9−8, 3+5−2, 9+7−8); empty: no figure.
    pub figure_equations: Vec<[i64; 3]>,
    /// Decoded result samples shown per figure row (8).
    pub figure_samples: usize,
    /// Seed of the latent samples; omitted: derived from the run's seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for ArithmeticConfig {
    fn default() -> Self {
        ArithmeticConfig {
            modality: "oscn".to_owned(),
            label: "number".to_owned(),
            samples: 64,
            equations: PAPER_EQUATIONS.to_vec(),
            all_triples: true,
            figure_equations: vec![[1, 9, 8], [3, 5, 2], [9, 7, 8]],
            figure_samples: 8,
            seed: None,
        }
    }
}

fn fail(field: &'static str, message: impl Into<String>) -> ArithmeticError {
    ArithmeticError::Config {
        field,
        message: message.into(),
    }
}

fn check_equations(field: &'static str, equations: &[[i64; 3]]) -> Result<()> {
    for (i, eq) in equations.iter().enumerate() {
        if let Some(v) = eq.iter().find(|v| v.abs() > MAX_OPERAND) {
            return Err(fail(
                field,
                format!("entry {i} has operand {v}; operands must lie in -{MAX_OPERAND}..={MAX_OPERAND}"),
            ));
        }
    }
    Ok(())
}

impl ArithmeticConfig {
    /// Checks every field; the error names the field and what is allowed.
    pub fn check(&self) -> Result<()> {
        if self.modality.trim().is_empty() {
            return Err(fail("modality", "must name a modality of the model"));
        }
        if self.label.trim().is_empty() {
            return Err(fail("label", "must name a label (e.g. `number`)"));
        }
        if self.samples == 0 || self.samples > MAX_SAMPLES {
            return Err(fail(
                "samples",
                format!("must be 1..={MAX_SAMPLES}, got {}", self.samples),
            ));
        }
        check_equations("equations", &self.equations)?;
        check_equations("figure_equations", &self.figure_equations)?;
        if self.equations.is_empty() && !self.all_triples {
            return Err(fail(
                "equations",
                "is empty and `all_triples` is false: there is nothing to evaluate",
            ));
        }
        if self.figure_equations.len() > MAX_FIGURE_EQUATIONS {
            return Err(fail(
                "figure_equations",
                format!(
                    "at most {MAX_FIGURE_EQUATIONS} rows, got {}",
                    self.figure_equations.len()
                ),
            ));
        }
        if self.figure_samples == 0 || self.figure_samples > MAX_FIGURE_SAMPLES {
            return Err(fail(
                "figure_samples",
                format!(
                    "must be 1..={MAX_FIGURE_SAMPLES}, got {}",
                    self.figure_samples
                ),
            ));
        }
        if self.figure_samples > self.samples {
            return Err(fail(
                "figure_samples",
                format!(
                    "cannot exceed `samples` ({}), got {}",
                    self.samples, self.figure_samples
                ),
            ));
        }
        Ok(())
    }
}

#[typetag::serde(name = "arithmetic")]
impl ProbeConfig for ArithmeticConfig {
    fn validate(&self) -> rensou_api::Result<()> {
        Ok(self.check()?)
    }

    fn run(&self, ctx: &ProbeContext<'_>) -> rensou_api::Result<serde_json::Value> {
        Ok(crate::probe::run(self, ctx)?)
    }

    fn clone_box(&self) -> Box<dyn ProbeConfig> {
        Box::new(self.clone())
    }

    fn metrics(&self) -> Vec<MetricSpec> {
        vec![
            MetricSpec::new(
                "all_triples.accuracy",
                "accuracy over all valid triples",
                Better::Higher,
                Scope::Modality,
            ),
            MetricSpec::new(
                "equations.accuracy",
                "accuracy of the named equations",
                Better::Higher,
                Scope::Modality,
            ),
        ]
    }
}

fn default_config() -> Box<dyn ProbeConfig> {
    Box::new(ArithmeticConfig::default())
}

rensou_api::inventory::submit! {
    ProbePlugin {
        name: NAME,
        description: "latent arithmetic: decode mean[a] + mean[b] - mean[c] and classify the number",
        default_config,
    }
}
