//! t-SNE: the configuration ([`Tsne`]) and the optimisation.

use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::affinity::{conditional_probabilities, symmetrise, Csr};
use crate::bh::Repulsion;
use crate::error::{Result, TsneError};
use crate::knn::exact_knn;
use crate::parallel::{thread_count, with_runner, Runner};
use crate::pca::pca_2d;
use crate::points::Points;

/// How the embedding starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// The first two principal components, scaled to standard deviation 1e-4 on the first
    /// (openTSNE's default; keeps global structure and makes runs deterministic).
    #[default]
    Pca,
    /// Gaussian noise with standard deviation 1e-4, from `seed`.
    Random,
}

/// t-SNE to two dimensions with the modern recipe.
///
/// Affinities: Gaussian conditionals on the `min(n − 1, 3·perplexity)` exact nearest neighbours,
/// each calibrated by bisection to the perplexity, symmetrised. Optimisation: gradient descent
/// with momentum and per-coordinate gains (delta-bar-delta), early exaggeration for the first
/// iterations, repulsion by Barnes-Hut with grouped tree walks. The gradient follows the bhtsne /
/// FIt-SNE / openTSNE convention (no factor 4), for which the learning rate
/// `max(200, n / early_exaggeration)` (Belkina et al. 2019) is the right scale in the exaggerated
/// phase; the plain phase uses `max(200, n)` as openTSNE does (see
/// [`Tsne::final_learning_rate`]).
///
/// Every field has a default; [`Tsne::validate`] checks them. Results depend on the input, the
/// parameters and `seed` only, not on `threads`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tsne {
    /// Effective number of neighbours (30; the paper used 20). Lowered to `(n − 1) / 3` for
    /// small inputs, as openTSNE does.
    pub perplexity: f64,
    /// Factor on `P` during the first phase (12).
    pub early_exaggeration: f64,
    /// Iterations of the first, exaggerated phase (250).
    pub early_exaggeration_iterations: usize,
    /// Iterations of the second, plain phase (750).
    pub iterations: usize,
    /// Step size of the exaggerated phase; `None` (the default) is
    /// `max(200, n / early_exaggeration)`.
    pub learning_rate: Option<f64>,
    /// Step size of the plain phase; `None` (the default) is `learning_rate` when that is set,
    /// else `max(200, n)`: like openTSNE's `"auto"`, `n` over the phase's exaggeration, which
    /// keeps `step × exaggeration` constant (measured: lower final KL and higher
    /// trustworthiness than keeping `n / 12`).
    pub final_learning_rate: Option<f64>,
    /// Momentum of the first phase (0.5).
    pub initial_momentum: f64,
    /// Momentum of the second phase (0.8).
    pub final_momentum: f64,
    /// Smallest per-coordinate gain (0.01).
    pub min_gain: f64,
    /// Barnes-Hut accuracy: a cell is one body when its side is below `theta` times its distance
    /// (0.5; 0 is exact and quadratic).
    pub theta: f64,
    /// Initialisation (PCA).
    pub init: Init,
    /// Seed for the random initialisation (and nothing else: PCA runs are deterministic).
    pub seed: u64,
    /// Worker threads; 0 uses every core (default 0). Does not change results.
    pub threads: usize,
}

impl Default for Tsne {
    fn default() -> Self {
        Tsne {
            perplexity: 30.0,
            early_exaggeration: 12.0,
            early_exaggeration_iterations: 250,
            iterations: 750,
            learning_rate: None,
            final_learning_rate: None,
            initial_momentum: 0.5,
            final_momentum: 0.8,
            min_gain: 0.01,
            theta: 0.5,
            init: Init::Pca,
            seed: 0,
            threads: 0,
        }
    }
}

