#!/usr/bin/env python3
"""Timing of scikit-learn's silhouette and cross-validated logistic regression (not a test), the
counterpart of `examples/bench_metrics.rs`, on the input written by `kmeans_sklearn.py`:

    OMP_NUM_THREADS=2 python3 probes/cluster/bench/metrics_sklearn.py /tmp/kmeans_70000x20.f32
    cargo run --release -p rensou-cluster --example bench_metrics -- /tmp/kmeans_70000x20.f32
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "2")

import time  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/kmeans_70000x20.f32"
x = np.fromfile(path, dtype="<f4").reshape(-1, 20).astype(np.float64)
with threadpool_limits(limits=2):
    number = KMeans(9, n_init=10, random_state=0).fit(x).labels_ + 1
    t = time.perf_counter()
    scores = [silhouette_score(x, lab, sample_size=10_000, random_state=0)
              for lab in (number, number % 4, number % 3)]
    print(f"sklearn silhouette, 3 labelings, 10000 sampled: {time.perf_counter() - t:.3f} s "
          f"({scores})")
    t = time.perf_counter()
    acc = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(C=1.0)), x, number,
                          cv=StratifiedKFold(5, shuffle=True, random_state=0), n_jobs=2)
    print(f"sklearn logistic regression, 5 folds: {time.perf_counter() - t:.3f} s "
          f"(accuracy {acc.mean():.4f})")
