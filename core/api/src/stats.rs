//! Statistics for reports across seeds: means with t-based confidence intervals, Welch's t-test,
//! effect sizes. Pure functions on `f64` slices; no dependencies.

use serde::{Deserialize, Serialize};

/// Mean of `x` (NaN when empty).
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    x.iter().sum::<f64>() / x.len() as f64
}

/// Unbiased sample variance (NaN with fewer than two values).
pub fn variance(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction for the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    // One Lentz step with coefficient `aa`: updates `c` and `d`, returns the factor for `h`.
    let mut step = |aa: f64| {
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        d * c
    };
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= step(m * (b - m) * x / ((qam + m2) * (a + m2)));
        let del = step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)));
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// Regularised incomplete beta function I_x(a, b).
pub fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// CDF of Student's t distribution with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(df / 2.0, 0.5, x);
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// Quantile of Student's t distribution (`p` in (0, 1)), by bisection on the CDF.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    let (mut lo, mut hi) = (-1e4, 1e4);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Mean with a two-sided t confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    /// Number of values.
    pub n: usize,
    /// Sample mean.
    pub mean: f64,
    /// Sample standard deviation (NaN for n < 2).
    pub sd: f64,
    /// Lower bound of the interval (NaN for n < 2).
    pub lo: f64,
    /// Upper bound of the interval.
    pub hi: f64,
}

/// Mean of `x` with its `level` (e.g. 0.95) t confidence interval; NaN values are ignored.
pub fn mean_ci(x: &[f64], level: f64) -> MeanCi {
    let x: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    let n = x.len();
    let m = mean(&x);
    let sd = variance(&x).sqrt();
    let half = if n >= 2 {
        t_quantile(0.5 + level / 2.0, (n - 1) as f64) * sd / (n as f64).sqrt()
    } else {
        f64::NAN
    };
    MeanCi {
        n,
        mean: m,
        sd,
        lo: m - half,
        hi: m + half,
    }
}

/// Welch's two-sample t-test (unequal variances).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welch {
    /// t statistic of mean(a) − mean(b).
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Hedges' g (standardised mean difference with small-sample correction; pooled SD).
    pub hedges_g: f64,
}

/// Welch's t-test of `a` against `b` (NaN values ignored); NaN fields when either has < 2 values.
pub fn welch(a: &[f64], b: &[f64]) -> Welch {
    let a: Vec<f64> = a.iter().copied().filter(|v| !v.is_nan()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|v| !v.is_nan()).collect();
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (variance(&a), variance(&b));
    let diff = mean(&a) - mean(&b);
    let se2 = va / na + vb / nb;
    let t = diff / se2.sqrt();
    let df = se2 * se2 / ((va / na).powi(2) / (na - 1.0) + (vb / nb).powi(2) / (nb - 1.0));
    let p = if se2 == 0.0 {
        if diff == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        2.0 * t_cdf(-t.abs(), df)
    };
    let pooled = (((na - 1.0) * va + (nb - 1.0) * vb) / (na + nb - 2.0)).sqrt();
    let correction = 1.0 - 3.0 / (4.0 * (na + nb) - 9.0);
    Welch {
        t,
        df,
        p,
        hedges_g: diff / pooled * correction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scipy.stats (t.ppf, ttest_ind(equal_var=False), t.cdf).
    #[test]
    fn t_quantiles_match_scipy() {
        for (df, q) in [
            (1.0, 12.706_204_74),
            (2.0, 4.302_652_73),
            (5.0, 2.570_581_84),
            (19.0, 2.093_024_05),
            (100.0, 1.983_971_52),
        ] {
            assert!((t_quantile(0.975, df) - q).abs() < 1e-6, "df {df}");
        }
        assert!((t_cdf(-2.5, 7.3) - 0.019_825_117_332_800_214).abs() < 1e-9);
    }

    #[test]
    fn welch_matches_scipy() {
        let a = [0.61, 0.55, 0.72, 0.68, 0.59];
        let b = [0.31, 0.42, 0.28, 0.35, 0.39, 0.30];
        let w = welch(&a, &b);
        assert!((w.t - 7.564_761_821_426_633).abs() < 1e-9);
        assert!((w.p - 8.289_487_151_295_913e-5).abs() < 1e-10);
        let w = welch(&[1.0, 2.0, 3.0], &[1.5, 2.5, 3.5, 4.5]);
        assert!((w.t + 1.154_700_538_379_251_7).abs() < 1e-9);
        assert!((w.p - 0.300_802_707_255_176_1).abs() < 1e-9);
    }

    #[test]
    fn ci_contains_mean_and_shrinks_with_n() {
        let small = mean_ci(&[1.0, 2.0, 3.0], 0.95);
        assert!(small.lo < 2.0 && small.hi > 2.0);
        let big: Vec<f64> = (0..300).map(|i| f64::from(i % 3) + 1.0).collect();
        let big = mean_ci(&big, 0.95);
        assert!(big.hi - big.lo < small.hi - small.lo);
        assert!(mean_ci(&[1.0], 0.95).lo.is_nan());
    }
}
