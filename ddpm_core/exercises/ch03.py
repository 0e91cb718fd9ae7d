"""Checkers for chapter 3, the variational bound."""
from __future__ import annotations

import math

import torch

from ._checker import Case, Mistake, check_function

__all__ = ["check_jensen_gap", "check_gaussian_log_density"]


# ---- the Jensen gap of a discrete random variable --------------------------------------------------------------
def _gap_reference(values, probs):
    return torch.log((probs * values).sum()) - (probs * torch.log(values)).sum()


def _gap_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    p = torch.rand(6, generator=g, dtype=torch.float64)
    return [
        Case("two points 0.4 and 3.6 with probabilities 0.35, 0.65",
             {"values": torch.tensor([0.4, 3.6], dtype=torch.float64),
              "probs": torch.tensor([0.35, 0.65], dtype=torch.float64)}),
        Case("six random values, random probabilities",
             {"values": torch.rand(6, generator=g, dtype=torch.float64) * 5 + 0.1, "probs": p / p.sum()}),
        Case("a constant X = 2 (the gap is 0)", {"values": torch.full((3,), 2.0, dtype=torch.float64),
                                                 "probs": torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)}),
        Case("values 1, 2, 4 with probabilities 0.5, 0.25, 0.25",
             {"values": torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64),
              "probs": torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)}),
    ]


def check_jensen_gap(student) -> bool:
    """Exercise: ``jensen_gap(values, probs)`` returns log E[X] - E[log X] >= 0 for X taking ``values`` (positive,
    shape (n,)) with ``probs`` (shape (n,), summing to 1), as a 0-dimensional tensor or a float."""
    mistakes = [
        Mistake(lambda values, probs: -_gap_reference(values, probs),
                "your gap has the wrong sign: log is concave, so E[log X] <= log E[X] and the gap is >= 0."),
        Mistake(lambda values, probs: torch.log(values.mean()) - torch.log(values).mean(),
                "you averaged with equal weights; weight every value with its probability."),
        Mistake(lambda values, probs: (probs * values).sum() - (probs * torch.log(values)).sum(),
                "take the log of E[X]: the gap is log E[X] - E[log X]."),
    ]
    return check_function("check_jensen_gap", student, _gap_reference, _gap_cases(), mistakes=mistakes,
                          rtol=1e-10, atol=1e-12, hint="gap = log(sum_i p_i x_i) - sum_i p_i log x_i.")


# ---- a Gaussian log-density ------------------------------------------------------------------------------------
def _logpdf_reference(x, mean, var):
    return -0.5 * torch.log(2 * math.pi * var) - (x - mean) ** 2 / (2 * var)


def _logpdf_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    return [
        Case("standard normal at x = 0, 1, -2", {"x": torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64),
                                                 "mean": torch.zeros(3, dtype=torch.float64),
                                                 "var": torch.ones(3, dtype=torch.float64)}),
        Case("random x, mean and var (shape (4, 2))",
             {"x": torch.randn(4, 2, generator=g, dtype=torch.float64),
              "mean": torch.randn(4, 2, generator=g, dtype=torch.float64),
              "var": torch.rand(4, 2, generator=g, dtype=torch.float64) * 2 + 0.05}),
        Case("a narrow Gaussian, var = 1e-4 (a density above 1)",
             {"x": torch.tensor([0.3, 0.31], dtype=torch.float64), "mean": torch.full((2,), 0.3, dtype=torch.float64),
              "var": torch.full((2,), 1e-4, dtype=torch.float64)}),
    ]


def check_gaussian_log_density(student) -> bool:
    """Exercise: ``log_density(x, mean, var)`` returns log N(x; mean, var) elementwise (tensors of one shape,
    ``var`` the variance, not the standard deviation)."""
    mistakes = [
        Mistake(lambda x, mean, var: -0.5 * torch.log(2 * math.pi * var) - (x - mean) ** 2 / (2 * var.sqrt()),
                "you divided the square by the standard deviation; the exponent is -(x - mean)^2 / (2 var)."),
        Mistake(lambda x, mean, var: -torch.log(2 * math.pi * var) - (x - mean) ** 2 / (2 * var),
                "the normalizing term is -1/2 log(2 pi var): the density has 1/sqrt(2 pi var) in front."),
        Mistake(lambda x, mean, var: -(x - mean) ** 2 / (2 * var),
                "you left out the normalizing constant -1/2 log(2 pi var); a bound on log p needs it."),
        Mistake(lambda x, mean, var: -0.5 * torch.log(2 * math.pi * var) - (x - mean) ** 2 / var,
                "the exponent has a factor 1/2: -(x - mean)^2 / (2 var)."),
    ]
    return check_function("check_gaussian_log_density", student, _logpdf_reference, _logpdf_cases(),
                          mistakes=mistakes, rtol=1e-10, atol=1e-12,
                          hint="log N(x; m, v) = -1/2 log(2 pi v) - (x - m)^2 / (2 v).")
