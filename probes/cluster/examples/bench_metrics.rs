//! Timing of the other metrics (not a test) on the k-means benchmark input
//! (`bench/kmeans_sklearn.py` writes it): silhouette on a 10,000-item sample for three
//! labelings, 5-fold linear probe, magnitude, on 70,000 x 20.
//!
//! ```text
//! cargo run --release -p rensou-cluster --example bench_metrics -- /tmp/kmeans_70000x20.f32 [threads]
//! ```

mod common;

use std::time::Instant;

use rensou_cluster::{magnitude, KMeans, LinearProbe, Matrix, Silhouette};

const DIM: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_path, threads, values) = common::read_input()?;
    let n = values.len() / DIM;
    let x = Matrix::from_f32(n, DIM, &values)?;
    // Labels: a 9-cluster k-means labelling (as "number", 1..9) and two coarser ones.
    let fit = KMeans {
        threads,
        ..KMeans::new(9)
    }
    .fit(&x)?;
    let number: Vec<i64> = fit.labels.iter().map(|&l| l as i64 + 1).collect();
    let colour: Vec<i64> = number.iter().map(|l| l % 4).collect();
    let shape: Vec<i64> = number.iter().map(|l| l % 3).collect();

    let t = Instant::now();
    let sil = Silhouette {
        threads,
        ..Silhouette::default()
    }
    .scores(&x, &[&number, &colour, &shape])?;
    println!(
        "silhouette, 3 labelings, {} items sampled: {:.3} s ({:?})",
        sil.items,
        t.elapsed().as_secs_f64(),
        sil.scores
    );

    let t = Instant::now();
    let probe = LinearProbe {
        threads,
        ..LinearProbe::default()
    }
    .score(&x, &number)?;
    println!(
        "linear probe, 5 folds, 9 classes, {n} items: {:.3} s (accuracy {:.4}, iterations {:?})",
        t.elapsed().as_secs_f64(),
        probe.accuracy,
        probe.iterations
    );

    let t = Instant::now();
    let m = magnitude(&x, &number)?;
    println!(
        "magnitude: {:.4} s (|r| {:?})",
        t.elapsed().as_secs_f64(),
        m.abs_pearson_r()
    );
    Ok(())
}
