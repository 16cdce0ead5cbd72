//! Cross-validated linear-probe accuracy: multinomial logistic regression (softmax, L2 penalty,
//! standardised features) fitted with L-BFGS, scored with seeded stratified k-fold.
//!
//! The fitted model minimises `mean_i CE(softmax(W x_i + b), y_i) + |W|² / (2 C n)`, the
//! optimum of scikit-learn's `LogisticRegression(C=C)` (multinomial, intercept not penalised) on
//! features standardised with the training fold's mean and (population) standard deviation.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{ClusterError, Result};
use crate::matrix::{check_labels, encode_labels, Matrix};
use crate::parallel;

/// Settings of the logistic-regression fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Softmax {
    /// Inverse L2 strength, scikit-learn's `C` (positive; 1.0).
    pub c: f64,
    /// Largest number of L-BFGS iterations (at least 1; 500).
    pub max_iter: usize,
    /// Stop when the largest gradient component is at most this (positive; 1e-5).
    pub gtol: f64,
}

impl Default for Softmax {
    fn default() -> Self {
        Softmax {
            c: 1.0,
            max_iter: 500,
            gtol: 1e-5,
        }
    }
}

/// A fitted multinomial logistic regression.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxModel {
    /// Class labels, ascending; row `c` of `weights` scores `classes[c]`.
    pub classes: Vec<i64>,
    /// Weights on standardised features, `classes.len() x dim`, row-major.
    pub weights: Vec<f64>,
    /// Intercepts, one per class.
    pub bias: Vec<f64>,
    /// Feature means used for standardisation.
    pub mean: Vec<f64>,
    /// Feature standard deviations used for standardisation (1 where a feature is constant).
    pub scale: Vec<f64>,
    /// L-BFGS iterations used.
    pub iterations: usize,
}

impl Softmax {
    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        if !(self.c.is_finite() && self.c > 0.0) {
            return Err(ClusterError::parameter(
                "c",
                format!("must be positive; got {}", self.c),
            ));
        }
        if self.max_iter == 0 {
            return Err(ClusterError::parameter("max_iter", "must be at least 1"));
        }
        if !(self.gtol.is_finite() && self.gtol > 0.0) {
            return Err(ClusterError::parameter(
                "gtol",
                format!("must be positive; got {}", self.gtol),
            ));
        }
        Ok(())
    }

    /// Fits the rows of `x` to `labels`; needs at least one item.
    pub fn fit(&self, x: &Matrix, labels: &[i64]) -> Result<SoftmaxModel> {
        self.check()?;
        check_labels("linear-probe labels", labels, x.n())?;
        if x.n() == 0 {
            return Err(ClusterError::Degenerate(
                "cannot fit a linear probe on no items".into(),
            ));
        }
        let (n, d) = (x.n(), x.dim());
        let (codes, classes) = encode_labels(labels);
        let k = classes.len();
        let (mean, scale) = standardiser(x);
        let mut z = x.as_slice().to_vec();
        for row in z.chunks_exact_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&mean).zip(&scale) {
                *v = (*v - m) / s;
            }
        }
        if k == 1 {
            return Ok(SoftmaxModel {
                classes,
                weights: vec![0.0; d],
                bias: vec![0.0],
                mean,
                scale,
                iterations: 0,
            });
        }
        let lambda = 1.0 / (self.c * n as f64);
        let problem = Problem {
            x: &z,
            y: &codes,
            d,
            k,
            lambda,
        };
        let kp = k.div_ceil(4) * 4;
        let (theta, iterations) =
            lbfgs(&problem, vec![0.0; kp * (d + 1)], self.max_iter, self.gtol);
        // theta holds the weights in groups of 4 classes interleaved by feature
        // (`[group][feature][lane]`), then the (padded) intercepts.
        let (wp, b) = theta.split_at(kp * d);
        let mut weights = vec![0.0; k * d];
        for c in 0..k {
            for t in 0..d {
                weights[c * d + t] = wp[((c / 4) * d + t) * 4 + c % 4];
            }
        }
        Ok(SoftmaxModel {
            classes,
            weights,
            bias: b[..k].to_vec(),
            mean,
            scale,
            iterations,
        })
    }
}

