//! The first two principal components, for initialising the embedding.

use crate::points::Points;

/// Projections of the centred points on their first two principal components (`n` pairs),
/// each component's sign fixed so that its largest-magnitude loading is positive
/// (scikit-learn's `svd_flip` convention). Components of zero variance project to 0.
pub fn pca_2d(points: Points<'_>) -> Vec<[f64; 2]> {
    let (n, dim) = (points.len(), points.dim());
    if n == 0 {
        return Vec::new();
    }
    let mut mean = vec![0f64; dim];
    for row in points.data().chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    // Covariance (upper triangle accumulated, then mirrored).
    let mut cov = vec![0f64; dim * dim];
    let mut centred = vec![0f64; dim];
    for row in points.data().chunks_exact(dim) {
        for ((c, &v), m) in centred.iter_mut().zip(row).zip(&mean) {
            *c = f64::from(v) - m;
        }
        for a in 0..dim {
            let ca = centred[a];
            let out = &mut cov[a * dim..(a + 1) * dim];
            for b in a..dim {
                out[b] += ca * centred[b];
            }
        }
    }
    for a in 0..dim {
        for b in 0..a {
            cov[a * dim + b] = cov[b * dim + a];
        }
    }
    let components = top_two_eigenvectors(&cov, dim);
    points
        .data()
        .chunks_exact(dim)
        .map(|row| {
            let mut out = [0f64; 2];
            for (o, v) in out.iter_mut().zip(&components) {
                *o = row
                    .iter()
                    .zip(&mean)
                    .zip(v)
                    .map(|((&x, m), w)| (f64::from(x) - m) * w)
                    .sum();
            }
            out
        })
        .collect()
}

/// The two leading eigenvectors of the symmetric `dim x dim` matrix `a` (cyclic Jacobi
/// rotations: exact to rounding, and quick at latent sizes), sign-normalised. With `dim == 1`
/// the second is zero.
fn top_two_eigenvectors(a: &[f64], dim: usize) -> [Vec<f64>; 2] {
    let mut m = a.to_vec();
    let mut v = vec![0f64; dim * dim];
    for i in 0..dim {
        v[i * dim + i] = 1.0;
    }
    let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..dim)
            .flat_map(|p| (0..dim).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| m[p * dim + q] * m[p * dim + q])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..dim {
            for q in p + 1..dim {
                let apq = m[p * dim + q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let (app, aqq) = (m[p * dim + p], m[q * dim + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..dim {
                    let (mkp, mkq) = (m[k * dim + p], m[k * dim + q]);
                    m[k * dim + p] = c * mkp - s * mkq;
                    m[k * dim + q] = s * mkp + c * mkq;
                }
                for k in 0..dim {
                    let (mpk, mqk) = (m[p * dim + k], m[q * dim + k]);
                    m[p * dim + k] = c * mpk - s * mqk;
                    m[q * dim + k] = s * mpk + c * mqk;
                }
                for k in 0..dim {
                    let (vkp, vkq) = (v[k * dim + p], v[k * dim + q]);
                    v[k * dim + p] = c * vkp - s * vkq;
                    v[k * dim + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&x, &y| m[y * dim + y].total_cmp(&m[x * dim + x]).then(x.cmp(&y)));
    let column = |c: Option<&usize>| -> Vec<f64> {
        let Some(&c) = c else {
            return vec![0.0; dim];
        };
        if m[c * dim + c] <= 1e-12 * scale {
            return vec![0.0; dim];
        }
        let mut col: Vec<f64> = (0..dim).map(|k| v[k * dim + c]).collect();
        let big = col
            .iter()
            .copied()
            .fold(0.0f64, |acc, x| if x.abs() > acc.abs() { x } else { acc });
        if big < 0.0 {
            for x in &mut col {
                *x = -*x;
            }
        }
        col
    };
    [column(order.first()), column(order.get(1))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_long_axes() {
        // Points spread 10x along (1, 1, 0) and 3x along (0, 0, 1), barely along (1, -1, 0).
        let mut data = Vec::new();
        for i in 0..200 {
            let t = (i as f32 * 0.37).sin() * 10.0;
            let u = (i as f32 * 1.91).cos() * 3.0;
            let w = (i as f32 * 0.73).sin() * 0.1;
            data.extend_from_slice(&[t + w + 5.0, t - w - 2.0, u]);
        }
        let proj = pca_2d(Points::new(&data, 3).unwrap());
        let corr = |c: usize, f: &dyn Fn(usize) -> f64| {
            let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
            let my = (0..200).map(f).sum::<f64>() / 200.0;
            for (i, p) in proj.iter().enumerate() {
                let y = f(i) - my;
                sxy += p[c] * y;
                sxx += p[c] * p[c];
                syy += y * y;
            }
            sxy / (sxx * syy).sqrt()
        };
        let t = |i: usize| f64::from((i as f32 * 0.37).sin());
        let u = |i: usize| f64::from((i as f32 * 1.91).cos());
        assert!(corr(0, &t).abs() > 0.999, "{}", corr(0, &t));
        assert!(corr(1, &u).abs() > 0.99, "{}", corr(1, &u));
        let mean0: f64 = proj.iter().map(|p| p[0]).sum::<f64>() / 200.0;
        assert!(mean0.abs() < 1e-9);
    }

    #[test]
    fn degenerate_inputs() {
        let flat = vec![1.0f32; 30];
        let proj = pca_2d(Points::new(&flat, 3).unwrap());
        assert!(proj.iter().all(|p| p == &[0.0, 0.0]));
        let line: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let proj = pca_2d(Points::new(&line, 1).unwrap());
        assert!(proj.iter().all(|p| p[1] == 0.0));
        assert!(proj[9][0] > proj[0][0]);
    }
}
