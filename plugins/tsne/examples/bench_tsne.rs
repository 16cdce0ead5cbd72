//! Benchmark (not a test): this crate's t-SNE against the `bhtsne` crate on the same input.
//!
//! ```text
//! cargo run --release -p rensou-tsne --example bench_tsne -- DATA.f32 N DIM OUT_DIR [--skip-bhtsne]
//! ```
//!
//! `DATA.f32` holds `N x DIM` little-endian `f32` values, row-major (written by
//! `bench/compare.py`). Both run with perplexity 20, 1000 iterations (250 exaggerated), every
//! core; `bhtsne` with Barnes-Hut (theta 0.5, its default settings otherwise) and, for
//! information, its FFT-interpolation (FIt-SNE) path. Embeddings are written to `OUT_DIR` as
//! `<method>.f32` (`N x 2`), and one JSON line per method is printed with seconds and this
//! crate's trustworthiness (k = 10); `bench/compare.py` recomputes trustworthiness with
//! scikit-learn for all methods.

use std::path::Path;
use std::time::Instant;

use rensou_tsne::{trustworthiness, Points, Tsne};

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn report(method: &str, seconds: f64, high: Points<'_>, embedding: &[f32], out: &Path) {
    write_f32(&out.join(format!("{method}.f32")), embedding);
    let low = Points::new(embedding, 2).expect("a finite embedding");
    let t = trustworthiness(high, low, 10).expect("trustworthiness");
    println!(
        "{{\"method\": \"{method}\", \"seconds\": {seconds:.3}, \"trustworthiness\": {t:.6}}}"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: bench_tsne DATA.f32 N DIM OUT_DIR [--skip-bhtsne]");
        std::process::exit(2);
    }
    let data = read_f32(Path::new(&args[1]));
    let n: usize = args[2].parse().expect("N");
    let dim: usize = args[3].parse().expect("DIM");
    let out = Path::new(&args[4]);
    std::fs::create_dir_all(out).expect("output directory");
    let skip_bhtsne = args.iter().any(|a| a == "--skip-bhtsne");
    assert_eq!(data.len(), n * dim, "data size");
    let high = Points::new(&data, dim).expect("finite data");

    let start = Instant::now();
    let fit = Tsne {
        perplexity: 20.0,
        ..Tsne::default()
    }
    .fit(high)
    .expect("t-SNE");
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "rensou-tsne: affinities {:.2} s, optimisation {:.2} s, KL {:.4}",
        fit.seconds_affinities, fit.seconds_optimisation, fit.kl_divergence
    );
    report("rensou", seconds, high, fit.points.as_flattened(), out);

    if skip_bhtsne {
        return;
    }
    let rows: Vec<&[f32]> = data.chunks_exact(dim).collect();
    let euclid = |a: &&[f32], b: &&[f32]| -> f32 {
        a.iter()
            .zip(b.iter())
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt()
    };
    let start = Instant::now();
    let embedding = bhtsne::tSNE::<f32, &[f32], 2>::new(&rows)
        .perplexity(20.0)
        .epochs(1000)
        .barnes_hut(0.5, euclid)
        .embedding();
    report(
        "bhtsne_bh",
        start.elapsed().as_secs_f64(),
        high,
        &embedding,
        out,
    );

    let start = Instant::now();
    let embedding = bhtsne::tSNE::<f32, &[f32], 2>::new(&rows)
        .perplexity(20.0)
        .epochs(1000)
        .fit_sne(euclid)
        .embedding();
    report(
        "bhtsne_fft",
        start.elapsed().as_secs_f64(),
        high,
        &embedding,
        out,
    );
}
