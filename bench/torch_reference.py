"""Reference training step of the paper's MLP MMVAE in PyTorch, as the authors' code computes it.

A copy of shared/bench/torch_reference.py with one addition, `--device` (cpu or cuda), so that
bench/gpu_check.sh can run the same yardstick on a GPU. On the CPU it computes exactly what the
shared script computes.

The yardstick for rensou's training speed: run it beside `rensou`'s own benchmark on the same
machine and report the ratio. Mirrors the reference design: per-modality MLP encoders/decoders
(400 x 4, latent 20), Normal posteriors (scale = softmax(h) * latent + 1e-6), Normal likelihood
with fixed scale 0.75, Laplace prior (scale softmax(0) * latent, not learnt), likelihood weights
3072/dim, and the mixture-of-experts DReG objective (softmax weights over all M*K samples).
--estimator reference computes what the authors' code computes (its gradient hook never fires);
--estimator dreg scales the gradient at each z by its weight, as DReG is defined.

    python3 torch_reference.py --k 20 --modalities 2 --threads 2 --steps 10 [--device cuda]
prints one JSON line: {"model": ..., "k": ..., "batch": ..., "steps_per_s": ..., "samples_per_s": ...}
"""
import argparse, json, math, time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Laplace, Normal

LATENT, HIDDEN = 20, 400
DIMS = [3072, 2352]  # OSCN 32x32x3, CMNIST 28x28x3


class Enc(nn.Module):
    def __init__(self, d):
        super().__init__()
        layers = [nn.Linear(d, HIDDEN), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(HIDDEN, HIDDEN), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.mu, self.sc = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), F.softmax(self.sc(h), dim=-1) * LATENT + 1e-6


class Dec(nn.Module):
    def __init__(self, d):
        super().__init__()
        layers = [nn.Linear(LATENT, HIDDEN), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(HIDDEN, HIDDEN), nn.ReLU()]
        self.body, self.out = nn.Sequential(*layers), nn.Linear(HIDDEN, d)

    def forward(self, z):
        return torch.sigmoid(self.out(self.body(z))).clamp(1e-6, 1 - 1e-6)


class Mmvae(nn.Module):
    def __init__(self, dims, estimator="reference"):
        super().__init__()
        self.dims, self.estimator = dims, estimator
        self.enc = nn.ModuleList(Enc(d) for d in dims)
        self.dec = nn.ModuleList(Dec(d) for d in dims)
        self.prior_logits = nn.Parameter(torch.zeros(1, LATENT), requires_grad=False)
        self.llik = [max(dims) / d for d in dims]

    def dreg_loss(self, xs, k):
        prior = Laplace(torch.zeros(1, LATENT, device=self.prior_logits.device),
                        F.softmax(self.prior_logits, -1) * LATENT)
        qs, zss = [], []
        for e, x in zip(self.enc, xs):
            mu, sc = e(x)
            qs.append((mu, sc))
            zss.append(Normal(mu, sc).rsample(torch.Size([k])))  # [K, B, D]
        qs_det = [Normal(mu.detach(), sc.detach()) for mu, sc in qs]
        lws = []
        for zs in zss:
            lpz = prior.log_prob(zs).sum(-1)
            lqz = torch.logsumexp(torch.stack([q.log_prob(zs).sum(-1) for q in qs_det]), 0) - math.log(len(qs_det))
            lpx = sum(w * Normal(d(zs), 0.75).log_prob(x).sum(-1) for d, x, w in zip(self.dec, xs, self.llik))
            lws.append(lpz + lpx - lqz)
        lw = torch.cat(lws)  # [M*K, B]
        with torch.no_grad():
            wt = (lw - torch.logsumexp(lw, 0, keepdim=True)).exp()
        if self.estimator == "dreg":
            # true DReG: the gradient reaching each z is scaled by its weight once more
            for r, zs in enumerate(zss):
                w = wt[r * k:(r + 1) * k].unsqueeze(-1)
                zs.register_hook(lambda g, w=w: w * g)
        else:
            # what the reference code computes: its hook sits on torch.cat(zss), a copy the
            # loss never uses, so the hook never fires and encoders get wt * d lw / d z
            torch.cat(zss).register_hook(lambda g: wt.unsqueeze(-1) * g)
        return -(wt * lw).sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--modalities", type=int, default=2, choices=[1, 2])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--estimator", choices=["reference", "dreg"], default="reference")
    ap.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dims = DIMS[: a.modalities]
    device = torch.device(a.device)
    model = Mmvae(dims, a.estimator).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    xs = [torch.rand(a.batch, d).to(device) for d in dims]

    def step():
        opt.zero_grad()
        loss = model.dreg_loss(xs, a.k)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t) / a.steps
    print(json.dumps({"model": "mmvae-mlp" if a.modalities > 1 else "vae-mlp", "estimator": a.estimator,
                      "k": a.k, "batch": a.batch,
                      "threads": a.threads, "device": a.device, "steps_per_s": round(1 / dt, 3),
                      "samples_per_s": round(a.batch / dt, 1), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
