"""Checkers for chapter 14, reproducing the paper: the size of an attention block and the wall-clock time of a run."""
from __future__ import annotations

import torch

from ..nn.layers import AttnBlock
from ._checker import Case, Mistake, check_function

__all__ = ["check_attention_params", "check_training_hours"]


def _attention_reference(channels):
    with torch.device("meta"):
        block = AttnBlock(channels)
    return sum(p.numel() for p in block.parameters())


def _attention_formula(channels, qkv=3, proj=True, bias=True, norm=True):
    c = channels
    n = qkv * c * c + (qkv * c if bias else 0)                    # 1x1 projections to q, k, v
    n += (c * c + (c if bias else 0)) if proj else 0              # 1x1 output projection
    n += 2 * c if norm else 0                                     # GroupNorm scale and shift
    return n


def _attention_cases() -> list[Case]:
    return [Case("the CIFAR-10 model's 16x16 level: channels = 256", {"channels": 256}),
            Case("the 256x256 models' 16x16 level: channels = 512", {"channels": 512}),
            Case("a small block: channels = 64", {"channels": 64}),
            Case("the smallest GroupNorm-compatible width: channels = 32", {"channels": 32})]


def check_attention_params(student) -> bool:
    """Exercise: ``attention_params(channels)`` returns the parameter count of the U-Net's self-attention block
    (``ddpm_core.nn.layers.AttnBlock``, App. B: "self-attention at 16x16"): a GroupNorm, 1x1 convolutions to q, k
    and v, and a 1x1 output projection, each convolution with a bias. The checker counts the package's real block
    (on the meta device)."""
    mistakes = [
        Mistake(lambda channels: _attention_formula(channels, proj=False),
                "the attention output goes through one more 1x1 convolution (proj_out: c^2 weights and c biases) "
                "before it is added to x."),
        Mistake(lambda channels: _attention_formula(channels, bias=False),
                "every 1x1 convolution has a bias: 3c for q, k, v and c for the output projection."),
        Mistake(lambda channels: _attention_formula(channels, norm=False),
                "the block normalises its input first: GroupNorm has a scale and a shift per channel (2c)."),
        Mistake(lambda channels: _attention_formula(channels, qkv=1),
                "q, k and v are three separate projections of the normalised input (3c^2 weights), not one."),
    ]
    return check_function("check_attention_params", student, _attention_reference, _attention_cases(),
                          mistakes=mistakes, rtol=0.0, atol=0.0,
                          hint="count the GroupNorm (2c), the q, k, v projections (3c^2 + 3c) and the output "
                               "projection (c^2 + c).")


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
