"""Train the digits models the book's chapters load, and measure them (Table 1/2 miniature, EMA, fast sampling).

    python experiments/digits_models.py                 # all variants, on CUDA if available (CPU works, slower)
    python experiments/digits_models.py --only digits   # one variant

For every variant (the paper's Table 2 rows that need no learned variance, on scikit-learn's 8x8 digits):

    digits            eps-prediction, L_simple            (the paper's choice; Eq. 14)
    digits_eps_vlb    eps-prediction, true bound L         (Eq. 5, fixed isotropic Sigma)
    digits_mean_vlb   mu~-prediction, true bound L
    digits_mean_mse   mu~-prediction, plain MSE on the mean

it trains the ``digits`` preset of ``ddpm_core.train`` with that change (same network, steps and seed), then
measures what ``--measure`` names (default: all):

    ema_raw   FD_digits of samples from the EMA and from the raw (last-step) weights
    table     the Table 1/2 row, EMA weights: FD_digits of samples from the full 1000-step Algorithm 2, and the
              bound L of Eq. (5) in bits/dim on the 360 test digits with its mean terms per t and the distortion
              of the x_0 prediction per t (the data of the rate-distortion curve, Sec. 4.3)
    sweep     (``digits`` only) FD_digits of fast samplers (strided ancestral with beta and beta~, DDIM eta = 0)
              over step counts

and writes

    experiments/results/digits_models.json   per variant: config, and one block per measurement (and for the
                                             training run) with its numbers, the command, machine and date;
                                             a later run replaces only the blocks it measures
    book/models/<name>-<hash>.pt             slim checkpoints (config, step, model and EMA weights) that
                                             ``ddpm_core.train.load_pretrained`` finds instead of training
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddpm_core import bits_per_dim  # noqa: E402
from ddpm_core.data import load_digits  # noqa: E402
from ddpm_core.metrics import digits_fid  # noqa: E402
from ddpm_core.provenance import machine_description  # noqa: E402
from ddpm_core.samplers import sample, strided_timesteps  # noqa: E402
from ddpm_core.train import build_diffusion, get_preset, load_checkpoint, read_checkpoint, train_or_load  # noqa: E402
from ddpm_core.train.cache import run_dir_for  # noqa: E402
from ddpm_core.train.pretrained import export_pretrained  # noqa: E402

VARIANTS = {
    "digits": dict(),
    "digits_eps_vlb": dict(loss="vlb"),
    "digits_mean_vlb": dict(parameterization="mean", loss="vlb"),
    "digits_mean_mse": dict(parameterization="mean", loss="simple"),
}
SWEEP_STEPS = [10, 20, 50, 100, 250, 1000]
MEASUREMENTS = ("ema_raw", "table", "sweep")


def variant_config(name: str, device: str):
    return get_preset("digits", device=device, progress=False, sample_every=0, **VARIANTS[name]).replace(name=name)


def _last_logged(run: Path) -> dict:
    """The last line of the run's metrics.jsonl (loss, gradient norm, ... at the last logged step), or {}."""
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return json.loads(lines[-1]) if lines else {}


def _provenance(argv) -> dict:
    return {"command": "python experiments/digits_models.py " + " ".join(argv),
            "date": datetime.date.today().isoformat()}


def _sample(diffusion, model, n: int, steps: int, device: str, seed: int) -> torch.Tensor:
    """n samples by Algorithm 2 strided to ``steps`` of the T steps (all T: the plain algorithm)."""
    g = torch.Generator(device=device).manual_seed(seed)
    return sample(model, diffusion, (n, 1, 8, 8), steps=steps, generator=g)


@torch.no_grad()
def evaluate_ema_raw(run: Path, device: str, n_samples: int, eval_steps: int, seed: int = 0) -> dict:
    """FD_digits of samples from the EMA weights and from the raw (last-step) weights."""
    out = {"eval_steps": eval_steps, "n_samples": n_samples}
    for weights in ("ema", "raw"):
        model, diffusion, _ = load_checkpoint(run, device=device, ema=weights == "ema")
        x = _sample(diffusion, model, n_samples, eval_steps, device, seed)
        out[f"fd_digits_{weights}"] = digits_fid(x.cpu().clamp(-1, 1))
    return out


