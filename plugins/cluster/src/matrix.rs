//! A dense row-major `f64` matrix: the input of every algorithm in this crate.

use crate::error::{ClusterError, Result};

/// `n` rows of `dim` finite `f64` values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    n: usize,
    dim: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A matrix from row-major values; errors if `data.len() != n * dim`, `dim == 0` or a value
    /// is not finite.
    pub fn new(n: usize, dim: usize, data: Vec<f64>) -> Result<Self> {
        if dim == 0 {
            return Err(ClusterError::parameter("dim", "must be at least 1"));
        }
        let expected = n
            .checked_mul(dim)
            .ok_or_else(|| ClusterError::parameter("n", "n * dim overflows"))?;
        if data.len() != expected {
            return Err(ClusterError::Shape {
                what: "matrix data".into(),
                expected,
                actual: data.len(),
            });
        }
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            return Err(ClusterError::NonFinite {
                what: "matrix data".into(),
                index,
            });
        }
        Ok(Matrix { n, dim, data })
    }

    /// A matrix from row-major `f32` values (latents), widened to `f64`.
    pub fn from_f32(n: usize, dim: usize, data: &[f32]) -> Result<Self> {
        Matrix::new(n, dim, data.iter().map(|&v| f64::from(v)).collect())
    }

    /// Number of rows.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// Row `i` (panics if `i >= n`, like slice indexing).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Iterator over the rows.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.data.chunks_exact(self.dim)
    }

    /// The rows at `indices`, in that order (panics on an index out of range).
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            n: indices.len(),
            dim: self.dim,
            data,
        }
    }
}

/// Squared Euclidean distance of two equally long slices.
#[inline]
pub(crate) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    // Four independent accumulators let the compiler vectorise without reassociating.
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..4 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Checks that a label array has one entry per row.
pub(crate) fn check_labels(what: &str, labels: &[i64], n: usize) -> Result<()> {
    if labels.len() != n {
        return Err(ClusterError::Shape {
            what: what.to_owned(),
            expected: n,
            actual: labels.len(),
        });
    }
    Ok(())
}

/// Maps labels to dense codes `0..classes.len()`; returns `(codes, classes)` with `classes`
/// sorted ascending.
pub(crate) fn encode_labels(labels: &[i64]) -> (Vec<usize>, Vec<i64>) {
    let mut classes: Vec<i64> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let codes = labels
        .iter()
        .map(|l| classes.binary_search(l).unwrap_or(0))
        .collect();
    (codes, classes)
}