impl SoftmaxModel {
    /// Class probabilities of every row of `x`, `n x classes`, row-major.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>> {
        let d = self.mean.len();
        if x.dim() != d {
            return Err(ClusterError::Shape {
                what: "linear-probe input row".into(),
                expected: d,
                actual: x.dim(),
            });
        }
        let k = self.classes.len();
        let mut out = Vec::with_capacity(x.n() * k);
        let mut zrow = vec![0.0; d];
        let mut logits = vec![0.0; k];
        for row in x.rows() {
            for ((z, v), (m, s)) in zrow
                .iter_mut()
                .zip(row)
                .zip(self.mean.iter().zip(&self.scale))
            {
                *z = (v - m) / s;
            }
            logits_of(&self.weights, &self.bias, &zrow, &mut logits);
            softmax_in_place(&mut logits);
            out.extend_from_slice(&logits);
        }
        Ok(out)
    }

    /// The most probable class of every row of `x` (the first on ties).
    pub fn predict(&self, x: &Matrix) -> Result<Vec<i64>> {
        let k = self.classes.len();
        let p = self.predict_proba(x)?;
        Ok(p.chunks_exact(k)
            .map(|row| {
                let mut best = 0;
                for (c, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = c;
                    }
                }
                self.classes[best]
            })
            .collect())
    }
}

/// Cross-validated linear-probe accuracy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearProbe {
    /// Number of stratified folds (at least 2; 5).
    pub folds: usize,
    /// The fit's settings.
    pub softmax: Softmax,
    /// Seed of the fold assignment.
    pub seed: u64,
    /// Worker threads for the folds (`0`: all cores). Results do not depend on it.
    pub threads: usize,
}

impl Default for LinearProbe {
    fn default() -> Self {
        LinearProbe {
            folds: 5,
            softmax: Softmax::default(),
            seed: 0,
            threads: 0,
        }
    }
}

/// The outcome of [`LinearProbe::score`].
#[derive(Clone, Debug, PartialEq)]
pub struct LinearProbeScore {
    /// Mean of the fold accuracies.
    pub accuracy: f64,
    /// Standard deviation (population) of the fold accuracies.
    pub accuracy_std: f64,
    /// Test accuracy of every fold.
    pub fold_accuracies: Vec<f64>,
    /// Share of the most frequent label (the accuracy of always guessing it).
    pub majority: f64,
    /// Number of distinct labels.
    pub classes: usize,
    /// L-BFGS iterations of every fold's fit.
    pub iterations: Vec<usize>,
}

impl LinearProbe {
    /// Checks the settings against `n` items.
    pub fn check(&self, n: usize) -> Result<()> {
        self.softmax.check()?;
        if self.folds < 2 {
            return Err(ClusterError::parameter("folds", "must be at least 2"));
        }
        if n < self.folds {
            return Err(ClusterError::Degenerate(format!(
                "{} folds need at least as many items; got {n}",
                self.folds
            )));
        }
        Ok(())
    }

    /// Fits on every fold's complement and scores on the fold.
    pub fn score(&self, x: &Matrix, labels: &[i64]) -> Result<LinearProbeScore> {
        check_labels("linear-probe labels", labels, x.n())?;
        self.check(x.n())?;
        let fold_of = stratified_folds(labels, self.folds, self.seed)?;
        let results: Vec<Result<(f64, usize)>> = parallel::map(self.folds, self.threads, |f| {
            let train: Vec<usize> = (0..x.n()).filter(|&i| fold_of[i] != f).collect();
            let test: Vec<usize> = (0..x.n()).filter(|&i| fold_of[i] == f).collect();
            let ytrain: Vec<i64> = train.iter().map(|&i| labels[i]).collect();
            let model = self.softmax.fit(&x.select_rows(&train), &ytrain)?;
            let pred = model.predict(&x.select_rows(&test))?;
            let hits = pred
                .iter()
                .zip(&test)
                .filter(|&(p, &i)| *p == labels[i])
                .count();
            Ok((hits as f64 / test.len().max(1) as f64, model.iterations))
        });
        let (fold_accuracies, iterations): (Vec<f64>, Vec<usize>) = results
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        let m = fold_accuracies.iter().sum::<f64>() / fold_accuracies.len() as f64;
        let var = fold_accuracies
            .iter()
            .map(|a| (a - m) * (a - m))
            .sum::<f64>()
            / fold_accuracies.len() as f64;
        let (codes, classes) = encode_labels(labels);
        let mut counts = vec![0usize; classes.len()];
        for c in codes {
            counts[c] += 1;
        }
        let majority = counts.iter().copied().max().unwrap_or(0) as f64 / x.n().max(1) as f64;
        Ok(LinearProbeScore {
            accuracy: m,
            accuracy_std: var.sqrt(),
            fold_accuracies,
            majority,
            classes: classes.len(),
            iterations,
        })
    }
}