@torch.no_grad()
def evaluate_table(run: Path, device: str, n_samples: int, sample_steps: int, seed: int = 0,
                   n_test: int | None = None) -> dict:
    """One row of the Table 1/2 miniature, EMA weights: FD_digits of ``n_samples`` samples (``sample_steps`` of
    Algorithm 2) and the full bound L (Eq. 5) in bits/dim on the 360 held-out digits, with its terms per t and the
    distortion of the x_0 prediction per t (the rate-distortion data of Sec. 4.3)."""
    model, diffusion, _ = load_checkpoint(run, device=device, ema=True)
    t0 = time.perf_counter()
    x = _sample(diffusion, model, n_samples, sample_steps, device, seed)
    out = {"n_samples": n_samples, "sample_steps": sample_steps, "fd_digits": digits_fid(x.cpu().clamp(-1, 1)),
           "sample_seconds": time.perf_counter() - t0}
    test = load_digits("test").tensors[0][:n_test].to(device)
    t0 = time.perf_counter()
    # The recorded bounds are those of the clipped reverse process (x0_hat clipped to [-1, 1], as in sampling);
    # bits_per_dim's default, the unclipped bound that the "vlb" objective trains, differs for the eps-models.
    bound = bits_per_dim(diffusion, model, test, clip_denoised=True,
                         generator=torch.Generator(device=device).manual_seed(seed + 1))
    out["bound_seconds"] = time.perf_counter() - t0
    out["n_test"] = int(test.shape[0])
    out["bpd"] = {k: float(v) for k, v in bound.mean().items()}
    out["bpd_std_error"] = float(bound.total.std() / bound.total.numel() ** 0.5)
    out["bpd_terms_mean"] = bound.terms.mean(0).tolist()   # index t-1: L_{t-1} (t >= 2) and L_0 (t = 1), bits/dim
    out["x0_mse_mean"] = bound.x0_mse.mean(0).tolist()      # index t-1: E||x0_hat(x_t) - x0||^2 / D, data in [-1, 1]
    out["eps_mse_mean"] = bound.eps_mse.mean(0).tolist()
    return out


