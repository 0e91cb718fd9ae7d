"""Train the class-conditional digits model, ship it, and sweep the guidance scale (chapter 21).

    python experiments/guidance_sweep.py                   # train (or load) digits_cond, export it, then sweep
    python experiments/guidance_sweep.py --stage train     # only train and export

The preset ``digits_cond`` (``ddpm_core.train``) is the ``digits`` recipe with a class embedding (10 digits and
the null label) and label dropout p_uncond = 0.2 (Ho & Salimans 2022). Its slim checkpoint goes to
``book/models/digits_cond-<hash>.pt``, where ``load_pretrained(get_preset("digits_cond"), models_dir="models")``
finds it.

The sweep draws ``--per-class`` samples of every digit with classifier-free guidance at each scale w (Eq. 6 of
Ho & Salimans; w = 0 is the plain conditional model) using strided ancestral sampling with ``--steps`` steps, and
measures

    accuracy     the fraction of samples that the digits classifier of ``ddpm_core.metrics`` (trained on the
                 1437 training digits) assigns to the class they were drawn for
    fd_digits    the Frechet distance in that classifier's feature space between all samples and the 360
                 held-out test digits (``ddpm_core.metrics.digits_fid``)

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
SCALES = [0.0, 0.5, 1.0, 2.0, 4.0]
RESULTS = ROOT / "experiments" / "results" / "guidance_sweep.json"


def _provenance(argv: list[str]) -> dict:
    return {"command": " ".join(["python experiments/guidance_sweep.py", *argv]).strip(),
            "machine": machine_description(), "date": datetime.date.today().isoformat()}


def train(argv: list[str], cache_dir: str | None, models_dir: str, steps: int | None = None) -> dict:
    config = get_preset(PRESET, progress=False, device="cpu")
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
    print(f"{PRESET}: {target} ({seconds:.0f} s)", flush=True)
    return out


@torch.no_grad()
def sweep(scales: list[float], per_class: int, steps: int, seed: int, models_dir: str,
          train_steps: int | None = None) -> list[dict]:
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
        rows.append({"w": w, "accuracy": float(acc.mean()),
                     "accuracy_std_error": float((acc.mean() * (1 - acc.mean()) / len(acc)).sqrt()),
                     "accuracy_per_class": per_class_acc, "fd_digits": digits_fid(x),
                     "pixel_std": float(x.std()), "seconds": round(time.time() - t0, 1)})
        print(f"  w={w:4.1f}  accuracy {rows[-1]['accuracy']:.3f}  FD_digits {rows[-1]['fd_digits']:.3f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=("train", "all"), default="all")
    parser.add_argument("--scales", type=float, nargs="+", default=SCALES)
    parser.add_argument("--per-class", type=int, default=100, help="samples per digit and scale")
    parser.add_argument("--steps", type=int, default=50, help="strided ancestral sampling steps (the chapter uses 50)")
    parser.add_argument("--seed", type=int, default=0)
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
    if args.stage == "all":
        rows = sweep(args.scales, args.per_class, args.steps, args.seed, args.models_dir, args.train_steps)
        results["sweep"] = {"rows": rows, "per_class": args.per_class, "steps": args.steps, "seed": args.seed,
                            "sampler": "strided ancestral, sigma_t^2 = beta_t", **_provenance(argv)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
