//! The report's statistics: each claim metric's values across seeds for two models, their means
//! with 95% t intervals, Welch's t-test and Hedges' g ([`rensou_api::stats`]), and the rule that
//! turns a primary comparison into an outcome ([`outcome`]). Values in, numbers out: where the
//! values come from is the caller's [`ReadScalars`].

use rensou_api::probe::{Better, Of, Scalars};
use rensou_api::stats::{mean_ci, welch, MeanCi, Welch};
use serde::Serialize;

use super::adequacy::Judgement;
use super::claims::{ClaimMetric, Resolved};

/// The confidence level of every interval.
pub const LEVEL: f64 = 0.95;

/// A mean of `values` with its [`LEVEL`] interval.
pub fn summarise(values: &[f64]) -> MeanCi {
    mean_ci(values, LEVEL)
}

/// A run's typed scalars: `(model, seed, probe) -> scalars`, `None` when the probe has none
/// (not run, failed, or the file is unreadable).
pub type ReadScalars<'a> = dyn Fn(&str, usize, &str) -> Option<Scalars> + 'a;

/// A comparison of the multimodal model with the single-modality one on one metric.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The claim's id.
    pub claim: usize,
    /// The metric's description.
    pub metric: String,
    /// The modality it is measured on.
    pub modality: String,
    /// Whether it decides the claim.
    pub primary: bool,
    /// Which way is better.
    pub better: Better,
    /// The MMVAE's values across seeds.
    pub mmvae: MeanCi,
    /// The modality's VAE's values across seeds.
    pub vae: MeanCi,
    /// The MMVAE's values, one per seed that has one.
    pub mmvae_values: Vec<f64>,
    /// The VAE's values, one per seed that has one.
    pub vae_values: Vec<f64>,
    /// MMVAE against VAE.
    pub test: Welch,
}

/// One metric of one model on one modality, beside the paper's MMVAE (`mmvae`, the mixture of
/// experts) and the modality's VAE.
#[derive(Clone, Debug, Serialize)]
pub struct BesideRow {
    /// The model.
    pub model: String,
    /// The claim's id.
    pub claim: usize,
    /// The metric's description.
    pub metric: String,
    /// The modality it is measured on.
    pub modality: String,
    /// Whether it decides the claim.
    pub primary: bool,
    /// Which way is better.
    pub better: Better,
    /// The model's values across seeds.
    pub values: MeanCi,
    /// The paper's MMVAE's values, where it has the modality and is not the model.
    pub mmvae: Option<MeanCi>,
    /// The modality's VAE's values.
    pub vae: MeanCi,
    /// The model against the VAE.
    pub vs_vae: Welch,
    /// `None` for a modality `mmvae` does not have, or when the model is `mmvae` itself.
    pub vs_mmvae: Option<Welch>,
}

/// What one primary comparison says about its claim.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
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
pub fn outcome(a: &MeanCi, b: &MeanCi, t: &Welch, better: Better) -> Outcome {
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

/// The approximate 95% interval of Hedges' g between groups of `n1` and `n2` values (the
/// large-sample normal approximation of Hedges & Olkin: standard error
/// sqrt((n1 + n2) / (n1 n2) + g^2 / (2 (n1 + n2)))); NaN bounds when g is not finite.
pub fn g_interval(g: f64, n1: usize, n2: usize) -> (f64, f64) {
    if !g.is_finite() || n1 == 0 || n2 == 0 {
        return (f64::NAN, f64::NAN);
    }
    let (a, b) = (n1 as f64, n2 as f64);
    let se = ((a + b) / (a * b) + g * g / (2.0 * (a + b))).sqrt();
    let z = 1.959_963_984_540_054;
    (g - z * se, g + z * se)
}

/// One verdict: a primary comparison of a multimodal model with a VAE on one claim and
/// modality, its outcome, and how it may be read ([`Judgement`]).
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    /// The claim's id.
    pub claim: usize,
    /// The modality.
    pub modality: String,
    /// The multimodal model (`mmvae` or a fusion's model).
    pub model: String,
    /// `reproduced`, `reversed`, `not reproduced`, `not testable` or `cannot be judged`.
    pub outcome: String,
    /// How the verdict may be read, from the models' reconstructions.
    pub judgement: Judgement,
    /// Hedges' g of the model against the VAE, signed so that positive is the direction the
    /// claim predicts.
    pub g: f64,
    /// Its approximate 95% interval ([`g_interval`]).
    pub g_interval: (f64, f64),
    /// Seeds behind the model's and the VAE's values.
    pub n: (usize, usize),
    /// Welch's p.
    pub p: f64,
}

