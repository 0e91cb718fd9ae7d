"""Bits/dim of the shipped digits model by the probability-flow ODE and by the bound, on the same test digits.

    OMP_NUM_THREADS=1 python experiments/digits_ode_likelihood.py              # 64 test digits (default)
    OMP_NUM_THREADS=1 python experiments/digits_ode_likelihood.py --n 16 --chunk 8

The model is ``load_pretrained(get_preset("digits"))`` (eps-prediction, L_simple, T = 1000, linear schedule),
read as a score model of the VP-SDE ``VPSDE.from_schedule`` (``ddpm_core.sde.score_from_eps``, eps interpolated
in t). For each of the first ``--n`` held-out digits (8-bit levels k in 0..255, stored as x = k / 127.5 - 1):

ODE (Song et al. 2021, App. D.2): uniform dequantization on the decoder's bins, y = x + (2 u - 1) / 255 with
    u ~ U[0, 1)^D (one draw per image; ``ddpm_core.ode_likelihood.dequantize``): the bins of width 2 / 255 centred
    on the levels the model was trained on tile [-1 - 1/255, 1 + 1/255). Jensen gives, per image,
        -log2 P(k) <= E_u[-log2 p(y)] - D log2(2 / 255) = E_u[-log2 p(y)] + D log2(127.5),
    so bits/dim = -log p(y) / (D ln 2) + 6.994 is an (unbiased single-draw estimate of an) upper bound on the
    model's discrete NLL per dimension. log p(y) is ``ode_log_likelihood`` with Hutchinson's trace estimator
    (``--probes`` Rademacher probes per image, fixed along the trajectory), dopri5 with rtol = atol = ``--tol``,
    from s_min = ``--s-min`` (default 1e-3 = t / T for t = 1, the smallest noise level the model was trained at)
    to s = 1, prior N(0, I). The density is that of the ODE's x at s_min, a continuous model of its own.
    A second, independent probe set on every image (``--repeat 2``) measures the estimator's own noise.
Bound: ``bits_per_dim`` (Eq. 5, discretized decoder Eq. 13, one x_t per t), with clip_denoised True (the clipped
    reverse process, as recorded in digits_models.json) and False (the unclipped model that the ODE uses).

Results (per-image values, means, standard errors, seconds, command, machine, date) go to
``experiments/results/digits_ode_likelihood.json``, rewritten after every chunk of images.
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

from ddpm_core import bits_per_dim  # noqa: E402
from ddpm_core.data import load_digits  # noqa: E402
from ddpm_core.ode_likelihood import dequantize, dequantized_bits_per_dim, ode_log_likelihood  # noqa: E402
from ddpm_core.provenance import machine_description  # noqa: E402
from ddpm_core.sde import VPSDE  # noqa: E402
from ddpm_core import load_pretrained  # noqa: E402
from ddpm_core.train import get_preset  # noqa: E402

RESULTS = ROOT / "experiments" / "results" / "digits_ode_likelihood.json"


def _mean_se(v: list[float]) -> tuple[float, float]:
    t = torch.tensor(v, dtype=torch.float64)
    return float(t.mean()), float(t.std() / math.sqrt(t.numel())) if t.numel() > 1 else float("nan")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=64, help="first n test digits")
    p.add_argument("--chunk", type=int, default=8, help="images per ODE solve")
    p.add_argument("--probes", type=int, default=1, help="Hutchinson probes per image")
    p.add_argument("--repeat", type=int, default=2, help="independent probe sets per image")
    p.add_argument("--tol", type=float, default=1e-5, help="rtol = atol of dopri5")
    p.add_argument("--s-min", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-bound", action="store_true")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    command = "OMP_NUM_THREADS=1 python experiments/digits_ode_likelihood.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    model, diffusion, cfg = load_pretrained(get_preset("digits"), models_dir=ROOT / "book" / "models")
    sde = VPSDE.from_schedule(diffusion.schedule)
    x = load_digits("test").tensors[0][: args.n]
    D = x[0].numel()
    gen = torch.Generator().manual_seed(args.seed)
    y = dequantize(x, generator=gen)  # (n, 1, 8, 8), one draw of u per image
    out = {"command": command, "machine": machine_description(), "date": datetime.date.today().isoformat(),
           "model": "digits", "n": args.n, "D": D, "s_min": args.s_min, "tol": args.tol, "probes": args.probes,
           "repeat": args.repeat, "seed": args.seed, "solver": "dopri5",
           "ode": {"bpd": [[] for _ in range(args.repeat)], "nfe": [], "seconds": 0.0}}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(0, args.n, args.chunk):
        yc = y[i:i + args.chunk]
        for r in range(args.repeat):
            g = torch.Generator().manual_seed(10_000 * (r + 1) + args.seed * 1000 + i)
            res = ode_log_likelihood(sde, model, yc, divergence_method="hutchinson", n_probes=args.probes,
                                     s_min=args.s_min, rtol=args.tol, atol=args.tol, parameterization="eps",
                                     schedule=diffusion.schedule, generator=g)
            out["ode"]["bpd"][r] += dequantized_bits_per_dim(res.log_likelihood, D).tolist()
            out["ode"]["nfe"].append(res.nfe)
        out["ode"]["seconds"] = round(time.perf_counter() - t0, 1)
        per_image = torch.tensor(out["ode"]["bpd"], dtype=torch.float64).mean(0)
        out["ode"]["n_done"] = per_image.numel()
        out["ode"]["mean"], out["ode"]["se"] = _mean_se(per_image.tolist())
        if args.repeat > 1:  # the trace estimator's own noise: half the variance of the difference of two probe sets
            d = torch.tensor(out["ode"]["bpd"][0]) - torch.tensor(out["ode"]["bpd"][1])
            out["ode"]["hutchinson_sd_per_image"] = float(d.std() / math.sqrt(2))
        path.write_text(json.dumps(out, indent=1) + "\n")
        print(f"ODE {per_image.numel()}/{args.n}: {out['ode']['mean']:.3f} +- {out['ode']['se']:.3f} bits/dim "
              f"({out['ode']['seconds']:.0f} s)", flush=True)
    if not args.no_bound:
        for clip in (True, False):
            t1 = time.perf_counter()
            b = bits_per_dim(diffusion, model, x, clip_denoised=clip,
                             generator=torch.Generator().manual_seed(args.seed + 1))
            key = "bound_clipped" if clip else "bound_unclipped"
            m = b.mean()
            out[key] = {"bpd": b.total.tolist(), "mean": m["total"], "se": float(b.total.std() / math.sqrt(len(x))),
                        "prior": m["prior"], "decoder": m["decoder"], "diffusion": m["diffusion"],
                        "seconds": round(time.perf_counter() - t1, 1)}
            path.write_text(json.dumps(out, indent=1) + "\n")
            print(f"bound (clip_denoised={clip}): {m['total']:.3f} +- {out[key]['se']:.3f} bits/dim", flush=True)


if __name__ == "__main__":
    main()
