//! k-means benchmark, Rust side (not a test): times [`KMeans`] on the input written by
//! `bench/kmeans_sklearn.py` (70,000 x 20 raw little-endian `f32`), with the same settings
//! (k = 9, n_init = 10, max_iter = 300, tol = 1e-4) on 2 threads.
//!
//! ```text
//! cargo run --release -p rensou-cluster --example bench_kmeans -- /tmp/kmeans_70000x20.f32 [threads]
//! ```

mod common;

use std::time::Instant;

use rensou_cluster::{KMeans, Matrix};

const DIM: usize = 20;
const REPEATS: u64 = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (path, threads, values) = common::read_input()?;
    let n = values.len() / DIM;
    let t = Instant::now();
    let x = Matrix::from_f32(n, DIM, &values)?;
    let convert = t.elapsed().as_secs_f64();
    println!("{path}: {n} x {DIM}; {threads} threads; f32 -> f64 copy {convert:.3} s");
    let mut times = Vec::new();
    let cpu_start = cpu_seconds();
    for seed in 0..REPEATS {
        let km = KMeans {
            seed,
            threads,
            ..KMeans::new(9)
        };
        let t = Instant::now();
        let fit = km.fit(&x)?;
        let secs = t.elapsed().as_secs_f64();
        times.push(secs);
        println!(
            "rensou-cluster KMeans seed {seed}: {secs:.3} s, inertia {:.6e}, best restart {} \
             ({} iterations), restart inertias min {:.6e} max {:.6e}, iterations {:?}",
            fit.inertia,
            fit.best_restart,
            fit.iterations,
            fit.restart_inertias
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min),
            fit.restart_inertias.iter().copied().fold(0.0, f64::max),
            fit.restart_iterations,
        );
    }
    let cpu = match (cpu_start, cpu_seconds()) {
        (Some(a), Some(b)) => format!("{:.3} s", (b - a) / REPEATS as f64),
        _ => "n/a".to_owned(),
    };
    times.sort_by(f64::total_cmp);
    println!(
        "rensou-cluster KMeans: best {:.3} s, median {:.3} s over {REPEATS} fits (n_init=10); \
         CPU time per fit {cpu}",
        times[0],
        times[times.len() / 2]
    );
    Ok(())
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (Linux; clock ticks
/// assumed to be 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
