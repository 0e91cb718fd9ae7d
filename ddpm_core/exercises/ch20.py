"""Checkers for chapter 20, why denoising learns the score: the implicit score-matching objective, the denoising
score-matching target, and Vincent's constant for Gaussian data."""
from __future__ import annotations

import math

import torch

from ..score_matching import dsm_target, implicit_score_matching
from ._checker import Case, Mistake, check_expression, check_function

__all__ = ["check_implicit_score_matching", "check_dsm_target", "check_vincent_constant"]


def _half_sq(score_fn, x):
    return 0.5 * (score_fn(x) ** 2).sum(1)


def _jacobian_sum(score_fn, x):
    """sum_{i, j} d s_i / d x_j: the sum of the whole Jacobian (a plausible wrong 'divergence')."""
    with torch.enable_grad():
        y = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(score_fn(y).sum(), y)
    return g.sum(1)


def _ism_cases() -> list[Case]:
    g = torch.Generator().manual_seed(20)
    A = torch.tensor([[1.5, -0.8], [0.6, 0.4]], dtype=torch.float64)
    W = torch.randn(3, 3, generator=g, dtype=torch.float64)
    return [
        Case("a linear field s(x) = -A x with a non-symmetric A (2-D)",
             {"score_fn": lambda x: -x @ A.T, "x": torch.randn(6, 2, generator=g, dtype=torch.float64)}),
        Case("the score of N(0.3, 0.5) in 1-D", {"score_fn": lambda x: -(x - 0.3) / 0.5,
                                                 "x": torch.randn(5, 1, generator=g, dtype=torch.float64)}),
        Case("a coupled nonlinear field tanh(W x) - x^3 (3-D, random W)",
             {"score_fn": lambda x: torch.tanh(x @ W.T) - x**3,
              "x": torch.randn(8, 3, generator=g, dtype=torch.float64)}),
        Case("a single point at the origin", {"score_fn": lambda x: torch.sin(x) + 1.0,
                                              "x": torch.zeros(1, 2, dtype=torch.float64)}),
    ]


def check_implicit_score_matching(student) -> bool:
    """Exercise: ``implicit_sm(score_fn, x)`` returns Hyvarinen's implicit objective per example, shape (B,):
    1/2 ||s(x)||^2 + div s(x), for a field ``score_fn`` mapping (B, d) to (B, d) and points ``x`` (B, d)."""
    mistakes = [
        Mistake(lambda score_fn, x: 2 * _half_sq(score_fn, x) + implicit_score_matching(score_fn, x)
                - _half_sq(score_fn, x),
                "the square has a factor 1/2: 1/2 ||s||^2 + div s (the 1/2 of the explicit objective carries over)."),
        Mistake(lambda score_fn, x: 2 * _half_sq(score_fn, x) - implicit_score_matching(score_fn, x),
                "the divergence enters with a plus sign: integrating -E[s . grad log p] by parts gives +E[div s]."),
        Mistake(lambda score_fn, x: _half_sq(score_fn, x) + _jacobian_sum(score_fn, x),
                "you summed the whole Jacobian (the gradient of s(x).sum()); the divergence is its trace, "
                "sum_i d s_i / d x_i: take the i-th component of the gradient of s[:, i].sum() for each i."),
        Mistake(lambda score_fn, x: _half_sq(score_fn, x),
                "the divergence term is missing: 1/2 ||s||^2 alone is minimised by s = 0."),
    ]
    return check_function("check_implicit_score_matching", student, implicit_score_matching, _ism_cases(),
                          mistakes=mistakes, rtol=1e-6, atol=1e-8,
                          hint="per example: 0.5 * (s**2).sum(1) + sum_i d s_i / d x_i, with the derivatives from "
                               "torch.autograd.grad on x.requires_grad_(True).")