/// A fitted embedding and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// One 2-D point per input point.
    pub points: Vec<[f32; 2]>,
    /// KL(P ‖ Q) of the final embedding (Barnes-Hut estimate of Q's normaliser).
    pub kl_divergence: f64,
    /// The perplexity used (lower than asked for small inputs).
    pub perplexity: f64,
    /// Nearest neighbours per point in the affinities.
    pub neighbours: usize,
    /// The learning rate of the exaggerated phase.
    pub learning_rate: f64,
    /// The learning rate of the plain phase.
    pub final_learning_rate: f64,
    /// Seconds spent on neighbours and affinities.
    pub seconds_affinities: f64,
    /// Seconds spent on the optimisation.
    pub seconds_optimisation: f64,
}

fn check(ok: bool, field: &str, message: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(TsneError::parameter(field, message))
    }
}

impl Tsne {
    /// Checks every parameter; errors name the field (`tsne.<field>`) and the allowed range.
    pub fn validate(&self) -> Result<()> {
        check(
            self.perplexity.is_finite() && self.perplexity >= 1.0 && self.perplexity <= 10_000.0,
            "tsne.perplexity",
            "must be in 1..=10000",
        )?;
        check(
            self.early_exaggeration.is_finite()
                && self.early_exaggeration >= 1.0
                && self.early_exaggeration <= 1000.0,
            "tsne.early_exaggeration",
            "must be in 1..=1000",
        )?;
        check(
            self.early_exaggeration_iterations <= 1_000_000,
            "tsne.early_exaggeration_iterations",
            "must be at most 1000000",
        )?;
        check(
            self.iterations <= 1_000_000,
            "tsne.iterations",
            "must be at most 1000000",
        )?;
        if let Some(lr) = self.learning_rate {
            check(
                lr.is_finite() && lr > 0.0,
                "tsne.learning_rate",
                "must be a positive number (or absent for max(200, n / early_exaggeration))",
            )?;
        }
        if let Some(lr) = self.final_learning_rate {
            check(
                lr.is_finite() && lr > 0.0,
                "tsne.final_learning_rate",
                "must be a positive number (or absent)",
            )?;
        }
        for (v, f) in [
            (self.initial_momentum, "tsne.initial_momentum"),
            (self.final_momentum, "tsne.final_momentum"),
        ] {
            check((0.0..1.0).contains(&v), f, "must be in [0, 1)")?;
        }
        check(
            self.min_gain.is_finite() && self.min_gain > 0.0 && self.min_gain <= 1.0,
            "tsne.min_gain",
            "must be in (0, 1]",
        )?;
        check(
            (0.0..=1.5).contains(&self.theta),
            "tsne.theta",
            "must be in [0, 1.5] (0 is exact)",
        )?;
        check(
            self.threads <= 1024,
            "tsne.threads",
            "must be at most 1024 (0: every core)",
        )
    }

    /// Embeds `points` in two dimensions.
    pub fn fit(&self, points: Points<'_>) -> Result<Embedding> {
        self.fit_with_progress(points, &mut |_, _| {})
    }

