//! The paper's four claims as data: each claim's id and text, and the metrics that test it:
//! which probe records the metric, on which modalities, and whether it decides the verdict.
//! Which way a metric is better (the direction a claim predicts for the MMVAE) is what its
//! probe declares ([`resolve`]), so the report and the probes cannot disagree.

use anyhow::Context;
use rensou_api::probe::{Better, MetricSpec};

/// One claim of the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Its number, 1..=4.
    pub id: usize,
    /// What it says.
    pub title: &'static str,
    /// The label the claim is about (number or colour): the models must have learned it on
    /// the claim's modality for its verdict to mean anything ([`super::adequacy`]).
    pub label: &'static str,
}

/// The paper's claims: in each, the MMVAE's latents are better than a single-modality VAE's.
pub const CLAIMS: [Claim; 4] = [
    Claim {
        id: 1,
        title: "Number separability of the latents",
        label: "number",
    },
    Claim {
        id: 2,
        title: "Magnitude (ordinal) structure of the latents",
        label: "number",
    },
    Claim {
        id: 3,
        title: "Colour clustering of CMNIST latents",
        label: "colour",
    },
    Claim {
        id: 4,
        title: "Latent arithmetic z(a) + z(b) - z(c)",
        label: "number",
    },
];

/// The claim with id `id`.
pub fn claim(id: usize) -> Option<&'static Claim> {
    CLAIMS.iter().find(|c| c.id == id)
}

/// The claims' texts, in order (as `summary.json` lists them).
pub fn titles() -> [&'static str; 4] {
    CLAIMS.map(|c| c.title)
}

/// One metric of one claim: a typed metric its probe declares ([`ProbeConfig::metrics`]) and
/// records in `RUN/probes/<probe>/scalars.json`.
///
/// [`ProbeConfig::metrics`]: rensou_api::probe::ProbeConfig::metrics
#[derive(Clone, Copy, Debug)]
pub struct ClaimMetric {
    /// The claim's id.
    pub claim: usize,
    /// The probe that records it.
    pub probe: &'static str,
    /// The metric's declared name.
    pub metric: &'static str,
    /// Modalities it applies to (None: all).
    pub only: Option<&'static str>,
    /// The metric that decides the claim's verdict.
    pub primary: bool,
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

/// Every claim's metrics, the primary one first.
pub const METRICS: &[ClaimMetric] = &[
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

/// A claim metric with what its probe declares: its description and which way is better.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The metric.
    pub def: ClaimMetric,
    /// What it measures, in the probe's words.
    pub description: String,
    /// Which way is better.
    pub better: Better,
}

/// The claims' metrics with their declarations; an error names a metric its probe does not
/// declare (the table above and the probes disagree).
pub fn resolve(declared: &dyn Fn(&str) -> Vec<MetricSpec>) -> anyhow::Result<Vec<Resolved>> {
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
pub fn declared_by_registry(probe: &str) -> Vec<MetricSpec> {
    rensou_api::registry::ProbeRegistry::collect()
        .ok()
        .and_then(|r| {
            r.get(probe)
                .ok()
                .map(|plugin| (plugin.default_config)().metrics())
        })
        .unwrap_or_default()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rensou_api::probe::Scope;

    /// Every claim metric declared as its probe would, higher is better.
    pub(in crate::paper::report) fn declared(probe: &str) -> Vec<MetricSpec> {
        METRICS
            .iter()
            .filter(|d| d.probe == probe)
            .map(|d| MetricSpec::new(d.metric, d.metric, Better::Higher, Scope::Modality))
            .collect()
    }

    #[test]
    fn four_claims_each_with_one_primary_metric() {
        assert_eq!(CLAIMS.map(|c| c.id), [1, 2, 3, 4]);
        for claim in CLAIMS {
            let primary = METRICS
                .iter()
                .filter(|m| m.claim == claim.id && m.primary)
                .count();
            assert_eq!(primary, 1, "claim {}", claim.id);
        }
        assert!(METRICS.iter().all(|m| (1..=4).contains(&m.claim)));
    }

    #[test]
    fn a_claim_metric_no_probe_declares_is_an_error() {
        let e = resolve(&|_: &str| Vec::new()).unwrap_err();
        assert!(e.to_string().contains("silhouette.number"), "{e}");
        // The linked built-in probes declare every metric the report compares.
        resolve(&declared_by_registry).unwrap();
        assert_eq!(resolve(&declared).unwrap().len(), METRICS.len());
    }
}
