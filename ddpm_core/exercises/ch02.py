"""Checkers for chapter 2, the reverse process."""
from __future__ import annotations

import math

import torch

from ._checker import Case, Mistake, check_expression, check_function

__all__ = ["check_gaussian_reverse_step", "check_tweedie_mean"]


def check_gaussian_reverse_step(mean_coef, variance) -> bool:
    """Exercise: for q(x_{t-1}) = N(0, s^2) the true reverse step is q(x_{t-1} | x_t) = N(mean_coef * x_t, variance).
    Submit both as SymPy expressions in ``beta_t, s = sympy.symbols("beta_t s", positive=True)`` (alpha_t = 1 -
    beta_t)."""
    import sympy as sp

    b, s = sp.symbols("beta_t s", positive=True)
    a = 1 - b
    check_expression("check_gaussian_reverse_step (mean coefficient)", mean_coef,
                     sp.sqrt(a) * s**2 / (a * s**2 + b), quiet=True,
                     mistakes=[(sp.sqrt(a), "sqrt(alpha_t) is the answer only for s = 1; keep the data variance s^2."),
                               (1 / sp.sqrt(a), "1/sqrt(alpha_t) undoes the forward step's scaling but ignores the "
                                                "prior q(x_{t-1}): Bayes' rule pulls the mean towards 0."),
                               (s**2 / (a * s**2 + b), "the forward step multiplies x_{t-1} by sqrt(alpha_t); that "
                                                       "factor appears in the y-coefficient of the exponent.")],
                     hint="complete the square in y = x_{t-1} in -(x_t - sqrt(alpha_t) y)^2/(2 beta_t) - y^2/(2 s^2); "
                          "the mean is the y-coefficient times the variance.")
    check_expression("check_gaussian_reverse_step (variance)", variance, b * s**2 / (a * s**2 + b), quiet=True,
                     mistakes=[(b, "beta_t is the variance only for s = 1; the precisions alpha_t/beta_t and 1/s^2 "
                                   "add."),
                               (b / a, "beta_t/alpha_t is the width of the likelihood term alone; add the prior's "
                                       "precision 1/s^2."),
                               (b + s**2, "variances do not add here: precisions do (alpha_t/beta_t + 1/s^2).")],
                     hint="the precision of the reverse step is alpha_t/beta_t + 1/s^2.")
    print("check_gaussian_reverse_step: correct (mean coefficient sqrt(alpha_t) s^2/(alpha_t s^2 + beta_t), "
          "variance beta_t s^2/(alpha_t s^2 + beta_t)).")
    return True


# ---- Tweedie's formula -----------------------------------------------------------------------------------------
def _tweedie_reference(x_t, score, beta):
    return (x_t + beta * score) / math.sqrt(1 - beta)


def _tweedie_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    return [
        Case("beta = 0.02, a batch of 5", {"x_t": torch.randn(5, generator=g, dtype=torch.float64),
                                           "score": torch.randn(5, generator=g, dtype=torch.float64), "beta": 0.02}),
        Case("beta = 0.5, a large step", {"x_t": torch.randn(3, 2, generator=g, dtype=torch.float64),
                                          "score": torch.randn(3, 2, generator=g, dtype=torch.float64), "beta": 0.5}),
        Case("x_t = 0, score = 1, beta = 0.1", {"x_t": torch.zeros(1, dtype=torch.float64),
                                                "score": torch.ones(1, dtype=torch.float64), "beta": 0.1}),
        Case("score = 0, beta = 0.36", {"x_t": torch.tensor([1.0, -2.0], dtype=torch.float64),
                                        "score": torch.zeros(2, dtype=torch.float64), "beta": 0.36}),
    ]


def check_tweedie_mean(student) -> bool:
    """Exercise: ``tweedie_mean(x_t, score, beta)`` returns E[x_{t-1} | x_t] = (x_t + beta * score) / sqrt(1 - beta),
    with ``score`` = d/dx_t log q(x_t) (tensors of one shape, ``beta`` a float)."""
    mistakes = [
        Mistake(lambda x_t, score, beta: math.sqrt(1 - beta) * (x_t + beta * score),
                "you multiplied by sqrt(alpha_t); the forward step shrinks x_{t-1} by sqrt(alpha_t), so going back "
                "divides by it."),
        Mistake(lambda x_t, score, beta: (x_t - beta * score) / math.sqrt(1 - beta),
                "the score points uphill, towards more probable x: the mean moves *along* it (+ beta * score)."),
        Mistake(lambda x_t, score, beta: x_t + beta * score,
                "you forgot the factor 1/sqrt(alpha_t) (visible when score = 0: the mean is x_t/sqrt(alpha_t))."),
        Mistake(lambda x_t, score, beta: (x_t + math.sqrt(beta) * score) / math.sqrt(1 - beta),
                "the step along the score is beta_t (a variance), not sqrt(beta_t)."),
    ]
    return check_function("check_tweedie_mean", student, _tweedie_reference, _tweedie_cases(), mistakes=mistakes,
                          rtol=1e-10, atol=1e-12,
                          hint="differentiate q(x_t) = integral of q(x_t | x_{t-1}) q(x_{t-1}) under the integral: "
                               "E[x_{t-1} | x_t] = (x_t + beta_t * score) / sqrt(alpha_t).")