    /// [`Tsne::fit`], calling `progress(done, total)` after every iteration.
    pub fn fit_with_progress(
        &self,
        points: Points<'_>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Embedding> {
        self.validate()?;
        let n = points.len();
        let threads = thread_count(self.threads);
        let ee = self.early_exaggeration;
        let learning_rate = self
            .learning_rate
            .unwrap_or_else(|| (n as f64 / ee).max(200.0));
        let final_learning_rate = self
            .final_learning_rate
            .or(self.learning_rate)
            .unwrap_or_else(|| (n as f64).max(200.0));
        let start = Instant::now();
        if n < 2 {
            return Ok(Embedding {
                points: vec![[0.0, 0.0]; n],
                kl_divergence: 0.0,
                perplexity: 0.0,
                neighbours: 0,
                learning_rate,
                final_learning_rate,
                seconds_affinities: 0.0,
                seconds_optimisation: 0.0,
            });
        }
        let perplexity = self.perplexity.min((n - 1) as f64 / 3.0);
        let k = ((3.0 * perplexity) as usize).clamp(1, n - 1);
        let nn = exact_knn(points, k, threads);
        let cond = conditional_probabilities(&nn, perplexity.max(1.0).min(k as f64));
        // Breadth-first order of the neighbour graph: neighbours get nearby indices, so the
        // attractive forces read positions from cache.
        let (p, order) = bfs_relabel(&symmetrise(&nn, &cond));
        drop((nn, cond));
        let seconds_affinities = start.elapsed().as_secs_f64();

        let start = Instant::now();
        let y0 = self.initial(points);
        let y: Vec<[f64; 2]> = order.iter().map(|&i| y0[i as usize]).collect();
        let total = self.early_exaggeration_iterations + self.iterations;
        let p32: Vec<f32> = p.values.iter().map(|&v| v as f32).collect();
        let shared = Shared {
            p: &p,
            p32: &p32,
            theta: self.theta,
            y: RwLock::new(y),
            tree: RwLock::new(Repulsion::default()),
            attraction_rows: row_ranges(n, threads * 8),
            attraction: Mutex::new(Vec::new()),
            repulsion: Mutex::new(Vec::new()),
        };
        let threads = if n < 2000 { 1 } else { threads };
        let mut update = vec![[0f64; 2]; n];
        let mut gains = vec![[1f64; 2]; n];
        let mut attr = vec![[0f64; 2]; n];
        let mut rep = vec![[0f64; 3]; n];
        with_runner(
            threads,
            |t| shared.task(t),
            |runner| {
                for it in 0..total {
                    let early = it < self.early_exaggeration_iterations;
                    let (exaggeration, momentum) = if early {
                        (ee, self.initial_momentum)
                    } else {
                        (1.0, self.final_momentum)
                    };
                    let learning_rate = if early {
                        learning_rate
                    } else {
                        final_learning_rate
                    };
                    let z = shared.forces(runner, threads, &mut attr, &mut rep);
                    let inv_z = if z > 0.0 { 1.0 / z } else { 0.0 };
                    let mut y = write(&shared.y);
                    for ((((yi, ui), gi), a), r) in y
                        .iter_mut()
                        .zip(&mut update)
                        .zip(&mut gains)
                        .zip(&attr)
                        .zip(&rep)
                    {
                        for c in 0..2 {
                            let g = exaggeration * a[c] - r[c] * inv_z;
                            gi[c] = if sign(g) != sign(ui[c]) {
                                gi[c] + 0.2
                            } else {
                                gi[c] * 0.8
                            }
                            .max(self.min_gain);
                            ui[c] = momentum * ui[c] - learning_rate * gi[c] * g;
                            yi[c] += ui[c];
                        }
                    }
                    centre(&mut y);
                    drop(y);
                    progress(it + 1, total);
                }
            },
        );
        let y = shared.y.into_inner().unwrap_or_else(|e| e.into_inner());
        let z = Repulsion::default().compute(&y, self.theta, threads, &mut rep);
        let kl_divergence = kl_divergence(&p, &y, z);
        let mut points = vec![[0f32; 2]; n];
        for (&i, p) in order.iter().zip(&y) {
            points[i as usize] = [p[0] as f32, p[1] as f32];
        }
        Ok(Embedding {
            points,
            kl_divergence,
            perplexity,
            neighbours: k,
            learning_rate,
            final_learning_rate,
            seconds_affinities,
            seconds_optimisation: start.elapsed().as_secs_f64(),
        })
    }

    /// The starting positions.
    fn initial(&self, points: Points<'_>) -> Vec<[f64; 2]> {
        let n = points.len();
        let mut y = match self.init {
            Init::Pca => pca_2d(points),
            Init::Random => Vec::new(),
        };
        let std0 = if y.is_empty() {
            0.0
        } else {
            let m = y.iter().map(|p| p[0]).sum::<f64>() / n as f64;
            (y.iter().map(|p| (p[0] - m).powi(2)).sum::<f64>() / n as f64).sqrt()
        };
        if std0 > 0.0 {
            for p in &mut y {
                p[0] *= 1e-4 / std0;
                p[1] *= 1e-4 / std0;
            }
        } else {
            // Random start (or PCA of a data set without variance).
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            y = (0..n)
                .map(|_| [1e-4 * gaussian(&mut rng), 1e-4 * gaussian(&mut rng)])
                .collect();
        }
        centre(&mut y);
        y
    }
}

