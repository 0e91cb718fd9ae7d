"""Pictures of samples: image grids and scatter plots of 2-D points, written as PNG files with Pillow.

Images are tensors in the package's data range [-1, 1], shape (B, C, H, W) with C = 1 (grey) or 3 (RGB).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional

import torch

from .atomic import atomic_write
from .data.images import to_levels

__all__ = ["make_grid", "save_image_grid", "save_scatter"]


def make_grid(images: torch.Tensor, nrow: Optional[int] = None, padding: int = 1, pad_value: float = 1.0,
              scale: int = 1) -> torch.Tensor:
    """Tile a batch of images into one uint8 picture (H_grid, W_grid, C).

    images: (B, C, H, W) in [-1, 1] (values outside are clipped), C in {1, 3}.
    nrow: images per row (default: ceil(sqrt(B)), a square grid). padding: pixels between images, filled with
    ``pad_value`` (in [-1, 1]; 1 is white). scale: integer nearest-neighbour upscaling of each image (tiny images
    such as the 8x8 digits are easier to see at 4x or 8x).
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be a tensor of shape (B, C, H, W) with C in (1, 3), "
                         f"got {getattr(images, 'shape', type(images).__name__)}")
    if images.shape[0] < 1:
        raise ValueError("images must hold at least one image")
    if nrow is not None and (not isinstance(nrow, int) or nrow < 1):
        raise ValueError(f"nrow must be a positive int or None, got {nrow!r}")
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    x = images.detach().float().cpu().clamp(-1, 1)
    if scale > 1:
        x = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    B, C, H, W = x.shape
    ncol = nrow or math.ceil(math.sqrt(B))
    nrows = math.ceil(B / ncol)
    grid = torch.full((C, padding + nrows * (H + padding), padding + ncol * (W + padding)), float(pad_value))
    for i in range(B):
        r, c = divmod(i, ncol)
        top, left = padding + r * (H + padding), padding + c * (W + padding)
        grid[:, top:top + H, left:left + W] = x[i]
    levels = to_levels(grid)
    return levels.permute(1, 2, 0).contiguous()


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, nrow: Optional[int] = None,
                    padding: int = 1, scale: Optional[int] = None) -> Path:
    """Write ``images`` (B, C, H, W) in [-1, 1] as one PNG grid (see :func:`make_grid`); returns the path.

    scale: default chosen so that each image is at least 32 pixels wide (8x8 digits are shown at 4x).
    """
    from PIL import Image  # lazy: only needed to write files

    if scale is None:
        scale = max(1, math.ceil(32 / images.shape[-1])) if isinstance(images, torch.Tensor) and images.ndim == 4 else 1
    grid = make_grid(images, nrow=nrow, padding=padding, scale=scale).numpy()
    mode = "L" if grid.shape[2] == 1 else "RGB"
    return _save_pil(Image.fromarray(grid[:, :, 0] if mode == "L" else grid, mode=mode), path)


def save_scatter(points: torch.Tensor, path: str | os.PathLike, reference: Optional[torch.Tensor] = None,
                 title: Optional[str] = None, lim: float = 3.0, size: int = 400) -> Path:
    """Scatter plot of 2-D points (N, 2) as a ``size`` x ``size`` PNG of the square [-lim, lim]^2 (y upwards),
    optionally over ``reference`` points (M, 2) in grey. Drawn with Pillow (no matplotlib needed)."""
    from PIL import Image, ImageDraw  # lazy: only needed to write files

    for name, p in (("points", points), ("reference", reference)):
        if p is not None and (not isinstance(p, torch.Tensor) or p.ndim != 2 or p.shape[1] != 2):
            got = getattr(p, "shape", type(p).__name__)
            raise ValueError(f"{name} must be a tensor of shape (N, 2), got {got}")
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    scale = (size - 1) / (2 * lim)
    draw.line([(0, size // 2), (size, size // 2)], fill=(230, 230, 230))
    draw.line([(size // 2, 0), (size // 2, size)], fill=(230, 230, 230))
    for p, color in ((reference, (190, 190, 190)), (points, (31, 119, 180))):
        if p is None:
            continue
        xy = p.detach().float().cpu()
        px = ((xy[:, 0] + lim) * scale).round().tolist()
        py = ((lim - xy[:, 1]) * scale).round().tolist()
        for u, v in zip(px, py):
            if 0 <= u < size and 0 <= v < size:
                draw.rectangle([u - 1, v - 1, u + 1, v + 1], fill=color)
    if title:
        draw.text((6, 4), title, fill="black")
    return _save_pil(img, path)


def _save_pil(img, path: str | os.PathLike) -> Path:
    """Write a Pillow image atomically, in the format its file name's extension names (PNG when unknown)."""
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    return atomic_write(path, lambda f: img.save(f, format=fmt))
