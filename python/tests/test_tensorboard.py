"""The runs' TensorBoard event files, read with TensorBoard's own reader."""

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def load(run: Path):
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def metrics(run: Path):
    return [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]


def check_run(run: Path):
    acc = load(run)
    tags = acc.Tags()
    m = metrics(run)
    for key in ("train_loss", "test_loss", "samples_per_s"):
        events = acc.Scalars(f"epoch/{key}")
        assert [e.step for e in events] == [x["epoch"] for x in m], key
        np.testing.assert_allclose(
            [e.value for e in events], np.float32([x[key] for x in m]), rtol=0, atol=0
        )
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps == sorted(set(steps)), "train/loss steps repeat or go backwards"
    assert steps[-1] == sum(x["steps"] for x in m)
    assert len(acc.Scalars("train/lr")) == len(steps)
    return acc, tags


def test_a_run_logs_its_metrics_grids_and_probes(work):
    run = work / "paper-quick/runs/mmvae-s0"
    acc, tags = check_run(run)
    grids = acc.Images("grid")
    assert [g.step for g in grids] == [1, 2]
    for g in grids:
        img = Image.open(io.BytesIO(g.encoded_image_string))
        img.load()
        assert img.size == (g.width, g.height)
    scalars = json.loads((run / "probes/coherence/scalars.json").read_text())["values"]
    value = scalars["reconstruction.number"]["oscn"]
    events = acc.Scalars("probe/coherence/reconstruction.number/oscn")
    assert [e.step for e in events] == [2]
    assert events[0].value == np.float32(value)


def test_a_study_lays_out_every_model_and_seed(study):
    runs = sorted(p for p in (study / "runs").iterdir() if p.is_dir())
    assert [p.name for p in runs] == sorted(
        f"{m}-s{s}" for m in ("mmvae", "vae-oscn", "vae-cmnist") for s in (0, 1)
    )
    for run in runs:
        acc, tags = check_run(run)
        # Probes at the probe epoch (1) and the last (2), in order.
        steps = [e.step for e in acc.Scalars(next(t for t in tags["scalars"] if t.startswith("probe/cluster/")))]
        assert steps == [1, 2], run.name
