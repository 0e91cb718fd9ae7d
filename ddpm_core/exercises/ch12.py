"""Checkers for chapter 12, likelihood: the discretized decoder of Eq. (13) and bits per dimension."""
from __future__ import annotations

import math

import torch

from ._checker import Case, Mistake, check_function

__all__ = ["check_decoder_log_prob", "check_bits_per_dim"]


def _ndtr(z: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtr(z)


def _decoder(x, mean, log_scale, half_width=1 / 255, extend_edges=True):
    """log P(x) under the discretized Gaussian, elementwise (float64, no floor)."""
    x, mean, s = x.double(), mean.double(), log_scale.double().exp()
    upper = _ndtr((x + half_width - mean) / s)
    lower = _ndtr((x - half_width - mean) / s)
    if extend_edges:
        upper = torch.where(x > 1 - 1e-3, torch.ones_like(upper), upper)
        lower = torch.where(x < -1 + 1e-3, torch.zeros_like(lower), lower)
    return torch.log(upper - lower)


def _decoder_cases() -> list[Case]:
    g = torch.Generator().manual_seed(12)
    cases = []
    x = torch.tensor([-1.0, 1.0, 0.0 + 1 / 255, -1 + 2 / 255, 1 - 2 / 255, -1.0], dtype=torch.float64)
    x = torch.round((x + 1) * 127.5) / 127.5 - 1                          # exactly on the grid
    mean = x + torch.tensor([0.0, 0.0, 0.003, -0.004, 0.006, 0.01], dtype=torch.float64)
    cases.append(Case("edge and interior levels, mean near the level, sigma = 0.0074",
                      {"x": x, "mean": mean, "log_scale": torch.full_like(x, math.log(0.0074))}))
    levels = torch.randint(0, 256, (3, 8), generator=g).double()
    x = levels / 127.5 - 1
    mean = x + 0.02 * torch.randn(3, 8, generator=g, dtype=torch.float64)
    cases.append(Case("random levels, sigma = 0.03", {"x": x, "mean": mean,
                                                        "log_scale": torch.full_like(x, math.log(0.03))}))
    x = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    cases.append(Case("edge levels with the mean beyond +-1 (the half-line bins)",
                      {"x": x, "mean": torch.tensor([-1.05, 1.2], dtype=torch.float64),
                       "log_scale": torch.full_like(x, math.log(0.05))}))
    return cases


def check_decoder_log_prob(student) -> bool:
    """Exercise: ``decoder_log_prob(x, mean, log_scale)`` returns log P(x), elementwise, for x on the 256-level grid
    in [-1, 1] under the discretized Gaussian decoder of Eq. (13) with mean ``mean`` and std exp(log_scale)."""
    mistakes = [
        Mistake(lambda x, mean, log_scale: _decoder(x, mean, log_scale, extend_edges=False),
                "the edge levels -1 and 1 own everything beyond them: their bins extend to -inf and +inf "
                "(delta_- = -inf at x = -1, delta_+ = +inf at x = 1); otherwise the probabilities do not sum to one."),
        Mistake(lambda x, mean, log_scale: _decoder(x, mean, log_scale, half_width=2 / 255),
                "the bin half-width is 1/255, half the spacing 2/255 between neighbouring levels; with 2/255 the "
                "bins overlap."),
        Mistake(lambda x, mean, log_scale: _decoder(x, mean, log_scale, half_width=2 / 255, extend_edges=False),
                "two mistakes: use half-width 1/255 and extend the edge bins to +-infinity."),
        Mistake(lambda x, mean, log_scale: _decoder(x, mean, 0.5 * log_scale),
                "log_scale is log sigma, not log sigma^2: the standard deviation is exp(log_scale)."),
    ]
    return check_function("check_decoder_log_prob", student, _decoder, _decoder_cases(), mistakes=mistakes,
                          rtol=1e-6, atol=1e-8,
                          hint="P(x) = Phi((x + 1/255 - mean)/sigma) - Phi((x - 1/255 - mean)/sigma), with the "
                               "upper CDF replaced by 1 at x = 1 and the lower by 0 at x = -1 (Eq. 13).")


def _bpd(nll_nats, shape):
    return nll_nats / (math.prod(shape) * math.log(2.0))


def _bpd_cases() -> list[Case]:
    return [Case("CIFAR-10 image, shape (3, 32, 32), 7985.3 nats", {"nll_nats": 7985.3, "shape": (3, 32, 32)}),
            Case("a digit, shape (1, 8, 8), 200 nats", {"nll_nats": 200.0, "shape": (1, 8, 8)}),
            Case("a 2-D point, shape (2,), 1.5 nats", {"nll_nats": 1.5, "shape": (2,)})]


def check_bits_per_dim(student) -> bool:
    """Exercise: ``bits_per_dim(nll_nats, shape)`` turns a negative log-likelihood of one example, in nats, into
    bits per dimension for an example of the given shape (e.g. (3, 32, 32))."""
    mistakes = [
        Mistake(lambda nll_nats, shape: nll_nats / math.prod(shape),
                "that is nats per dimension: divide by ln 2 as well to get bits (log2 p = ln p / ln 2)."),
        Mistake(lambda nll_nats, shape: nll_nats / math.log(2.0),
                "that is bits per example: divide by the number of dimensions D, the product of the shape."),
        Mistake(lambda nll_nats, shape: nll_nats * math.log(2.0) / math.prod(shape),
                "multiply by 1/ln 2, not by ln 2: one bit is ln 2 = 0.693 nats, so there are more bits than nats."),
        Mistake(lambda nll_nats, shape: nll_nats / (math.prod(shape[-2:]) * math.log(2.0)),
                "count every dimension: the channels too (D = 3 * 32 * 32 = 3072 for CIFAR-10)."),
    ]
    return check_function("check_bits_per_dim", student, _bpd, _bpd_cases(), mistakes=mistakes, rtol=1e-9,
                          atol=0.0, hint="bits/dim = nll_nats / (D ln 2), with D the product of the shape.")