/// Assigns every item a fold in `0..folds`, stratified by label: each label's items are shuffled
/// with a seeded ChaCha8 generator and dealt round-robin, continuing where the previous label
/// stopped, so every label is spread evenly and fold sizes differ by at most one.
pub fn stratified_folds(labels: &[i64], folds: usize, seed: u64) -> Result<Vec<usize>> {
    if folds == 0 {
        return Err(ClusterError::parameter("folds", "must be at least 1"));
    }
    let (codes, classes) = encode_labels(labels);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for (i, &c) in codes.iter().enumerate() {
        members[c].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold_of = vec![0usize; labels.len()];
    let mut next = 0usize;
    for m in &mut members {
        m.shuffle(&mut rng);
        for &i in m.iter() {
            fold_of[i] = next % folds;
            next += 1;
        }
    }
    Ok(fold_of)
}

/// Column means and population standard deviations (1 for constant columns).
fn standardiser(x: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (x.n(), x.dim());
    let mut mean = vec![0.0; d];
    for row in x.rows() {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut var = vec![0.0; d];
    for row in x.rows() {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    let scale = var
        .iter()
        .zip(&mean)
        .map(|(&s, m)| {
            let sd = (s / n.max(1) as f64).sqrt();
            // scikit-learn's StandardScaler leaves (near-)constant columns unscaled.
            if sd <= 10.0 * f64::EPSILON * m.abs().max(1.0) {
                1.0
            } else {
                sd
            }
        })
        .collect();
    (mean, scale)
}

fn logits_of(w: &[f64], b: &[f64], z: &[f64], out: &mut [f64]) {
    let d = z.len();
    for ((o, wr), bc) in out.iter_mut().zip(w.chunks_exact(d)).zip(b) {
        *o = bc + wr.iter().zip(z).map(|(a, v)| a * v).sum::<f64>();
    }
}

/// Softmax in place; returns `ln Σ exp` of the input.
fn softmax_in_place(v: &mut [f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for x in v.iter_mut() {
        *x = (*x - m).exp();
        s += *x;
    }
    for x in v.iter_mut() {
        *x /= s;
    }
    m + s.ln()
}

/// The penalised softmax cross-entropy on standardised rows.
struct Problem<'a> {
    x: &'a [f64],
    y: &'a [usize],
    d: usize,
    k: usize,
    lambda: f64,
}

impl Problem<'_> {
    /// Objective and gradient at `theta = [W^T (d x k), b (k)]`.
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { self.eval_avx2(theta, grad) };
            }
        }
        self.eval_impl(theta, grad)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn eval_avx2(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        self.eval_impl(theta, grad)
    }

    #[inline(always)]
    fn eval_impl(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (d, k) = (self.d, self.k);
        let kp = k.div_ceil(4) * 4;
        let (wp, b) = theta.split_at(kp * d);
        grad.iter_mut().for_each(|g| *g = 0.0);
        let (gwp, gb) = grad.split_at_mut(kp * d);
        let mut logits = vec![0.0; kp];
        let mut loss = 0.0;
        for (row, &y) in self.x.chunks_exact(d).zip(self.y) {
            for ((lg, blk), bg) in logits
                .chunks_exact_mut(4)
                .zip(wp.chunks_exact(d * 4))
                .zip(b.chunks_exact(4))
            {
                let dots = group_dots(row, blk);
                for l in 0..4 {
                    lg[l] = bg[l] + dots[l];
                }
            }
            let zy = logits[y];
            let lse = softmax_in_place(&mut logits[..k]);
            loss += lse - zy;
            logits[y] -= 1.0;
            // Padding lanes carry no probability, so their parameters stay at zero.
            logits[k..].iter_mut().for_each(|p| *p = 0.0);
            for (g, &p) in gb.iter_mut().zip(&logits) {
                *g += p;
            }
            for (gblk, pg) in gwp.chunks_exact_mut(d * 4).zip(logits.chunks_exact(4)) {
                for (&v, g4) in row.iter().zip(gblk.chunks_exact_mut(4)) {
                    for l in 0..4 {
                        g4[l] += v * pg[l];
                    }
                }
            }
        }
        let inv_n = 1.0 / self.y.len() as f64;
        grad.iter_mut().for_each(|g| *g *= inv_n);
        let mut penalty = 0.0;
        for (g, &wv) in grad[..kp * d].iter_mut().zip(wp) {
            *g += self.lambda * wv;
            penalty += wv * wv;
        }
        loss * inv_n + 0.5 * self.lambda * penalty
    }
}

