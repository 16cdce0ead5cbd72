#!/usr/bin/env python3
"""Benchmark (not a test): rensou-tsne vs the bhtsne crate vs openTSNE on one 10,000 x 20 input.

Run from the workspace root:

    python3 probes/tsne/bench/compare.py [--n 10000] [--seeds 0,1,2,3] [--out target/tsne-bench]

For each data set (a Gaussian mixture of 9 anisotropic clusters of unequal sizes; seeds 0-3 by
default, seed 0 is the main input) runs each method once, on every core: this crate (defaults,
perplexity 20), the bhtsne crate's Barnes-Hut and FFT paths (examples/bench_tsne.rs; perplexity 20, 1000
iterations, the crate's defaults otherwise) and openTSNE (FFT method, its default settings,
perplexity 20). Wall and CPU seconds are measured around each fit (medians over the data sets are
reported); every embedding is scored with scikit-learn: trustworthiness (k = 10) and
leave-one-out 10-NN accuracy of the cluster label. Results are printed as a table and saved to OUT/results.json.

Needs numpy, scikit-learn and openTSNE (`pip install openTSNE`).
"""

import argparse
import json
import os
import resource
import subprocess
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


def timed(fn):
    """Wall seconds and CPU seconds (this process and finished children) of fn()."""
    r0s, r0c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    r1s, r1c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(
        (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime) for a, b in ((r0s, r1s), (r0c, r1c))
    )
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seeds", default="0,1,2,3", help="data sets (mixture seeds); seed 0 is the main one")
    ap.add_argument("--out", default="target/tsne-bench")
    ap.add_argument(
        "--methods", default="rensou,bhtsne_bh,bhtsne_fft,opentsne_fft",
        help="comma-separated subset of rensou, bhtsne_bh, bhtsne_fft, opentsne_fft",
    )
    args = ap.parse_args()
    methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    os.makedirs(args.out, exist_ok=True)
    subprocess.run(
        ["cargo", "build", "--release", "-p", "rensou-tsne", "--example", "bench_tsne"], check=True
    )
    # The example is run directly (not through cargo) so that only the fit is timed.
    exe = os.path.join("target", "release", "examples", "bench_tsne")

    results = {m: {"runs": []} for m in methods}
    for seed in seeds:
        x, labels = mixture(args.n, seed=seed)
        n, dim = x.shape
        data_path = os.path.join(args.out, f"mixture{seed}.f32")
        x.astype("<f4").tofile(data_path)
        np.save(os.path.join(args.out, f"labels{seed}.npy"), labels)
        for method in methods:
            out = os.path.join(args.out, f"{method}{seed}.f32")

            def fit():
                if method == "opentsne_fft":
                    import openTSNE

                    emb = openTSNE.TSNE(
                        perplexity=20, negative_gradient_method="fft", n_jobs=-1, random_state=0
                    ).fit(x)
                    np.asarray(emb, dtype="<f4").tofile(out)
                else:
                    subprocess.run([exe, method, data_path, str(n), str(dim), out], check=True,
                                   stdout=subprocess.DEVNULL)

            wall, cpu = timed(fit)
            emb = np.fromfile(out, dtype="<f4").reshape(n, 2)
            run = {
                "seed": seed,
                "wall_seconds": wall,
                "cpu_seconds": cpu,
                "trustworthiness": float(trustworthiness(x, emb, n_neighbors=10)),
                "knn_accuracy": knn_accuracy(emb, labels),
            }
            if method == "rensou" and seed == seeds[0]:
                text = subprocess.run([exe, "trust", data_path, str(n), str(dim), out],
                                      check=True, capture_output=True, text=True).stdout
                run["rust_trustworthiness"] = json.loads(text)["trustworthiness"]
            results[method]["runs"].append(run)
            print(f"seed {seed}: {method:<13} wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
                  f"trust {run['trustworthiness']:.5f}  10-NN {run['knn_accuracy']:.4f}", flush=True)

    for method, rec in results.items():
        runs = rec["runs"]
        rec["median_wall"] = float(np.median([r["wall_seconds"] for r in runs]))
        rec["median_cpu"] = float(np.median([r["cpu_seconds"] for r in runs]))
        rec["mean_trustworthiness"] = float(np.mean([r["trustworthiness"] for r in runs]))
        rec["mean_knn_accuracy"] = float(np.mean([r["knn_accuracy"] for r in runs]))

    print(f"\n{args.n} x 20 Gaussian mixtures (seeds {args.seeds}), perplexity 20, "
          f"{os.cpu_count()} cores")
    print(f"{'method':<14} {'wall s':>7} {'cpu s':>7} {'trust seed ' + str(seeds[0]):>13} "
          f"{'trust mean':>11} {'10-NN mean':>11}")
    for method, rec in results.items():
        print(
            f"{method:<14} {rec['median_wall']:>7.2f} {rec['median_cpu']:>7.2f}"
            f" {rec['runs'][0]['trustworthiness']:>13.5f} {rec['mean_trustworthiness']:>11.5f}"
            f" {rec['mean_knn_accuracy']:>11.4f}"
        )
    if "rensou" in results:
        r = results["rensou"]["runs"][0]
        print(f"rensou trustworthiness on seed {seeds[0]}: scikit-learn {r['trustworthiness']:.8f}, "
              f"rensou-tsne {r['rust_trustworthiness']:.8f}")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"n": args.n, "dim": 20, "cores": os.cpu_count(), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
