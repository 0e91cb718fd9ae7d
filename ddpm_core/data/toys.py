"""Two-dimensional toy distributions for quick diffusion experiments.

Every toy is centred and scaled *analytically* so that its population mean is 0 and the average of its two
coordinate variances is 1 (one scalar for both coordinates, so the shape keeps its aspect ratio). They are
therefore "roughly unit scale" in the same sense as data scaled to [-1, 1]: the forward process with the paper's
schedule ends close to N(0, I).

    x = sample_toy("swiss_roll", 1000, generator=torch.Generator().manual_seed(0))   # (1000, 2) float32
"""
from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["TOY_NAMES", "MIXTURE_TOYS", "sample_toy", "sample_mixture_toy"]


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int >= 1, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")


def _swiss_roll(n: int, g: torch.Generator | None) -> torch.Tensor:
    """Spiral (t cos t, t sin t), t ~ U[1.5 pi, 4.5 pi], plus N(0, 0.5^2) noise (before scaling)."""
    noise = 0.5
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
    x = x + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    # E[t cos t] = 2, E[t sin t] = 2 / (3 pi); E[t^2] = 9.75 pi^2 (integrals over t ~ U[1.5 pi, 4.5 pi]).
    mean = torch.tensor([2.0, 2.0 / (3 * math.pi)], dtype=torch.float64)
    second_moment = 9.75 * math.pi**2 + 2 * noise**2  # E|x|^2
    var_per_coord = (second_moment - float((mean**2).sum())) / 2
    return (x - mean) / math.sqrt(var_per_coord)


def _two_moons(n: int, g: torch.Generator | None) -> torch.Tensor:
    """Two interleaved half circles (as in scikit-learn's make_moons) with N(0, 0.1^2) noise."""
    noise = 0.1
    theta = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    upper = torch.rand(n, generator=g) < 0.5
    top = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    bottom = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], dim=1)
    x = torch.where(upper[:, None], top, bottom) + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    # Mixture moments: mean (1/2, 1/4); Var x = 3/4, Var y = 9/16 - 1/pi; plus the noise variance.
    mean = torch.tensor([0.5, 0.25], dtype=torch.float64)
    var_per_coord = (0.75 + (0.5625 - 1 / math.pi)) / 2 + noise**2
    return (x - mean) / math.sqrt(var_per_coord)


def _eight_gaussians(n: int, g: torch.Generator | None) -> torch.Tensor:
    """Equal mixture of 8 isotropic Gaussians (std 0.1) centred on a circle, at angles k pi / 4."""
    std = 0.1
    radius = math.sqrt(2 * (1 - std**2))  # per-coordinate variance r^2 / 2 + std^2 = 1
    k = torch.randint(0, 8, (n,), generator=g)
    angle = k.to(torch.float64) * (math.pi / 4)
    centers = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return centers + std * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _checkerboard(n: int, g: torch.Generator | None) -> torch.Tensor:
    """Uniform on the 8 'black' squares of a 4 x 4 board; the board [-2, 2]^2 is scaled by sqrt(3)/2."""
    x = 4 * torch.rand(n, generator=g, dtype=torch.float64) - 2
    row = torch.rand(n, generator=g, dtype=torch.float64) - 2 * torch.randint(0, 2, (n,), generator=g)
    y = row + torch.remainder(torch.floor(x), 2)  # shift by one square in odd columns
    # Each coordinate is uniform on [-2, 2]: variance 4/3, so sqrt(3)/2 makes it 1.
    return torch.stack([x, y], dim=1) * (math.sqrt(3) / 2)


def _mixture(name: str) -> Callable[[int, torch.Generator | None], torch.Tensor]:
    """Draws from the fixed Gaussian mixture ``name`` of :mod:`ddpm_core.mixtures` (exact density known)."""
    def draw(n: int, g: torch.Generator | None) -> torch.Tensor:
        return sample_mixture_toy(name, n, g)[0]
    return draw


def sample_mixture_toy(name: str, n: int, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, k)``: n float64 points of the mixture toy ``name`` and their component labels (int64)."""
    from ..mixtures import named_mixture

    return named_mixture(name).sample(n, generator, return_labels=True)


_TOYS: dict[str, Callable[[int, torch.Generator | None], torch.Tensor]] = {
    "swiss_roll": _swiss_roll,
    "two_moons": _two_moons,
    "eight_gaussians": _eight_gaussians,
    "checkerboard": _checkerboard,
    "gaussian_mixture": _mixture("gaussian_mixture"),
    "gaussian_mixture_1d": _mixture("gaussian_mixture_1d"),
}
MIXTURE_TOYS: tuple[str, ...] = ("gaussian_mixture", "gaussian_mixture_1d")
TOY_NAMES: tuple[str, ...] = tuple(_TOYS)


def sample_toy(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` points of the toy distribution ``name`` (one of ``TOY_NAMES``).

    Returns a float32 tensor of shape (n, 2) (``gaussian_mixture_1d``: (n, 1)). The shapes are centred and scaled
    to population mean 0 and mean coordinate variance 1; the Gaussian mixtures
    (:func:`ddpm_core.mixtures.named_mixture`) are left as defined there, roughly unit scale, so that their exact
    density applies as is.
    Sampling is done in float64 on the CPU from ``generator`` (the global RNG if None), so a seeded
    generator gives the same points on every machine.
    """
    if name not in _TOYS:
        raise ValueError(f"unknown toy name {name!r}; allowed names: {', '.join(TOY_NAMES)}")
    _check_n(n)
    return _TOYS[name](n, generator).to(torch.float32)
