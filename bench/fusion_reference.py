"""PyTorch reference values and gradients of the product-of-experts fusions, for rensou's tests.

Two joint-posterior fusions, on the same tiny models as bench/objective_reference.py (whose
build_params / encode / decode / weights / config_json this script imports, so parameter names,
layouts and the JSON layout are the same):

  poe    MVAE (Wu & Goodman 2018)
  mopoe  MoPoE-VAE (Sutter, Daunhawer & Vogt 2021)

Writes fusions/poe/tests/fixtures/objectives.json and fusions/mopoe/tests/fixtures/objectives.json:

    python3 bench/fusion_reference.py            # from the repository root

Everything runs in float64. M modalities, K samples, batch B, latent L; every posterior is Normal.

  Unimodal experts: loc_m, scale_m = encode(p, m, x_m) (scale = softmax(.) * L + 1e-6).
  Product of experts of a set S of modalities:
      T = sum_{m in S} 1/scale_m^2  (+ 1 if prior_expert: a N(0, 1) expert, loc 0)
      var = 1/T,  loc_S = var * sum_{m in S} loc_m/scale_m^2,  scale_S = sqrt(var)
      q_S = Normal(loc_S, scale_S), [B, L]
  Prior p(z): family config.prior.family, loc 0, scale softmax(theta) * L (theta detached unless
      learnable). The prior expert above is always N(0, 1), whatever p(z) is.
  Samples: z_{S,k} = loc_S + scale_S * eps_S[k], eps_S a fixed standard-normal tensor [K, B, L].
  log p(x_d | z) = Family_d(decode_d(z), lik_scale_d).log_prob(x_d).sum(-1); lambda_d = weights(case).
  KL(q_S || p): analytic, torch.distributions.kl_divergence(...).sum(-1).

  poe:   sets = [all modalities], {0}, {1}, ..., {M-1}   (M == 1: only the one set, no duplicate)
         elbo_S = mean_k [ sum_{d in S} lambda_d log p(x_d | z_{S,k}) ] - KL(q_S || p)
         value  = SUM over the sets of elbo_S
         noise  = one [K, B, L] tensor per set, in that order (M=1: 1 tensor, M=2: 3, M=3: 4)
  mopoe: sets = every non-empty subset S of {0..M-1}, ordered by bitmask b = 1 .. 2^M - 1
         (modality m is in S iff bit m of b is set)
         term_S = mean_k [ sum over ALL d in 0..M-1 of lambda_d log p(x_d | z_{S,k}) ] - KL(q_S || p)
         value  = MEAN over the 2^M - 1 subsets of term_S
         noise  = one [K, B, L] tensor per subset, noise[b - 1]

  loss = -mean over the batch of value; the fixture records under objectives.elbo the batch mean of
  value, the per-item values and d loss / d parameter for every parameter (zeros where unused).

Inputs: x_m = torch.rand(B, dim_m) * 0.9 + 0.05 after torch.manual_seed(100 + seed) (parameters
come from build_params, seeded with seed), then the noise tensors torch.randn(K, B, L) in the order
above. Case config = objective_reference.config_json(case) plus
"fusion": {"type": "poe" | "mopoe", "prior_expert": bool}.

Self-checks (asserted): poe with M=1 and no prior expert equals the plain VAE ELBO; mopoe with M=1
equals poe with M=1; central finite differences (eps 1e-6) of the value agree with autograd for
one M=2 case of each fusion; every parameter's gradient is non-zero in every case (a fixed prior's
theta excepted), so no case hides a dead-ReLU network. Seeds: poe cases 31.., mopoe cases 21.. (poe
from 11 left modality 1's encoder entirely dead in "three-no-prior-expert").
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import objective_reference as ref  # noqa: E402  (also sets float64 as the default dtype)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.distributions import Normal, kl_divergence  # noqa: E402

torch.set_default_dtype(torch.float64)


def base_cases(seed0):
    """The cases shared by both fusions; seeds seed0 + 1, seed0 + 2, ..."""
    cases = [
        # one modality: a VAE with a prior expert
        dict(name="unimodal", shapes=[[6]], latent=3, hidden=[5, 5], k=3, batch=2,
             posterior="normal", prior="normal", learnable=True, theta=[0.2, 0.0, -0.1],
             likelihood=["normal"], lik_scale=[0.75], weight=[None], prior_expert=True),
        # one modality without a prior expert: exactly the plain VAE
        dict(name="unimodal-no-prior-expert", shapes=[[6]], latent=3, hidden=[5, 5], k=3, batch=2,
             posterior="normal", prior="normal", learnable=True, theta=[0.2, 0.0, -0.1],
             likelihood=["normal"], lik_scale=[0.75], weight=[None], prior_expert=False),
        # the paper's families: Laplace prior (fixed), Normal likelihood 0.75
        dict(name="paper", shapes=[[6], [2, 2]], latent=3, hidden=[5, 5], k=3, batch=2,
             posterior="normal", prior="laplace", learnable=False, theta=[0.0, 0.0, 0.0],
             likelihood=["normal", "normal"], lik_scale=[0.75, 0.75], weight=[None, None],
             prior_expert=True),
        # no prior expert, learnable Laplace prior, mixed likelihoods, explicit weights
        dict(name="no-prior-expert", shapes=[[6], [2, 2]], latent=3, hidden=[5, 5], k=3, batch=2,
             posterior="normal", prior="laplace", learnable=True, theta=[0.3, -0.2, 0.1],
             likelihood=["laplace", "normal"], lik_scale=[0.5, 0.75], weight=[1.0, 2.0],
             prior_expert=False),
        # three modalities, Normal prior
        dict(name="three", shapes=[[6], [4], [5]], latent=3, hidden=[5, 5], k=2, batch=3,
             posterior="normal", prior="normal", learnable=True, theta=[-0.1, 0.2, 0.0],
             likelihood=["normal", "laplace", "normal"], lik_scale=[0.75, 0.6, 0.9],
             weight=[None, None, None], prior_expert=True),
        # three modalities without a prior expert
        dict(name="three-no-prior-expert", shapes=[[6], [4], [5]], latent=3, hidden=[5, 5], k=2,
             batch=3, posterior="normal", prior="normal", learnable=True, theta=[-0.1, 0.2, 0.0],
             likelihood=["normal", "laplace", "normal"], lik_scale=[0.75, 0.6, 0.9],
             weight=[None, None, None], prior_expert=False),
    ]
    for i, c in enumerate(cases):
        c["seed"] = seed0 + i + 1
    return cases


POE_CASES = base_cases(30)
MOPOE_CASES = base_cases(20)


def subsets(fusion, M):
    """The modality sets of a fusion, in noise order."""
    if fusion == "poe":
        return [list(range(M))] + ([[m] for m in range(M)] if M > 1 else [])
    return [[m for m in range(M) if b >> m & 1] for b in range(1, 2 ** M)]


def product_of_experts(qs, S, prior_expert):
    """q_S from the unimodal experts qs[m] = (loc_m, scale_m), [B, L] each."""
    prec = [1.0 / qs[m][1] ** 2 for m in S]
    T = sum(prec)
    if prior_expert:
        T = T + 1.0
    var = 1.0 / T
    loc = var * sum(qs[m][0] * pm for m, pm in zip(S, prec))
    return loc, var.sqrt()


def prior_of(case, p):
    L = case["latent"]
    theta = p["prior_theta"] if case["learnable"] else p["prior_theta"].detach()
    return ref.FAMILY[case["prior"]](torch.zeros(1, L), F.softmax(theta, dim=-1) * L)


def lpx_fn(case, p, xs):
    nh, lam = len(case["hidden"]), ref.weights(case)

    def lpx(d, zs):  # lambda_d log p(x_d | z), zs [K, B, L] -> [K, B]
        lik = ref.FAMILY[case["likelihood"][d]](ref.decode(p, d, zs, nh), case["lik_scale"][d])
        return lam[d] * lik.log_prob(xs[d]).sum(-1)
    return lpx


def objective(case, p, xs, noise, fusion):
    """Per-item value [B] of the fusion's objective."""
    assert case["posterior"] == "normal"
    M, L, nh = len(xs), case["latent"], len(case["hidden"])
    prior = prior_of(case, p)
    lpx = lpx_fn(case, p, xs)
    qs = [ref.encode(p, m, x, L, nh) for m, x in enumerate(xs)]
    sets = subsets(fusion, M)
    assert len(noise) == len(sets)
    terms = []
    for S, eps in zip(sets, noise):
        loc, scale = product_of_experts(qs, S, case["prior_expert"])
        zs = loc + scale * eps  # [K, B, L]
        rec_over = S if fusion == "poe" else range(M)
        rec = sum(lpx(d, zs) for d in rec_over).mean(0)  # [B]
        kld = kl_divergence(Normal(loc, scale), prior).sum(-1)  # [B]
        terms.append(rec - kld)
    total = torch.stack(terms).sum(0)
    return total if fusion == "poe" else total / len(sets)


