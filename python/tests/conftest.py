"""Fixtures: a tiny dataset, a trained run probed once, a fresh OSCN dataset and a tiny study,
all made with the rensou binary (RENSOU_BIN, default target/release/rensou of this checkout)."""

import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def rensou_bin():
    b = Path(os.environ.get("RENSOU_BIN", ROOT / "target" / "release" / "rensou"))
    if not b.is_file():
        pytest.fail(f"{b} is missing: build it with `cargo build --release` (or set RENSOU_BIN)")
    return b


def rensou(cwd, *args):
    out = subprocess.run(
        [str(rensou_bin()), *map(str, args)], cwd=cwd, capture_output=True, text=True
    )
    if out.returncode != 0:
        pytest.fail(f"rensou {' '.join(map(str, args))} failed:\n{out.stderr}")
    return out


def write_tiny_mnist(d: Path, train_per_class: int, test_per_class: int):
    """Synthetic digits in MNIST's IDX format (the same pattern as the Rust tests' fixture)."""
    d.mkdir(parents=True, exist_ok=True)
    for prefix, per_class, salt in (("train", train_per_class, 0), ("t10k", test_per_class, 101)):
        images, labels = [], []
        for i in range(per_class):
            for digit in range(10):
                labels.append(digit)
                p = np.arange(784, dtype=np.uint32)
                v = (p * (digit + 1) + i + salt) % 256
                v[p % 7 == 0] = 0
                images.append(v.astype(np.uint8))
        n = len(labels)
        (d / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + np.stack(images).tobytes()
        )
        (d / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + bytes(labels)
        )


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    """A directory laid out as the README's Python example expects it:
    paper-quick/runs/mmvae-s0 (a trained, probed MMVAE) and new-oscn.h5 (fresh OSCN pictures);
    plus data.h5 (the run's dataset) and mnist/."""
    w = tmp_path_factory.mktemp("rensou")
    write_tiny_mnist(w / "mnist", 4, 2)
    rensou(w, "data", "build", "--out", "data.h5", "--mnist", "mnist")
    run = w / "paper-quick" / "runs" / "mmvae-s0"
    rensou(w, "train", "--data", "data.h5", "--out", run, "--epochs", "2", "--k", "2",
           "--max-train-pairs", "128", "--grid-every", "1")
    rensou(w, "probe", "--run", run, "--probe", "coherence")
    rensou(w, "data", "build", "--modalities", "oscn", "--seed", "7", "--out", "new-oscn.h5")
    return w


@pytest.fixture(scope="session")
def study(work):
    """A tiny `rensou paper` study with probes over training."""
    rensou(work, "paper", "--seeds", "2", "--epochs", "2", "--k", "2", "--max-train-pairs", "64",
           "--probe-epochs", "1", "--out", "study", "--mnist", "mnist")
    return work / "study"
