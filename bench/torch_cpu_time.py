"""Wall and CPU seconds per training step of the PyTorch reference MMVAE (shared/bench/torch_reference.py).

CPU time (user + system of this process) is the steadier figure on a shared machine; compare it
with rensou's `step_cpu_time` (core/model/tests/profile.rs):

    python3 bench/torch_cpu_time.py --estimator dreg --steps 5
    RAYON_NUM_THREADS=2 cargo test --release -p rensou-model --test profile step_cpu -- --ignored --nocapture
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default=os.path.join(HERE, "..", "..", "shared", "bench"),
                    help="folder holding torch_reference.py")
    ap.add_argument("--estimator", choices=["reference", "dreg"], default="dreg")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    sys.path.insert(0, a.reference)
    import torch
    import torch_reference as R

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = R.Mmvae(R.DIMS, a.estimator)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    xs = [torch.rand(a.batch, d) for d in R.DIMS]

    def step():
        opt.zero_grad()
        model.dreg_loss(xs, a.k).backward()
        opt.step()

    for _ in range(2):
        step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        step()
    print(json.dumps({"torch": a.estimator, "k": a.k, "batch": a.batch, "threads": a.threads,
                      "wall_s_per_step": round((time.perf_counter() - wall) / a.steps, 3),
                      "cpu_s_per_step": round((time.process_time() - cpu) / a.steps, 3)}))


if __name__ == "__main__":
    main()
