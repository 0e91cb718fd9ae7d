"""Train the models of the ground-truth Gaussian mixtures that Part III of the book loads, and ship them.

    python experiments/mixture_models.py                  # both presets (mixture2d, mixture1d)
    python experiments/mixture_models.py --only mixture2d

Each preset of ``ddpm_core.train`` (the residual MLP on ``ddpm_core.mixtures.named_mixture``'s data, whose exact
density and score are known) is trained on the CPU (about a minute each on 2 cores) and its slim checkpoint is
written to ``book/models/<name>-<hash>.pt``, where ``ddpm_core.train.load_pretrained(get_preset(name),
models_dir="models")`` finds it. The training record (command, machine, seconds, final loss) goes to
``experiments/results/mixture_models.json`` (its seconds cover only what that command trained: a resumed run counts the rest).
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddpm_core.provenance import machine_description  # noqa: E402
from ddpm_core.train import get_preset, read_checkpoint, train_or_load  # noqa: E402
from ddpm_core.train.cache import run_dir_for  # noqa: E402
from ddpm_core.train.pretrained import export_pretrained, pretrained_name  # noqa: E402

PRESETS = ("mixture2d", "mixture1d")
RESULTS = ROOT / "experiments" / "results" / "mixture_models.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=PRESETS, action="append", help="train only this preset (repeatable)")
    parser.add_argument("--cache-dir", default=None, help="training runs (default: ddpm_core's cache)")
    parser.add_argument("--models-dir", default=str(ROOT / "book" / "models"))
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.only or PRESETS:
        config = get_preset(name, progress=False, device="cpu")
        t0 = time.time()
        train_or_load(config, cache_dir=args.cache_dir)
        seconds = time.time() - t0
        run = run_dir_for(config, args.cache_dir)
        target = export_pretrained(run / "latest.pt", args.models_dir)
        ckpt = read_checkpoint(target)
        results[name] = {"file": str(target.relative_to(ROOT)) if target.is_relative_to(ROOT) else str(target),
                         "steps": int(ckpt["step"]), "seconds_this_command": round(seconds, 1),
                         "command": "python experiments/mixture_models.py" + (f" --only {name}" if args.only else ""),
                         "machine": machine_description(),
                         "date": datetime.date.today().isoformat(), "config": json.loads(ckpt["config"])
                         if isinstance(ckpt["config"], str) else ckpt["config"]}
        print(f"{name}: {pretrained_name(config)} ({seconds:.0f} s)", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
