//! The magnitude (ordinal-structure) metric of the paper, with correlation helpers.
//!
//! For every number present (e.g. 1..9), the mean latent of its items; the Euclidean distances
//! between those means; and the correlation, over pairs `i < j`, between `distance(i, j)` and
//! `|i − j|`: Pearson's r (the paper reports `|r|`) and Spearman's rho. A latent space that
//! orders numbers by magnitude puts 2 nearer to 3 than to 9, so `|r|` approaches 1.

use crate::error::{ClusterError, Result};
use crate::matrix::{check_labels, encode_labels, sq_dist, Matrix};

/// The magnitude metric of one set of latents.
#[derive(Clone, Debug, PartialEq)]
pub struct Magnitude {
    /// The numbers present, ascending.
    pub numbers: Vec<i64>,
    /// Items per number.
    pub counts: Vec<usize>,
    /// Mean latent per number, `numbers.len() x dim`.
    pub means: Matrix,
    /// Distances between the means, `numbers.len() x numbers.len()`, row-major, symmetric.
    pub distances: Vec<f64>,
    /// Pairs `i < j` correlated.
    pub pairs: usize,
    /// Pearson's r between `distance(i, j)` and `|i − j|`; `None` with fewer than 3 pairs or a
    /// constant distance.
    pub pearson_r: Option<f64>,
    /// Spearman's rho (average ranks for ties) between the same; `None` as for Pearson.
    pub spearman_rho: Option<f64>,
}

impl Magnitude {
    /// `|r|`, the paper's number.
    pub fn abs_pearson_r(&self) -> Option<f64> {
        self.pearson_r.map(f64::abs)
    }

    /// The `(|i − j|, distance(i, j))` pairs for `i < j`, in row order.
    pub fn pairs_by_gap(&self) -> Vec<(f64, f64)> {
        let m = self.numbers.len();
        let mut out = Vec::with_capacity(self.pairs);
        for i in 0..m {
            for j in i + 1..m {
                let gap = (self.numbers[j] - self.numbers[i]).unsigned_abs() as f64;
                out.push((gap, self.distances[i * m + j]));
            }
        }
        out
    }
}

/// The magnitude metric of the rows of `x` labelled by `numbers`; needs at least 2 distinct
/// numbers.
pub fn magnitude(x: &Matrix, numbers: &[i64]) -> Result<Magnitude> {
    check_labels("number labels", numbers, x.n())?;
    let d = x.dim();
    let (codes, values) = encode_labels(numbers);
    let m = values.len();
    if m < 2 {
        return Err(ClusterError::Degenerate(format!(
            "the magnitude metric needs at least 2 distinct numbers; got {m}"
        )));
    }
    let mut sums = vec![0.0; m * d];
    let mut counts = vec![0usize; m];
    for (row, &c) in x.rows().zip(&codes) {
        counts[c] += 1;
        for (s, v) in sums[c * d..(c + 1) * d].iter_mut().zip(row) {
            *s += v;
        }
    }
    for (chunk, &c) in sums.chunks_exact_mut(d).zip(&counts) {
        chunk.iter_mut().for_each(|v| *v /= c as f64);
    }
    let means = Matrix::new(m, d, sums)?;
    let mut distances = vec![0.0; m * m];
    let mut gaps = Vec::new();
    let mut dists = Vec::new();
    for i in 0..m {
        for j in i + 1..m {
            let v = sq_dist(means.row(i), means.row(j)).sqrt();
            distances[i * m + j] = v;
            distances[j * m + i] = v;
            gaps.push((values[j] - values[i]).unsigned_abs() as f64);
            dists.push(v);
        }
    }
    let (pearson_r, spearman_rho) = if dists.len() >= 3 {
        (pearson(&dists, &gaps), spearman(&dists, &gaps))
    } else {
        (None, None)
    };
    Ok(Magnitude {
        numbers: values,
        counts,
        means,
        pairs: dists.len(),
        distances,
        pearson_r,
        spearman_rho,
    })
}

/// Pearson's correlation of two equally long series (two-pass, clipped to `[-1, 1]`); `None`
/// when they differ in length, have fewer than 2 values, or one is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (da, db) = (x - ma, y - mb);
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        return None;
    }
    Some((sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman's rank correlation: Pearson's r of the average ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() {
        return None;
    }
    pearson(&average_ranks(a), &average_ranks(b))
}

/// Ranks `1..=n` of the values, ties sharing their average rank (scipy's `rankdata`).
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut ranks = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && v[order[end]] == v[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end.
        let avg = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = avg;
        }
        start = end;
    }
    ranks
}
