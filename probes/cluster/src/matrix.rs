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
#[inline(always)]
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
    // Lanes (0, 2) and (1, 3) first: the natural halving of one 4-wide register.
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
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

/// Points packed for one-to-many distances: groups of 4 points, interleaved by dimension
/// (`data[(g * dim + t) * 4 + lane]` is coordinate `t` of point `4 g + lane`). The last group is
/// padded with copies of the last point.
#[derive(Clone, Debug)]
pub(crate) struct Panel {
    dim: usize,
    len: usize,
    data: Vec<f64>,
}

impl Panel {
    /// Packs the `points.len() / dim` points of `points` (row-major, `dim > 0`).
    pub(crate) fn new(points: &[f64], dim: usize) -> Panel {
        let len = points.len() / dim;
        let groups = len.div_ceil(4);
        let mut data = vec![0.0; groups * dim * 4];
        for g in 0..groups {
            for lane in 0..4 {
                let p = (4 * g + lane).min(len.saturating_sub(1));
                for t in 0..dim {
                    data[(g * dim + t) * 4 + lane] = points[p * dim + t];
                }
            }
        }
        Panel { dim, len, data }
    }

    /// Number of points (without padding).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Squared distances from `row` to every point, written to `out[..len.div_ceil(4) * 4]`
    /// (padding lanes included); `out` must be at least that long.
    #[inline(always)]
    pub(crate) fn sq_dists(&self, row: &[f64], out: &mut [f64]) {
        let block = self.dim * 4;
        for (g, o) in self.data.chunks_exact(block).zip(out.chunks_exact_mut(4)) {
            o.copy_from_slice(&group_sq_dists(row, g));
        }
    }
}

/// Squared distances from `row` to the 4 points of one panel group (`row.len() * 4` values).
#[inline(always)]
pub(crate) fn group_sq_dists(row: &[f64], group: &[f64]) -> [f64; 4] {
    // Two accumulators (even and odd coordinates) halve the dependency chain.
    let mut a = [0.0f64; 4];
    let mut b = [0.0f64; 4];
    let mut rows = row.chunks_exact(2);
    let mut cols = group.chunks_exact(8);
    for (x, c) in (&mut rows).zip(&mut cols) {
        for l in 0..4 {
            let u = x[0] - c[l];
            a[l] += u * u;
            let v = x[1] - c[4 + l];
            b[l] += v * v;
        }
    }
    if let (Some(&x), Some(c)) = (rows.remainder().first(), cols.remainder().get(..4)) {
        for l in 0..4 {
            let u = x - c[l];
            a[l] += u * u;
        }
    }
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
}
