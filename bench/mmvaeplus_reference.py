"""PyTorch reference values and gradients of the MMVAE+ fusion (Palumbo, Daunhawer & Vogt 2023), for
rensou's `mmvaeplus` tests.

Follows github epalu/mmvaeplus (src/objectives.py, src/models/mmvae.py, variant 'mmvaeplus'), adapted
to rensou's tiny models: the MLPs, parameter names, PyTorch layouts (Linear weight [out, in]), float64
setup and JSON layout of bench/objective_reference.py, whose encode / decode / weights / flat / FAMILY
/ linear / config_json this script imports. Writes fusions/mmvaeplus/tests/fixtures/objectives.json:

    python3 bench/mmvaeplus_reference.py            # from the repository root

Notation: M modalities, K samples, batch B, W private dims, L shared dims, P = config.prior.family,
Q = config.posterior, both in {normal, laplace}; beta = fusion.beta; lambda_d = weights(case).

  Latent of modality m: u = [w, z] (W + L dims; w = u[..., :W] private, z = u[..., W:] shared).
  Experts: loc_m, scale_m = encode(p, m, x_m, W + L) (scale = softmax over all W + L dims * (W + L)
      + 1e-6), q_m = Q(loc_m, scale_m) [B, W+L]; q_m^w / q_m^z: same family, parameters sliced to the
      first W / last L dims.
  Shared prior:    P_z = P(0, softmax(theta) * L), theta = prior_theta [1, L], detached unless learnable.
  Private prior:   P_w = P(0, 1) (fixed).
  Auxiliary prior of modality d: A_d = P(0, a_d), a_d = softmax(fusion{d}, -1) * W, fusion{d} [1, W]
      (the logits detached when fusion.learn_aux_prior is false).

  Noise (the fixture's "noise" list, flat, in this order):
      1. for r = 0..M-1: eps_r [K, B, W+L], standard Q noise;   u_r = loc_r + scale_r * eps_r
      2. for r = 0..M-1, for d = 0..M-1, d != r (row-major): eta_{r,d} [K, B, W], standard P noise;
         w_{r->d} = a_d * eta_{r,d}    (reparameterised, so fusion{d} gets a gradient)
      (M = 1: one tensor; M = 2: 2 + 2; M = 3: 3 + 6.)

  Log weights, r = 0..M-1, [K, B]:
      w_r = u_r[..., :W], z_r = u_r[..., W:]
      u_{r->r} = u_r,  u_{r->d} = cat(w_{r->d}, z_r, -1) for d != r
      lpx  = sum_d lambda_d * Lik_d(decode(p, d, u_{r->d}), lik_scale_d).log_prob(x_d).sum(-1)
      lpu  = P_z.log_prob(z_r).sum(-1) + P_w.log_prob(w_r).sum(-1)
      lqz  = logsumexp_m q_m^z.log_prob(z_r).sum(-1) - log M
      lqw  = q_r^w.log_prob(w_r).sum(-1)
      lw_r = lpx + beta * (lpu - lqz - lqw)

  Objectives (per-item value [B]; loss = -mean over the batch of value):
      iwae-looser            mean_r [logsumexp_k lw_r - log K]
      dreg-reference-looser  what the authors' m_dreg computes: the experts are NOT detached in lqz /
                             lqw (the code detaches a copy, qu_xs_, that it never reads) and the hook
                             sits on torch.stack(uss), a copy the loss never uses, so it never fires:
                             wt_r = softmax_k lw_r (no grad), value = mean_r sum_k wt_r * lw_r.
                             (Its gradients therefore equal iwae-looser's; checked below.)
      dreg-looser            true DReG: q_m^z, q_r^w in lqz / lqw built from loc.detach(), scale.detach();
                             same wt_r and value; a gradient hook on each u_r itself (before slicing /
                             concatenation) multiplies its incoming gradient by wt_r[..., None], so the
                             encoders get wt^2-weighted path gradients (the hook is asserted to fire).

  The fixture records, per case and objective, the batch mean of value, the per-item values and
  d loss / d parameter for every parameter (zeros where a parameter gets no gradient).

Parameters: those of objective_reference.build_params with latent W + L for the encoders' loc / scale
heads and the decoders' input (same names), prior_theta [1, L], plus fusion{d} [1, W] = 0.3 * randn for
every modality d (drawn after the networks, from the same seed). Inputs: x_m = torch.rand(B, dim_m) *
0.9 + 0.05 after torch.manual_seed(100 + seed), then the noise in the order above.
Case config = objective_reference.config_json(case) (latent_dim = L) plus
"fusion": {"type": "mmvaeplus", "private_dim": W, "beta": beta, "learn_aux_prior": bool}.

Self-checks (asserted):
  (a) M = 1: iwae-looser equals a separately written single-VAE IWAE over u with prior P_z x P_w.
  (b) dreg-looser and dreg-reference-looser: equal values and equal decoder / prior / fusion gradients,
      encoder gradients that differ; dreg-reference-looser's gradients equal iwae-looser's.
  (c) central finite differences (h 1e-6) of the iwae-looser loss agree with autograd to 1e-6
      relative in case "paper" for an encoder, a decoder and a fusion{d} entry.
  (d) in iwae-looser every parameter tensor has a non-zero gradient except the fixed ones
      (prior_theta when not learnable, fusion{d} when learn_aux_prior is false or M = 1), which get
      exactly zero. Seeds (11042, 20343, 33065, 42580) are the ones with the fewest dead ReLU units
      (zero bias gradient) among 4000 scanned per case: unimodal 0 of 20 hidden units, paper 3 of 40,
      laplace 2 of 40, three 5 of 60. Some dead units are unavoidable at these sizes (5-unit layers,
      B = 2 or 3 positive inputs, PyTorch's default init); no M > 1 seed scanned had none.
  Note: softmax is shift-invariant, so each fusion{d} gradient sums to zero (with W = 2 its two
  entries are opposite).
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import objective_reference as ref  # noqa: E402  (also sets float64 as the default dtype)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.distributions import Laplace  # noqa: E402

torch.set_default_dtype(torch.float64)

OBJECTIVES = ["iwae-looser", "dreg-looser", "dreg-reference-looser"]

CASES = [
    # one modality: a VAE over u = [w, z]; fusion0 exists but has no cross term to act in
    dict(name="unimodal", shapes=[[6]], latent=3, private=2, hidden=[5, 5], k=3, batch=2,
         posterior="normal", prior="normal", learnable=True, theta=[0.2, 0.0, -0.1],
         likelihood=["normal"], lik_scale=[0.75], weight=[None],
         beta=1.0, learn_aux_prior=True, seed=11042),
    # the paper's families: Normal posterior, Laplace prior (fixed), Normal likelihood 0.75
    dict(name="paper", shapes=[[6], [2, 2]], latent=3, private=2, hidden=[5, 5], k=3, batch=2,
         posterior="normal", prior="laplace", learnable=False, theta=[0.0, 0.0, 0.0],
         likelihood=["normal", "normal"], lik_scale=[0.75, 0.75], weight=[None, None],
         beta=1.0, learn_aux_prior=True, seed=20343),
    # Laplace everywhere, learnable shared prior, fixed auxiliary priors, weights, beta != 1
    dict(name="laplace", shapes=[[6], [2, 2]], latent=3, private=2, hidden=[5, 5], k=3, batch=2,
         posterior="laplace", prior="laplace", learnable=True, theta=[0.3, -0.2, 0.1],
         likelihood=["laplace", "laplace"], lik_scale=[0.5, 0.5], weight=[1.0, 2.0],
         beta=2.5, learn_aux_prior=False, seed=33065),
    # three modalities, Normal prior
    dict(name="three", shapes=[[6], [4], [5]], latent=3, private=2, hidden=[5, 5], k=2, batch=3,
         posterior="normal", prior="normal", learnable=True, theta=[-0.1, 0.2, 0.0],
         likelihood=["normal", "laplace", "normal"], lik_scale=[0.75, 0.6, 0.9],
         weight=[None, None, None], beta=1.0, learn_aux_prior=True, seed=42580),
]


def build_params(case):
    """objective_reference.build_params with latent W + L, plus fusion{d} [1, W]."""
    torch.manual_seed(case["seed"])
    params = {}
    latent = case["private"] + case["latent"]
    for m, shape in enumerate(case["shapes"]):
        dim = math.prod(shape)
        width = dim
        for i, h in enumerate(case["hidden"]):
            for key, t in ref.linear(width, h).items():
                params[f"enc{m}.hidden{i}.{key}"] = t
            width = h
        for head in ("loc", "scale"):
            for key, t in ref.linear(width, latent).items():
                params[f"enc{m}.{head}.{key}"] = t
        width = latent
        for i, h in enumerate(reversed(case["hidden"])):
            for key, t in ref.linear(width, h).items():
                params[f"dec{m}.hidden{i}.{key}"] = t
            width = h
        for key, t in ref.linear(width, dim).items():
            params[f"dec{m}.out.{key}"] = t
    params["prior_theta"] = torch.tensor([case["theta"]])
    for d in range(len(case["shapes"])):
        params[f"fusion{d}"] = 0.3 * torch.randn(1, case["private"])
    return {k: v.clone().requires_grad_(True) for k, v in params.items()}


def standard(family):
    return {"normal": torch.randn, "laplace": lambda *s: Laplace(0.0, 1.0).sample(s)}[family]


def inputs(case):
    p = build_params(case)
    torch.manual_seed(100 + case["seed"])
    B, K, L, W, M = case["batch"], case["k"], case["latent"], case["private"], len(case["shapes"])
    xs = [torch.rand(B, math.prod(s)) * 0.9 + 0.05 for s in case["shapes"]]
    q_noise, p_noise = standard(case["posterior"]), standard(case["prior"])
    noise = [q_noise(K, B, W + L) for _ in range(M)]
    noise += [p_noise(K, B, W) for r in range(M) for d in range(M) if d != r]
    return p, xs, noise


def lpx_fn(case, p, xs):
    nh, lam = len(case["hidden"]), ref.weights(case)

    def lpx(d, us):  # lambda_d log p(x_d | u), us [K, B, W+L] -> [K, B]
        lik = ref.FAMILY[case["likelihood"][d]](ref.decode(p, d, us, nh), case["lik_scale"][d])
        return lam[d] * lik.log_prob(xs[d]).sum(-1)
    return lpx


def priors(case, p):
    """(P_z, P_w, [A_d]) of a case."""
    L, W, M = case["latent"], case["private"], len(case["shapes"])
    P = ref.FAMILY[case["prior"]]
    theta = p["prior_theta"] if case["learnable"] else p["prior_theta"].detach()
    pz = P(torch.zeros(1, L), F.softmax(theta, dim=-1) * L)
    pw = P(torch.zeros(1, W), torch.ones(1, W))
    aux = []
    for d in range(M):
        logits = p[f"fusion{d}"] if case["learn_aux_prior"] else p[f"fusion{d}"].detach()
        aux.append(P(torch.zeros(1, W), F.softmax(logits, dim=-1) * W))
    return pz, pw, aux


def objective(case, p, xs, noise, name, hook_calls=None):
    """Per-item value [B] of one MMVAE+ objective."""
    M, K, L, W = len(xs), case["k"], case["latent"], case["private"]
    nh, beta = len(case["hidden"]), case["beta"]
    assert len(noise) == M + M * (M - 1)
    Q = ref.FAMILY[case["posterior"]]
    pz, pw, aux = priors(case, p)
    lpx = lpx_fn(case, p, xs)

    qs = [ref.encode(p, m, x, W + L, nh) for m, x in enumerate(xs)]
    uss = [loc + scale * eps for (loc, scale), eps in zip(qs, noise[:M])]  # [K, B, W+L]
    etas = iter(noise[M:])
    cross = {(r, d): aux[d].scale * next(etas) for r in range(M) for d in range(M) if d != r}

    true_dreg = name == "dreg-looser"
    qsd = [(l.detach(), s.detach()) for l, s in qs] if true_dreg else qs
    qz = [Q(l[..., W:], s[..., W:]) for l, s in qsd]
    qw = [Q(l[..., :W], s[..., :W]) for l, s in qsd]

    lws = []
    for r, us in enumerate(uss):
        ws, zs = us[..., :W], us[..., W:]
        rec = sum(lpx(d, us if d == r else torch.cat([cross[(r, d)], zs], -1)) for d in range(M))
        lpu = pz.log_prob(zs).sum(-1) + pw.log_prob(ws).sum(-1)
        lqz = torch.logsumexp(torch.stack([q.log_prob(zs).sum(-1) for q in qz]), 0) - math.log(M)
        lqw = qw[r].log_prob(ws).sum(-1)
        lws.append(rec + beta * (lpu - lqz - lqw))
    lw = torch.stack(lws)  # [M, K, B]
    if name == "iwae-looser":
        return (torch.logsumexp(lw, 1) - math.log(K)).mean(0)
    assert name in ("dreg-looser", "dreg-reference-looser"), name
    with torch.no_grad():
        wt = (lw - torch.logsumexp(lw, 1, keepdim=True)).exp()
    if true_dreg:
        for r, us in enumerate(uss):
            def hook(g, w=wt[r].unsqueeze(-1), r=r):
                if hook_calls is not None:
                    hook_calls.append(r)
                return w * g
            us.register_hook(hook)
    return (wt * lw).sum(1).mean(0)  # [B]


def config_json(case):
    cfg = ref.config_json(case)
    cfg["fusion"] = {"type": "mmvaeplus", "private_dim": case["private"], "beta": case["beta"],
                     "learn_aux_prior": case["learn_aux_prior"]}
    return cfg


def fixed(case, key):
    """Parameters that legitimately get no gradient."""
    if key == "prior_theta":
        return not case["learnable"]
    if key.startswith("fusion"):
        return not case["learn_aux_prior"] or len(case["shapes"]) == 1
    return False


def grads_of(p):
    return {k: v.grad.clone() if v.grad is not None else torch.zeros_like(v) for k, v in p.items()}


def evaluate(case, name):
    """(value [B], grads) of one objective, asserting the DReG hook fires once per modality."""
    p, xs, noise = inputs(case)
    calls = []
    value = objective(case, p, xs, noise, name, calls)
    (-value.mean()).backward()
    if name == "dreg-looser":
        assert sorted(calls) == list(range(len(xs))), (case["name"], calls)
    else:
        assert not calls
    return value.detach(), grads_of(p)


def run_case(case):
    p, xs, noise = inputs(case)
    out = {
        "name": case["name"], "config": config_json(case), "k": case["k"], "batch": case["batch"],
        "params": {k: {"shape": list(v.shape), "data": ref.flat(v)} for k, v in p.items()},
        "x": [ref.flat(x) for x in xs], "noise": [ref.flat(e) for e in noise], "objectives": {},
    }
    for name in OBJECTIVES:
        value, grads = evaluate(case, name)
        out["objectives"][name] = {
            "value": float(value.mean()),
            "per_item": ref.flat(value),
            "grads": {k: ref.flat(g) for k, g in grads.items()},
        }
    return out


# ---------------------------------------------------------------- self-checks

def single_vae_iwae(case, p, xs, noise):
    """(a) A plain one-modality IWAE over u = [w, z], prior P_w x P_z as one distribution."""
    L, W, K, nh, beta = case["latent"], case["private"], case["k"], len(case["hidden"]), case["beta"]
    Q, P = ref.FAMILY[case["posterior"]], ref.FAMILY[case["prior"]]
    theta = p["prior_theta"] if case["learnable"] else p["prior_theta"].detach()
    prior = P(torch.zeros(1, W + L), torch.cat([torch.ones(1, W), F.softmax(theta, dim=-1) * L], -1))
    loc, scale = ref.encode(p, 0, xs[0], W + L, nh)
    q = Q(loc, scale)
    u = loc + scale * noise[0]
    lik = ref.FAMILY[case["likelihood"][0]](ref.decode(p, 0, u, nh), case["lik_scale"][0])
    lw = ref.weights(case)[0] * lik.log_prob(xs[0]).sum(-1) + beta * (prior.log_prob(u).sum(-1)
                                                                      - q.log_prob(u).sum(-1))
    return torch.logsumexp(lw, 0) - math.log(K)


def check_unimodal():
    case = next(c for c in CASES if len(c["shapes"]) == 1)
    p, xs, noise = inputs(case)
    a = objective(case, p, xs, noise, "iwae-looser")
    b = single_vae_iwae(case, p, xs, noise)
    err = float((a - b).detach().abs().max())
    assert torch.allclose(a, b, rtol=1e-12, atol=1e-12), (a, b)
    print(f"check (a) {case['name']}: iwae-looser == single-VAE IWAE over u: max |diff| = {err:.3e}")


def check_dreg():
    any_differs = False
    for case in CASES:
        v_true, g_true = evaluate(case, "dreg-looser")
        v_ref, g_ref = evaluate(case, "dreg-reference-looser")
        v_iwae, g_iwae = evaluate(case, "iwae-looser")
        assert torch.equal(v_true, v_ref), (case["name"], v_true, v_ref)
        same = max(float((g_true[k] - g_ref[k]).abs().max()) for k in g_true if not k.startswith("enc"))
        assert all(torch.allclose(g_true[k], g_ref[k], rtol=1e-12, atol=1e-14)
                   for k in g_true if not k.startswith("enc")), case["name"]
        enc = max(float((g_true[k] - g_ref[k]).abs().max()) for k in g_true if k.startswith("enc"))
        any_differs |= enc > 1e-6
        iw = max(float((g_iwae[k] - g_ref[k]).abs().max()) for k in g_true)
        assert all(torch.allclose(g_iwae[k], g_ref[k], rtol=1e-10, atol=1e-12) for k in g_true), case["name"]
        print(f"check (b) {case['name']}: dreg-looser vs dreg-reference-looser: values equal, "
              f"max |grad diff| non-encoder {same:.3e}, encoder {enc:.3e}; "
              f"dreg-reference vs iwae-looser grads max |diff| {iw:.3e}")
    assert any_differs, "dreg-looser's encoder gradients never differ from the reference's"


def check_finite_differences(case_name, probes, h=1e-6, rtol=1e-6):
    case = next(c for c in CASES if c["name"] == case_name)
    p, xs, noise = inputs(case)

    def loss():
        return -objective(case, p, xs, noise, "iwae-looser").mean()
    loss().backward()
    for name in probes:  # each at the entry with the largest gradient, so never a dead unit
        idx = int(p[name].grad.abs().reshape(-1).argmax())
        auto = float(p[name].grad.reshape(-1)[idx])
        with torch.no_grad():
            flat_p = p[name].view(-1)
            orig = float(flat_p[idx])
            flat_p[idx] = orig + h
            up = float(loss())
            flat_p[idx] = orig - h
            down = float(loss())
            flat_p[idx] = orig
        fd = (up - down) / (2 * h)
        rel = abs(fd - auto) / max(abs(fd), abs(auto), 1e-12)
        print(f"check (c) {case_name} d loss/d {name}[{idx}]: autograd {auto:.10e}  fd {fd:.10e}  "
              f"rel {rel:.2e}")
        assert rel < rtol, (name, idx, auto, fd, rel)


def check_alive():
    for case in CASES:
        _, g = evaluate(case, "iwae-looser")
        for k, v in g.items():
            if fixed(case, k):
                assert bool((v == 0).all()), (case["name"], k, "should get no gradient")
            else:
                assert bool((v != 0).any()), (case["name"], k, "has zero gradient: pick another seed")
        dead = {k: int((v == 0).sum()) for k, v in g.items()
                if k.endswith(".bias") and not fixed(case, k) and bool((v == 0).any())}
        print(f"check (d) {case['name']}: every non-fixed parameter has a non-zero gradient; fixed: "
              f"{[k for k in g if fixed(case, k)]}; units with zero bias gradient: {dead or 'none'}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    check_unimodal()
    check_dreg()
    check_finite_differences("paper", ["enc1.hidden0.weight", "dec0.hidden1.weight", "fusion1"])
    check_alive()
    path = os.path.join(here, "..", "fusions", "mmvaeplus", "tests", "fixtures", "objectives.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = {"generator": "bench/mmvaeplus_reference.py", "torch": torch.__version__,
            "cases": [run_case(c) for c in CASES]}
    with open(path, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
        f.write("\n")
    for c in data["cases"]:
        for name, o in c["objectives"].items():
            print(c["name"], name, f"value {o['value']:.10f}", "per_item",
                  [round(v, 10) for v in o["per_item"]])


if __name__ == "__main__":
    main()
