"""Sampling throughput of the paper's CIFAR-10 U-Net: batched 1000-step ancestral sampling (Algorithm 2) and DDIM.

    python benchmarks/sample_throughput.py                                   # CPU, short: times a few steps
    python benchmarks/sample_throughput.py --device cuda --batch 256 --bf16 --compile --full

Images/s = batch / (time per step x number of steps of the sampler). With ``--full`` the whole 1000-step chain runs
(and is timed end to end); otherwise ``--steps`` reverse steps are timed and the 1000-step figure is extrapolated
(stated as such in the output). The paper reports 256 CIFAR-10 samples in 17 s on a TPU v3-8 (Ho et al. 2020, App. B).
Results are printed, written as JSON and appended as a line to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddpm_core import sample  # noqa: E402
from ddpm_core.diffusion import GaussianDiffusion  # noqa: E402
from ddpm_core.nn import build_model  # noqa: E402
from ddpm_core.provenance import machine_description  # noqa: E402

# One forward pass of the standard CIFAR-10 U-Net per 32x32 image, counted with torch.utils.flop_counter (see
# GFLOP_PER_IMAGE_STEP in train_throughput.py and tests/test_benchmarks.py).
GFLOP_PER_IMAGE_FORWARD = 12.1


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--preset", default="cifar10", help="U-Net preset (default: cifar10, the paper's 35.7M model)")
    p.add_argument("--batch", type=int, default=None, help="samples per batch (default 4 on CPU, 256 on CUDA)")
    p.add_argument("--steps", type=int, default=5, help="reverse steps timed when not --full (default 5)")
    p.add_argument("--full", action="store_true", help="run the whole 1000-step chain (and 50-step DDIM)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the network")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--compile-mode", default="default", choices=["default", "reduce-overhead", "max-autotune"],
                   help="torch.compile mode; reduce-overhead captures CUDA graphs")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--results-md", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    batch = args.batch or (256 if device.type == "cuda" else 4)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    net = build_model(args.preset).to(device).eval()
    size, ch = net.config.image_size, net.config.in_channels
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    fn = torch.compile(net, mode=args.compile_mode) if args.compile else net
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext())

    def model(x, t):
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            return fn(x, t)

    diffusion = GaussianDiffusion()  # T = 1000, paper schedule, sigma^2 = beta
    shape = (batch, ch, size, size)
    gen = torch.Generator(device=device).manual_seed(0)
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "device": str(device),
              "machine": machine_description(device, torch_version=True),
              "command": "python benchmarks/sample_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "batch": batch, "bf16": args.bf16, "compile": args.compile, "compile_mode": args.compile_mode}
    with torch.no_grad():
        # warm-up (compilation, autotuning) on a short chain
        sample(model, diffusion, shape, generator=gen, t_start=3)
        _sync(device)
        if args.full:
            t0 = time.perf_counter()
            x = sample(model, diffusion, shape, generator=gen, progress=True)
            _sync(device)
            secs = time.perf_counter() - t0
            assert torch.isfinite(x).all()
            report["ancestral_1000_seconds"] = secs
            t0 = time.perf_counter()
            sample(model, diffusion, shape, sampler="ddim", steps=50, generator=gen)
            _sync(device)
            report["ddim_50_seconds"] = time.perf_counter() - t0
            report["ddim_50_images_per_s"] = batch / report["ddim_50_seconds"]
            report["extrapolated"] = False
        else:
            t0 = time.perf_counter()
            sample(model, diffusion, shape, generator=gen, t_start=args.steps)
            _sync(device)
            secs = (time.perf_counter() - t0) / args.steps * 1000
            report["ancestral_1000_seconds"] = secs
            report["extrapolated"] = True
    report["ancestral_1000_images_per_s"] = batch / report["ancestral_1000_seconds"]
    report["network_tflops"] = batch * 1000 * GFLOP_PER_IMAGE_FORWARD / report["ancestral_1000_seconds"] / 1e3
    for k, v in report.items():
        print(f"{k:>28}: {v:.4g}" if isinstance(v, float) else f"{k:>28}: {v}")
    if not args.no_record:
        out = args.out or ROOT / "benchmarks" / "results" / f"sample_throughput_{device.type}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        line = (f"| {report['date'][:10]} | sampling | {report['machine']} | `{report['command']}` | "
                f"1000-step ancestral: {report['ancestral_1000_images_per_s']:.3g} images/s "
                f"({report['ancestral_1000_seconds']:.3g} s for {batch}{', extrapolated' if report['extrapolated'] else ''})"
                + (f"; DDIM-50: {report['ddim_50_images_per_s']:.3g} images/s" if 'ddim_50_images_per_s' in report else "")
                + " |\n")
        with open(args.results_md, "a") as f:
            f.write(line)
    return report


if __name__ == "__main__":
    main()
