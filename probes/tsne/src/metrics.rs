//! How faithful an embedding is: trustworthiness and k-nearest-neighbour accuracy.

use std::collections::BTreeMap;

use crate::error::{Result, TsneError};
use crate::knn::exact_knn;
use crate::parallel::{par_chunks, thread_count};
use crate::points::Points;

/// Trustworthiness of `low` as an embedding of `high` (scikit-learn's
/// `sklearn.manifold.trustworthiness`, Euclidean):
///
/// `T(k) = 1 − 2 / (n k (2n − 3k − 1)) · Σ_i Σ_{j ∈ U_i(k)} (r(i, j) − k)`,
///
/// where `U_i(k)` are the `k` nearest neighbours of `i` in `low` that are not among its `k`
/// nearest in `high`, and `r(i, j)` is the rank of `j` among the neighbours of `i` in `high`
/// (1 is the nearest). 1 means every embedded neighbourhood is a true one. High-dimensional
/// distances are computed in `f64`; equal distances rank by index. Needs `1 ≤ k < n / 2`.
/// Uses every core.
pub fn trustworthiness(high: Points<'_>, low: Points<'_>, k: usize) -> Result<f64> {
    let n = high.len();
    if low.len() != n {
        return Err(TsneError::Input(format!(
            "trustworthiness: {n} points but {} embedded points",
            low.len()
        )));
    }
    if k == 0 || 2 * k >= n {
        return Err(TsneError::parameter(
            "k",
            format!("trustworthiness needs 1 <= k < n / 2 (n = {n}, k = {k})"),
        ));
    }
    let threads = thread_count(0);
    let low_nn = exact_knn(low, k, threads);
    let dim = high.dim();
    // Column-major f64 copy for the distance rows.
    let mut cols = vec![0f64; n * dim];
    for (i, row) in high.data().chunks_exact(dim).enumerate() {
        for (d, &v) in row.iter().enumerate() {
            cols[d * n + i] = f64::from(v);
        }
    }
    let mut penalty = vec![0f64; n];
    par_chunks(
        &mut penalty,
        1,
        threads,
        #[inline(never)]
        |first, chunk| {
            let mut row = vec![0f64; n];
            let mut scratch = Vec::with_capacity(n);
            for (r, out) in chunk.iter_mut().enumerate() {
                let i = first + r;
                row.fill(0.0);
                for d in 0..dim {
                    let x = cols[d * n + i];
                    for (a, &c) in row.iter_mut().zip(&cols[d * n..(d + 1) * n]) {
                        let t = c - x;
                        *a += t * t;
                    }
                }
                // The k-th smallest distance to another point.
                scratch.clear();
                scratch.extend(
                    row.iter()
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .map(|(_, &v)| v),
                );
                let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, f64::total_cmp);
                let kth = *kth;
                let mut sum = 0usize;
                for &j in low_nn.of(i) {
                    let j = j as usize;
                    let dj = row[j];
                    if dj < kth {
                        continue; // rank <= k
                    }
                    // rank = 1 + #closer + #equally close with a lower index.
                    let rank = 1 + row
                        .iter()
                        .enumerate()
                        .filter(|&(l, &v)| l != i && (v < dj || (v == dj && l < j)))
                        .count();
                    sum += rank.saturating_sub(k);
                }
                *out = sum as f64;
            }
        },
    );
    let total: f64 = penalty.iter().sum();
    let (n, kf) = (n as f64, k as f64);
    Ok(1.0 - total * 2.0 / (n * kf * (2.0 * n - 3.0 * kf - 1.0)))
}

/// Leave-one-out `k`-nearest-neighbour accuracy of `labels` in `points`: the fraction of points
/// whose label is the majority label among their `k` nearest other points (Euclidean). A tie
/// between labels goes to the one whose member comes first in distance order. Needs
/// `1 ≤ k < n`. Uses every core.
pub fn knn_accuracy(points: Points<'_>, labels: &[i64], k: usize) -> Result<f64> {
    let n = points.len();
    if labels.len() != n {
        return Err(TsneError::Input(format!(
            "knn accuracy: {n} points but {} labels",
            labels.len()
        )));
    }
    if k == 0 || k >= n {
        return Err(TsneError::parameter(
            "k",
            format!("knn accuracy needs 1 <= k < n (n = {n}, k = {k})"),
        ));
    }
    let nn = exact_knn(points, k, 0);
    let mut correct = 0usize;
    let mut votes: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    for (i, &label) in labels.iter().enumerate() {
        votes.clear();
        for (rank, &j) in nn.of(i).iter().enumerate() {
            let e = votes.entry(labels[j as usize]).or_insert((0, rank));
            e.0 += 1;
        }
        let winner = votes
            .iter()
            .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
            .map(|(&l, _)| l);
        if winner == Some(label) {
            correct += 1;
        }
    }
    Ok(correct as f64 / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_vote_and_ties() {
        // 1-D: points 0,1,2 labelled a,a,b; 10,11 labelled c,c.
        let x = [0.0f32, 1.0, 2.0, 10.0, 11.0];
        let labels = [1, 1, 2, 3, 3];
        let acc = knn_accuracy(Points::new(&x, 1).unwrap(), &labels, 1).unwrap();
        // Nearest of 0 is 1 (a ok); of 1 is 0 (ok); of 2 is 1 (a: wrong); 10<->11 ok.
        assert!((acc - 0.8).abs() < 1e-12);
        // k = 2 for point 1: neighbours 0 (a) and 2 (b) tie; distance tie broken by index: 0
        // first, so a wins.
        let acc2 = knn_accuracy(Points::new(&x, 1).unwrap(), &labels, 2).unwrap();
        assert!(acc2 > 0.0);
        assert!(knn_accuracy(Points::new(&x, 1).unwrap(), &labels[..2], 1).is_err());
        assert!(knn_accuracy(Points::new(&x, 1).unwrap(), &labels, 5).is_err());
    }

    #[test]
    fn trustworthiness_bounds() {
        let x: Vec<f32> = (0..60).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let p = Points::new(&x, 2).unwrap();
        assert!((trustworthiness(p, p, 5).unwrap() - 1.0).abs() < 1e-12);
        assert!(trustworthiness(p, p, 15).is_err());
        assert!(trustworthiness(p, p, 0).is_err());
    }
}
