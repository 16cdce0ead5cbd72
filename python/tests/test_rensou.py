"""The Python package against what the rensou binary wrote."""

import json
import re
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

import rensou

ROOT = Path(__file__).resolve().parents[2]


def test_dataset_items_and_labels(work):
    ds = rensou.Dataset(work / "data.h5")
    assert ds.modalities == ["oscn", "cmnist"]
    assert ds.splits == ["train", "test"]
    n = ds.pairs("test")
    items = ds.items("test", "oscn")
    assert items.dtype == np.uint8 and items.shape == (n, 32, 32, 3)
    assert ds.items("test", "cmnist").shape == (n, 28, 28, 3)
    labels = ds.labels("test", "oscn")
    assert set(labels) >= {"number", "colour", "shape"}
    assert labels["number"].dtype == np.int64 and labels["number"].shape == (n,)
    assert set(np.unique(labels["number"])) <= set(range(1, 10))
    # Pairs share number and colour.
    assert (labels["number"] == ds.labels("test", "cmnist")["number"]).all()
    assert ds.label_names("oscn")["colour"][0] == "red"
    assert ds.item_shape("cmnist") == [28, 28, 3]


def test_errors_are_rensou_errors_with_one_line(work, tmp_path):
    with pytest.raises(rensou.RensouError) as e:
        rensou.Dataset(tmp_path / "missing.h5")
    assert "missing.h5" in str(e.value) and "\n" not in str(e.value)
    ds = rensou.Dataset(work / "data.h5")
    with pytest.raises(rensou.RensouError, match="no split `valid`"):
        ds.items("valid", "oscn")
    run = rensou.Run(work / "paper-quick/runs/mmvae-s0")
    with pytest.raises(rensou.RensouError, match=r"shape \[n, 32, 32, 3\]"):
        run.encode("oscn", np.zeros((2, 28, 28, 3), np.uint8))
    with pytest.raises(rensou.RensouError, match="audio"):
        run.encode("audio", np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(rensou.RensouError, match=r"\[0, 1\]"):
        run.encode("oscn", np.full((1, 32, 32, 3), 2.0))
    with pytest.raises(rensou.RensouError):
        rensou.Run(tmp_path)
    with pytest.raises(rensou.RensouError, match="no summary.json"):
        (tmp_path / "plan.json").write_text("{}")
        rensou.Study(tmp_path)


def test_run_data(work):
    run = rensou.Run(work / "paper-quick/runs/mmvae-s0")
    assert run.modalities == ["oscn", "cmnist"] and run.latent_dim == 20 and run.epoch == 2
    assert run.config["training"]["epochs"] == 2
    metrics = run.metrics
    assert [m["epoch"] for m in metrics] == [1, 2]
    lines = (Path(run.path) / "metrics.jsonl").read_text().splitlines()
    assert metrics == [json.loads(l) for l in lines]
    scalars = run.probe_scalars
    assert 0.0 <= scalars["coherence"]["reconstruction.number"]["oscn"] <= 1.0


def test_encode_matches_the_probes_latents(work):
    run = rensou.Run(work / "paper-quick/runs/mmvae-s0")
    ds = rensou.Dataset(work / "data.h5")
    with h5py.File(work / "paper-quick/runs/mmvae-s0/latents.h5") as f:
        stored = {m: f[m]["loc"][()] for m in ("oscn", "cmnist")}
    for m in ("oscn", "cmnist"):
        loc, scale = run.encode(m, ds.items("test", m))
        assert loc.dtype == np.float32 and loc.shape == stored[m].shape
        np.testing.assert_allclose(loc, stored[m], rtol=1e-5, atol=1e-6)
        assert (scale > 0).all()
    # Floats in [0, 1] are the same items.
    items = ds.items("test", "oscn")[:5]
    a, _ = run.encode("oscn", items)
    b, _ = run.encode("oscn", items.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(a, b)
    # One item without the batch axis (a batch of one: other float rounding than a batch of 5).
    c, _ = run.encode("oscn", items[0])
    np.testing.assert_allclose(c[0], a[0], rtol=1e-5, atol=1e-7)


def test_decode_and_generate(work):
    run = rensou.Run(work / "paper-quick/runs/mmvae-s0")
    ds = rensou.Dataset(work / "data.h5")
    items = ds.items("test", "cmnist")[:4]
    loc, _ = run.encode("cmnist", items)
    out = run.decode("oscn", loc)
    assert out.shape == (4, 32, 32, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(run.generate("cmnist", "oscn", items), out)


def test_encode_releases_the_gil(work):
    """Two threads encoding at once both finish, with the same results as one."""
    run = rensou.Run(work / "paper-quick/runs/mmvae-s0")
    items = rensou.Dataset(work / "data.h5").items("test", "oscn")
    results = [None, None]

    def go(i):
        results[i] = run.encode("oscn", items)[0]

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(results[0], results[1])


def test_study(study):
    s = rensou.Study(study)
    assert s.plan["seeds"] == 2
    assert set(s.verdicts) == {"1", "2", "3", "4"}
    assert s.judgements and all("outcome" in j for j in s.judgements)
    assert "chance" in s.adequacy["rule"]
    assert s.emergence["epochs"] == [1, 2]
    assert "mmvae-s0" in s.run_ids
    run = s.run("mmvae-s1")
    assert run.epoch == 2
    with pytest.raises(rensou.RensouError, match="no run `nope`"):
        s.run("nope")


def readme_example():
    """The Python block of the README (between its markers)."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- python-example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no python example"
    return m.group(1)


def test_the_readme_example_runs(work, monkeypatch):
    monkeypatch.chdir(work)
    code = readme_example()
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert (work / "oscn-distances.png").is_file()
    d = scope["distances"]
    assert d.shape == (9, 9) and np.allclose(np.diag(d), 0) and np.allclose(d, d.T)
