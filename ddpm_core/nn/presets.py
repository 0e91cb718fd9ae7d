"""Named network configurations (``NETWORKS``) and the factory :func:`build_model`.

(The training recipes are ``ddpm_core.train.PRESETS``; each names one of these networks in its ``model`` field.)

``cifar10`` and ``celebahq256``/``lsun256`` are the paper's networks (App. B: 35.7M and 114M parameters); the
others are small versions of the same design for data that trains on a laptop CPU.
"""
from __future__ import annotations

import dataclasses

from torch import nn

from .mlp import MLPConfig, MLPDenoiser
from .unet import UNet, UNetConfig

__all__ = ["NETWORKS", "build_model", "count_parameters"]

_PAPER_256 = UNetConfig(image_size=256, ch=128, ch_mult=(1, 1, 2, 2, 4, 4), num_res_blocks=2,
                        attn_resolutions=(16,), dropout=0.0)

NETWORKS: dict[str, UNetConfig | MLPConfig] = {
    # The paper's CIFAR-10 model (official run_cifar.py, "unet2d16b2"): 35,746,307 parameters.
    "cifar10": UNetConfig(image_size=32, in_channels=3, out_channels=3, ch=128, ch_mult=(1, 2, 2, 2),
                          num_res_blocks=2, attn_resolutions=(16,), dropout=0.1),
    # The 256x256 models (official run_celebahq.py / run_lsun.py, "unet2d16b2c112244"): 113,673,219 parameters.
    "celebahq256": _PAPER_256,
    "lsun256": _PAPER_256,
    # Small greyscale models: scikit-learn digits (8x8), MNIST (28x28), any 32x32 greyscale set.
    # digits is sized to train in minutes on two CPU cores (about 0.1 s per step of 64 images).
    "digits": UNetConfig(image_size=8, in_channels=1, out_channels=1, ch=32, ch_mult=(1, 2), num_res_blocks=1,
                         attn_resolutions=(4,), dropout=0.1, num_groups=8),
    "mnist28": UNetConfig(image_size=28, in_channels=1, out_channels=1, ch=64, ch_mult=(1, 2, 2),
                          num_res_blocks=2, attn_resolutions=(14,), dropout=0.1),
    "gray32": UNetConfig(image_size=32, in_channels=1, out_channels=1, ch=64, ch_mult=(1, 2, 2, 2),
                         num_res_blocks=2, attn_resolutions=(16,), dropout=0.1),
    # 2-D toy distributions.
    "toy2d": MLPConfig(dim=2, width=128, depth=3),
}


def build_model(name: str, **overrides) -> UNet | MLPDenoiser:
    """The network ``name`` (a key of ``NETWORKS``; "cifar10" is the paper's 35.7M-parameter U-Net, App. B), with
    fields of its config replaced by ``overrides``. Called as ``model(x_t, t)`` with t of shape (B,) in 1..T.

    >>> build_model("cifar10", dropout=0.0)          # a UNet
    >>> build_model("toy2d", width=64)               # an MLPDenoiser
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; allowed: {sorted(NETWORKS)}")
    base = NETWORKS[name]
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown override(s) {unknown} for network {name!r}; allowed: {sorted(fields)}")
    config = dataclasses.replace(base, **overrides)
    return UNet(config) if isinstance(config, UNetConfig) else MLPDenoiser(config)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
