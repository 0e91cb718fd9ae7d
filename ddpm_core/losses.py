"""Elementwise log-likelihood and divergence formulas used by the variational bound (Ho et al. 2020, Sec. 3).

All functions are pure tensor maths: they know nothing about schedules or networks. Units are nats unless a
name says bits; :func:`nats_to_bits_per_dim` converts.
"""
from __future__ import annotations

import math
import numbers

import torch

__all__ = ["mean_flat", "normal_kl", "gaussian_log_likelihood", "standard_normal_cdf",
           "discretized_gaussian_log_likelihood", "discretized_gaussian_bin_probs", "nats_to_bits_per_dim"]


def _check_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {k: tuple(v.shape) for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"shapes must match, got {shapes}")


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over all dimensions except the first: (B, ...) -> (B,)."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL( N(mean1, exp(logvar1)) || N(mean2, exp(logvar2)) ) per element, in nats.

    The closed form behind the L_{t-1} terms of Eq. (5) (all of whose factors are Gaussian):
    KL = 1/2 [ logvar2 - logvar1 + exp(logvar1 - logvar2) + (mean1 - mean2)^2 exp(-logvar2) - 1 ].
    Arguments broadcast against each other; summing the result over d independent dimensions gives the KL of
    diagonal Gaussians.
    """
    for name, v in (("mean1", mean1), ("logvar1", logvar1), ("mean2", mean2), ("logvar2", logvar2)):
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
    try:
        torch.broadcast_shapes(mean1.shape, logvar1.shape, mean2.shape, logvar2.shape)
    except RuntimeError:
        raise ValueError("mean1, logvar1, mean2 and logvar2 must have shapes that broadcast against each other, got "
                         f"{tuple(mean1.shape)}, {tuple(logvar1.shape)}, {tuple(mean2.shape)}, "
                         f"{tuple(logvar2.shape)}") from None
    devices = {str(v.device) for v in (mean1, logvar1, mean2, logvar2)}
    if len(devices) > 1:
        raise ValueError(f"mean1, logvar1, mean2 and logvar2 must be on one device, got {sorted(devices)}")
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(logvar)) per element, in nats (a continuous density)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Phi(x), the standard normal CDF, computed exactly with erf."""
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _bin_edges_log_probs(x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                         num_bins: int) -> torch.Tensor:
    half = 1.0 / (num_bins - 1)  # data in [-1, 1] on a grid of num_bins values: bin half-width 1/255 for 8 bits
    inv_std = torch.exp(-log_scales)
    centered = x - means
    cdf_plus = standard_normal_cdf(inv_std * (centered + half))
    cdf_min = standard_normal_cdf(inv_std * (centered - half))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))             # lowest bin: (-inf, x + 1/255]
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))  # highest bin: [x - 1/255, +inf)
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    # "x is the first / last grid value", robust to rounding: the neighbouring grid values are 2 * half away
    return torch.where(x < -1.0 + half, log_cdf_plus, torch.where(x > 1.0 - half, log_one_minus_cdf_min, log_delta))


def discretized_gaussian_log_likelihood(x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                                        num_bins: int = 256) -> torch.Tensor:
    """The decoder of Eq. (13): log p(x) of data on a uniform grid of ``num_bins`` values in [-1, 1].

    Each value x is the centre of the bin [x - 1/255, x + 1/255] (for 256 bins); the outermost bins extend to
    -inf / +inf so the probabilities over the grid sum to one. ``log_scales`` is the log standard deviation.
    All arguments have the same shape; returns that shape, in nats. Values of x must lie on the grid.
    """
    _check_same_shape(x=x, means=means, log_scales=log_scales)
    if not isinstance(num_bins, int) or num_bins < 2:
        raise ValueError(f"num_bins must be an int >= 2, got {num_bins!r}")
    if x.numel() and (x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6):
        raise ValueError("x must lie in [-1, 1] (data scaled from 0..num_bins-1)")
    return _bin_edges_log_probs(x, means, log_scales, num_bins)


def discretized_gaussian_bin_probs(means: torch.Tensor, log_scales: torch.Tensor, num_bins: int = 256) -> torch.Tensor:
    """Probabilities of every grid value under the Eq. (13) decoder: returns shape ``(*means.shape, num_bins)``.

    Used to check normalization (the rows sum to one) and to decode by taking the most probable bin.
    """
    _check_same_shape(means=means, log_scales=log_scales)
    grid = torch.linspace(-1.0, 1.0, num_bins, dtype=means.dtype, device=means.device)
    x = grid.expand(*means.shape, num_bins)
    lp = _bin_edges_log_probs(x, means.unsqueeze(-1), log_scales.unsqueeze(-1), num_bins)
    return lp.exp()


def nats_to_bits_per_dim(nats: torch.Tensor, num_dims: int) -> torch.Tensor:
    """Convert a total negative log-likelihood in nats over ``num_dims`` dimensions to bits per dimension."""
    if isinstance(num_dims, bool) or not isinstance(num_dims, numbers.Integral) or num_dims < 1:
        raise ValueError(f"num_dims must be a positive int (the number of dimensions D), got {num_dims!r}")
    return nats / (num_dims * math.log(2.0))
