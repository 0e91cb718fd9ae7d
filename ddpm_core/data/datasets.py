"""``make_dataset``: one entry point from a data set's name to a torch Dataset of (x, y) pairs in [-1, 1]."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from .digits import load_digits
from .images import ArrayImageDataset, ImageFolderDataset, RandomHorizontalFlip, to_levels
from .loader import mix_seed
from .paths import data_home
from .readers import read_cifar10, read_mnist
from .toys import MIXTURE_TOYS, TOY_NAMES, sample_mixture_toy, sample_toy

__all__ = ["IMAGE_DATASETS", "DATASET_NAMES", "make_dataset"]

IMAGE_DATASETS = ("cifar10", "mnist", "digits", "folder")
DATASET_NAMES: tuple[str, ...] = IMAGE_DATASETS + TOY_NAMES
_SPLITS = ("train", "test", "all")


def make_dataset(name: str, root: str | os.PathLike | None = None, split: str = "train",
                 image_size: int | None = None, flip: bool = False, download: bool = False,
                 seed: int = 0, toy_size: int = 65536) -> Dataset:
    """Build the data set ``name`` (one of ``DATASET_NAMES``); items are (x, y) with x float32 in [-1, 1].

    Args:
        name: "cifar10" (3x32x32), "mnist" (1x28x28), "digits" (1x8x8, offline), "folder" (RGB files under
            ``root``, or under ``root/split`` when that folder exists), or a 2-D toy (``TOY_NAMES``).
        root: where the files are; default ``data_home() / name`` (``$DDPM_CORE_DATA``). Unused for digits/toys.
        split: "train", "test" or "all".
        image_size: resize images to image_size x image_size (required for "folder"; default: native size).
        flip: random horizontal flip with p = 1/2 (the paper's CIFAR-10 augmentation), deterministic per
            (seed, epoch, item) through ``infinite_loader``.
        download: fetch missing CIFAR-10 / MNIST files (needs internet; md5-checked). Otherwise missing files
            raise ``FileNotFoundError`` saying what to put where.
        seed: seed of the flips and of the toy points (the test split of a toy uses other points).
        toy_size: number of points drawn for a toy data set (labels are -1, except for the Gaussian mixtures,
            whose points are labelled by their component).
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; allowed names: {', '.join(DATASET_NAMES)}")
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or image_size < 1):
        raise ValueError(f"image_size must be None or an int >= 1, got {image_size!r}")
    if name in TOY_NAMES:
        if flip:
            raise ValueError(f"flip=True applies to images only, not to the 2-D toy {name!r}")
        g = torch.Generator().manual_seed(mix_seed(seed, _SPLITS.index(split), 0x70F))
        if name in MIXTURE_TOYS:   # labelled by mixture component (the class, for conditional models)
            x, k = sample_mixture_toy(name, toy_size, generator=g)
            return TensorDataset(x.to(torch.float32), k)
        x = sample_toy(name, toy_size, generator=g)
        return TensorDataset(x, torch.full((toy_size,), -1, dtype=torch.int64))

    base = Path(root).expanduser() if root is not None else data_home() / name
    ds: Dataset
    if name == "digits":
        images, labels = load_digits(split).tensors
        levels = to_levels(images)  # exact: digits are stored on 8-bit levels
        ds = ArrayImageDataset(levels, labels, image_size)
    elif name == "cifar10":
        ds = ArrayImageDataset(*read_cifar10(base, split, download=download), image_size=image_size)
    elif name == "mnist":
        ds = ArrayImageDataset(*read_mnist(base, split, download=download), image_size=image_size)
    else:  # folder
        if root is None:
            raise ValueError("make_dataset('folder') needs root=<folder of images>")
        if image_size is None:
            raise ValueError("make_dataset('folder') needs image_size (images are centre-cropped and resized)")
        ds = ImageFolderDataset(base / split if (base / split).is_dir() else base, image_size)
    return RandomHorizontalFlip(ds, p=0.5, seed=seed) if flip else ds