def inputs(case, fusion):
    p = ref.build_params(case)
    torch.manual_seed(100 + case["seed"])
    B, K, L = case["batch"], case["k"], case["latent"]
    xs = [torch.rand(B, math.prod(s)) * 0.9 + 0.05 for s in case["shapes"]]
    noise = [torch.randn(K, B, L) for _ in subsets(fusion, len(case["shapes"]))]
    return p, xs, noise


def config_json(case, fusion):
    cfg = ref.config_json(case)
    cfg["fusion"] = {"type": fusion, "prior_expert": case["prior_expert"]}
    return cfg


def run_case(case, fusion):
    p, xs, noise = inputs(case, fusion)
    out = {
        "name": case["name"], "config": config_json(case, fusion), "k": case["k"], "batch": case["batch"],
        "params": {k: {"shape": list(v.shape), "data": ref.flat(v)} for k, v in p.items()},
        "x": [ref.flat(x) for x in xs], "noise": [ref.flat(e) for e in noise], "objectives": {},
    }
    for v in p.values():
        v.grad = None
    value = objective(case, p, xs, noise, fusion)
    loss = -value.mean()
    loss.backward()
    for k, v in p.items():  # a parameter the value ignores (a dead ReLU net) would test nothing
        assert v.grad is not None and bool(v.grad.abs().sum() > 0) or (k == "prior_theta" and not case["learnable"]), \
            (fusion, case["name"], k, "has zero gradient: pick another seed")
    out["objectives"]["elbo"] = {
        "value": float(value.detach().mean()),
        "per_item": ref.flat(value),
        "grads": {k: ref.flat(v.grad) if v.grad is not None else [0.0] * v.numel() for k, v in p.items()},
    }
    return out


