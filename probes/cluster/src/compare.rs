//! Agreement between two labelings of the same items: the adjusted Rand index and normalised
//! mutual information (arithmetic normalisation), computed as scikit-learn does.

use crate::error::{ClusterError, Result};
use crate::matrix::encode_labels;

/// The contingency table of two labelings: `counts[i][j]` items have the `i`-th smallest value of
/// `a` and the `j`-th smallest value of `b`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contingency {
    /// Row totals (items per value of `a`).
    pub rows: Vec<u64>,
    /// Column totals (items per value of `b`).
    pub cols: Vec<u64>,
    /// Cell counts, `rows.len() x cols.len()`, row-major.
    pub counts: Vec<u64>,
    /// Number of items.
    pub n: u64,
}

impl Contingency {
    /// The table of `a` against `b`; errors if their lengths differ.
    pub fn new(a: &[i64], b: &[i64]) -> Result<Self> {
        if a.len() != b.len() {
            return Err(ClusterError::Shape {
                what: "second labeling".into(),
                expected: a.len(),
                actual: b.len(),
            });
        }
        let (ca, ka) = encode_labels(a);
        let (cb, kb) = encode_labels(b);
        let (ra, rb) = (ka.len(), kb.len());
        let mut counts = vec![0u64; ra * rb];
        let mut rows = vec![0u64; ra];
        let mut cols = vec![0u64; rb];
        for (&i, &j) in ca.iter().zip(&cb) {
            counts[i * rb + j] += 1;
            rows[i] += 1;
            cols[j] += 1;
        }
        Ok(Contingency {
            rows,
            cols,
            counts,
            n: a.len() as u64,
        })
    }
}

/// Adjusted Rand index of `pred` against `truth` (1 for identical partitions, about 0 for random
/// ones, symmetric, invariant to renaming labels). Follows scikit-learn's
/// `adjusted_rand_score`, with exact integer pair counts.
pub fn adjusted_rand_index(truth: &[i64], pred: &[i64]) -> Result<f64> {
    let c = Contingency::new(truth, pred)?;
    let n = i128::from(c.n);
    let sum_squares: i128 = c
        .counts
        .iter()
        .map(|&v| i128::from(v) * i128::from(v))
        .sum();
    let rb = c.cols.len();
    // Ordered pairs, as scikit-learn's pair_confusion_matrix.
    let mut row_dot = 0i128; // sum_ij n_ij * cols_j
    let mut col_dot = 0i128; // sum_ij n_ij * rows_i
    for (i, row) in c.counts.chunks_exact(rb.max(1)).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            row_dot += i128::from(v) * i128::from(c.cols[j]);
            col_dot += i128::from(v) * i128::from(c.rows[i]);
        }
    }
    let tp = sum_squares - n;
    let fp = row_dot - sum_squares;
    let fn_ = col_dot - sum_squares;
    let tn = n * n - fp - fn_ - sum_squares;
    if fn_ == 0 && fp == 0 {
        return Ok(1.0);
    }
    let num = 2.0 * ((tp * tn - fn_ * fp) as f64);
    let den = ((tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn)) as f64;
    Ok(num / den)
}

/// Mutual information (nats) of two labelings, from their contingency table.
pub fn mutual_information(c: &Contingency) -> f64 {
    if c.rows.len() <= 1 || c.cols.len() <= 1 {
        return 0.0;
    }
    let n = c.n as f64;
    let rb = c.cols.len();
    let mut mi = 0.0;
    for (i, row) in c.counts.chunks_exact(rb).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            if v == 0 {
                continue;
            }
            let v = v as f64;
            let outer = c.rows[i] as f64 * c.cols[j] as f64;
            let term = v / n * (v.ln() - n.ln() - outer.ln() + n.ln() + n.ln());
            if term.abs() >= f64::EPSILON {
                mi += term;
            }
        }
    }
    mi.max(0.0)
}

/// Entropy (nats) of a distribution given by counts.
pub fn entropy(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 1.0;
    }
    let t = total as f64;
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let c = c as f64;
            c / t * (c.ln() - t.ln())
        })
        .sum::<f64>()
}

/// Normalised mutual information with arithmetic normalisation, `MI / ((H(a) + H(b)) / 2)`
/// (scikit-learn's `normalized_mutual_info_score` default): 1 for identical partitions
/// (including two one-cluster labelings), 0 when the mutual information is 0.
pub fn normalized_mutual_info(truth: &[i64], pred: &[i64]) -> Result<f64> {
    let c = Contingency::new(truth, pred)?;
    let (ka, kb) = (c.rows.len(), c.cols.len());
    if ka == kb && ka <= 1 {
        return Ok(1.0);
    }
    let mi = mutual_information(&c);
    if mi == 0.0 {
        return Ok(0.0);
    }
    let norm = 0.5 * (entropy(&c.rows) + entropy(&c.cols));
    Ok(mi / norm)
}
