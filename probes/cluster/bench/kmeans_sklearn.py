#!/usr/bin/env python3
"""k-means benchmark, scikit-learn side (not a test).

Writes the benchmark input, 70,000 x 20 float32 points from 9 overlapping Gaussian blobs, as raw
little-endian float32 (row-major) to DATA, then times scikit-learn's KMeans on it with the
settings rensou-cluster uses (k = 9, k-means++, n_init = 10, max_iter = 300, tol = 1e-4, Lloyd)
on 2 threads. The Rust side is `examples/bench_kmeans.rs`; run both in the same session:

    OMP_NUM_THREADS=2 python3 probes/cluster/bench/kmeans_sklearn.py /tmp/kmeans_70000x20.f32
    cargo run --release -p rensou-cluster --example bench_kmeans -- /tmp/kmeans_70000x20.f32

An optional second argument sets the number of threads of both (default 2).
"""
import os
import sys

THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import time  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

N, D, K, N_INIT, REPEATS = 70_000, 20, 9, 10, 3


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/kmeans_70000x20.f32"
    x, _ = make_blobs(n_samples=N, n_features=D, centers=K, cluster_std=2.0,
                      center_box=(-4.0, 4.0), random_state=0)
    x32 = x.astype("<f4")
    x32.tofile(path)
    print(f"wrote {path}: {N} x {D} float32; scikit-learn {sklearn.__version__}, "
          f"{THREADS} threads (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")
    with threadpool_limits(limits=THREADS):
        for name, data in [("float32", x32), ("float64", x32.astype(np.float64))]:
            times, cpu, inertia, iters = [], [], None, None
            for r in range(REPEATS):
                km = KMeans(n_clusters=K, init="k-means++", n_init=N_INIT, max_iter=300,
                            tol=1e-4, algorithm="lloyd", random_state=r)
                t, c = time.perf_counter(), time.process_time()
                km.fit(data)
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
                inertia, iters = km.inertia_, km.n_iter_
            print(f"sklearn KMeans lloyd {name}: best {min(times):.3f} s, median "
                  f"{sorted(times)[REPEATS // 2]:.3f} s over {REPEATS} fits "
                  f"(n_init={N_INIT}); CPU time per fit {sum(cpu) / REPEATS:.3f} s; "
                  f"last inertia {inertia:.6e}, iterations {iters}")
            t = time.perf_counter()
            km = KMeans(n_clusters=K, n_init=N_INIT, algorithm="elkan", random_state=0).fit(data)
            print(f"sklearn KMeans elkan {name}: {time.perf_counter() - t:.3f} s, "
                  f"inertia {km.inertia_:.6e}")


if __name__ == "__main__":
    main()
