"""Image data sets in [-1, 1]: in-memory 8-bit arrays, folders of image files, and a random horizontal flip.

Every item is a pair ``(x, y)``: x a float32 tensor (C, H, W) with ``x = q / 127.5 - 1`` for 8-bit levels q, and
y an int64 label (-1 where the data set has no labels). Each data set also has ``get_batch(indices, epochs)``,
the vectorised path used by :func:`ddpm_core.data.infinite_loader`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .loader import fetch_batch, mix_seed

__all__ = ["IMAGE_EXTENSIONS", "to_unit_range", "to_levels", "ArrayImageDataset", "ImageFolderDataset",
           "RandomHorizontalFlip"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def to_unit_range(levels: torch.Tensor) -> torch.Tensor:
    """8-bit levels 0..255 (uint8, any shape) -> float32 in [-1, 1]: ``q / 127.5 - 1``."""
    return levels.to(torch.float32) / 127.5 - 1


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_unit_range`: data in [-1, 1] -> the nearest 8-bit level, ``round((x + 1) * 127.5)``
    as uint8, clipped to 0..255 (any shape). Exact on the grid: ``to_levels(to_unit_range(q)) == q``."""
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"x must be a floating-point tensor in [-1, 1], got {getattr(x, 'dtype', type(x).__name__)}")
    return torch.round((x + 1) * 127.5).clamp(0, 255).to(torch.uint8)


def _resize_levels(images: torch.Tensor, size: int, chunk: int = 1024) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) to (N, C, size, size) with antialiased bilinear filtering, rounded back to uint8."""
    out = []
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].to(torch.float32)
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out) if out else images.new_zeros((0, images.shape[1], size, size))


class ArrayImageDataset(Dataset):
    """Images held in memory as 8-bit levels (CIFAR-10, MNIST, ...).

    images: uint8 (N, C, H, W) numpy array or tensor; labels: int (N,) or None (then every label is -1).
    image_size: if given and different from H = W, the images are resized once, at construction (bilinear with
    antialiasing), and kept as 8-bit levels so the discretized decoder still applies.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor | None = None,
                 image_size: int | None = None) -> None:
        images = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 of shape (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels is None:
            labels = torch.full((len(images),), -1, dtype=torch.int64)
        labels = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels).to(torch.int64)
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
        if image_size is not None and image_size != images.shape[-1]:
            if image_size < 1:
                raise ValueError(f"image_size must be >= 1, got {image_size}")
            images = _resize_levels(images, image_size)
        self.images, self.labels = images.contiguous(), labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return to_unit_range(self.images[i]), self.labels[i]

    def get_batch(self, indices: torch.Tensor, epochs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x float32 (B, C, H, W) in [-1, 1] and y int64 (B,) for the int64 ``indices`` (B,)."""
        return to_unit_range(self.images[indices]), self.labels[indices]


def _load_image(path: Path, size: int) -> torch.Tensor:
    """Open an image as RGB, centre-crop it to a square and resize it to size x size (bicubic). uint8 (3, s, s)."""
    from PIL import Image  # lazy: Pillow is only needed for image folders

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
        if side != size:
            img = img.resize((size, size), Image.Resampling.BICUBIC)
        arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


class ImageFolderDataset(Dataset):
    """All image files under ``root`` (recursively, sorted by path), RGB, centre-cropped and resized.

    This is the layout of CelebA-HQ or LSUN exported to files: no labels (y = -1). Images are decoded on access;
    use ``num_workers`` in the loader for large folders.
    """

    def __init__(self, root: str | os.PathLike, image_size: int,
                 extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size must be an int >= 1, got {image_size!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} does not exist")
        exts = tuple(e.lower() for e in extensions)
        self.files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in exts)
        if not self.files:
            raise FileNotFoundError(f"no image files ({', '.join(exts)}) found under {self.root}")
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return to_unit_range(_load_image(self.files[i], self.image_size)), torch.tensor(-1)

    def get_batch(self, indices: torch.Tensor, epochs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([_load_image(self.files[int(i)], self.image_size) for i in indices])
        return to_unit_range(x), torch.full((len(indices),), -1, dtype=torch.int64)


class RandomHorizontalFlip(Dataset):
    """Mirror each image left-right with probability ``p`` (the paper's CIFAR-10 augmentation).

    Through :func:`infinite_loader` the decision for item i in epoch e is a fixed function of (seed, e, i), so
    training with flips is still exactly resumable. Plain indexing ``ds[i]`` draws from torch's global RNG.
    Items must be (x, y) with x an image (C, H, W); the flip reverses the last (width) axis.
    """

    def __init__(self, dataset: Dataset, p: float = 0.5, seed: int = 0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        self.dataset, self.p, self.seed = dataset, p, seed
        self._bits: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def flips(self, epoch: int) -> torch.Tensor:
        """bool (N,): which items are mirrored in ``epoch`` (cached for the two most recent epochs)."""
        if epoch not in self._bits:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 0xF11F))
            if len(self._bits) >= 2:
                self._bits.pop(min(self._bits))
            self._bits[epoch] = torch.rand(len(self), generator=g) < self.p
        return self._bits[epoch]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.dataset[i]
        return (x.flip(-1) if bool(torch.rand(()) < self.p) else x), y

    def get_batch(self, indices: torch.Tensor, epochs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` (B,) flipped as decided for their ``epochs`` (B,)."""
        if epochs.shape != indices.shape:
            raise ValueError(f"epochs must have the shape of indices {tuple(indices.shape)}, got {tuple(epochs.shape)}")
        x, y = fetch_batch(self.dataset, indices, epochs)
        if x.ndim != 4:
            raise ValueError(f"RandomHorizontalFlip needs image batches (B, C, H, W), got shape {tuple(x.shape)}")
        flip = torch.zeros(len(indices), dtype=torch.bool)
        for e in epochs.unique().tolist():
            sel = epochs == e
            flip[sel] = self.flips(int(e))[indices[sel]]
        return torch.where(flip[:, None, None, None], x.flip(-1), x), y
