"""Checkers for chapter 14, reproducing the paper: the size of a residual block and the wall-clock time of a run."""
from __future__ import annotations

import torch

from ..nn.layers import ResBlock
from ._checker import Case, Mistake, check_function

__all__ = ["check_resblock_params", "check_training_hours"]


def _resblock_reference(c_in, c_out, temb_dim):
    with torch.device("meta"):
        block = ResBlock(c_in, c_out, temb_dim)
    return sum(p.numel() for p in block.parameters())


def _formula(c_in, c_out, temb_dim, skip=True, bias=True, norm=True, k2=9):
    n = k2 * c_in * c_out + k2 * c_out * c_out + temb_dim * c_out                  # two 3x3 convs, time projection
    n += 3 * c_out if bias else 0                                                   # their biases
    n += 2 * (c_in + c_out) if norm else 0                                          # GroupNorm scale and shift
    if skip and c_in != c_out:
        n += c_in * c_out + (c_out if bias else 0)                                  # 1x1 shortcut
    return n


def _resblock_cases() -> list[Case]:
    return [Case("the CIFAR-10 model's first level: c_in = c_out = 128, temb_dim = 512",
                 {"c_in": 128, "c_out": 128, "temb_dim": 512}),
            Case("a block that widens: c_in = 128, c_out = 256, temb_dim = 512",
                 {"c_in": 128, "c_out": 256, "temb_dim": 512}),
            Case("a block that narrows: c_in = 384, c_out = 256, temb_dim = 512",
                 {"c_in": 384, "c_out": 256, "temb_dim": 512}),
            Case("a small block: c_in = c_out = 32, temb_dim = 128", {"c_in": 32, "c_out": 32, "temb_dim": 128})]


def check_resblock_params(student) -> bool:
    """Exercise: ``resblock_params(c_in, c_out, temb_dim)`` returns the parameter count of the U-Net's residual block
    (``ddpm_core.nn.layers.ResBlock``: GroupNorm, 3x3 conv, time projection, GroupNorm, 3x3 conv, and a 1x1 shortcut
    convolution when c_in != c_out; every convolution and linear layer has a bias)."""
    mistakes = [
        Mistake(lambda c_in, c_out, temb_dim: _formula(c_in, c_out, temb_dim, skip=False),
                "when c_in != c_out the shortcut is a 1x1 convolution (c_in * c_out weights and c_out biases)."),
        Mistake(lambda c_in, c_out, temb_dim: _formula(c_in, c_out, temb_dim, bias=False),
                "every convolution and the time projection have a bias (c_out each)."),
        Mistake(lambda c_in, c_out, temb_dim: _formula(c_in, c_out, temb_dim, norm=False),
                "each GroupNorm has a learned scale and shift per channel: 2 * channels parameters."),
        Mistake(lambda c_in, c_out, temb_dim: _formula(c_in, c_out, temb_dim, k2=3),
                "a 3x3 convolution has 3 * 3 = 9 weights per input-output channel pair, not 3."),
    ]
    return check_function("check_resblock_params", student, _resblock_reference, _resblock_cases(),
                          mistakes=mistakes, rtol=0.0, atol=0.0,
                          hint="count conv1 (9 c_in c_out + c_out), the time projection (temb_dim c_out + c_out), "
                               "conv2 (9 c_out^2 + c_out), two GroupNorms (2 c_in + 2 c_out) and the shortcut.")


def _hours(steps, images_per_second, batch_size):
    return steps * batch_size / images_per_second / 3600.0


def _hours_cases() -> list[Case]:
    return [Case("the paper's run: 800k steps of batch 128 at 2688 images/s (21 steps/s)",
                 {"steps": 800_000, "images_per_second": 2688.0, "batch_size": 128}),
            Case("800k steps of batch 128 at 1500 images/s", {"steps": 800_000, "images_per_second": 1500.0,
                                                               "batch_size": 128}),
            Case("1500 steps of batch 128 at 90 images/s", {"steps": 1500, "images_per_second": 90.0,
                                                             "batch_size": 128})]


def check_training_hours(student) -> bool:
    """Exercise: ``training_hours(steps, images_per_second, batch_size)`` returns the wall-clock hours of a training
    run of ``steps`` optimizer steps on batches of ``batch_size`` images at a throughput of ``images_per_second``."""
    mistakes = [
        Mistake(lambda steps, images_per_second, batch_size: steps / images_per_second / 3600.0,
                "a throughput in images/s is not steps/s: one step processes batch_size images, so steps/s = "
                "images_per_second / batch_size."),
        Mistake(lambda steps, images_per_second, batch_size: steps * batch_size / images_per_second / 60.0,
                "that is minutes: an hour has 3600 seconds."),
        Mistake(lambda steps, images_per_second, batch_size: steps / (images_per_second * batch_size) / 3600.0,
                "divide the throughput by the batch size, do not multiply: steps/s = images_per_second / "
                "batch_size."),
    ]
    return check_function("check_training_hours", student, _hours, _hours_cases(), mistakes=mistakes, rtol=1e-9,
                          atol=0.0, hint="hours = steps * batch_size / images_per_second / 3600.")
