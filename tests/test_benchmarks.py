"""The figures the benchmarks rest on, recounted: FLOPs per image of the CIFAR-10 U-Net (benchmarks/README.md)."""
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import load_module

REPO = Path(__file__).resolve().parents[1]


def _gflop(net, step: bool) -> float:
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([500])
    with FlopCounterMode(display=False) as counter:
        out = net(x, t)
        out = out.sample if hasattr(out, "sample") else out
        if step:
            out.square().mean().backward()
    return counter.get_total_flops() / 1e9


@pytest.mark.slow
def test_flops_per_image_of_the_cifar10_unet():
    diffusers = pytest.importorskip("diffusers")
    from ddpm_core.convert import RELEASED_MODELS
    from ddpm_core.nn import build_model

    bench = load_module("train_throughput", REPO / "benchmarks" / "train_throughput.py")
    sampling = load_module("sample_throughput", REPO / "benchmarks" / "sample_throughput.py")
    standard = diffusers.UNet2DModel(**RELEASED_MODELS["google/ddpm-cifar10-32"].diffusers_config).train()
    assert _gflop(standard, step=False) == pytest.approx(sampling.GFLOP_PER_IMAGE_FORWARD, abs=0.05)
    assert _gflop(standard, step=True) == pytest.approx(bench.GFLOP_PER_IMAGE_STEP, abs=0.05)
    ours = _gflop(build_model("cifar10").train(), step=True)
    assert ours == pytest.approx(34.75, abs=0.05) and ours < bench.GFLOP_PER_IMAGE_STEP
