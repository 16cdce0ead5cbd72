//! k-means: greedy k-means++ initialisation, several seeded restarts, Lloyd iterations
//! accelerated with Hamerly's bounds.
//!
//! The iteration is scikit-learn's `KMeans(algorithm="lloyd")`: assign every item to its nearest
//! centre, move each centre to the mean of its items, stop when no assignment changed or when
//! the summed squared centre shift is at most `tol` times the mean per-feature variance, or after
//! `max_iter` iterations; an empty cluster is moved onto the item farthest from its centre.
//! Hamerly's bounds (one upper bound to the own centre, one lower bound to every other centre per
//! item) only skip distance computations that cannot change an assignment, so the iterates are
//! Lloyd's. Restarts run in parallel; each restart has its own ChaCha8 stream of `seed`, so the
//! result does not depend on the number of threads. The fit with the lowest inertia wins (the
//! earliest on ties).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{ClusterError, Result};
use crate::matrix::{sq_dist, Matrix, Panel};
use crate::parallel;

/// k-means settings (scikit-learn's names and defaults, except `n_init`, which scikit-learn
/// sets to 1 for k-means++ under `"auto"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KMeans {
    /// Number of clusters (at least 1, at most the number of items).
    pub k: usize,
    /// Restarts from independent k-means++ initialisations (at least 1; 10).
    pub n_init: usize,
    /// Largest number of Lloyd iterations per restart (at least 1; 300).
    pub max_iter: usize,
    /// Relative tolerance on the summed squared centre shift (non-negative; 1e-4).
    pub tol: f64,
    /// Seed of the initialisations.
    pub seed: u64,
    /// Worker threads (`0`: all cores). Results do not depend on it.
    pub threads: usize,
}

impl KMeans {
    /// Settings with `k` clusters and the defaults for everything else.
    pub fn new(k: usize) -> Self {
        KMeans {
            k,
            n_init: 10,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
            threads: 0,
        }
    }

    /// Checks the settings against themselves and against `n` items.
    pub fn check(&self, n: usize) -> Result<()> {
        if self.k == 0 {
            return Err(ClusterError::parameter("k", "must be at least 1"));
        }
        if self.k > n {
            return Err(ClusterError::parameter(
                "k",
                format!("{} clusters need at least as many items; got {n}", self.k),
            ));
        }
        if self.n_init == 0 {
            return Err(ClusterError::parameter("n_init", "must be at least 1"));
        }
        if self.max_iter == 0 {
            return Err(ClusterError::parameter("max_iter", "must be at least 1"));
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(ClusterError::parameter(
                "tol",
                format!("must be finite and non-negative; got {}", self.tol),
            ));
        }
        Ok(())
    }

    /// Clusters the rows of `x`.
    pub fn fit(&self, x: &Matrix) -> Result<KMeansFit> {
        self.check(x.n())?;
        let tol = self.tol * mean_variance(x);
        let runs: Vec<Run> = parallel::map(self.n_init, self.threads, |r| {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(r as u64);
            let init = kmeans_plusplus(x, self.k, &mut rng);
            lloyd(x, self.k, init, self.max_iter, tol)
        });
        let restart_inertias: Vec<f64> = runs.iter().map(|r| r.inertia).collect();
        let restart_iterations: Vec<usize> = runs.iter().map(|r| r.iterations).collect();
        let mut best = 0;
        for (i, r) in runs.iter().enumerate() {
            if r.inertia < runs[best].inertia {
                best = i;
            }
        }
        let run = runs
            .into_iter()
            .nth(best)
            .ok_or_else(|| ClusterError::Degenerate("k-means ran no restart".into()))?;
        Ok(KMeansFit {
            centres: Matrix::new(self.k, x.dim(), run.centres)?,
            labels: run.labels,
            inertia: run.inertia,
            iterations: run.iterations,
            converged: run.converged,
            best_restart: best,
            restart_inertias,
            restart_iterations,
        })
    }
}

/// The result of [`KMeans::fit`]: the best restart.
#[derive(Clone, Debug, PartialEq)]
pub struct KMeansFit {
    /// Cluster centres, `k x dim`.
    pub centres: Matrix,
    /// Cluster of every item, `0..k`.
    pub labels: Vec<usize>,
    /// Sum of squared distances of the items to their centres.
    pub inertia: f64,
    /// Lloyd iterations of the best restart.
    pub iterations: usize,
    /// Whether the best restart stopped before `max_iter`.
    pub converged: bool,
    /// Index of the best restart.
    pub best_restart: usize,
    /// Final inertia of every restart.
    pub restart_inertias: Vec<f64>,
    /// Lloyd iterations of every restart.
    pub restart_iterations: Vec<usize>,
}

