"""rensou from Python: datasets, trained runs and studies.

- ``Dataset(path)``: a dataset file from ``rensou data build``; items and labels as numpy arrays.
- ``Run(path)``: a trained run directory; its config, metrics and probe scalars, and
  ``encode`` / ``decode`` / ``generate`` on the CPU (the GIL is released while they compute).
- ``Study(path)``: a ``rensou paper`` directory; its summary (verdicts, adequacy, emergence
  curves, comparisons) as plain Python data, and its runs.
- ``RensouError``: every failure, with rensou's one-line message.
"""

import json
from pathlib import Path

from ._rensou import Dataset, RensouError, Run, __version__, backend_name

__all__ = ["Dataset", "Run", "Study", "RensouError", "backend_name", "__version__"]


class Study:
    """A study directory written by ``rensou paper`` (its ``summary.json``, ``plan.json`` and
    ``tasks.json``), as plain Python data."""

    def __init__(self, path):
        self.path = Path(path)
        self.plan = self._read("plan.json", "no planned study (no plan.json)")
        self.summary = self._read(
            "summary.json",
            "no report yet (no summary.json); write one with "
            f"`rensou paper report --out {self.path}`",
        )
        tasks = self._read("tasks.json", "no tasks.json")
        self.tasks = tasks.get("tasks", [])

    def _read(self, name, missing):
        p = self.path / name
        try:
            text = p.read_text()
        except FileNotFoundError:
            raise RensouError(f"{self.path}: {missing}") from None
        except OSError as e:
            raise RensouError(f"cannot read {p}: {e}") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise RensouError(f"{p} is damaged: {e}") from None

    @property
    def verdicts(self):
        """Each claim's verdict line, ``{claim id (str): text}``."""
        return self.summary.get("verdicts", {})

    @property
    def judgements(self):
        """Every verdict as data: claim, modality, model, outcome, judgement, g and its interval."""
        return self.summary.get("judgements", [])

    @property
    def adequacy(self):
        """How well each model learned: the rule, chance levels and one row per measure."""
        return self.summary.get("adequacy", {})

    @property
    def emergence(self):
        """The curves over training (``--probe-epochs``), or ``None``."""
        return self.summary.get("emergence")

    @property
    def comparisons(self):
        """Every claim metric's MMVAE-vs-VAE comparison."""
        return self.summary.get("comparisons", [])

    @property
    def run_ids(self):
        """The tasks' run ids (``<model>-s<seed>``), in plan order."""
        return [t["id"] for t in self.tasks]

    def run(self, run_id):
        """The trained run of task ``run_id`` (e.g. ``"mmvae-s0"``)."""
        if run_id not in self.run_ids:
            raise RensouError(
                f"{self.path} has no run `{run_id}`; it has {', '.join(self.run_ids)}"
            )
        return Run(self.path / "runs" / run_id)

    def __repr__(self):
        return (
            f"rensou.Study({str(self.path)!r}: {self.plan.get('preset')} preset, "
            f"{self.plan.get('seeds')} seeds, {len(self.tasks)} tasks)"
        )
