//! Silhouette scores (Euclidean), exact, with a seeded sample above a configurable size.
//!
//! For item `i` with label `l`: `a(i)` is the mean distance to the other items labelled `l`,
//! `b(i)` the smallest mean distance to the items of another label, and
//! `s(i) = (b − a) / max(a, b)`; an item alone in its label, or with `max(a, b) = 0`, scores 0
//! (as scikit-learn's `silhouette_samples`). The score is the mean of `s(i)`.
//!
//! The exact score costs `n²` distances. [`Silhouette::scores`] therefore computes it on a sample
//! of `sample_size` items drawn without replacement with a seeded generator when `n` is larger
//! (scikit-learn's `silhouette_score(..., sample_size=...)` does the same with its own generator);
//! all labelings passed together share the sample and the distances.

use rand::seq::index;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{ClusterError, Result};
use crate::matrix::{check_labels, encode_labels, Matrix, Panel};
use crate::parallel;

/// How [`Silhouette::scores`] computes scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Silhouette {
    /// Largest number of items scored exactly; larger inputs are scored on a seeded sample of
    /// this many items. `0` means never sample.
    pub sample_size: usize,
    /// Seed of the sample.
    pub seed: u64,
    /// Worker threads (`0`: all cores). Results do not depend on it.
    pub threads: usize,
}

impl Default for Silhouette {
    fn default() -> Self {
        Silhouette {
            sample_size: 10_000,
            seed: 0,
            threads: 0,
        }
    }
}

/// Scores of several labelings of the same items.
#[derive(Clone, Debug, PartialEq)]
pub struct SilhouetteScores {
    /// Items scored (the sample size, or all items).
    pub items: usize,
    /// Whether a sample was scored instead of all items.
    pub sampled: bool,
    /// One score per labeling, or why it has none (fewer than 2 labels, or as many labels as
    /// items, in the scored items).
    pub scores: Vec<Result<f64>>,
}

impl Silhouette {
    /// Scores every labeling in `labelings` (each one label per row of `x`), sampling items as
    /// configured.
    pub fn scores(&self, x: &Matrix, labelings: &[&[i64]]) -> Result<SilhouetteScores> {
        for labels in labelings {
            check_labels("silhouette labels", labels, x.n())?;
        }
        if self.sample_size > 0 && x.n() > self.sample_size {
            let idx = sample_indices(x.n(), self.sample_size, self.seed);
            let xs = x.select_rows(&idx);
            let ls: Vec<Vec<i64>> = labelings
                .iter()
                .map(|l| idx.iter().map(|&i| l[i]).collect())
                .collect();
            let refs: Vec<&[i64]> = ls.iter().map(Vec::as_slice).collect();
            Ok(SilhouetteScores {
                items: xs.n(),
                sampled: true,
                scores: mean_scores(&xs, &refs, self.threads),
            })
        } else {
            Ok(SilhouetteScores {
                items: x.n(),
                sampled: false,
                scores: mean_scores(x, labelings, self.threads),
            })
        }
    }
}

/// `size` distinct indices of `0..n` (all of them if `size >= n`), drawn with a seeded
/// ChaCha8 generator, sorted ascending.
pub fn sample_indices(n: usize, size: usize, seed: u64) -> Vec<usize> {
    if size >= n {
        return (0..n).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = index::sample(&mut rng, n, size).into_vec();
    idx.sort_unstable();
    idx
}

/// The exact silhouette score of one labeling (the mean of [`silhouette_samples`]).
pub fn silhouette_score(x: &Matrix, labels: &[i64], threads: usize) -> Result<f64> {
    let s = silhouette_samples(x, labels, threads)?;
    Ok(s.iter().sum::<f64>() / s.len() as f64)
}

/// The exact silhouette of every item under one labeling.
///
/// Errors unless the labeling has at least 2 and at most `n − 1` distinct labels (as
/// scikit-learn).
pub fn silhouette_samples(x: &Matrix, labels: &[i64], threads: usize) -> Result<Vec<f64>> {
    check_labels("silhouette labels", labels, x.n())?;
    let mut all = samples_multi(x, &[labels], threads);
    all.pop()
        .unwrap_or_else(|| Err(ClusterError::Degenerate("no labeling".into())))
}

/// Exact mean silhouette of several labelings at once (the distances are computed once).
fn mean_scores(x: &Matrix, labelings: &[&[i64]], threads: usize) -> Vec<Result<f64>> {
    samples_multi(x, labelings, threads)
        .into_iter()
        .map(|s| s.map(|s| s.iter().sum::<f64>() / s.len() as f64))
        .collect()
}

/// Rows per parallel task.
const BLOCK: usize = 64;

/// A labeling as dense codes with the size of every label.
struct Coded {
    codes: Vec<usize>,
    counts: Vec<usize>,
}

/// Silhouettes of the rows in `rows` under every labeling of `usable` (one vector per labeling).
fn block_silhouettes(
    x: &Matrix,
    panel: &Panel,
    usable: &[&Coded],
    rows: std::ops::Range<usize>,
) -> Vec<Vec<f64>> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { block_silhouettes_avx2(x, panel, usable, rows) };
        }
    }
    block_silhouettes_impl(x, panel, usable, rows)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_silhouettes_avx2(
    x: &Matrix,
    panel: &Panel,
    usable: &[&Coded],
    rows: std::ops::Range<usize>,
) -> Vec<Vec<f64>> {
    block_silhouettes_impl(x, panel, usable, rows)
}

