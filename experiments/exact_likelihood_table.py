"""The ground-truth likelihood table of the exact-likelihood chapter: true NLL vs ODE vs bound on the two mixtures.

    OMP_NUM_THREADS=1 python experiments/exact_likelihood_table.py            # both mixtures, 512 points, 4 draws

For each ground-truth mixture (``named_mixture("gaussian_mixture_1d")`` with the shipped ``mixture1d`` model,
``named_mixture("gaussian_mixture")`` with ``mixture2d``) and ``--n`` test points drawn from it (seeded), all in
nats per dimension:

true          -log q(x) / d, the mixture's exact density
ode_exact     the probability-flow ODE (``ode_log_likelihood``, exact divergence, dopri5, rtol = atol = 1e-6,
              s_min = 0) with the mixture's exact score, once with the exact prior q_1 (= the truth up to the
              solver's tolerance) and once with Song et al.'s N(0, I) prior
ode_model     the same ODE with the trained eps-model as score (``score_from_eps``, interpolated in t), s_min =
              1e-3 (t = 1, the smallest noise level it was trained at), prior N(0, I)
bound         Eq. (5) of Ho et al. with T = 1000 and a Gaussian decoder (``bits_per_dim(..., decoder="gaussian")``)
              for sigma_t^2 = beta_t and beta~_t, with the trained model and with the mixture's exact eps-oracle;
              each an average of ``--draws`` independent x_t draws per t and point; split into L_T, L_0 and the sum
              of L_{t-1} over t in 2..10, 11..100, 101..1000; per-t mean terms for the figure.

Standard errors are over the test points (paired with the true NLL for differences). Results, with the command,
machine and date, go to ``experiments/results/exact_likelihood_table.json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddpm_core import bits_per_dim, load_pretrained  # noqa: E402
from ddpm_core.mixtures import named_mixture  # noqa: E402
from ddpm_core.ode_likelihood import bound_term_ranges, ode_log_likelihood  # noqa: E402
from ddpm_core.provenance import machine_description  # noqa: E402
from ddpm_core.sde import VPSDE, mixture_score  # noqa: E402
from ddpm_core.train import build_diffusion, get_preset  # noqa: E402

RESULTS = ROOT / "experiments" / "results" / "exact_likelihood_table.json"
CASES = {"mixture1d": "gaussian_mixture_1d", "mixture2d": "gaussian_mixture"}
RANGES = ((2, 10), (11, 100), (101, 1000))


def _stat(v: torch.Tensor) -> dict:
    v = v.double()
    return {"mean": float(v.mean()), "se": float(v.std() / math.sqrt(v.numel()))}


def run_case(preset: str, n: int, draws: int, seed: int) -> dict:
    gm = named_mixture(CASES[preset])
    d = gm.dim
    model, diffusion, cfg = load_pretrained(get_preset(preset), models_dir=ROOT / "book" / "models")
    sched = diffusion.schedule
    sde = VPSDE.from_schedule(sched)
    x = gm.sample(n, torch.Generator().manual_seed(seed))
    true = -gm.log_prob(x) / d
    out: dict = {"mixture": CASES[preset], "d": d, "n": n, "draws": draws, "seed": seed, "true": _stat(true)}
    t0 = time.perf_counter()
    q1 = float(sde.alpha_bar(1.0))
    for prior_name, prior in (("exact_prior", lambda z: gm.log_prob(z, q1)), ("normal_prior", None)):
        kw = {} if prior is None else {"prior_log_prob": prior}
        r = ode_log_likelihood(sde, mixture_score(gm, sde), x, s_min=0.0, rtol=1e-6, atol=1e-6, **kw)
        nll = -r.log_likelihood / d
        out[f"ode_exact_{prior_name}"] = {**_stat(nll), "max_abs_err": float((nll - true).abs().max()),
                                          "diff": _stat(nll - true), "nfe": r.nfe}
    # the trained model (float32) on the float64 points: eps -> score through score_from_eps, differentiable in x
    def net(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model(x_t.float(), t).double()

    r = ode_log_likelihood(sde, net, x, s_min=1e-3, rtol=1e-6, atol=1e-6, parameterization="eps", schedule=sched)
    nll = -r.log_likelihood / d
    out["ode_model"] = {**_stat(nll), "diff": _stat(nll - true), "nfe": r.nfe, "first16": nll[:16].tolist()}
    out["ode_seconds"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    oracle = gm.eps_oracle(sched)
    for variance in ("beta", "beta_tilde"):
        diff = build_diffusion(cfg.replace(variance=variance))
        totals = {}
        for who, eps_model in (("model", net), ("oracle", oracle)):
            # the same x_t draws for the model and the oracle (same seeds): their difference is paired
            runs = [bits_per_dim(diff, eps_model, x, decoder="gaussian",
                                 generator=torch.Generator().manual_seed(seed + 100 + k)) for k in range(draws)]
            terms = torch.stack([b.terms for b in runs]).mean(0) * math.log(2)   # (n, T) nats/dim
            prior = torch.stack([b.prior for b in runs]).mean(0) * math.log(2)  # (n,)
            total = totals[who] = prior + terms.sum(1)
            parts = bound_term_ranges(prior, terms, RANGES)
            out[f"bound_{who}_{variance}"] = {
                "total": _stat(total), "gap": _stat(total - true),
                "parts": {k: _stat(v) for k, v in parts.items()},
                "terms_mean": terms.mean(0).tolist()}
        out[f"bound_model_minus_oracle_{variance}"] = _stat(totals["model"] - totals["oracle"])
    out["bound_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=tuple(CASES), action="append")
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    command = "OMP_NUM_THREADS=1 python experiments/exact_likelihood_table.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for preset in args.only or CASES:
        t0 = time.perf_counter()
        res = run_case(preset, args.n, args.draws, args.seed)
        res.update(command=command, machine=machine_description(), date=datetime.date.today().isoformat(),
                   seconds=round(time.perf_counter() - t0, 1))
        results[preset] = res
        print(f"{preset}: true {res['true']['mean']:.4f}, ODE exact {res['ode_exact_exact_prior']['mean']:.4f}, "
              f"ODE model {res['ode_model']['mean']:.4f}, "
              f"bound model beta {res['bound_model_beta']['total']['mean']:.4f} ({res['seconds']:.0f} s)", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
