"""Distances between sample sets: Frechet distance (FID), KID, MMD, sliced Wasserstein, and the Inception Score.

FID and KID compare *features* of images (Inception pool features for the standard numbers, or any other
extractor); MMD and sliced Wasserstein are meant for low-dimensional data such as the 2-D toys. All
accumulations are done in float64.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["feature_statistics", "frechet_distance", "fid_from_features", "kid", "mmd", "sliced_wasserstein",
           "inception_score"]


def _as_f64(x: np.ndarray | torch.Tensor, name: str, ndim: int) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _as_t64(x: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def feature_statistics(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), N >= 2, as float64 numpy arrays."""
    f = _as_f64(features, "features", 2)
    if len(f) < 2:
        raise ValueError(f"features needs at least 2 rows to estimate a covariance, got {len(f)}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (eigenvalues clipped at 0 against round-off)."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray | torch.Tensor, sigma1: np.ndarray | torch.Tensor,
                     mu2: np.ndarray | torch.Tensor, sigma2: np.ndarray | torch.Tensor) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2) (Dowson & Landau 1982)::

        d^2 = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)),

    the FID of Heusel et al. (2017) when the moments are those of Inception features. The trace of the matrix square
    root is computed as tr((s1^(1/2) sigma2 s1^(1/2))^(1/2)), which has the same eigenvalues but is symmetric PSD, so
    it is evaluated stably with ``eigh`` in float64 (no complex parts, no regularisation needed for singular sigmas).
    Shapes: mu (D,), sigma (D, D).
    """
    m1, m2 = _as_f64(mu1, "mu1", 1), _as_f64(mu2, "mu2", 1)
    s1, s2 = _as_f64(sigma1, "sigma1", 2), _as_f64(sigma2, "sigma2", 2)
    d = m1.shape[0]
    if m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes must be mu (D,), sigma (D, D) with one D; got mu1 {m1.shape}, sigma1 {s1.shape}, "
                         f"mu2 {m2.shape}, sigma2 {s2.shape}")
    root1 = _psd_sqrt(s1)
    inner = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def fid_from_features(features1: np.ndarray | torch.Tensor, features2: np.ndarray | torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N1, D) and (N2, D)."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def _polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int, coef0: float) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + coef0) ** degree


def _mmd2_unbiased(kxx: torch.Tensor, kyy: torch.Tensor, kxy: torch.Tensor) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012, Eq. 3): within-set sums exclude the diagonal."""
    m, n = kxx.shape[0], kyy.shape[0]
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kid(features1: np.ndarray | torch.Tensor, features2: np.ndarray | torch.Tensor, subsets: int = 100,
        subset_size: int = 1000, generator: torch.Generator | None = None, degree: int = 3,
        coef0: float = 1.0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3.

    Averaged over ``subsets`` random subsets of ``subset_size`` rows from each set (drawn without replacement
    within a subset, from ``generator``). Returns (mean, standard deviation over subsets). features: (N, D).
    """
    f1, f2 = _as_t64(features1, "features1"), _as_t64(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features1 and features2 must have the same D, got {f1.shape[1]} and {f2.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    if not 2 <= subset_size <= min(len(f1), len(f2)):
        raise ValueError(f"subset_size must be in 2..min(N1, N2) = 2..{min(len(f1), len(f2))}, got {subset_size}")
    values = []
    for _ in range(subsets):
        x = f1[torch.randperm(len(f1), generator=generator)[:subset_size]]
        y = f2[torch.randperm(len(f2), generator=generator)[:subset_size]]
        values.append(_mmd2_unbiased(_polynomial_kernel(x, x, degree, coef0), _polynomial_kernel(y, y, degree, coef0),
                                     _polynomial_kernel(x, y, degree, coef0)))
    v = np.array(values)
    return float(v.mean()), float(v.std())


def mmd(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, kernel: str = "rbf",
        bandwidths: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0), unbiased: bool = True) -> float:
    """Squared maximum mean discrepancy between samples x (N, D) and y (M, D).

    kernel "rbf": sum over ``bandwidths`` s of ``exp(-||x - y||^2 / (2 s^2))`` (a multi-scale Gaussian kernel, suited to
    unit-scale data); "polynomial": the KID kernel (x.y / D + 1)^3. ``unbiased`` uses the U-statistic (can be
    slightly negative when the distributions agree), otherwise the biased V-statistic (>= 0).
    """
    a, b = _as_t64(x, "x"), _as_t64(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x and y must have the same D, got {a.shape[1]} and {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("x and y need at least 2 samples each")
    if kernel == "rbf":
        if not bandwidths or min(bandwidths) <= 0:
            raise ValueError(f"bandwidths must be a non-empty tuple of positive floats, got {bandwidths}")

        def k(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            d2 = torch.cdist(u, v).pow(2)
            return sum(torch.exp(-d2 / (2 * s * s)) for s in bandwidths)
    elif kernel == "polynomial":
        def k(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return _polynomial_kernel(u, v, 3, 1.0)
    else:
        raise ValueError(f"kernel must be 'rbf' or 'polynomial', got {kernel!r}")
    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    if unbiased:
        return _mmd2_unbiased(kxx, kyy, kxy)
    return float(kxx.mean() + kyy.mean() - 2 * kxy.mean())


def _wasserstein_1d_pow(xs: torch.Tensor, ys: torch.Tensor, p: float) -> torch.Tensor:
    """W_p^p between the empirical distributions of the columns of sorted xs (N, P) and ys (M, P); returns (P,).

    Exact for unequal N and M: the quantile functions are step functions, integrated over the merged breakpoints.
    """
    n, m = xs.shape[0], ys.shape[0]
    if n == m:
        return (xs - ys).abs().pow(p).mean(0)
    levels = torch.cat([torch.arange(1, n + 1, dtype=torch.float64) / n,
                        torch.arange(1, m + 1, dtype=torch.float64) / m]).unique()  # sorted, ends at 1
    widths = torch.diff(levels, prepend=torch.zeros(1, dtype=torch.float64))
    mids = levels - widths / 2
    ix = (mids * n).floor().long().clamp(max=n - 1)
    iy = (mids * m).floor().long().clamp(max=m - 1)
    return ((xs[ix] - ys[iy]).abs().pow(p) * widths[:, None]).sum(0)


def sliced_wasserstein(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, n_projections: int = 256,
                       generator: torch.Generator | None = None, p: float = 2.0) -> float:
    """Sliced p-Wasserstein distance between samples x (N, D) and y (M, D) (Rabin et al. 2011; Bonneel et al. 2015).

    (mean over random unit directions theta of W_p^p(theta.x, theta.y))^(1/p), each 1-D W_p computed exactly
    from sorted projections. Directions are drawn from ``generator``.
    """
    a, b = _as_t64(x, "x"), _as_t64(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x and y must have the same D, got {a.shape[1]} and {b.shape[1]}")
    if n_projections < 1 or p < 1:
        raise ValueError(f"n_projections must be >= 1 and p >= 1, got {n_projections} and {p}")
    theta = torch.randn(a.shape[1], n_projections, generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    xs, ys = (a @ theta).sort(0).values, (b @ theta).sort(0).values
    return float(_wasserstein_1d_pow(xs, ys, p).mean() ** (1 / p))


def inception_score(probs: np.ndarray | torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), over ``splits`` equal chunks.

    probs: (N, C) class probabilities (rows sum to 1; e.g. softmax of the Inception logits). Returns (mean, std)
    over the chunks, as in the original code.
    """
    pr = _as_t64(probs, "probs")
    if (pr < 0).any() or not torch.allclose(pr.sum(1), torch.ones(len(pr), dtype=torch.float64), atol=1e-4):
        raise ValueError("probs must be non-negative with rows summing to 1 (apply softmax to logits first)")
    if not 1 <= splits <= len(pr):
        raise ValueError(f"splits must be in 1..N = 1..{len(pr)}, got {splits}")
    scores = []
    for chunk in torch.tensor_split(pr, splits):
        marginal = chunk.mean(0, keepdim=True)
        kl = torch.where(chunk > 0, chunk * (chunk.clamp_min(1e-300).log() - marginal.clamp_min(1e-300).log()), 0.0)
        scores.append(math.exp(float(kl.sum(1).mean())))
    s = np.array(scores)
    return float(s.mean()), float(s.std())
