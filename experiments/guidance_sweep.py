"""Train the class-conditional digits model, ship it, and sweep the guidance scale (chapter 21).

    python experiments/guidance_sweep.py                   # train (or load) digits_cond, export it, then sweep
    python experiments/guidance_sweep.py --stage train     # only train and export (both presets)

The preset ``digits_cond`` (``ddpm_core.train``) is the ``digits`` recipe with a class embedding (10 digits and
the null label) and label dropout p_uncond = 0.2 (Ho & Salimans 2022). Its slim checkpoint goes to
``book/models/digits_cond-<hash>.pt``, where ``load_pretrained(get_preset("digits_cond"), models_dir="models")``
finds it. The same is done for ``mixture2d_cond``, the residual MLP on the 2-D ground-truth mixture with the
component as the label (label dropout 0.2), which the chapter compares with exact guidance.

The sweep draws ``--per-class`` samples of every digit with classifier-free guidance at each scale w (Eq. 6 of
Ho & Salimans; w = 0 is the plain conditional model) using strided ancestral sampling with ``--steps`` steps, and
measures

    accuracy     the fraction of samples that the digits classifier of ``ddpm_core.metrics`` (trained on the
                 1437 training digits) assigns to the class they were drawn for
    fd_digits    the Frechet distance in that classifier's feature space between all samples and the 360
                 held-out test digits (``ddpm_core.metrics.digits_fid``), with the standard deviation of FD over
                 bootstrap resamples of the samples as its sampling error

Results (with command, machine and date) go to ``experiments/results/guidance_sweep.json``.
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

from ddpm_core.provenance import machine_description  # noqa: E402
from ddpm_core.train import get_preset, read_checkpoint, train_or_load  # noqa: E402
from ddpm_core.train.cache import run_dir_for  # noqa: E402
from ddpm_core.train.pretrained import export_pretrained  # noqa: E402

PRESET = "digits_cond"
MIXTURE_PRESET = "mixture2d_cond"
SCALES = [0.0, 0.5, 1.0, 2.0, 4.0]
RESULTS = ROOT / "experiments" / "results" / "guidance_sweep.json"


def _provenance(argv: list[str]) -> dict:
    return {"command": " ".join(["python experiments/guidance_sweep.py", *argv]).strip(),
            "machine": machine_description(), "date": datetime.date.today().isoformat()}


def train(argv: list[str], cache_dir: str | None, models_dir: str, steps: int | None = None,
          preset: str = PRESET) -> dict:
    config = get_preset(preset, progress=False, device="cpu")
    if steps is not None:
        config = config.replace(steps=steps)
    run = run_dir_for(config, cache_dir)
    was_done = (run / "latest.pt").exists() and int(read_checkpoint(run / "latest.pt")["step"]) >= config.steps
    t0 = time.time()
    train_or_load(config, cache_dir=cache_dir)
    seconds = time.time() - t0
    target = export_pretrained(run / "latest.pt", models_dir)
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    out = {"file": str(target.relative_to(ROOT)) if target.is_relative_to(ROOT) else str(target),
           "steps": config.steps, "config": config.to_dict(),
           "last_logged": json.loads(lines[-1]) if lines else {}}
    if not was_done:
        out.update(train_seconds=round(seconds, 1), **_provenance(argv))
    print(f"{preset}: {target} ({seconds:.0f} s)", flush=True)
    return out


@torch.no_grad()
def sweep(scales: list[float], per_class: int, steps: int, seed: int, models_dir: str,
          train_steps: int | None = None, n_bootstrap: int = 20) -> list[dict]:
    from ddpm_core import sample
    from ddpm_core.metrics import classify_digits, digits_fid
    from ddpm_core import load_pretrained

    config = get_preset(PRESET) if train_steps is None else get_preset(PRESET, steps=train_steps)
    model, diffusion, _ = load_pretrained(config, models_dir=models_dir, train_if_missing=False)
    model.eval()
    y = torch.arange(10).repeat_interleave(per_class)
    rows = []
    for w in scales:
        t0 = time.time()
        x = sample(model, diffusion, (len(y), 1, 8, 8), steps=steps, y=y, guidance_scale=w,
                   generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)
        pred = classify_digits(x)
        acc = (pred == y).double()
        per_class_acc = [float(acc[y == k].mean()) for k in range(10)]
        # the sampling error of FD: the spread of FD over bootstrap resamples of the samples
        g = torch.Generator().manual_seed(seed + 1)
        boot = torch.tensor([digits_fid(x[torch.randint(0, len(x), (len(x),), generator=g)])
                             for _ in range(n_bootstrap)])
        rows.append({"w": w, "accuracy": float(acc.mean()),
                     "accuracy_std_error": float((acc.mean() * (1 - acc.mean()) / len(acc)).sqrt()),
                     "accuracy_per_class": per_class_acc, "fd_digits": digits_fid(x),
                     "fd_digits_bootstrap_std": float(boot.std()), "n_bootstrap": n_bootstrap,
                     "pixel_std": float(x.std()), "seconds": round(time.time() - t0, 1)})
        print(f"  w={w:4.1f}  accuracy {rows[-1]['accuracy']:.3f}  FD_digits {rows[-1]['fd_digits']:.3f}", flush=True)
    return rows


@torch.no_grad()
def mixture_comparison(models_dir: str, n: int, seed: int, ws=(0.0, 2.0)) -> list[dict]:
    """Classifier-free guidance of the trained ``mixture2d_cond`` MLP at w against exact classifier guidance at
    s = 1 + w (exact scores of the mixture), class 1, Algorithm 2 with all T steps and sigma_t^2 = beta~_t:
    sample means and variances and the exact classifier's mean log-odds of the class."""
    from ddpm_core import GaussianDiffusion, load_pretrained, sample
    from ddpm_core.guidance import mixture_classifier
    from ddpm_core.mixtures import named_mixture

    mlp, diffusion, _ = load_pretrained(get_preset(MIXTURE_PRESET), models_dir=models_dir, train_if_missing=False)
    diffusion = GaussianDiffusion(diffusion.schedule, variance="beta_tilde", clip_denoised=False)
    mix = named_mixture("gaussian_mixture")
    label, rows = 1, []
    for w in ws:
        for kind in ("learned", "exact"):
            g = torch.Generator().manual_seed(seed)
            if kind == "learned":
                x = sample(mlp, diffusion, (n, 2), y=label, guidance_scale=w, generator=g)
            else:
                x = sample(mix.eps_oracle(diffusion.schedule), diffusion, (n, 2), y=label, guidance_scale=1 + w,
                           classifier=mixture_classifier(mix, diffusion.schedule), generator=g, device="cpu")
            x = x.double()
            lp = mix.posterior(x, 1.0).clamp_min(1e-300).log()
            odds = lp[:, label] - torch.cat([lp[:, :label], lp[:, label + 1:]], 1).logsumexp(1)
            rows.append({"model": kind, "w": w, "s": 1 + w, "mean": x.mean(0).tolist(), "var": x.var(0).tolist(),
                         "log_odds": float(odds.mean())})
            print(f"  {kind:7s} w={w}: mean {rows[-1]['mean']}, var {rows[-1]['var']}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=("train", "all", "mixture"), default="all",
                        help="train: only train and export; mixture: only the 2-D comparison; all: everything")
    parser.add_argument("--skip-mixture", action="store_true", help="keep the stored 2-D comparison")
    parser.add_argument("--mixture-points", type=int, default=2000, help="samples per row of the 2-D comparison")
    parser.add_argument("--scales", type=float, nargs="+", default=SCALES)
    parser.add_argument("--per-class", type=int, default=100, help="samples per digit and scale")
    parser.add_argument("--steps", type=int, default=50, help="strided ancestral sampling steps (the chapter uses 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=20, help="bootstrap resamples for FD's standard error")
    parser.add_argument("--cache-dir", default=None, help="training runs (default: ddpm_core's cache)")
    parser.add_argument("--models-dir", default=str(ROOT / "book" / "models"))
    parser.add_argument("--out", default=str(RESULTS), help="the results file")
    parser.add_argument("--train-steps", type=int, default=None, help="override the training steps (smoke tests)")
    args = parser.parse_args(argv)
    argv = list(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    trained = train(argv, args.cache_dir, args.models_dir, args.train_steps)
    results["train"] = {**results.get("train", {}), **trained}
    if args.train_steps is None:        # the 2-D mixture's conditional MLP, compared with exact guidance
        trained = train(argv, args.cache_dir, args.models_dir, preset=MIXTURE_PRESET)
        results[MIXTURE_PRESET] = {**results.get(MIXTURE_PRESET, {}), **trained}
    if args.stage in ("all", "mixture") and args.train_steps is None and not args.skip_mixture:
        rows = mixture_comparison(args.models_dir, args.mixture_points, args.seed)
        results["mixture_comparison"] = {"rows": rows, "n": args.mixture_points, "label": 1,
                                         "sampler": "Algorithm 2, all T steps, sigma_t^2 = beta~_t",
                                         **_provenance(argv)}
    if args.stage == "all":
        rows = sweep(args.scales, args.per_class, args.steps, args.seed, args.models_dir, args.train_steps,
                     args.bootstrap)
        results["sweep"] = {"rows": rows, "per_class": args.per_class, "steps": args.steps, "seed": args.seed,
                            "sampler": "strided ancestral, sigma_t^2 = beta_t", **_provenance(argv)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