#[inline(always)]
fn block_silhouettes_impl(
    x: &Matrix,
    panel: &Panel,
    usable: &[&Coded],
    rows: std::ops::Range<usize>,
) -> Vec<Vec<f64>> {
    let n = x.n();
    let mut dist = vec![0.0f64; n.div_ceil(4) * 4];
    let mut sums: Vec<Vec<f64>> = usable.iter().map(|c| vec![0.0; c.counts.len()]).collect();
    let mut out: Vec<Vec<f64>> = usable
        .iter()
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for i in rows {
        panel.sq_dists(x.row(i), &mut dist);
        for v in dist.iter_mut() {
            *v = v.sqrt();
        }
        for ((c, s), o) in usable.iter().zip(sums.iter_mut()).zip(out.iter_mut()) {
            s.iter_mut().for_each(|v| *v = 0.0);
            for (&code, &d) in c.codes.iter().zip(&dist[..n]) {
                s[code] += d;
            }
            o.push(silhouette_of(c, s, i));
        }
    }
    out
}

/// The silhouette of item `i` from its summed distances to every label.
fn silhouette_of(c: &Coded, sums: &[f64], i: usize) -> f64 {
    let own = c.codes[i];
    if c.counts[own] <= 1 {
        return 0.0;
    }
    let a = sums[own] / (c.counts[own] - 1) as f64;
    let b = sums
        .iter()
        .zip(&c.counts)
        .enumerate()
        .filter(|&(l, _)| l != own)
        .map(|(_, (&sum, &count))| sum / count as f64)
        .fold(f64::INFINITY, f64::min);
    let m = a.max(b);
    if m > 0.0 {
        (b - a) / m
    } else {
        0.0
    }
}

/// Per-item silhouettes of several labelings; labels must already have length `x.n()`.
fn samples_multi(x: &Matrix, labelings: &[&[i64]], threads: usize) -> Vec<Result<Vec<f64>>> {
    let n = x.n();
    let mut coded: Vec<Result<Coded>> = Vec::with_capacity(labelings.len());
    for labels in labelings {
        let (codes, classes) = encode_labels(labels);
        let k = classes.len();
        if k < 2 || k >= n {
            coded.push(Err(ClusterError::Degenerate(format!(
                "silhouette needs 2 to n − 1 distinct labels; got {k} labels for {n} items"
            ))));
            continue;
        }
        let mut counts = vec![0usize; k];
        for &c in &codes {
            counts[c] += 1;
        }
        coded.push(Ok(Coded { codes, counts }));
    }
    let usable: Vec<&Coded> = coded.iter().filter_map(|c| c.as_ref().ok()).collect();
    if usable.is_empty() {
        return coded.into_iter().map(|c| c.map(|_| Vec::new())).collect();
    }

    // Rows are split into blocks; each block yields its rows' silhouettes for every usable
    // labeling.
    let panel = Panel::new(x.as_slice(), x.dim());
    let blocks = n.div_ceil(BLOCK);
    let per_block: Vec<Vec<Vec<f64>>> = parallel::map(blocks, threads, |b| {
        let lo = b * BLOCK;
        block_silhouettes(x, &panel, &usable, lo..(lo + BLOCK).min(n))
    });

    let mut usable_results: Vec<Vec<f64>> =
        (0..usable.len()).map(|_| Vec::with_capacity(n)).collect();
    for block in per_block {
        for (u, values) in block.into_iter().enumerate() {
            usable_results[u].extend(values);
        }
    }
    let mut iter = usable_results.into_iter();
    coded
        .into_iter()
        .map(|c| c.map(|_| iter.next().unwrap_or_default()))
        .collect()
}
