"""Training throughput of the paper's CIFAR-10 U-Net: ddpm_core's ``cifar10`` preset against diffusers'
``UNet2DModel`` in the google/ddpm-cifar10-32 configuration, side by side in one run.

Both networks start from random weights, get the same batch size, device, precision and compilation, and train with
the same step: L_simple (Eq. 14, via ddpm_core.loss) on random images, backward, Adam. Steps of the
two networks alternate, so both see the same machine load; throughput is batch / median step time.

    python benchmarks/train_throughput.py                      # CPU, short (batch 8)
    python benchmarks/train_throughput.py --device cuda --bf16 --compile --channels-last

Results are printed, written as JSON (--out) and appended as one line to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddpm_core import loss  # noqa: E402
from ddpm_core.convert import RELEASED_MODELS  # noqa: E402
from ddpm_core.diffusion import GaussianDiffusion  # noqa: E402
from ddpm_core.nn import build_model, count_parameters  # noqa: E402
from ddpm_core.provenance import machine_description  # noqa: E402

# FLOPs of one training step per 32x32 image of the standard CIFAR-10 U-Net (diffusers' UNet2DModel in the
# google/ddpm-cifar10-32 configuration, nearest-neighbour upsampling + 3x3 convolution), counted with
# torch.utils.flop_counter.FlopCounterMode (2 FLOPs per multiply-add): forward 12.11 GFLOP, forward + backward
# 36.32 GFLOP. Both networks are credited with it, so TFLOP/s compares like with like (ours needs 34.75, see
# README.md). tests/test_benchmarks.py recounts it.
GFLOP_PER_IMAGE_STEP = 36.3
H200_BF16_DENSE_TFLOPS = 989.0   # NVIDIA H200 SXM, dense bf16 tensor-core peak (no sparsity)


def make_adam(params, lr: float) -> torch.optim.Optimizer:
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):                  # fused Adam unavailable for this device/build
        return torch.optim.Adam(params, lr=lr)


class Runner:
    """One network with its optimizer and settings; ``step()`` runs one timed training step."""

    def __init__(self, name: str, net: torch.nn.Module, call, device, bf16: bool, compile_: str | None,
                 channels_last: bool, batch: int, diffusion: GaussianDiffusion, seed: int):
        self.name, self.device, self.bf16, self.diffusion = name, device, bf16, diffusion
        self.params = count_parameters(net)
        net = net.to(device).train()
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(memory_format=self.format)
        self.opt = make_adam(net.parameters(), lr=2e-4)
        self.model = torch.compile(net, mode=compile_) if compile_ else net
        self.call = call
        gen = torch.Generator(device=device).manual_seed(seed)
        self.x0 = (torch.rand(batch, 3, 32, 32, generator=gen, device=device) * 2 - 1).contiguous(
            memory_format=self.format)
        self.gen = gen
        self.times: list[float] = []
        self.cpu_times: list[float] = []
        self.losses: list[float] = []

    def step(self, record: bool) -> None:
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            value = loss(self.diffusion, lambda x, t: self.call(self.model, x, t), self.x0, generator=self.gen)
        value.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        sync()
        if record:
            self.times.append(time.perf_counter() - t0)
            self.cpu_times.append(time.process_time() - c0)
            self.losses.append(value.item())


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch", type=int, default=None, help="images per step (default: 8 on CPU, 128 on CUDA)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per network (default: 5 CPU, 50 CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 1 CPU, 10 CUDA)")
    p.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    p.add_argument("--compile", action="store_true", help="torch.compile both networks")
    p.add_argument("--compile-mode", default="default", choices=["default", "reduce-overhead", "max-autotune"],
                   help="torch.compile mode (with --compile)")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    p.add_argument("--baseline", default="same", choices=["same", "plain"],
                   help="diffusers with the same options (default) or plain: float32, eager, contiguous")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default: benchmarks/results/train_throughput_<device>.json)")
    p.add_argument("--results-md", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    p.add_argument("--no-record", action="store_true", help="print only; write neither JSON nor RESULTS.md")
    args = p.parse_args(argv)

    try:
        import diffusers
    except ImportError:
        sys.exit("this benchmark compares against diffusers: pip install diffusers")

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    batch = args.batch or (128 if on_cuda else 8)
    steps = args.steps or (50 if on_cuda else 5)
    warmup = args.warmup if args.warmup is not None else (10 if on_cuda else 1)
    if on_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    description = machine_description(device)         # before the run adds its own load
    diffusion = GaussianDiffusion()                    # the paper's linear schedule, T = 1000, eps-prediction
    torch.manual_seed(args.seed)
    ours = build_model("cifar10")
    config = dict(RELEASED_MODELS["google/ddpm-cifar10-32"].diffusers_config, dropout=0.1)  # paper: dropout 0.1
    theirs = diffusers.UNet2DModel(**config)
    plain = args.baseline == "plain"
    compile_mode = args.compile_mode if args.compile else None
    runners = [
        Runner("ddpm_core", ours, lambda m, x, t: m(x, t), device, args.bf16, compile_mode,
               args.channels_last, batch, diffusion, args.seed),
        Runner("diffusers", theirs, lambda m, x, t: m(x, t - 1).sample, device, args.bf16 and not plain,
               None if plain else compile_mode, args.channels_last and not plain, batch, diffusion, args.seed),
    ]

    for i in range(warmup + steps):
        for r in (runners if i % 2 == 0 else runners[::-1]):      # alternate who goes first
            r.step(record=i >= warmup)

    results = {}
    for r in runners:
        median = statistics.median(r.times)
        ips = batch / median
        entry = dict(params=r.params, median_step_s=median, step_s=r.times, images_per_s=ips,
                     tflops=ips * GFLOP_PER_IMAGE_STEP / 1e3, final_loss=r.losses[-1])
        if on_cuda:
            entry["pct_h200_bf16_peak"] = 100 * entry["tflops"] / H200_BF16_DENSE_TFLOPS
        else:
            entry["median_cpu_s"] = statistics.median(r.cpu_times)
        if not all(map(lambda v: v == v and abs(v) < 1e3, r.losses)):
            raise RuntimeError(f"{r.name}: non-finite or exploding loss {r.losses}")
        results[r.name] = entry
    ratio = results["ddpm_core"]["images_per_s"] / results["diffusers"]["images_per_s"]
    command = "python benchmarks/train_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:])
    options = dict(device=str(device), batch=batch, steps=steps, warmup=warmup, bf16=args.bf16,
                   compile=compile_mode, channels_last=args.channels_last, baseline=args.baseline)
    report = dict(date=datetime.datetime.now().isoformat(timespec="seconds"), command=command.strip(),
                  machine=description, torch=torch.__version__, diffusers=diffusers.__version__,
                  options=options, results=results, ratio=ratio)

    for name, e in results.items():
        extra = f", {e['pct_h200_bf16_peak']:.1f}% of H200 bf16 peak" if on_cuda else \
            f", {e['median_cpu_s']:.2f} s CPU time/step"
        print(f"{name:10s} {e['params']:,} params: {e['images_per_s']:8.1f} images/s "
              f"(median step {e['median_step_s'] * 1e3:.1f} ms, {e['tflops']:.2f} TFLOP/s{extra})")
    print(f"ratio ddpm_core / diffusers: {ratio:.3f}")

    if not args.no_record:
        out = args.out or ROOT / "benchmarks" / "results" / f"train_throughput_{device.type}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        flags = ", ".join(k for k in ("bf16", "compile", "channels_last") if options[k]) or "fp32 eager"
        if compile_mode not in (None, "default"):
            flags += f" ({compile_mode})"
        ours_e, theirs_e = results["ddpm_core"], results["diffusers"]
        peak = f" ({ours_e['pct_h200_bf16_peak']:.1f}% of H200 bf16 peak)" if on_cuda else ""
        line = (f"| {report['date'][:10]} | {report['machine']}; torch {torch.__version__}, diffusers "
                f"{diffusers.__version__} | `{report['command']}` | batch {batch}, {flags}, baseline "
                f"{args.baseline} | {ours_e['images_per_s']:.3g} | {theirs_e['images_per_s']:.3g} | "
                f"**{ratio:.2f}** | {ours_e['tflops']:.3g}{peak} |\n")
        md = args.results_md
        if not md.exists():
            md.write_text("# Benchmark results\n\nTraining throughput of the CIFAR-10 U-Net "
                          "(`benchmarks/train_throughput.py`; see benchmarks/README.md).\n\n"
                          "| date | machine | command | settings | ddpm_core images/s | diffusers images/s | "
                          "ratio | ddpm_core TFLOP/s |\n|---|---|---|---|---|---|---|---|\n")
        with md.open("a") as f:
            f.write(line)
        print(f"wrote {out} and appended to {md}")
    return report


if __name__ == "__main__":
    main()