/// `p` with rows and columns relabelled in breadth-first order of its graph (each component
/// from its lowest unvisited index), and the order: new index `k` is old index `order[k]`.
fn bfs_relabel(p: &Csr) -> (Csr, Vec<u32>) {
    let n = p.rows();
    let mut order: Vec<u32> = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut head = order.len();
        order.push(root as u32);
        while head < order.len() {
            let (cols, _) = p.row(order[head] as usize);
            for &j in cols {
                if !seen[j as usize] {
                    seen[j as usize] = true;
                    order.push(j);
                }
            }
            head += 1;
        }
    }
    let mut new_of = vec![0u32; n];
    for (k, &i) in order.iter().enumerate() {
        new_of[i as usize] = k as u32;
    }
    let mut out = Csr {
        indptr: Vec::with_capacity(n + 1),
        indices: Vec::with_capacity(p.indices.len()),
        values: Vec::with_capacity(p.values.len()),
    };
    out.indptr.push(0);
    let mut row: Vec<(u32, f64)> = Vec::new();
    for &i in &order {
        let (cols, vals) = p.row(i as usize);
        row.clear();
        row.extend(
            cols.iter()
                .map(|&j| new_of[j as usize])
                .zip(vals.iter().copied()),
        );
        row.sort_unstable_by_key(|e| e.0);
        for &(j, v) in &row {
            out.indices.push(j);
            out.values.push(v);
        }
        out.indptr.push(out.indices.len());
    }
    (out, order)
}

fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn centre(y: &mut [[f64; 2]]) {
    if y.is_empty() {
        return;
    }
    let n = y.len() as f64;
    let mx = y.iter().map(|p| p[0]).sum::<f64>() / n;
    let my = y.iter().map(|p| p[1]).sum::<f64>() / n;
    for p in y {
        p[0] -= mx;
        p[1] -= my;
    }
}

/// What the worker threads of the optimisation share: inputs behind locks the main thread
/// takes between steps, and the tasks' outputs.
struct Shared<'a> {
    p: &'a Csr,
    p32: &'a [f32],
    theta: f64,
    y: RwLock<Vec<[f64; 2]>>,
    tree: RwLock<Repulsion>,
    attraction_rows: Vec<(usize, usize)>,
    attraction: Mutex<Vec<(usize, Vec<[f64; 2]>)>>,
    repulsion: Mutex<Vec<(usize, Vec<[f64; 3]>)>>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn take<T>(lock: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *lock.lock().unwrap_or_else(|e| e.into_inner()))
}

/// About `parts` contiguous ranges covering `0..n`.
fn row_ranges(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let per = n.div_ceil(parts.max(1)).max(256);
    (0..n).step_by(per).map(|a| (a, (a + per).min(n))).collect()
}

impl Shared<'_> {
    /// Task `t`: attraction of a range of rows, or a repulsion task of the tree.
    fn task(&self, t: usize) {
        let rows = self.attraction_rows.len();
        if let Some(&(a, b)) = self.attraction_rows.get(t) {
            let y = read(&self.y);
            let out: Vec<[f64; 2]> = (a..b)
                .map(|i| {
                    let r = self.p.indptr[i]..self.p.indptr[i + 1];
                    attraction(y[i], &self.p.indices[r.clone()], &self.p32[r], &y)
                })
                .collect();
            self.attraction
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((t, out));
        } else {
            let mut out = Vec::new();
            read(&self.tree).run_task(t - rows, self.theta, &mut out);
            self.repulsion
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((t - rows, out));
        }
    }

    /// One gradient evaluation: `attr[i] = Σ_j p_ij q_ij (y_i − y_j)` and
    /// `rep[i] = (Σ_j q_ij² (y_i − y_j), Σ_j q_ij)`; returns `Z`. The gradient (without the
    /// conventional factor 4) is `exaggeration · attr − rep / Z`.
    fn forces(
        &self,
        runner: &Runner<'_>,
        threads: usize,
        attr: &mut [[f64; 2]],
        rep: &mut [[f64; 3]],
    ) -> f64 {
        write(&self.tree).build(&read(&self.y), threads * 8);
        let tasks = self.attraction_rows.len() + read(&self.tree).tasks();
        runner.run(tasks);
        let tree = read(&self.tree);
        for (t, buf) in take(&self.repulsion) {
            tree.scatter(t, &buf, rep);
        }
        for (t, buf) in take(&self.attraction) {
            let (a, b) = self.attraction_rows[t];
            attr[a..b].copy_from_slice(&buf);
        }
        rep.iter().map(|r| r[2]).sum()
    }
}

