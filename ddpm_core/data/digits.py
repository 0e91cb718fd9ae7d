"""scikit-learn's handwritten digits: 1797 real 8 x 8 grey images that ship with scikit-learn (no download).

The original pixel values are integers 0..16 (counts of 'on' pixels in 4 x 4 blocks of a 32 x 32 bitmap). We map
them to 8-bit intensities ``q = round(v * 255 / 16)`` (so 0 -> 0, 1 -> 16, 8 -> 128, 16 -> 255; the only tie,
v = 8 -> 127.5, rounds half to even, to 128) and then to [-1, 1] with
``x = q / 127.5 - 1``, the same scaling the paper uses for 8-bit images, so the discretized decoder (Eq. 13)
and bits/dim apply unchanged.

The train/test split is a fixed random permutation (seed 0) of the 1797 images: the first 360 (about 20%) form
the test split and the remaining 1437 the training split.
"""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from .images import to_unit_range

__all__ = ["DIGITS_SPLIT_SEED", "DIGITS_TEST_SIZE", "quantize_digits", "load_digits"]

DIGITS_SPLIT_SEED = 0
DIGITS_TEST_SIZE = 360
_SPLITS = ("train", "test", "all")


def quantize_digits(values: torch.Tensor) -> torch.Tensor:
    """Map scikit-learn digit values 0..16 to 8-bit levels: ``round(v * 255 / 16)`` as uint8 (any shape)."""
    if values.min() < 0 or values.max() > 16:
        raise ValueError("values must lie in [0, 16] (scikit-learn digits); "
                         f"got range [{float(values.min())}, {float(values.max())}]")
    return torch.round(values.to(torch.float64) * 255 / 16).to(torch.uint8)


def _split_indices(n: int, split: str) -> torch.Tensor:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    if split == "test":
        return perm[:DIGITS_TEST_SIZE].sort().values
    if split == "train":
        return perm[DIGITS_TEST_SIZE:].sort().values
    return torch.arange(n)


def load_digits(split: str = "train") -> TensorDataset:
    """The digits as a ``TensorDataset`` of (images, labels).

    images: float32 (N, 1, 8, 8) in [-1, 1] (8-bit levels, see the module docstring); labels: int64 (N,) in 0..9.
    N = 1437 for ``split="train"``, 360 for ``"test"`` and 1797 for ``"all"`` (original order).
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    from sklearn.datasets import load_digits as _sk_load_digits  # lazy: scikit-learn is heavy

    bunch = _sk_load_digits()
    values = torch.as_tensor(bunch.images, dtype=torch.float64)  # (1797, 8, 8) in 0..16
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    levels = quantize_digits(values)
    images = to_unit_range(levels).unsqueeze(1)
    idx = _split_indices(len(labels), split)
    return TensorDataset(images[idx], labels[idx])
