"""The diffusion loss in SNR form on the 2-D ground-truth mixture: schedules with matched end points (chapter 16).

    python experiments/snr_bound.py --only oracle
    python experiments/snr_bound.py --only mixture2d --n-continuous 300000 --n-discrete 500 --steps 10 30 100 300 1000 3000

(the book's numbers; the trained model costs about 40 times more per evaluation than the oracle on a CPU, hence
fewer examples and steps).

For the exact denoiser of ``named_mixture("gaussian_mixture")`` and for the shipped ``mixture2d`` model (an eps-model
of the paper's linear schedule, made a function of log-SNR by ``ddpm_core.snr.eps_model_denoiser``), and for three
schedules with the same SNR_max = SNR(1) and SNR_min = SNR(1000) as the paper's linear schedule (the paper's own,
respaced; a cosine; log-linear), this estimates with Monte Carlo standard errors

- the continuous-time diffusion loss L_inf (``continuous_diffusion_loss``, one s ~ U(0, 1) per example), whose mean
  must not depend on the schedule and whose variance does;
- the discrete diffusion loss sum_{t=2}^T L_{t-1} (``discrete_diffusion_loss``, one x_t per t and example) for
  T = 10 ... 10000, which depends on the schedule at small T and converges to L_inf as T grows.

Numbers (nats per example) go to ``experiments/results/snr_bound.json`` with the command, machine and date.
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

from ddpm_core import Schedule  # noqa: E402
from ddpm_core.mixtures import named_mixture  # noqa: E402
from ddpm_core.provenance import machine_description  # noqa: E402
from ddpm_core.snr import (continuous_diffusion_loss, cosine_log_snr_schedule, discrete_diffusion_loss,  # noqa: E402
                           eps_model_denoiser, interpolated_log_snr_schedule, loglinear_log_snr_schedule,
                           mixture_denoiser)

RESULTS = ROOT / "experiments" / "results" / "snr_bound.json"
MODELS = ("oracle", "mixture2d")
STEPS = (10, 30, 100, 300, 1000, 3000, 10000)


def schedules() -> dict:
    lin = interpolated_log_snr_schedule(Schedule.linear(), "linear")
    return {"linear": lin, "cosine": cosine_log_snr_schedule(lin.snr_max, lin.snr_min),
            "log-linear": loglinear_log_snr_schedule(lin.snr_max, lin.snr_min)}


def denoiser(name: str):
    if name == "oracle":
        return mixture_denoiser(named_mixture("gaussian_mixture"))
    from ddpm_core import load_pretrained
    from ddpm_core.train import get_preset
    model, diffusion, _ = load_pretrained(get_preset("mixture2d"), models_dir=ROOT / "book" / "models",
                                          train_if_missing=False)
    # the network computes in float32; everything around it (x_t, x0_hat, the SNR weights) in float64
    return eps_model_denoiser(lambda x, t: model(x.float(), t).double(), diffusion.schedule)


def stats(v: torch.Tensor) -> dict:
    return {"mean": v.mean().item(), "se": v.std().item() / math.sqrt(len(v)), "std": v.std().item(), "n": len(v)}


def chunked(fn, x0: torch.Tensor, chunk: int) -> torch.Tensor:
    return torch.cat([fn(x0[i:i + chunk]) for i in range(0, len(x0), chunk)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=MODELS, action="append", help="this denoiser only (repeatable)")
    parser.add_argument("--n-continuous", type=int, default=1_000_000, help="examples for L_inf per schedule")
    parser.add_argument("--n-discrete", type=int, default=2000, help="examples for each discrete T")
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    mix = named_mixture("gaussian_mixture")
    cs_all = schedules()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    command = " ".join(["python experiments/snr_bound.py"] + list(sys.argv[1:] if argv is None else argv))
    for name in args.only or MODELS:
        t0 = time.time()
        denoise = denoiser(name)
        g = torch.Generator().manual_seed(args.seed)
        x_cont = mix.sample(args.n_continuous, g)
        x_disc = mix.sample(args.n_discrete, g)  # the same examples for every schedule and T
        out = {"continuous": {}, "discrete": {}}
        with torch.no_grad():
            for key, cs in cs_all.items():
                v = chunked(lambda x: continuous_diffusion_loss(denoise, x, cs, g), x_cont, 100_000)
                out["continuous"][key] = stats(v)
                print(f"{name} L_inf {key}: {out['continuous'][key]}", flush=True)
            for key, cs in cs_all.items():
                out["discrete"][key] = {}
                for T in args.steps:
                    v = discrete_diffusion_loss(denoise, x_disc, cs.discretize(T), g)
                    out["discrete"][key][str(T)] = stats(v)
                    print(f"{name} T={T} {key}: {out['discrete'][key][str(T)]}", flush=True)
        out.update({"command": command, "machine": machine_description(), "date": datetime.date.today().isoformat(),
                    "seconds": round(time.time() - t0, 1), "seed": args.seed,
                    "snr_max": cs_all["linear"].snr_max, "snr_min": cs_all["linear"].snr_min,
                    "units": "nats per example (2-D), sum over t = 2..T of L_(t-1) in SNR form"})
        results[name] = out
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