/// Lanes of the attraction loop.
const ATTRACTION_LANES: usize = 8;

/// `Σ_j p_ij (y_i − y_j) / (1 + |y_i − y_j|²)` over one row of `P`: differences in `f64` (in the
/// exaggerated phase clusters shrink far below `f32` resolution of their position), the rest in
/// `f32` lanes the compiler vectorises (256 bits wide where the CPU has AVX: the same IEEE
/// operations lane by lane, so the same results).
fn attraction(yi: [f64; 2], cols: &[u32], vals: &[f32], y: &[[f64; 2]]) -> [f64; 2] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the running CPU supports AVX (checked just above).
            return unsafe { attraction_avx(yi, cols, vals, y) };
        }
    }
    attraction_body(yi, cols, vals, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn attraction_avx(yi: [f64; 2], cols: &[u32], vals: &[f32], y: &[[f64; 2]]) -> [f64; 2] {
    attraction_body(yi, cols, vals, y)
}

#[inline(always)]
fn attraction_body(yi: [f64; 2], cols: &[u32], vals: &[f32], y: &[[f64; 2]]) -> [f64; 2] {
    const W: usize = ATTRACTION_LANES;
    let mut ax = [0f32; W];
    let mut ay = [0f32; W];
    let mut dx = [0f32; W];
    let mut dy = [0f32; W];
    let mut pv = [0f32; W];
    let full = cols.len() / W * W;
    for (c, v) in cols[..full]
        .chunks_exact(W)
        .zip(vals[..full].chunks_exact(W))
    {
        for l in 0..W {
            let yj = y[c[l] as usize];
            dx[l] = (yi[0] - yj[0]) as f32;
            dy[l] = (yi[1] - yj[1]) as f32;
            pv[l] = v[l];
        }
        for l in 0..W {
            let w = pv[l] / (1.0 + dx[l] * dx[l] + dy[l] * dy[l]);
            ax[l] += w * dx[l];
            ay[l] += w * dy[l];
        }
    }
    for (&j, &v) in cols[full..].iter().zip(&vals[full..]) {
        let yj = y[j as usize];
        let (dx, dy) = ((yi[0] - yj[0]) as f32, (yi[1] - yj[1]) as f32);
        let w = v / (1.0 + dx * dx + dy * dy);
        ax[0] += w * dx;
        ay[0] += w * dy;
    }
    [
        ax.iter().map(|&v| f64::from(v)).sum(),
        ay.iter().map(|&v| f64::from(v)).sum(),
    ]
}

/// `KL(P ‖ Q) = Σ p_ij ln(p_ij Z (1 + |y_i − y_j|²))`.
fn kl_divergence(p: &Csr, y: &[[f64; 2]], z: f64) -> f64 {
    let mut kl = 0.0;
    for (i, yi) in y.iter().enumerate() {
        let (cols, vals) = p.row(i);
        for (&j, &pij) in cols.iter().zip(vals) {
            if pij > 0.0 {
                let yj = y[j as usize];
                let d2 = (yi[0] - yj[0]).powi(2) + (yi[1] - yj[1]).powi(2);
                kl += pij * (pij * z * (1.0 + d2)).ln();
            }
        }
    }
    kl
}