impl Judged {
    /// The verdict on `values` (the model's) against `vae` with `test`, read by `judgement`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        claim: usize,
        modality: &str,
        model: &str,
        values: &MeanCi,
        vae: &MeanCi,
        test: &Welch,
        better: Better,
        judgement: Judgement,
    ) -> Self {
        let g = match better {
            Better::Higher => test.hedges_g,
            Better::Lower => -test.hedges_g,
        };
        let outcome = match (&judgement, outcome(values, vae, test, better)) {
            (Judgement::CannotJudge { .. }, _) => "cannot be judged",
            (_, Outcome::Reproduced) => "reproduced",
            (_, Outcome::Reversed) => "reversed",
            (_, Outcome::NotReproduced) => "not reproduced",
            (_, Outcome::NotTestable(_)) => "not testable",
        };
        Judged {
            claim,
            modality: modality.to_owned(),
            model: model.to_owned(),
            outcome: outcome.to_owned(),
            judgement,
            g,
            g_interval: g_interval(g, values.n, vae.n),
            n: (values.n, vae.n),
            p: test.p,
        }
    }
}

/// The values of metric `def` for modality `m` of `model`, one per seed that has them.
pub fn metric_values(
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
pub fn compare(
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
                mmvae: summarise(&mm),
                vae: summarise(&vae),
                test: welch(&mm, &vae),
                mmvae_values: mm,
                vae_values: vae,
            });
        }
    }
    comparisons
}

