//! Benchmark (not a test): this crate's t-SNE against the `bhtsne` crate on the same input.
//!
//! ```text
//! bench_tsne METHOD DATA.f32 N DIM OUT.f32     METHOD: rensou | bhtsne_bh | bhtsne_fft
//! bench_tsne trust DATA.f32 N DIM EMBEDDING.f32
//! ```
//!
//! `DATA.f32` holds `N x DIM` little-endian `f32` values, row-major (written by
//! `bench/compare.py`, which runs this once per method and times the process). Every method runs
//! with perplexity 20 and 1000 iterations (250 exaggerated) on every core: `rensou` is this crate
//! with its defaults; `bhtsne_bh` is the `bhtsne` crate's Barnes-Hut (theta 0.5) and `bhtsne_fft`
//! its FFT-interpolation (FIt-SNE) path, both with the crate's defaults otherwise. The embedding
//! (`N x 2` `f32`) goes to `OUT.f32`, and one JSON line with the fit's seconds is printed.
//! `trust` prints this crate's trustworthiness (k = 10) of an embedding.

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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: bench_tsne rensou|bhtsne_bh|bhtsne_fft|trust DATA.f32 N DIM FILE.f32");
        std::process::exit(2);
    }
    let method = args[1].as_str();
    let data = read_f32(Path::new(&args[2]));
    let n: usize = args[3].parse().expect("N");
    let dim: usize = args[4].parse().expect("DIM");
    let file = Path::new(&args[5]);
    assert_eq!(data.len(), n * dim, "data size");
    let high = Points::new(&data, dim).expect("finite data");
    if method == "trust" {
        let emb = read_f32(file);
        let t = trustworthiness(high, Points::new(&emb, 2).expect("embedding"), 10).expect("k");
        println!("{{\"trustworthiness\": {t:.8}}}");
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
    let embedding: Vec<f32> = match method {
        "rensou" => {
            let fit = Tsne {
                perplexity: 20.0,
                ..Tsne::default()
            }
            .fit(high)
            .expect("t-SNE");
            eprintln!(
                "rensou-tsne: affinities {:.2} s, optimisation {:.2} s, KL {:.4}",
                fit.seconds_affinities, fit.seconds_optimisation, fit.kl_divergence
            );
            fit.points.as_flattened().to_vec()
        }
        "bhtsne_bh" => bhtsne::tSNE::<f32, &[f32], 2>::new(&rows)
            .perplexity(20.0)
            .epochs(1000)
            .barnes_hut(0.5, euclid)
            .embedding(),
        "bhtsne_fft" => bhtsne::tSNE::<f32, &[f32], 2>::new(&rows)
            .perplexity(20.0)
            .epochs(1000)
            .fit_sne(euclid)
            .embedding(),
        other => panic!("unknown method {other}"),
    };
    let seconds = start.elapsed().as_secs_f64();
    write_f32(file, &embedding);
    println!("{{\"method\": \"{method}\", \"seconds\": {seconds:.4}}}");
}
