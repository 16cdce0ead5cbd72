#!/usr/bin/env python3
"""Benchmark (not a test): rensou-tsne vs the bhtsne crate vs openTSNE on one 10,000 x 20 input.

Run from the workspace root:

    python3 plugins/tsne/bench/compare.py [--n 10000] [--out target/tsne-bench]

Writes the input (a Gaussian mixture of 9 anisotropic clusters of unequal sizes, seed 0), runs
openTSNE (FFT method, its default settings, perplexity 20, every core), then
`cargo run --release -p rensou-tsne --example bench_tsne` (this crate and the bhtsne crate, both
perplexity 20 and 1000 iterations, every core), and scores every embedding with scikit-learn:
trustworthiness (k = 10) and leave-one-out 10-NN accuracy of the cluster label. Results are
printed as a table and saved to OUT/results.json.

Needs numpy, scikit-learn and openTSNE (`pip install openTSNE`).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from sklearn.manifold import trustworthiness
from sklearn.neighbors import NearestNeighbors


def mixture(n, dim=20, clusters=9, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, clusters)
    sizes = np.floor(weights / weights.sum() * n).astype(int)
    sizes[: n - sizes.sum()] += 1
    centres = rng.normal(0.0, 2.5, (clusters, dim))
    xs, ys = [], []
    for c, size in enumerate(sizes):
        scales = rng.uniform(0.4, 1.6, dim)
        rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        xs.append(centres[c] + (rng.normal(size=(size, dim)) * scales) @ rotation)
        ys.append(np.full(size, c))
    x = np.concatenate(xs).astype(np.float32)
    y = np.concatenate(ys)
    order = rng.permutation(n)
    return x[order], y[order]


def knn_accuracy(emb, labels, k=10):
    nn = NearestNeighbors(n_neighbors=k + 1).fit(emb)
    idx = nn.kneighbors(return_distance=False)[:, :k]
    votes = labels[idx]
    pred = np.array([np.bincount(v).argmax() for v in votes])
    return float((pred == labels).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--out", default="target/tsne-bench")
    ap.add_argument("--skip-opentsne", action="store_true")
    ap.add_argument("--skip-bhtsne", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    x, labels = mixture(args.n)
    n, dim = x.shape
    data_path = os.path.join(args.out, "mixture.f32")
    x.astype("<f4").tofile(data_path)
    np.save(os.path.join(args.out, "labels.npy"), labels)
    results = {}

    if not args.skip_opentsne:
        import openTSNE

        start = time.perf_counter()
        emb = openTSNE.TSNE(perplexity=20, n_jobs=-1, random_state=0).fit(x)
        seconds = time.perf_counter() - start
        emb = np.asarray(emb, dtype=np.float32)
        emb.astype("<f4").tofile(os.path.join(args.out, "opentsne.f32"))
        results["opentsne_fft"] = {"seconds": seconds, "version": openTSNE.__version__}

    subprocess.run(
        ["cargo", "build", "--release", "-p", "rensou-tsne", "--example", "bench_tsne"],
        check=True,
    )
    cmd = [
        "cargo", "run", "--quiet", "--release", "-p", "rensou-tsne", "--example", "bench_tsne",
        "--", data_path, str(n), str(dim), args.out,
    ]
    if args.skip_bhtsne:
        cmd.append("--skip-bhtsne")
    run = subprocess.run(cmd, check=True, capture_output=True, text=True)
    sys.stderr.write(run.stderr)
    files = {"opentsne_fft": "opentsne.f32"}
    for line in run.stdout.splitlines():
        rec = json.loads(line)
        method = rec.pop("method")
        rec["rust_trustworthiness"] = rec.pop("trustworthiness")
        results[method] = rec
        files[method] = f"{method}.f32"

    for method, rec in results.items():
        emb = np.fromfile(os.path.join(args.out, files[method]), dtype="<f4").reshape(n, 2)
        rec["trustworthiness"] = float(trustworthiness(x, emb, n_neighbors=10))
        rec["knn_accuracy"] = knn_accuracy(emb, labels)

    print(f"\n{n} x {dim} Gaussian mixture, perplexity 20, {os.cpu_count()} cores")
    print(f"{'method':<14} {'seconds':>8} {'trust(k=10)':>12} {'10-NN acc':>10}")
    for method, rec in results.items():
        print(
            f"{method:<14} {rec['seconds']:>8.2f} {rec['trustworthiness']:>12.5f}"
            f" {rec['knn_accuracy']:>10.4f}"
        )
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"n": n, "dim": dim, "cores": os.cpu_count(), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