def _dsm_cases() -> list[Case]:
    g = torch.Generator().manual_seed(21)
    cases = []
    for label, ab, shape in [("alpha_bar = 0.5, 2-D", 0.5, (4, 2)),
                             ("alpha_bar = 0.9999 (t near 1, little noise)", 0.9999, (3, 2)),
                             ("alpha_bar = 0.01 (t near T)", 0.01, (5, 3)),
                             ("alpha_bar = 0.3, 1-D", 0.3, (6, 1))]:
        x0 = torch.randn(*shape, generator=g, dtype=torch.float64)
        eps = torch.randn(*shape, generator=g, dtype=torch.float64)
        cases.append(Case(label, {"x_t": math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps, "x0": x0,
                                  "alpha_bar": ab}))
    return cases


def check_dsm_target(student) -> bool:
    """Exercise: ``target(x_t, x0, alpha_bar)`` returns grad_{x_t} log q(x_t | x_0) for
    q(x_t | x_0) = N(sqrt(alpha_bar) x_0, (1 - alpha_bar) I), shape of x_t; ``alpha_bar`` is a float."""
    mistakes = [
        Mistake(lambda x_t, x0, alpha_bar: (x_t - math.sqrt(alpha_bar) * x0) / (1 - alpha_bar),
                "the sign: the score points from x_t back towards the mean sqrt(alpha_bar) x_0."),
        Mistake(lambda x_t, x0, alpha_bar: -(x_t - math.sqrt(alpha_bar) * x0) / math.sqrt(1 - alpha_bar),
                "that is -eps, the noise itself; the score divides by the variance 1 - alpha_bar, not by the "
                "standard deviation: score = -eps / sqrt(1 - alpha_bar)."),
        Mistake(lambda x_t, x0, alpha_bar: -(x_t - x0) / (1 - alpha_bar),
                "the mean of q(x_t | x_0) is sqrt(alpha_bar) x_0, not x_0: the forward process shrinks the data."),
        Mistake(lambda x_t, x0, alpha_bar: -(x_t - alpha_bar * x0) / (1 - alpha_bar),
                "the mean coefficient is sqrt(alpha_bar) (Eq. 4), not alpha_bar."),
    ]
    return check_function("check_dsm_target", student, lambda x_t, x0, alpha_bar: dsm_target(x_t, x0, alpha_bar),
                          _dsm_cases(), mistakes=mistakes, rtol=1e-6, atol=1e-8,
                          hint="differentiate -||x_t - sqrt(alpha_bar) x_0||^2 / (2 (1 - alpha_bar)) in x_t.")


def check_vincent_constant(constant) -> bool:
    """Exercise: for data x_0 ~ N(m, s^2) in 1-D and x_t = sqrt(alphabar_t) x_0 + sqrt(1 - alphabar_t) eps, the
    constant C = E[J_DSM] - E[J_ESM] (both with the factor 1/2) as a SymPy expression in
    ``alphabar_t, s = sympy.symbols("alphabar_t s", positive=True)``."""
    import sympy as sp

    ab, s = sp.symbols("alphabar_t s", positive=True)
    var_t = ab * s**2 + 1 - ab
    reference = sp.Rational(1, 2) * (1 / (1 - ab) - 1 / var_t)
    mistakes = [
        (1 / (1 - ab) - 1 / var_t, "both objectives carry the factor 1/2 (the J of Hyvarinen and Vincent), so C "
                                   "does too."),
        (sp.Rational(1, 2) * (1 / var_t - 1 / (1 - ab)), "the sign: C = E||target||^2 / 2 - E||score||^2 / 2, and "
                                                         "the conditional score has the larger second moment."),
        (sp.Rational(1, 2) / (1 - ab), "that is 1/2 E[target^2] alone; the marginal score's 1/2 E[score^2] = "
                                       "1 / (2 Var x_t) is subtracted."),
        (sp.Rational(1, 2) * (1 / sp.sqrt(1 - ab) - 1 / sp.sqrt(var_t)),
         "the second moment of a Gaussian score -(x - mu) / v is 1 / v, the inverse variance, not 1 / sqrt(v)."),
    ]
    return check_expression("check_vincent_constant", constant, reference, mistakes=mistakes,
                            hint="expand both squares: the model's s^2 terms agree and so do the cross terms "
                                 "(chapter 7), leaving C = 1/2 E[target^2] - 1/2 E[(score of q(x_t))^2].")
