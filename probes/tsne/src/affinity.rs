//! Input similarities: perplexity-calibrated Gaussian conditionals on the k nearest neighbours,
//! symmetrised into a sparse joint distribution `P` (sums to 1).

use crate::knn::Neighbours;

/// A sparse square matrix in compressed rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Csr {
    /// Row `i` is `indptr[i]..indptr[i + 1]` of `indices` / `values`.
    pub indptr: Vec<usize>,
    /// Column indices, ascending within a row.
    pub indices: Vec<u32>,
    /// Values.
    pub values: Vec<f64>,
}

impl Csr {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Columns and values of row `i`.
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let r = self.indptr[i]..self.indptr[i + 1];
        (&self.indices[r.clone()], &self.values[r])
    }
}

/// Largest number of bisection steps per point.
const MAX_STEPS: usize = 200;
/// Tolerance on the entropy (nats).
const TOLERANCE: f64 = 1e-5;

/// Conditional probabilities `p(j | i)` over each point's neighbours (`n * k`, rows sum to 1),
/// with the Gaussian precision of each row found by bisection so that the row's perplexity is
/// `perplexity` (entropy `ln(perplexity)`), on squared distances.
pub fn conditional_probabilities(nn: &Neighbours, perplexity: f64) -> Vec<f64> {
    let k = nn.k;
    let n = nn.indices.len() / k.max(1);
    let target = perplexity.ln();
    let mut p = vec![0f64; n * k];
    let mut d = vec![0f64; k];
    for i in 0..n {
        let row = nn.sq_dists_of(i);
        let d_min = row.iter().copied().fold(f32::INFINITY, f32::min);
        for (d, &v) in d.iter_mut().zip(row) {
            *d = f64::from(v - d_min).max(0.0);
        }
        let out = &mut p[i * k..(i + 1) * k];
        let (mut beta, mut lo, mut hi) = (1.0f64, 0.0f64, f64::INFINITY);
        // A scale-aware start: beta = 1 / mean shifted distance.
        let mean = d.iter().sum::<f64>() / k as f64;
        if mean > 0.0 {
            beta = 1.0 / mean;
        }
        for _ in 0..MAX_STEPS {
            let mut sum = 0.0;
            let mut dot = 0.0;
            for (o, &dd) in out.iter_mut().zip(&d) {
                let e = (-dd * beta).exp();
                *o = e;
                sum += e;
                dot += dd * e;
            }
            let entropy = sum.ln() + beta * dot / sum;
            let diff = entropy - target;
            if diff.abs() < TOLERANCE {
                break;
            }
            if diff > 0.0 {
                lo = beta;
                beta = if hi.is_finite() {
                    0.5 * (beta + hi)
                } else {
                    beta * 2.0
                };
            } else {
                hi = beta;
                beta = 0.5 * (beta + lo);
            }
        }
        let sum: f64 = out.iter().sum();
        for o in out.iter_mut() {
            *o /= sum;
        }
    }
    p
}

/// The joint distribution `P = (P_cond + P_condᵀ) / (2n)` as a sparse symmetric matrix.
pub fn symmetrise(nn: &Neighbours, conditional: &[f64]) -> Csr {
    let k = nn.k;
    let n = nn.indices.len().checked_div(k).unwrap_or(0);
    let mut counts = vec![0usize; n + 1];
    for i in 0..n {
        for &j in nn.of(i) {
            counts[i] += 1;
            counts[j as usize] += 1;
        }
    }
    let mut start = vec![0usize; n + 1];
    for i in 0..n {
        start[i + 1] = start[i] + counts[i];
    }
    let mut entries = vec![(0u32, 0f64); start[n]];
    let mut fill = start.clone();
    for i in 0..n {
        for (&j, &p) in nn.of(i).iter().zip(&conditional[i * k..(i + 1) * k]) {
            let j = j as usize;
            entries[fill[i]] = (j as u32, p);
            fill[i] += 1;
            entries[fill[j]] = (i as u32, p);
            fill[j] += 1;
        }
    }
    let scale = 1.0 / (2.0 * n as f64);
    let mut csr = Csr {
        indptr: Vec::with_capacity(n + 1),
        indices: Vec::with_capacity(start[n]),
        values: Vec::with_capacity(start[n]),
    };
    csr.indptr.push(0);
    for i in 0..n {
        let row = &mut entries[start[i]..start[i + 1]];
        row.sort_by_key(|e| e.0);
        let mut last = u32::MAX;
        for &(j, p) in row.iter() {
            if let (true, Some(v)) = (j == last, csr.values.last_mut()) {
                *v += p * scale;
            } else {
                csr.indices.push(j);
                csr.values.push(p * scale);
                last = j;
            }
        }
        csr.indptr.push(csr.indices.len());
    }
    csr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knn::exact_knn;
    use crate::points::Points;

    #[test]
    fn rows_reach_the_perplexity_and_p_is_symmetric() {
        let data: Vec<f32> = (0..400).map(|i| ((i * 37) % 101) as f32 * 0.1).collect();
        let nn = exact_knn(Points::new(&data, 2).unwrap(), 30, 1);
        let cond = conditional_probabilities(&nn, 10.0);
        for row in cond.chunks_exact(30) {
            let h: f64 = row.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum();
            assert!((h.exp() - 10.0).abs() < 1e-3, "perplexity {}", h.exp());
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let p = symmetrise(&nn, &cond);
        let total: f64 = p.values.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        for i in 0..p.rows() {
            let (cols, vals) = p.row(i);
            assert!(cols.windows(2).all(|w| w[0] < w[1]));
            for (&j, &v) in cols.iter().zip(vals) {
                let (cj, vj) = p.row(j as usize);
                let pos = cj.binary_search(&(i as u32)).expect("symmetric pattern");
                assert!((vj[pos] - v).abs() < 1e-15);
            }
        }
    }
}
