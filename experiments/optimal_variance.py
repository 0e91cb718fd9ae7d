"""The bound with the optimal reverse variance (Analytic-DPM) against beta and beta~, for the book's chapter 19.

    python experiments/optimal_variance.py                    # both parts
    python experiments/optimal_variance.py --only digits      # the shipped digits model (about 8 CPU minutes)
    python experiments/optimal_variance.py --only mixture2d   # the shipped 2-D mixture model (about 6 CPU minutes)

For each model the optimal variance sigma*_t^2 is estimated from the model on training data
(``ddpm_core.analytic_variance.estimate_optimal_variance``, Bao et al. 2022), and the bound of Eq. (5) is evaluated
on held-out data with ``ddpm_core.bits_per_dim(..., variance=...)`` for sigma_t^2 = beta_t, beta~_t and the estimated
optimum (for the mixture also the exact optimum from its known score). Every variance sees the same x_t draws (one
seed), so the differences are paired and their standard errors (over examples) are small. Per-t means and standard
errors go to ``experiments/results/optimal_variance_<part>.json`` (one file per part) with the command, machine and
date.
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
from ddpm_core.analytic_variance import estimate_optimal_variance, mixture_optimal_variance  # noqa: E402
from ddpm_core.provenance import machine_description  # noqa: E402
from ddpm_core.train import get_preset  # noqa: E402

PARTS = ("digits", "mixture2d")
RESULTS = ROOT / "experiments" / "results"
MODELS = ROOT / "book" / "models"


def _sig(x: float, digits: int = 5) -> float:
    return float(f"{x:.{digits}g}")


def _bounds(diffusion, model, x0, tables: dict, *, decoder: str, clip_denoised: bool, seed: int) -> dict:
    """bits_per_dim for each named table with the same x_t draws; per-t means, totals and paired differences."""
    terms = {}
    for name, table in tables.items():
        t0 = time.process_time()
        res = bits_per_dim(diffusion, model, x0, variance=table, decoder=decoder, clip_denoised=clip_denoised,
                           generator=torch.Generator().manual_seed(seed))
        terms[name] = (res.prior, res.terms)
        print(f"  bound with {name}: {res.total.mean().item():.5f} bits/dim ({time.process_time() - t0:.0f} s CPU)",
              flush=True)
    B = x0.shape[0]
    out = {"n_examples": B, "seed": seed, "per_t": {}, "total": {}, "improvement_over": {}}
    for name, (prior, tm) in terms.items():
        total = prior + tm.sum(1)
        out["total"][name] = {"mean": _sig(total.mean().item(), 6), "se": _sig(total.std().item() / math.sqrt(B), 2)}
        out["per_t"][name] = [_sig(v) for v in tm.mean(0).tolist()]
    ref = terms["optimal_estimated"][1]
    for name, (prior, tm) in terms.items():
        if name == "optimal_estimated":
            continue
        diff = tm - ref                                  # (B, T) paired per example and t
        tot = diff.sum(1)
        out["improvement_over"][name] = {
            "total_mean": _sig(tot.mean().item(), 4), "total_se": _sig(tot.std().item() / math.sqrt(B), 2),
            "per_t_mean": [_sig(v, 4) for v in diff.mean(0).tolist()],
            "per_t_se": [_sig(v, 2) for v in (diff.std(0) / math.sqrt(B)).tolist()]}
    return out


def run_digits(n_estimate: int, n_test: int, seed: int) -> dict:
    from ddpm_core.data import load_digits

    model, diffusion, cfg = load_pretrained(get_preset("digits"), models_dir=MODELS, train_if_missing=False)
    x_train = load_digits("train").tensors[0][:n_estimate]
    x_test = load_digits("test").tensors[0][:n_test]
    t0 = time.process_time()
    table = estimate_optimal_variance(diffusion, model, x_train, decoder="discretized",
                                      generator=torch.Generator().manual_seed(seed), batch_t=1)
    est_s = time.process_time() - t0
    print(f"digits: optimal variance estimated from {n_estimate} training digits ({est_s:.0f} s CPU)", flush=True)
    s = diffusion.schedule
    tables = {"beta": "beta", "beta_tilde": "beta_tilde", "optimal_estimated": table}
    out = _bounds(diffusion, model, x_test, tables, decoder="discretized", clip_denoised=True, seed=seed + 1)
    out.update({"model": "digits (book/models, get_preset('digits'))", "data": f"load_digits('test')[:{n_test}]",
                "estimate_data": f"load_digits('train')[:{n_estimate}]", "n_estimate": n_estimate,
                "decoder": "discretized",
                "clip_denoised": True, "units": "bits/dim",
                "optimal_estimated_table": [_sig(v, 6) for v in table.tolist()],
                "ratio_to_beta": [_sig(v, 5) for v in (table[1:] / s.betas[1:]).tolist()]})
    return out


def run_mixture2d(n_estimate: int, n_eval: int, seed: int) -> dict:
    from ddpm_core.mixtures import named_mixture

    model, diffusion, cfg = load_pretrained(get_preset("mixture2d"), models_dir=MODELS, train_if_missing=False)
    gm = named_mixture("gaussian_mixture")
    s = diffusion.schedule
    gen = torch.Generator().manual_seed(seed)
    x_est = gm.sample(n_estimate, gen).float()
    x_eval = gm.sample(n_eval, gen).float()
    table = estimate_optimal_variance(diffusion, model, x_est, decoder="gaussian",
                                      generator=torch.Generator().manual_seed(seed + 1), batch_t=10)
    exact = mixture_optimal_variance(gm, s, clip=True)
    exact[1] = max(float(exact[1]), float(s.beta_tildes[2]))
    tables = {"beta": "beta", "beta_tilde": "beta_tilde", "optimal_exact": exact, "optimal_estimated": table}
    out = _bounds(diffusion, model, x_eval, tables, decoder="gaussian", clip_denoised=False, seed=seed + 2)
    out.update({"model": "mixture2d (book/models, get_preset('mixture2d'))",
                "data": f"named_mixture('gaussian_mixture').sample({n_eval}) after {n_estimate} for the estimate, "
                        f"torch.Generator().manual_seed({seed})",
                "n_estimate": n_estimate, "decoder": "gaussian", "clip_denoised": False, "units": "bits/dim",
                "optimal_estimated_table": [_sig(v, 6) for v in table.tolist()],
                "optimal_exact_table": [_sig(v, 6) for v in exact.tolist()]})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for part in args.only or PARTS:
        t0 = time.process_time()
        out = run_digits(256, 128, args.seed) if part == "digits" else run_mixture2d(10_000, 4000, args.seed)
        out.update({"command": "python experiments/optimal_variance.py" + (f" --only {part}" if args.only else ""),
                    "machine": machine_description(), "date": datetime.date.today().isoformat(),
                    "cpu_seconds": round(time.process_time() - t0, 1), "torch": torch.__version__})
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"optimal_variance_{part}.json").write_text(json.dumps({part: out}, indent=1, sort_keys=True) + "\n")
        print(f"{part}: done in {out['cpu_seconds']} s CPU", flush=True)


if __name__ == "__main__":
    main()
