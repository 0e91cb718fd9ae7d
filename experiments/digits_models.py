"""Train the digits models the book's chapters load, and measure them (Table 1/2 miniature, EMA, fast sampling).

    python experiments/digits_models.py                 # all variants, on CUDA if available (CPU works, slower)
    python experiments/digits_models.py --only digits   # one variant

For every variant (the paper's Table 2 rows that need no learned variance, on scikit-learn's 8x8 digits):

    digits            eps-prediction, L_simple            (the paper's choice; Eq. 14)
    digits_eps_vlb    eps-prediction, true bound L         (Eq. 5, fixed isotropic Sigma)
    digits_mean_vlb   mu~-prediction, true bound L
    digits_mean_mse   mu~-prediction, plain MSE on the mean

it trains ``ddpm_core.train`` presets for the same number of steps, then measures on held-out digits:
FD_digits of samples from the EMA and from the raw weights (1000-step Algorithm 2), and the full bound L in
bits/dim term by term (``bits_per_dim``). For ``digits`` it also sweeps fast samplers (strided ancestral with
beta and beta~, DDIM eta = 0) over step counts. Writes

    experiments/results/digits_models.json   all numbers, the machine and this command
    book/models/<name>-<hash>.pt             slim checkpoints (config, step, model and EMA weights) that
                                             ``ddpm_core.train.train_or_load`` picks up instead of training
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddpm_core.data import load_digits  # noqa: E402
from ddpm_core.metrics import digits_fid  # noqa: E402
from ddpm_core.samplers import ddim_sample, respace, strided_timesteps  # noqa: E402
from ddpm_core.train import build_diffusion, get_preset, load_checkpoint, train_or_load  # noqa: E402
from ddpm_core.train.cache import run_dir_for  # noqa: E402
from ddpm_core.train.pretrained import export_pretrained  # noqa: E402

VARIANTS = {
    "digits": dict(),
    "digits_eps_vlb": dict(loss="vlb"),
    "digits_mean_vlb": dict(parameterization="mean", loss="vlb"),
    "digits_mean_mse": dict(parameterization="mean", loss="simple"),
}
SWEEP_STEPS = [10, 20, 50, 100, 250, 1000]


def variant_config(name: str, device: str):
    return get_preset("digits", device=device, progress=False, sample_every=0, **VARIANTS[name]).replace(name=name)


@torch.no_grad()
def evaluate(name: str, config, run: Path, device: str, n_samples: int, seed: int = 0, eval_steps: int = 1000,
             bound: bool = True) -> dict:
    out = {"config": config.to_dict(), "eval_steps": eval_steps, "n_samples": n_samples}
    test = load_digits("test").tensors[0].to(device)
    for weights in ("ema", "raw"):
        model, diffusion, _ = load_checkpoint(run, device=device, ema=weights == "ema")
        g = torch.Generator(device=device).manual_seed(seed)
        rd, rm = respace(diffusion, model, strided_timesteps(diffusion.T, eval_steps))
        x = rd.sample(rm, (n_samples, 1, 8, 8), generator=g, progress=False)
        out[f"fd_digits_{weights}"] = digits_fid(x.cpu().clamp(-1, 1))
        if weights == "ema" and bound:
            bound = diffusion.bits_per_dim(model, test, progress=False, generator=torch.Generator(device=device).manual_seed(1))
            m = bound.mean()
            out["bpd"] = {k: float(v) for k, v in m.items()}
            out["bpd_terms_mean"] = bound.terms.mean(0).tolist()        # per t, bits/dim
            out["x0_mse_mean"] = bound.x0_mse.mean(0).tolist()           # per t, distortion (data in [-1, 1])
    return out


@torch.no_grad()
def sweep(run: Path, device: str, n_samples: int, steps_list=SWEEP_STEPS) -> dict:
    rows = []
    model, diffusion, cfg = load_checkpoint(run, device=device)
    for steps in steps_list:
        ts = strided_timesteps(diffusion.T, steps)
        for kind in ("ancestral_beta", "ancestral_beta_tilde", "ddim_eta0"):
            g = torch.Generator(device=device).manual_seed(0)
            t0 = time.perf_counter()
            if kind == "ddim_eta0":
                x = ddim_sample(diffusion, model, (n_samples, 1, 8, 8), timesteps=ts, eta=0.0, generator=g,
                                progress=False)
            else:
                d2 = build_diffusion(cfg.replace(variance=kind.removeprefix("ancestral_")))
                rd, rm = respace(d2, model, ts)
                x = rd.sample(rm, (n_samples, 1, 8, 8), generator=g, progress=False)
            rows.append({"sampler": kind, "steps": steps, "fd_digits": digits_fid(x.cpu().clamp(-1, 1)),
                         "seconds": time.perf_counter() - t0})
            print(f"  sweep {kind:22s} {steps:5d} steps  FD_digits {rows[-1]['fd_digits']:.3f}", flush=True)
    return {"rows": rows, "n_samples": n_samples}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", choices=list(VARIANTS), help="variants to run (default: all)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cache-dir", default=str(ROOT / "_build" / "experiment_runs"))
    p.add_argument("--models-dir", default=str(ROOT / "book" / "models"))
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--out", default=str(ROOT / "experiments" / "results" / "digits_models.json"))
    p.add_argument("--steps", type=int, default=None, help="override the training steps (smoke tests only)")
    p.add_argument("--eval-steps", type=int, default=1000,
                   help="strided ancestral steps for the EMA-versus-raw samples (default 1000: Algorithm 2)")
    p.add_argument("--sweep-steps", type=int, nargs="+", default=SWEEP_STEPS, help="step counts of the sampler sweep")
    p.add_argument("--no-bound", action="store_true", help="skip the full bound in bits/dim (T network calls)")
    args = p.parse_args(argv)
    names = args.only or list(VARIANTS)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results["command"] = "python experiments/digits_models.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results["machine"] = (torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
                          or platform.machine()) + f", torch {torch.__version__}"
    results["date"] = datetime.date.today().isoformat()
    results.setdefault("variants", {})
    for name in names:
        config = variant_config(name, args.device)
        if args.steps is not None:
            config = config.replace(steps=args.steps)
        t0 = time.perf_counter()
        train_or_load(config, cache_dir=args.cache_dir, device=args.device)
        train_seconds = time.perf_counter() - t0
        run = run_dir_for(config, args.cache_dir)
        print(f"{name}: trained {config.steps} steps in {train_seconds:.1f} s", flush=True)
        res = evaluate(name, config, run, args.device, args.n_samples, eval_steps=args.eval_steps,
                       bound=not args.no_bound)
        res["train_seconds"] = train_seconds
        if name == "digits":
            res["sweep"] = sweep(run, args.device, args.n_samples, args.sweep_steps)
        results["variants"][name] = res
        export_pretrained(run / "latest.pt", args.models_dir)
        bound_txt = f", bound {res['bpd']['total']:.3f} bits/dim" if "bpd" in res else ""
        print(f"{name}: FD_digits ema {res['fd_digits_ema']:.3f} raw {res['fd_digits_raw']:.3f}{bound_txt}", flush=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