impl KMeansFit {
    /// The nearest centre of every row of `x` (errors if `x` has another dimension).
    pub fn predict(&self, x: &Matrix) -> Result<Vec<usize>> {
        if x.dim() != self.centres.dim() {
            return Err(ClusterError::Shape {
                what: "k-means input row".into(),
                expected: self.centres.dim(),
                actual: x.dim(),
            });
        }
        let k = self.centres.n();
        let panel = Panel::new(self.centres.as_slice(), x.dim());
        let mut dist = vec![0.0; k.div_ceil(4) * 4];
        Ok(x.rows()
            .map(|row| {
                panel.sq_dists(row, &mut dist);
                two_smallest(&dist[..k]).0
            })
            .collect())
    }
}

/// Mean over features of the per-feature (population) variance.
fn mean_variance(x: &Matrix) -> f64 {
    let (n, d) = (x.n(), x.dim());
    if n == 0 {
        return 0.0;
    }
    let mut mean = vec![0.0; d];
    for row in x.rows() {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0; d];
    for row in x.rows() {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    var.iter().sum::<f64>() / (n * d) as f64
}

/// Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): the first centre is a uniformly drawn
/// item; every further centre is the best, by resulting potential, of `2 + ⌊ln k⌋` items drawn
/// with probability proportional to their squared distance to the nearest centre so far.
/// Returns `k x dim` centres, row-major. `k` must be in `1..=n`.
pub fn kmeans_plusplus(x: &Matrix, k: usize, rng: &mut impl Rng) -> Vec<f64> {
    let (n, d) = (x.n(), x.dim());
    let mut centres = Vec::with_capacity(k * d);
    if n == 0 || k == 0 {
        return centres;
    }
    let trials = 2 + (k as f64).ln() as usize;
    let first = rng.random_range(0..n);
    centres.extend_from_slice(x.row(first));
    let mut closest: Vec<f64> = x.rows().map(|r| sq_dist(r, x.row(first))).collect();
    let mut pot: f64 = closest.iter().sum();
    let mut cumsum = vec![0.0; n];
    let mut cand_dist = vec![vec![0.0; n]; trials];
    for _ in 1..k {
        let mut acc = 0.0;
        for (c, v) in cumsum.iter_mut().zip(&closest) {
            acc += v;
            *c = acc;
        }
        let mut candidates = Vec::with_capacity(trials);
        for _ in 0..trials {
            let target = rng.random::<f64>() * pot;
            let idx = cumsum.partition_point(|&c| c < target).min(n - 1);
            candidates.push(idx);
        }
        let cand_rows: Vec<f64> = candidates
            .iter()
            .flat_map(|&c| x.row(c).iter().copied())
            .collect();
        let pots = potentials(x, &Panel::new(&cand_rows, d), &closest, &mut cand_dist);
        let mut best = 0;
        let mut best_pot = f64::INFINITY;
        for (t, &p) in pots.iter().enumerate() {
            if p < best_pot {
                best_pot = p;
                best = t;
            }
        }
        pot = best_pot;
        std::mem::swap(&mut closest, &mut cand_dist[best]);
        centres.extend_from_slice(x.row(candidates[best]));
    }
    centres
}

/// For every candidate `t` of `cands`, writes `min(closest[i], |x_i − cands[t]|²)` into
/// `out[t]` and returns the sums; one pass over the data for all candidates.
fn potentials(x: &Matrix, cands: &Panel, closest: &[f64], out: &mut [Vec<f64>]) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { potentials_avx2(x, cands, closest, out) };
        }
    }
    potentials_impl(x, cands, closest, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn potentials_avx2(
    x: &Matrix,
    cands: &Panel,
    closest: &[f64],
    out: &mut [Vec<f64>],
) -> Vec<f64> {
    potentials_impl(x, cands, closest, out)
}

#[inline(always)]
fn potentials_impl(x: &Matrix, cands: &Panel, closest: &[f64], out: &mut [Vec<f64>]) -> Vec<f64> {
    let t = cands.len();
    let mut pots = vec![0.0; t];
    let mut dist = vec![0.0; t.div_ceil(4) * 4];
    for (i, (row, &cl)) in x.rows().zip(closest).enumerate() {
        cands.sq_dists(row, &mut dist);
        for ((&v, o), p) in dist.iter().zip(out.iter_mut()).zip(pots.iter_mut()) {
            let v = v.min(cl);
            o[i] = v;
            *p += v;
        }
    }
    pots
}

/// One restart's result.
struct Run {
    centres: Vec<f64>,
    labels: Vec<usize>,
    inertia: f64,
    iterations: usize,
    converged: bool,
}

/// Index and value of the smallest entry, and the second smallest value (infinite for one
/// entry); the first index wins ties.
#[inline(always)]
fn two_smallest(values: &[f64]) -> (usize, f64, f64) {
    let mut best = 0;
    let mut d1 = f64::INFINITY;
    let mut d2 = f64::INFINITY;
    for (j, &v) in values.iter().enumerate() {
        if v < d1 {
            d2 = d1;
            d1 = v;
            best = j;
        } else if v < d2 {
            d2 = v;
        }
    }
    (best, d1, d2)
}

/// The state of one restart: assignments, Hamerly's bounds and the running cluster sums.
struct State {
    /// Cluster of every item (`usize::MAX` before the first assignment).
    labels: Vec<usize>,
    /// `upper[i]` >= distance of item i to its centre.
    upper: Vec<f64>,
    /// `lower[i]` <= distance of item i to every other centre.
    lower: Vec<f64>,
    /// Half the distance from each centre to its nearest other centre.
    half_gap: Vec<f64>,
    /// Per-cluster sums of the assigned items, `k x d`, kept up to date on every reassignment.
    sums: Vec<f64>,
    /// Items per cluster.
    counts: Vec<usize>,
    /// Scratch: the items whose bounds do not settle their assignment.
    todo: Vec<u32>,
}

/// Lloyd iterations from `centres` with Hamerly's bounds.
fn lloyd(x: &Matrix, k: usize, mut centres: Vec<f64>, max_iter: usize, tol: f64) -> Run {
    let (n, d) = (x.n(), x.dim());
    let mut st = State {
        labels: vec![usize::MAX; n],
        upper: vec![f64::INFINITY; n],
        lower: vec![0.0; n],
        half_gap: vec![0.0; k],
        sums: vec![0.0; k * d],
        counts: vec![0; k],
        todo: Vec::with_capacity(n),
    };
    let mut shift = vec![0.0f64; k];
    let mut strict = false;
    let mut stopped = false;
    let mut iterations = 0;

    for it in 1..=max_iter {
        iterations = it;
        let changed = assign(x, &centres, &mut st) > 0;
        if st.counts.contains(&0) {
            relocate_empty(x, &centres, &mut st);
        }
        let mut shift_tot = 0.0;
        for j in 0..k {
            let c = &mut centres[j * d..(j + 1) * d];
            let s = &st.sums[j * d..(j + 1) * d];
            let count = st.counts[j];
            let mut sq = 0.0;
            if count > 0 {
                let inv = 1.0 / count as f64;
                for (cv, sv) in c.iter_mut().zip(s) {
                    let nv = sv * inv;
                    sq += (nv - *cv) * (nv - *cv);
                    *cv = nv;
                }
            }
            shift[j] = sq.sqrt();
            shift_tot += sq;
        }
        update_bounds(&st.labels, &shift, &mut st.upper, &mut st.lower);
        if !changed {
            strict = true;
            stopped = true;
            break;
        }
        if shift_tot <= tol {
            stopped = true;
            break;
        }
    }
    if !strict {
        assign(x, &centres, &mut st);
    }
    let c = &centres;
    let inertia = x
        .rows()
        .zip(&st.labels)
        .map(|(row, &l)| sq_dist(row, &c[l * d..(l + 1) * d]))
        .sum();
    Run {
        centres,
        labels: st.labels,
        inertia,
        iterations,
        converged: stopped,
    }
}

/// Assigns every item to its nearest centre, skipping items whose bounds prove the assignment
/// unchanged, and moves reassigned items between the cluster sums; returns how many assignments
/// changed (every item counts as changed on the first call).
fn assign(x: &Matrix, centres: &[f64], st: &mut State) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { assign_avx2(x, centres, st) };
        }
    }
    assign_impl(x, centres, st)
}