@torch.no_grad()
def sweep(run: Path, device: str, n_samples: int, steps_list=SWEEP_STEPS) -> list[dict]:
    """FD_digits of fast samplers (strided ancestral with beta and beta~, DDIM eta = 0) at each step count."""
    rows = []
    model, diffusion, cfg = load_checkpoint(run, device=device)
    for steps in steps_list:
        ts = strided_timesteps(diffusion.T, steps)
        for kind in ("ancestral_beta", "ancestral_beta_tilde", "ddim_eta0"):
            g = torch.Generator(device=device).manual_seed(0)
            t0 = time.perf_counter()
            if kind == "ddim_eta0":
                x = sample(model, diffusion, (n_samples, 1, 8, 8), sampler="ddim", timesteps=ts, eta=0.0, generator=g)
            else:
                d2 = build_diffusion(cfg.replace(variance=kind.removeprefix("ancestral_")))
                x = sample(model, d2, (n_samples, 1, 8, 8), timesteps=ts, generator=g)
            rows.append({"sampler": kind, "steps": steps, "fd_digits": digits_fid(x.cpu().clamp(-1, 1)),
                         "seconds": time.perf_counter() - t0})
            print(f"  sweep {kind:22s} {steps:5d} steps  FD_digits {rows[-1]['fd_digits']:.3f}", flush=True)
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", choices=list(VARIANTS), help="variants to run (default: all)")
    p.add_argument("--measure", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS),
                   help="what to measure after training (default: all; the sweep runs for `digits` only)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cache-dir", default=str(ROOT / "_build" / "experiment_runs"))
    p.add_argument("--models-dir", default=str(ROOT / "book" / "models"))
    p.add_argument("--n-samples", type=int, default=1000, help="samples per FD_digits value (EMA/raw and sweep)")
    p.add_argument("--out", default=str(ROOT / "experiments" / "results" / "digits_models.json"))
    p.add_argument("--steps", type=int, default=None, help="override the training steps (smoke tests only)")
    p.add_argument("--eval-steps", type=int, default=1000,
                   help="strided ancestral steps for the EMA-versus-raw samples (default 1000: Algorithm 2)")
    p.add_argument("--table-samples", type=int, default=500, help="samples for the FD_digits of the table")
    p.add_argument("--table-steps", type=int, default=1000,
                   help="Algorithm 2 steps for the table's samples (default 1000, as in the paper)")
    p.add_argument("--n-test", type=int, default=None, help="evaluate the bound on the first N test digits only "
                   "(default: all 360; fewer for smoke tests)")
    p.add_argument("--sweep-steps", type=int, nargs="+", default=SWEEP_STEPS, help="step counts of the sampler sweep")
    args = p.parse_args(argv)
    argv = list(argv if argv is not None else sys.argv[1:])
    names = args.only or list(VARIANTS)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    machine = machine_description(args.device, torch_version=True)
    results.setdefault("variants", {})
    for name in names:
        config = variant_config(name, args.device)
        if args.steps is not None:
            config = config.replace(steps=args.steps)
        run = run_dir_for(config, args.cache_dir)
        res = results["variants"].setdefault(name, {})
        res["config"] = config.to_dict()
        was_done = (run / "latest.pt").exists() and int(read_checkpoint(run / "latest.pt")["step"]) >= config.steps
        t0 = time.perf_counter()
        train_or_load(config, cache_dir=args.cache_dir, device=args.device)
        if not was_done:
            res["train"] = {"seconds": time.perf_counter() - t0, "steps": config.steps, "machine": machine,
                            **_provenance(argv), "last_logged": _last_logged(run)}
            print(f"{name}: trained {config.steps} steps in {res['train']['seconds']:.1f} s", flush=True)
        export_pretrained(run / "latest.pt", args.models_dir)
        if "ema_raw" in args.measure:
            res["ema_raw"] = {**evaluate_ema_raw(run, args.device, args.n_samples, args.eval_steps),
                              "machine": machine, **_provenance(argv)}
            print(f"{name}: FD_digits ema {res['ema_raw']['fd_digits_ema']:.3f} "
                  f"raw {res['ema_raw']['fd_digits_raw']:.3f}", flush=True)
        if "table" in args.measure:
            res["table"] = {**evaluate_table(run, args.device, args.table_samples, args.table_steps,
                                              n_test=args.n_test),
                            "machine": machine, **_provenance(argv)}
            print(f"{name}: FD_digits {res['table']['fd_digits']:.3f}, "
                  f"bound {res['table']['bpd']['total']:.3f} bits/dim", flush=True)
        if "sweep" in args.measure and name == "digits":
            old = res.get("sweep", {})
            if old.get("n_samples", args.n_samples) != args.n_samples:
                old = {}  # a different sample count: the old points are not comparable
            new = sweep(run, args.device, args.n_samples, args.sweep_steps)
            keep = [r for r in old.get("rows", []) if r["steps"] not in args.sweep_steps]
            rows = sorted(keep + new, key=lambda r: (r["steps"], r["sampler"]))
            # every run that contributed rows, with the step counts it measured (a file written before runs were
            # listed holds one command for all its rows)
            runs = old.get("runs") or ([{"command": old["command"], "machine": old["machine"], "date": old["date"],
                                         "steps": sorted({r["steps"] for r in old["rows"]})}] if "command" in old else [])
            runs = [{**r, "steps": [s for s in r["steps"] if s not in args.sweep_steps]} for r in runs]
            runs = [r for r in runs if r["steps"]] + [{"machine": machine, **_provenance(argv),
                                                        "steps": sorted(args.sweep_steps)}]
            res["sweep"] = {"rows": rows, "n_samples": args.n_samples, "runs": runs}
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
