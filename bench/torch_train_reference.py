"""Train the paper's MLP MMVAE in PyTorch on a rensou dataset file, to compare learning with rensou.

Uses the model and objective of ../shared/bench/torch_reference.py (imported from --reference),
the pairs of a file written by `rensou data build`, Adam(lr 1e-3, amsgrad) and batch 128. Prints
one JSON line per --log-every steps (mean loss per pair over those steps) and writes a PNG grid:
for one test pair per number, each modality's input, then its reconstruction and its cross
generation (decoded from the posterior location, like `rensou train`'s grids).

    python3 bench/torch_train_reference.py --data data/oscn-cmnist.h5 --steps 1800 --k 2 \
        --out /tmp/torch-run
"""
import argparse, importlib.util, json, math, os, sys, time

import h5py
import numpy as np
import torch


def load_reference(path):
    spec = importlib.util.spec_from_file_location("torch_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_split(f, split, names):
    xs = [torch.from_numpy(f[f"{split}/{n}/data"][:]).reshape(f[f"{split}/{n}/data"].shape[0], -1)
          for n in names]
    number = f[f"{split}/{names[0]}/labels/number"][:]
    return xs, number


def save_grid(path, rows):
    """rows: list of lists of HxWx3 float arrays in [0, 1]; pads to the largest size."""
    from PIL import Image
    h = max(im.shape[0] for r in rows for im in r)
    w = max(im.shape[1] for r in rows for im in r)
    cols = max(len(r) for r in rows)
    canvas = np.zeros((len(rows) * (h + 2), cols * (w + 2), 3), dtype=np.uint8)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            canvas[i * (h + 2):i * (h + 2) + im.shape[0], j * (w + 2):j * (w + 2) + im.shape[1]] = \
                (np.clip(im, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(canvas).resize((canvas.shape[1] * 3, canvas.shape[0] * 3), Image.NEAREST).save(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--reference", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                        "shared", "bench", "torch_reference.py"))
    ap.add_argument("--modalities", default="oscn,cmnist")
    ap.add_argument("--steps", type=int, default=1800)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--estimator", choices=["reference", "dreg"], default="reference")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ref = load_reference(a.reference)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    names = a.modalities.split(",")
    with h5py.File(a.data, "r") as f:
        train, _ = load_split(f, "train", names)
        test, test_number = load_split(f, "test", names)
        shapes = [f[f"test/{n}/data"].shape[1:] for n in names]
    dims = [x.shape[1] for x in train]
    model = ref.Mmvae(dims, a.estimator)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    n = train[0].shape[0]
    os.makedirs(a.out, exist_ok=True)
    step, acc, t0 = 0, 0.0, time.perf_counter()
    while step < a.steps:
        perm = torch.randperm(n)
        for s in range(0, n - a.batch + 1, a.batch):
            idx = perm[s:s + a.batch]
            xs = [x[idx].float() / 255.0 for x in train]
            opt.zero_grad()
            loss = model.dreg_loss(xs, a.k)
            loss.backward()
            opt.step()
            acc += loss.item() / a.batch
            step += 1
            if step % a.log_every == 0:
                line = {"step": step, "loss": round(acc / a.log_every, 2),
                        "seconds": round(time.perf_counter() - t0, 1)}
                with torch.no_grad():
                    for name, e, x in zip(names, model.enc, test):
                        loc, scale = e(x[:512].float() / 255.0)
                        line[f"{name}_abs_loc"] = round(loc.abs().mean().item(), 3)
                        line[f"{name}_min_scale"] = round(scale.mean(0).min().item(), 4)
                print(json.dumps(line), flush=True)
                acc = 0.0
            if step >= a.steps:
                break
    # grid: one test pair per number
    picks = [int(np.nonzero(test_number == v)[0][0]) for v in range(1, 10)]
    rows = []
    with torch.no_grad():
        xs = [x[picks].float() / 255.0 for x in test]
        locs = [e(x)[0] for e, x in zip(model.enc, xs)]
        for i in range(len(picks)):
            row = [xs[m][i].reshape(shapes[m]).numpy() for m in range(len(names))]
            for src in range(len(names)):
                for dst in range(len(names)):
                    out = model.dec[dst](locs[src][i:i + 1])[0]
                    row.append(out.reshape(shapes[dst]).numpy())
            rows.append(row)
    save_grid(os.path.join(a.out, "grid.png"), rows)
    print(json.dumps({"grid": os.path.join(a.out, "grid.png"),
                      "columns": names + [f"{s}->{d}" for s in names for d in names]}))


if __name__ == "__main__":
    sys.exit(main())
