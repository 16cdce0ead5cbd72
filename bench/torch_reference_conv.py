"""Reference training step of the CNN MMVAE in PyTorch: the yardstick for `rensou bench train
--net conv`.

Same objective, optimiser, distributions and flags as ../shared/bench/torch_reference.py (the
MLP reference), with Noda's OSCN CNN in place of the OSCN MLP:
  encoder  Conv 3->32->64->128 (kernel 4, stride 2, padding 1, ReLU), conv heads 128->20
           (kernel 4) for location and scale (scale = softmax(h) * latent + 1e-6);
  decoder  ConvTranspose 20->128 (4, 1, 0), ReLU, then 128->64->32->3 (4, 2, 1) with ReLU
           between, sigmoid clamped to [1e-6, 1 - 1e-6].
--modalities 2: CNN for OSCN (32x32x3) + the paper's MLP for CMNIST (28x28x3, 28 does not survive
the 3-layer conv/deconv round trip); --modalities 1: the CNN-only OSCN VAE. Inputs are flat HWC
rows, as rensou stores them; the nets reshape to NCHW inside, as rensou's do.

    python3 torch_reference_conv.py --k 20 --modalities 2 --threads 2 --steps 10
prints one JSON line: {"model": ..., "k": ..., "batch": ..., "steps_per_s": ..., "samples_per_s": ...}
"""
import argparse, json, math, time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Laplace, Normal

LATENT, HIDDEN = 20, 400
DIMS = [3072, 2352]  # OSCN 32x32x3, CMNIST 28x28x3


class MlpEnc(nn.Module):
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


class MlpDec(nn.Module):
    def __init__(self, d):
        super().__init__()
        layers = [nn.Linear(LATENT, HIDDEN), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(HIDDEN, HIDDEN), nn.ReLU()]
        self.body, self.out = nn.Sequential(*layers), nn.Linear(HIDDEN, d)

    def forward(self, z):
        return torch.sigmoid(self.out(self.body(z))).clamp(1e-6, 1 - 1e-6)


class ConvEnc(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 128, 4, 2, 1), nn.ReLU())
        self.mu, self.sc = nn.Conv2d(128, LATENT, 4), nn.Conv2d(128, LATENT, 4)

    def forward(self, x):  # x: [B, 32*32*3] HWC
        h = self.body(x.view(-1, 32, 32, 3).permute(0, 3, 1, 2))
        mu, sc = self.mu(h).flatten(1), self.sc(h).flatten(1)
        return mu, F.softmax(sc, dim=-1) * LATENT + 1e-6


class ConvDec(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.ConvTranspose2d(LATENT, 128, 4, 1, 0), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 4, 2, 1))

    def forward(self, z):  # z: [..., LATENT] -> [..., 32*32*3] HWC
        lead = z.shape[:-1]
        h = self.body(z.reshape(-1, LATENT, 1, 1))
        out = torch.sigmoid(h).clamp(1e-6, 1 - 1e-6).permute(0, 2, 3, 1)
        return out.reshape(*lead, 32 * 32 * 3)


class Mmvae(nn.Module):
    def __init__(self, dims, estimator="reference"):
        super().__init__()
        self.dims, self.estimator = dims, estimator
        self.enc = nn.ModuleList([ConvEnc()] + [MlpEnc(d) for d in dims[1:]])
        self.dec = nn.ModuleList([ConvDec()] + [MlpDec(d) for d in dims[1:]])
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
            for r, zs in enumerate(zss):
                w = wt[r * k:(r + 1) * k].unsqueeze(-1)
                zs.register_hook(lambda g, w=w: w * g)
        else:
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
    print(json.dumps({"model": "mmvae-conv" if a.modalities > 1 else "vae-conv", "estimator": a.estimator,
                      "k": a.k, "batch": a.batch,
                      "threads": a.threads, "device": a.device, "steps_per_s": round(1 / dt, 3),
                      "samples_per_s": round(a.batch / dt, 1), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