/// [`assign_impl`] compiled for AVX2. The arithmetic is the same, lane for lane, as the generic
/// build (no FMA), so both give bit-identical results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn assign_avx2(x: &Matrix, centres: &[f64], st: &mut State) -> usize {
    assign_impl(x, centres, st)
}

#[inline(always)]
fn assign_impl(x: &Matrix, centres: &[f64], st: &mut State) -> usize {
    let d = x.dim();
    let k = st.counts.len();
    let panel = Panel::new(centres, d);
    let mut dist = vec![0.0; k.div_ceil(4) * 4];
    for (j, g) in st.half_gap.iter_mut().enumerate() {
        let cj = &centres[j * d..(j + 1) * d];
        *g = 0.5
            * centres
                .chunks_exact(d)
                .enumerate()
                .filter(|&(o, _)| o != j)
                .map(|(_, co)| sq_dist(cj, co))
                .fold(f64::INFINITY, f64::min)
                .sqrt();
    }
    // Pass 1: the bounds alone settle most items; collect the others.
    let mut todo = std::mem::take(&mut st.todo);
    todo.clear();
    for (i, (&a, (&u, &l))) in st
        .labels
        .iter()
        .zip(st.upper.iter().zip(&st.lower))
        .enumerate()
    {
        if a == usize::MAX || u > st.half_gap[a].max(l) {
            todo.push(i as u32);
        }
    }
    // Pass 2: measure those, prefetching rows a few items ahead (they are scattered).
    const AHEAD: usize = 8;
    let mut changed = 0;
    for (t, &i) in todo.iter().enumerate() {
        if let Some(&next) = todo.get(t + AHEAD) {
            prefetch(x.row(next as usize));
        }
        let i = i as usize;
        let row = x.row(i);
        let a = st.labels[i];
        if a != usize::MAX {
            let m = st.half_gap[a].max(st.lower[i]);
            let u = sq_dist(row, &centres[a * d..(a + 1) * d]).sqrt();
            st.upper[i] = u;
            if u <= m {
                continue;
            }
        }
        panel.sq_dists(row, &mut dist);
        let (j, d1, d2) = two_smallest(&dist[..k]);
        st.upper[i] = d1.sqrt();
        st.lower[i] = d2.sqrt();
        if j != a {
            if a != usize::MAX {
                for (s, v) in st.sums[a * d..(a + 1) * d].iter_mut().zip(row) {
                    *s -= v;
                }
                st.counts[a] -= 1;
            }
            for (s, v) in st.sums[j * d..(j + 1) * d].iter_mut().zip(row) {
                *s += v;
            }
            st.counts[j] += 1;
            st.labels[i] = j;
            changed += 1;
        }
    }
    st.todo = todo;
    changed
}