/// Dot products of `row` with the 4 weight vectors of one class group (`[feature][lane]`).
#[inline(always)]
fn group_dots(row: &[f64], group: &[f64]) -> [f64; 4] {
    // Two accumulators (even and odd features) halve the dependency chain.
    let mut a = [0.0f64; 4];
    let mut b = [0.0f64; 4];
    let mut rows = row.chunks_exact(2);
    let mut cols = group.chunks_exact(8);
    for (x, c) in (&mut rows).zip(&mut cols) {
        for l in 0..4 {
            a[l] += x[0] * c[l];
            b[l] += x[1] * c[4 + l];
        }
    }
    if let (Some(&x), Some(c)) = (rows.remainder().first(), cols.remainder().get(..4)) {
        for l in 0..4 {
            a[l] += x * c[l];
        }
    }
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Limited-memory BFGS (10 pairs) with a backtracking Armijo line search; returns the
/// parameters and the iterations used.
fn lbfgs(p: &Problem<'_>, mut x: Vec<f64>, max_iter: usize, gtol: f64) -> (Vec<f64>, usize) {
    const MEMORY: usize = 10;
    let len = x.len();
    let mut g = vec![0.0; len];
    let mut f = p.eval(&x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho_hist: Vec<f64> = Vec::new();
    let mut xn = vec![0.0; len];
    let mut gn = vec![0.0; len];
    let mut iterations = 0;
    for it in 0..max_iter {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) <= gtol {
            break;
        }
        iterations = it + 1;
        // Two-loop recursion: direction = -H g.
        let mut q = g.clone();
        let mut alpha = vec![0.0; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            alpha[i] = rho_hist[i] * dot(&s_hist[i], &q);
            for (qv, yv) in q.iter_mut().zip(&y_hist[i]) {
                *qv -= alpha[i] * yv;
            }
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / dot(&g, &g).sqrt().max(f64::MIN_POSITIVE),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let beta = rho_hist[i] * dot(&y_hist[i], &q);
            for (qv, sv) in q.iter_mut().zip(&s_hist[i]) {
                *qv += (alpha[i] - beta) * sv;
            }
        }
        let mut dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &dir);
        if slope >= 0.0 {
            s_hist.clear();
            y_hist.clear();
            rho_hist.clear();
            let scale = 1.0 / dot(&g, &g).sqrt().max(f64::MIN_POSITIVE);
            dir = g.iter().map(|v| -v * scale).collect();
            slope = dot(&g, &dir);
        }
        // Backtracking line search (Armijo).
        let mut t = 1.0;
        let mut fnew = f;
        let mut accepted = false;
        for _ in 0..60 {
            for ((xv, &x0), &dv) in xn.iter_mut().zip(&x).zip(&dir) {
                *xv = x0 + t * dv;
            }
            fnew = p.eval(&xn, &mut gn);
            if fnew <= f + 1e-4 * t * slope {
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            break;
        }
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            if s_hist.len() == MEMORY {
                s_hist.remove(0);
                y_hist.remove(0);
                rho_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
            rho_hist.push(1.0 / sy);
        }
        std::mem::swap(&mut x, &mut xn);
        std::mem::swap(&mut g, &mut gn);
        let decrease = f - fnew;
        f = fnew;
        if decrease <= 1e-14 * f.abs().max(1.0) && decrease >= 0.0 {
            break;
        }
    }
    (x, iterations)
}
