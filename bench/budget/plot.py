"""Draws docs/figures/budget.png and prints the table of docs/budget.md from the curves that
bench/budget/explore.sh wrote (BUDGET_DIR/curves/*.json, one file per run and epoch).

usage: python bench/budget/plot.py BUDGET_DIR [OUT.png]
"""

import glob
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

budget = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "docs/figures/budget.png"
runs = defaultdict(list)
for f in glob.glob(f"{budget}/curves/*.json"):
    d = json.load(open(f))
    runs[d["name"]].append(d)
for r in runs.values():
    r.sort(key=lambda d: d["epoch"])

panels = [
    ("reconstruction.number", "oscn", "OSCN number, reconstruction"),
    ("reconstruction.number", "cmnist", "CMNIST number, reconstruction"),
    ("cross.number", "oscn->cmnist", "number, OSCN -> CMNIST"),
    ("cross.number", "cmnist->oscn", "number, CMNIST -> OSCN"),
]
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), sharey=True)
for ax, (metric, of, title) in zip(axes, panels):
    for name, r in sorted(runs.items()):
        pts = [(d["epoch"], d["scalars"]["values"].get(metric, {}).get(of)) for d in r]
        pts = [p for p in pts if p[1] is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=name)
    ax.axhline(0.125, ls="--", c="grey", lw=1)
    ax.axhline(0.8, ls=":", c="black", lw=1)
    ax.set_title(title)
    ax.set_xlabel("epoch (57,592 pairs each)")
axes[0].set_ylabel("accuracy (shared classifier)")
axes[0].legend(fontsize=8)
fig.suptitle("Budget curves on 2 CPU cores (seed 0; dashed: chance 0.125, dotted: adequacy 0.8)")
fig.tight_layout()
fig.savefig(out, dpi=90)

print("| run | epoch | s/epoch (1 thread) | test loss | recon. number oscn | recon. number cmnist | oscn -> cmnist | cmnist -> oscn |")
print("|---|---|---|---|---|---|---|---|")
for name, r in sorted(runs.items()):
    for d in r:
        v = d["scalars"]["values"]
        rn, cn = v["reconstruction.number"], v.get("cross.number", {})
        cell = lambda x: "-" if x is None else f"{x:.3f}"
        print(f"| {name} | {d['epoch']} | {d['train_s']:.0f} | {d['test_loss']:.1f} | {cell(rn.get('oscn'))} | "
              f"{cell(rn.get('cmnist'))} | {cell(cn.get('oscn->cmnist'))} | {cell(cn.get('cmnist->oscn'))} |")
