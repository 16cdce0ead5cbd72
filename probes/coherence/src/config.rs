//! The coherence probe's configuration: every field, its default and its validation.

use serde::{Deserialize, Serialize};

use rensou_api::probe::{Better, MetricSpec, ProbeConfig, ProbeContext, ProbePlugin, Scope};
use rensou_api::typetag;

use crate::error::{CoherenceError, Result};
use crate::NAME;

/// Largest accepted number of joint (prior) samples.
pub const MAX_JOINT_SAMPLES: usize = 1_000_000;
/// Largest accepted number of figure rows per class.
pub const MAX_FIGURE_PER_CLASS: usize = 8;

/// Configuration of the coherence probe (`[[probes]] type = "coherence"`), the iffsid/mmvae
/// protocol: cross-generation coherence from every modality to every other, reconstruction
/// accuracy, and joint coherence of prior samples, judged by the run's shared classifiers.
/// Every field is optional; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoherenceConfig {
    /// Labels to check (`number`, `colour`); each is checked on the modalities that carry it,
    /// and a label no modality carries is noted and skipped.
    pub labels: Vec<String>,
    /// Prior samples for joint coherence (1000); 0 turns joint coherence off.
    pub joint_samples: usize,
    /// At most this many items (pairs) of the split, drawn at random with the seed; 0: all.
    pub max_items: usize,
    /// Label whose classes make the rows of `coherence.png` (`number`).
    pub figure_label: String,
    /// Items per class of `figure_label` shown in the figure (1); 0: no figure.
    pub figure_per_class: usize,
    /// Seed of the prior samples and the item subset; omitted: derived from the run's seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for CoherenceConfig {
    fn default() -> Self {
        CoherenceConfig {
            labels: vec!["number".to_owned(), "colour".to_owned()],
            joint_samples: 1000,
            max_items: 0,
            figure_label: "number".to_owned(),
            figure_per_class: 1,
            seed: None,
        }
    }
}

fn fail(field: &'static str, message: impl Into<String>) -> CoherenceError {
    CoherenceError::Config {
        field,
        message: message.into(),
    }
}

impl CoherenceConfig {
    /// Checks every field; the error names the field and what is allowed.
    pub fn check(&self) -> Result<()> {
        if self.labels.is_empty() {
            return Err(fail(
                "labels",
                "must name at least one label (e.g. `number`)",
            ));
        }
        for (i, label) in self.labels.iter().enumerate() {
            if label.trim().is_empty() {
                return Err(fail("labels", format!("entry {i} is empty")));
            }
            if self.labels[i + 1..].contains(label) {
                return Err(fail("labels", format!("lists `{label}` twice")));
            }
        }
        if self.joint_samples > MAX_JOINT_SAMPLES {
            return Err(fail(
                "joint_samples",
                format!(
                    "must be 0..={MAX_JOINT_SAMPLES}, got {}",
                    self.joint_samples
                ),
            ));
        }
        if self.figure_per_class > MAX_FIGURE_PER_CLASS {
            return Err(fail(
                "figure_per_class",
                format!(
                    "must be 0..={MAX_FIGURE_PER_CLASS}, got {}",
                    self.figure_per_class
                ),
            ));
        }
        if self.figure_per_class > 0 && self.figure_label.trim().is_empty() {
            return Err(fail("figure_label", "must name a label (e.g. `number`)"));
        }
        Ok(())
    }
}

#[typetag::serde(name = "coherence")]
impl ProbeConfig for CoherenceConfig {
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
        let mut specs = Vec::new();
        for label in crate::probe::METRIC_LABELS {
            specs.extend([
                MetricSpec::new(
                    &format!("reconstruction.{label}"),
                    &format!("{label} accuracy of reconstructions"),
                    Better::Higher,
                    Scope::Modality,
                ),
                MetricSpec::new(
                    &format!("cross.{label}"),
                    &format!("{label} accuracy of cross-generations"),
                    Better::Higher,
                    Scope::Pair,
                ),
                MetricSpec::new(
                    &format!("joint.{label}"),
                    &format!("joint coherence of {label} (prior samples)"),
                    Better::Higher,
                    Scope::Model,
                ),
            ]);
        }
        specs
    }
}

fn default_config() -> Box<dyn ProbeConfig> {
    Box::new(CoherenceConfig::default())
}

rensou_api::inventory::submit! {
    ProbePlugin {
        name: NAME,
        description: "cross-, joint coherence and reconstruction accuracy (iffsid/mmvae protocol)",
        default_config,
    }
}
