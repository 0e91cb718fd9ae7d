"""Running a feature extractor over many images (the pluggable part of FID / KID), and feature statistics that
can be accumulated batch by batch and stored in pytorch-fid's ``.npz`` format (keys ``mu`` and ``sigma``)."""
from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch

__all__ = ["extract_features", "RunningStatistics", "save_statistics", "load_statistics"]


@torch.no_grad()
def extract_features(extractor: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                     batch_size: int = 256, device: str | torch.device | None = None) -> torch.Tensor:
    """Apply ``extractor`` to ``images`` (N, C, H, W) in [-1, 1] in batches; returns float32 features (N, D) on CPU.

    ``device``: where to run (default: the device of the extractor's first parameter, else CPU).
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is None:
        params = list(extractor.parameters()) if isinstance(extractor, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device, torch.float32)
        feats = extractor(batch)
        if feats.ndim != 2 or len(feats) != len(batch):
            raise ValueError(f"the extractor must return (B, D) features, got {tuple(feats.shape)}")
        out.append(feats.to("cpu", torch.float32))
    return torch.cat(out)


class RunningStatistics:
    """Mean and unbiased covariance of features seen in batches, accumulated in float64 (for 50k-sample FIDs
    without holding every feature). ``update(features (B, D))``, then ``statistics() -> (mu (D,), sigma (D, D))``.
    Sums are taken around the first batch's mean, which avoids cancellation when the mean is large.
    """

    def __init__(self) -> None:
        self.n = 0
        self._shift: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None

    def update(self, features: np.ndarray | torch.Tensor) -> None:
        f = features.detach().cpu().numpy() if torch.is_tensor(features) else np.asarray(features)
        f = f.astype(np.float64)
        if f.ndim != 2 or (self._sum is not None and f.shape[1] != self._sum.shape[0]):
            raise ValueError(f"features must have shape (B, D) with a fixed D, got {f.shape}")
        if self._sum is None:
            self._shift = f.mean(0)
            self._sum, self._outer = np.zeros(f.shape[1]), np.zeros((f.shape[1], f.shape[1]))
        f = f - self._shift
        self.n += len(f)
        self._sum += f.sum(0)
        self._outer += f.T @ f

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise ValueError(f"need at least 2 feature rows, got {self.n}")
        centred_mean = self._sum / self.n
        sigma = (self._outer - self.n * np.outer(centred_mean, centred_mean)) / (self.n - 1)
        return centred_mean + self._shift, (sigma + sigma.T) / 2


def save_statistics(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray) -> None:
    """Store (mu, sigma) as an ``.npz`` with keys ``mu`` and ``sigma`` (the format pytorch-fid reads and writes)."""
    np.savez(path, mu=np.asarray(mu, dtype=np.float64), sigma=np.asarray(sigma, dtype=np.float64))


def load_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read (mu, sigma) from an ``.npz`` with keys ``mu`` and ``sigma``."""
    with np.load(path) as data:
        if "mu" not in data or "sigma" not in data:
            raise ValueError(f"{path} must hold arrays 'mu' and 'sigma', found {list(data.keys())}")
        return data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