/// Every claim metric of `model` on each of `modalities`, against the modality's VAE and
/// (where it has the modality) the paper's `mmvae`.
pub fn rows_beside(
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
                values: summarise(&a),
                mmvae: mm.as_ref().map(|v| summarise(v)),
                vae: summarise(&vae),
                vs_vae: welch(&a, &vae),
                vs_mmvae: mm.as_ref().map(|v| welch(&a, v)),
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::claims::resolve;
    use super::super::claims::tests::declared;
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
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

    /// Values worked by hand: 0.5, 0.6, 0.7 against 0.1, 0.2, 0.3. Means 0.6 and 0.2, SD 0.1
    /// each; the interval's half-width is t(0.975; 2) * 0.1 / sqrt(3) with
    /// t(0.975; 2) = 0.95 / sqrt(2 * 0.975 * 0.025); t = 0.4 / sqrt(0.02 / 3) = sqrt(24) on
    /// 4 df; two-sided p = 1 - sin(a) * (1 + cos^2(a) / 2) with tan^2(a) = 24 / 4; Hedges'
    /// g = (0.4 / 0.1) * (1 - 3 / (4 * 6 - 9)) = 3.2.
    #[test]
    fn a_comparison_has_the_known_mean_interval_t_p_and_g() {
        let pair = ["oscn".to_owned(), "cmnist".to_owned()];
        let metrics = resolve(&declared).unwrap();
        let read = |model: &str, seed: usize, probe: &str| -> Option<Scalars> {
            (probe == "cluster").then_some(())?;
            let base = if model == "mmvae" { 0.5 } else { 0.1 };
            Some(cluster(base + seed as f64 * 0.1, 0.0))
        };
        let comps = compare(&pair, 3, &metrics, &read);
        let c = comps
            .iter()
            .find(|c| c.primary && c.claim == 1 && c.modality == "oscn")
            .unwrap();
        let half = 0.95 / (2.0_f64 * 0.975 * 0.025).sqrt() * 0.1 / 3.0_f64.sqrt();
        assert!(close(half, 0.248_413_771_175_033_1));
        assert_eq!(c.mmvae.n, 3);
        assert!(close(c.mmvae.mean, 0.6) && close(c.vae.mean, 0.2));
        assert!(close(c.mmvae.sd, 0.1) && close(c.vae.sd, 0.1));
        assert!((c.mmvae.lo - (0.6 - half)).abs() < 1e-9, "{:?}", c.mmvae);
        assert!((c.mmvae.hi - (0.6 + half)).abs() < 1e-9, "{:?}", c.mmvae);
        assert!(close(c.test.t, 24.0_f64.sqrt()), "{:?}", c.test);
        assert!(close(c.test.df, 4.0), "{:?}", c.test);
        let sin = (6.0_f64 / 7.0).sqrt();
        let p = 1.0 - sin * (1.0 + 1.0 / 14.0);
        assert!((c.test.p - p).abs() < 1e-9, "{} vs {p}", c.test.p);
        assert!(close(c.test.hedges_g, 3.2), "{:?}", c.test);
        assert_eq!(
            outcome(&c.mmvae, &c.vae, &c.test, Better::Higher),
            Outcome::Reproduced
        );
        assert_eq!(
            outcome(&c.mmvae, &c.vae, &c.test, Better::Lower),
            Outcome::Reversed
        );
        // The VAE's rows beside the MMVAE: the same test from the other side.
        let rows = rows_beside("vae-oscn", &pair[..1], &pair, 3, &metrics, &read);
        let r = rows.iter().find(|r| r.primary && r.claim == 1).unwrap();
        assert!(close(r.vs_mmvae.unwrap().t, -(24.0_f64.sqrt())));
        assert!(close(r.vs_vae.t, 0.0) || r.vs_vae.t.is_nan());
    }

    #[test]
    fn the_interval_of_g_follows_the_normal_approximation() {
        // n1 = n2 = 5, g = 1: se = sqrt(10 / 25 + 1 / 20) = sqrt(0.45).
        let (lo, hi) = g_interval(1.0, 5, 5);
        let se = 0.45_f64.sqrt();
        assert!((lo - (1.0 - 1.959_963_984_540_054 * se)).abs() < 1e-12);
        assert!((hi - (1.0 + 1.959_963_984_540_054 * se)).abs() < 1e-12);
        assert!(g_interval(f64::NAN, 5, 5).0.is_nan());
        assert!(g_interval(1.0, 0, 5).1.is_nan());
    }

    #[test]
    fn the_verdict_rules() {
        let test = |a: &[f64], b: &[f64]| {
            let (ca, cb) = (summarise(a), summarise(b));
            outcome(&ca, &cb, &welch(a, b), Better::Higher)
        };
        let hi = [0.80, 0.82, 0.79, 0.81];
        let lo = [0.20, 0.22, 0.19, 0.21];
        assert_eq!(test(&hi, &lo), Outcome::Reproduced);
        assert_eq!(test(&lo, &hi), Outcome::Reversed);
        assert_eq!(
            test(&[0.5, 0.6, 0.4], &[0.55, 0.45, 0.5]),
            Outcome::NotReproduced
        );
        assert_eq!(
            test(&[0.5, 0.5, 0.5], &[0.4, 0.4, 0.4]),
            Outcome::NotTestable("no variance across seeds in either model")
        );
        assert!(matches!(test(&[0.9], &[0.1, 0.2]), Outcome::NotTestable(_)));
        assert!(matches!(test(&[], &[]), Outcome::NotTestable(_)));
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
        assert_eq!((oscn.mmvae.n, oscn.vae.n), (3, 4));
        assert_eq!(
            outcome(&oscn.mmvae, &oscn.vae, &oscn.test, oscn.better),
            Outcome::Reproduced
        );
        // Metrics nobody recorded are empty cells, not errors; colour is compared on cmnist only.
        let colour: Vec<&Comparison> = comps.iter().filter(|c| c.claim == 3).collect();
        assert!(colour
            .iter()
            .all(|c| c.modality == "cmnist" && c.mmvae.n == 0));
    }
}