/// Asks the CPU to start loading `row` into the cache (a hint; no effect elsewhere).
#[inline(always)]
fn prefetch(row: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // 8 f64 per 64-byte cache line.
        for chunk in row.chunks(8) {
            // SAFETY: prefetching is a hint that never faults, and the pointer is in bounds.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(chunk.as_ptr().cast::<i8>()) };
        }
        if let Some(last) = row.last() {
            // The row's end may lie on one more line when it does not start on a line boundary.
            // SAFETY: as above.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(last).cast::<i8>()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Loosens the bounds after the centres moved by `shift`.
fn update_bounds(labels: &[usize], shift: &[f64], upper: &mut [f64], lower: &mut [f64]) {
    let (mut j1, mut s1, mut s2) = (usize::MAX, 0.0f64, 0.0f64);
    for (j, &s) in shift.iter().enumerate() {
        if s > s1 {
            s2 = s1;
            s1 = s;
            j1 = j;
        } else if s > s2 {
            s2 = s;
        }
    }
    for ((&l, u), lo) in labels.iter().zip(upper.iter_mut()).zip(lower.iter_mut()) {
        *u += shift[l];
        *lo -= if l == j1 { s2 } else { s1 };
    }
}

/// Moves every empty cluster onto one of the items farthest from their centres (as
/// scikit-learn does); those items are reassigned to the emptied cluster and their bounds reset
/// so the next assignment examines them exactly.
fn relocate_empty(x: &Matrix, centres: &[f64], st: &mut State) {
    let d = x.dim();
    let empty: Vec<usize> = (0..st.counts.len())
        .filter(|&j| st.counts[j] == 0)
        .collect();
    let mut far: Vec<(f64, usize)> = x
        .rows()
        .zip(&st.labels)
        .enumerate()
        .map(|(i, (row, &l))| (sq_dist(row, &centres[l * d..(l + 1) * d]), i))
        .collect();
    far.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (&j, &(_, i)) in empty.iter().zip(&far) {
        let old = st.labels[i];
        // Never empty another cluster to fill this one.
        if st.counts[old] <= 1 {
            continue;
        }
        let row = x.row(i);
        for (s, v) in st.sums[old * d..(old + 1) * d].iter_mut().zip(row) {
            *s -= v;
        }
        st.counts[old] -= 1;
        st.sums[j * d..(j + 1) * d].copy_from_slice(row);
        st.counts[j] = 1;
        st.labels[i] = j;
        st.upper[i] = f64::INFINITY;
        st.lower[i] = 0.0;
    }
}
