"""PyTorch reference values and gradients of the MMVAE objectives, for rensou's model tests.

Builds tiny fixed models (MLP encoders/decoders as in the paper, hidden [5, 5], latent 3), fixed
inputs and fixed standard noise, evaluates every objective the way iffsid/mmvae and the authors'
code compute it, and writes fusions/moe/tests/fixtures/objectives.json:

    python3 bench/objective_reference.py            # from the repository root

Objectives (loss = -mean over the batch of the per-item objective):
  elbo                   m_elbo: (1/M) sum_r [sum_d w_rd lambda_d log p(x_d|z_d) - KL(q_r||p)], mean over K,
                         w_rd = exp(log q_r(sg z_d) - sg log q_d(sg z_d)) for d != r, analytic KL
                         (torch.distributions.kl_divergence, registered for every family pair used)
  iwae, iwae-looser      m_iwae / m_iwae_looser
  dreg, dreg-looser      m_dreg with the gradient hook on each modality's z actually firing (true DReG)
  dreg-reference(-looser) m_dreg as the reference code ran it: the hook sits on torch.cat(zss), a copy
                         the loss never uses, so it never fires
Everything runs in float64. Parameters are written in PyTorch layout (Linear weight [out, in]).
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from torch.distributions import Laplace, Normal, kl_divergence

torch.set_default_dtype(torch.float64)

FAMILY = {"normal": Normal, "laplace": Laplace}
OBJECTIVES = ["elbo", "iwae", "iwae-looser", "dreg", "dreg-looser", "dreg-reference",
              "dreg-reference-looser"]

CASES = [
    # the paper's families: Normal posterior, Laplace prior (fixed), Normal likelihood 0.75
    dict(name="paper", shapes=[[6], [2, 2]], latent=3, hidden=[5, 5], k=3, batch=2,
         posterior="normal", prior="laplace", learnable=False, theta=[0.0, 0.0, 0.0],
         likelihood=["normal", "normal"], lik_scale=[0.75, 0.75], weight=[None, None], seed=1),
    # Laplace everywhere (the original MMVAE), learnable prior, explicit weights
    dict(name="laplace", shapes=[[6], [4]], latent=3, hidden=[5, 5], k=3, batch=2,
         posterior="laplace", prior="laplace", learnable=True, theta=[0.3, -0.2, 0.1],
         likelihood=["laplace", "laplace"], lik_scale=[0.5, 0.5], weight=[1.0, 2.0], seed=2),
    # three modalities, Normal prior
    dict(name="three", shapes=[[6], [4], [5]], latent=3, hidden=[5, 5], k=2, batch=3,
         posterior="normal", prior="normal", learnable=True, theta=[-0.1, 0.2, 0.0],
         likelihood=["normal", "laplace", "normal"], lik_scale=[0.75, 0.6, 0.9],
         weight=[None, None, None], seed=3),
    # one modality (a VAE), Laplace posterior and Normal prior
    dict(name="unimodal", shapes=[[6]], latent=3, hidden=[5, 5], k=4, batch=2,
         posterior="laplace", prior="normal", learnable=True, theta=[0.2, 0.0, -0.1],
         likelihood=["normal"], lik_scale=[0.75], weight=[None], seed=4),
]


def linear(d_in, d_out):
    lin = torch.nn.Linear(d_in, d_out)
    return {"weight": lin.weight.detach().clone(), "bias": lin.bias.detach().clone()}


def build_params(case):
    torch.manual_seed(case["seed"])
    params = {}
    latent = case["latent"]
    for m, shape in enumerate(case["shapes"]):
        dim = math.prod(shape)
        width = dim
        for i, h in enumerate(case["hidden"]):
            for key, t in linear(width, h).items():
                params[f"enc{m}.hidden{i}.{key}"] = t
            width = h
        for head in ("loc", "scale"):
            for key, t in linear(width, latent).items():
                params[f"enc{m}.{head}.{key}"] = t
        width = latent
        for i, h in enumerate(reversed(case["hidden"])):
            for key, t in linear(width, h).items():
                params[f"dec{m}.hidden{i}.{key}"] = t
            width = h
        for key, t in linear(width, dim).items():
            params[f"dec{m}.out.{key}"] = t
    params["prior_theta"] = torch.tensor([case["theta"]])
    return {k: v.clone().requires_grad_(True) for k, v in params.items()}


def encode(p, m, x, latent, nh):
    h = x
    for i in range(nh):
        h = F.relu(F.linear(h, p[f"enc{m}.hidden{i}.weight"], p[f"enc{m}.hidden{i}.bias"]))
    loc = F.linear(h, p[f"enc{m}.loc.weight"], p[f"enc{m}.loc.bias"])
    scale = F.softmax(F.linear(h, p[f"enc{m}.scale.weight"], p[f"enc{m}.scale.bias"]), dim=-1) * latent + 1e-6
    return loc, scale


def decode(p, m, z, nh):
    h = z
    for i in range(nh):
        h = F.relu(F.linear(h, p[f"dec{m}.hidden{i}.weight"], p[f"dec{m}.hidden{i}.bias"]))
    return torch.sigmoid(F.linear(h, p[f"dec{m}.out.weight"], p[f"dec{m}.out.bias"])).clamp(1e-6, 1 - 1e-6)


def weights(case):
    dims = [math.prod(s) for s in case["shapes"]]
    return [w if w is not None else max(dims) / d for w, d in zip(case["weight"], dims)]


def objective(case, p, xs, noise, name):
    M, K, L = len(xs), case["k"], case["latent"]
    nh = len(case["hidden"])
    Q, P = FAMILY[case["posterior"]], FAMILY[case["prior"]]
    theta = p["prior_theta"] if case["learnable"] else p["prior_theta"].detach()
    prior = P(torch.zeros(1, L), F.softmax(theta, dim=-1) * L)
    lam = weights(case)

    def lpx(d, zs):  # lambda_d log p(x_d | z), zs [K, B, L] -> [K, B]
        lik = FAMILY[case["likelihood"][d]](decode(p, d, zs, nh), case["lik_scale"][d])
        return lam[d] * lik.log_prob(xs[d]).sum(-1)

    qs = [encode(p, m, x, L, nh) for m, x in enumerate(xs)]
    zss = [loc + scale * eps for (loc, scale), eps in zip(qs, noise)]  # rsample with fixed noise

    if name == "elbo":
        terms = []
        for r, (loc_r, sc_r) in enumerate(qs):
            q_r = Q(loc_r, sc_r)
            kld = kl_divergence(q_r, prior).sum(-1)  # [B]
            for d in range(M):
                lpx_d = lpx(d, zss[d])
                if d == r:
                    lwt = torch.tensor(0.0)
                else:
                    zs = zss[d].detach()
                    q_d = Q(qs[d][0], qs[d][1])
                    lwt = (q_r.log_prob(zs) - q_d.log_prob(zs).detach()).sum(-1)
                terms.append(lwt.exp() * lpx_d)
            terms.append(-kld.expand(K, -1))
        obj = torch.stack(terms).sum(0) / M  # [K, B]
        return obj.mean(0)  # [B]

    det = name.startswith("dreg")
    qs_used = [Q(l.detach(), s.detach()) if det else Q(l, s) for l, s in qs]
    lws = []
    for zs in zss:
        lpz = prior.log_prob(zs).sum(-1)
        lqz = torch.logsumexp(torch.stack([q.log_prob(zs).sum(-1) for q in qs_used]), 0) - math.log(M)
        lws.append(lpz + sum(lpx(d, zs) for d in range(M)) - lqz)
    looser = name.endswith("looser")
    if name.startswith("iwae"):
        if looser:
            lw = torch.stack(lws)  # [M, K, B]
            return (torch.logsumexp(lw, 1) - math.log(K)).mean(0)
        lw = torch.cat(lws)  # [M*K, B]
        return torch.logsumexp(lw, 0) - math.log(M * K)
    true_dreg = not name.startswith("dreg-reference")
    if looser:
        lw = torch.stack(lws)  # [M, K, B]
        with torch.no_grad():
            wt = (lw - torch.logsumexp(lw, 1, keepdim=True)).exp()
        if true_dreg:
            for r, zs in enumerate(zss):
                zs.register_hook(lambda g, w=wt[r].unsqueeze(-1): w * g)
        return (wt * lw).sum(1).mean(0)  # [B]
    lw = torch.cat(lws)
    with torch.no_grad():
        wt = (lw - torch.logsumexp(lw, 0, keepdim=True)).exp()
    if true_dreg:
        for r, zs in enumerate(zss):
            zs.register_hook(lambda g, w=wt[r * K:(r + 1) * K].unsqueeze(-1): w * g)
    return (wt * lw).sum(0)  # [B]


def config_json(case):
    return {
        "latent_dim": case["latent"],
        "prior": {"family": case["prior"], "learnable": case["learnable"], "theta": 0.0},
        "posterior": case["posterior"],
        "modalities": [
            {"name": f"m{i}", "item_shape": shape,
             "net": {"type": "mlp", "hidden": case["hidden"], "scale_activation": "softmax", "eps": 1e-6},
             "likelihood": case["likelihood"][i], "likelihood_scale": case["lik_scale"][i],
             "weight": case["weight"][i]}
            for i, shape in enumerate(case["shapes"])
        ],
    }


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def run_case(case):
    p = build_params(case)
    torch.manual_seed(100 + case["seed"])
    B, K, L = case["batch"], case["k"], case["latent"]
    xs = [torch.rand(B, math.prod(s)) * 0.9 + 0.05 for s in case["shapes"]]
    std = Normal(0.0, 1.0) if case["posterior"] == "normal" else Laplace(0.0, 1.0)
    noise = [std.sample((K, B, L)) for _ in case["shapes"]]
    out = {
        "name": case["name"], "config": config_json(case), "k": K, "batch": B,
        "params": {k: {"shape": list(v.shape), "data": flat(v)} for k, v in p.items()},
        "x": [flat(x) for x in xs], "noise": [flat(e) for e in noise], "objectives": {},
    }
    for name in OBJECTIVES:
        for v in p.values():
            v.grad = None
        value = objective(case, p, xs, noise, name)
        loss = -value.mean()
        loss.backward()
        out["objectives"][name] = {
            "value": float(value.detach().mean()),
            "per_item": flat(value),
            "grads": {k: flat(v.grad) if v.grad is not None else [0.0] * v.numel() for k, v in p.items()},
        }
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "fusions", "moe", "tests", "fixtures", "objectives.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = {"generator": "bench/objective_reference.py", "torch": torch.__version__,
            "cases": [run_case(c) for c in CASES]}
    with open(path, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
        f.write("\n")
    for c in data["cases"]:
        print(c["name"], {k: round(v["value"], 6) for k, v in c["objectives"].items()})


if __name__ == "__main__":
    main()