# ---------------------------------------------------------------- self-checks

def plain_vae_elbo(case, p, xs, eps):
    """The plain single-modality VAE ELBO, written out without the fusion code."""
    L, nh = case["latent"], len(case["hidden"])
    loc, scale = ref.encode(p, 0, xs[0], L, nh)
    zs = loc + scale * eps
    rec = lpx_fn(case, p, xs)(0, zs).mean(0)
    return rec - kl_divergence(Normal(loc, scale), prior_of(case, p)).sum(-1)


def check_unimodal():
    case = next(c for c in POE_CASES if c["name"] == "unimodal-no-prior-expert")
    p, xs, noise = inputs(case, "poe")
    poe = objective(case, p, xs, noise, "poe")
    vae = plain_vae_elbo(case, p, xs, noise[0])
    err_a = float((poe - vae).detach().abs().max())
    assert torch.allclose(poe, vae, rtol=1e-12, atol=1e-12), (poe, vae)
    print(f"check (a) poe M=1 no prior expert == plain VAE ELBO: max |diff| = {err_a:.3e}")
    for name in ("unimodal", "unimodal-no-prior-expert"):
        case = next(c for c in POE_CASES if c["name"] == name)
        p, xs, noise = inputs(case, "poe")
        a = objective(case, p, xs, noise, "poe")
        b = objective(case, p, xs, noise, "mopoe")
        err_b = float((a - b).detach().abs().max())
        assert torch.equal(a, b), (a, b)
        print(f"check (b) mopoe M=1 == poe M=1 ({name}): max |diff| = {err_b:.3e}")


def check_finite_differences(cases, fusion, case_name, probes, h=1e-6, rtol=1e-6):
    case = next(c for c in cases if c["name"] == case_name)
    p, xs, noise = inputs(case, fusion)
    value = objective(case, p, xs, noise, fusion).mean()
    value.backward()
    worst = 0.0
    for name in probes:  # each at the entry with the largest gradient, so never a dead unit
        idx = int(p[name].grad.abs().reshape(-1).argmax())
        auto = float(p[name].grad.reshape(-1)[idx])
        with torch.no_grad():
            flat_p = p[name].view(-1)
            orig = float(flat_p[idx])
            flat_p[idx] = orig + h
            up = float(objective(case, p, xs, noise, fusion).mean())
            flat_p[idx] = orig - h
            down = float(objective(case, p, xs, noise, fusion).mean())
            flat_p[idx] = orig
        fd = (up - down) / (2 * h)
        rel = abs(fd - auto) / max(abs(fd), abs(auto), 1e-12)
        worst = max(worst, rel)
        print(f"check (c) {fusion}/{case_name} d value/d {name}[{idx}]: autograd {auto:.10e}  "
              f"fd {fd:.10e}  rel {rel:.2e}")
        assert rel < rtol, (fusion, name, idx, auto, fd, rel)
    return worst


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    check_unimodal()
    fd_probes = ["enc0.hidden0.weight", "enc1.scale.bias", "dec1.hidden0.weight", "prior_theta"]
    check_finite_differences(POE_CASES, "poe", "no-prior-expert", fd_probes)
    check_finite_differences(MOPOE_CASES, "mopoe", "no-prior-expert", fd_probes)
    for fusion, cases in (("poe", POE_CASES), ("mopoe", MOPOE_CASES)):
        path = os.path.join(here, "..", "fusions", fusion, "tests", "fixtures", "objectives.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = {"generator": "bench/fusion_reference.py", "torch": torch.__version__,
                "cases": [run_case(c, fusion) for c in cases]}
        with open(path, "w") as f:
            json.dump(data, f, indent=None, separators=(",", ":"))
            f.write("\n")
        for c in data["cases"]:
            o = c["objectives"]["elbo"]
            print(fusion, c["name"], f"value {o['value']:.10f}", "per_item",
                  [round(v, 10) for v in o["per_item"]])


if __name__ == "__main__":
    main()
