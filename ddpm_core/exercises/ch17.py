"""Checkers for chapter 17, from the chain to an SDE: the probability-flow drift, the VP-SDE's marginal variance and
the beta(s) of the cosine schedule."""
from __future__ import annotations

import torch

from ._checker import Case, Mistake, check_expression, check_function

__all__ = ["check_pf_ode_drift", "check_vp_marginal_variance", "check_cosine_beta"]


def _col(beta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return beta.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)


def _pf_drift(x, beta, score):
    return -0.5 * _col(beta, x) * (x + score)


def _pf_cases() -> list[Case]:
    g = torch.Generator().manual_seed(17)
    cases = [Case("x = (1, -2), score = (0.5, 1), beta = 2", {"x": torch.tensor([[1.0, -2.0]], dtype=torch.float64),
                                                              "beta": torch.tensor([2.0], dtype=torch.float64),
                                                              "score": torch.tensor([[0.5, 1.0]], dtype=torch.float64)})]
    cases.append(Case("random batch of 5 points in 3-D, beta from 0.1 to 20",
                      {"x": torch.randn(5, 3, generator=g, dtype=torch.float64),
                       "beta": torch.tensor([0.1, 2.0, 7.5, 13.0, 20.0], dtype=torch.float64),
                       "score": torch.randn(5, 3, generator=g, dtype=torch.float64)}))
    x = torch.randn(4, 2, generator=g, dtype=torch.float64)
    cases.append(Case("the score of N(0, I) (score = -x): the velocity is zero",
                      {"x": x, "beta": torch.tensor([0.3, 1.0, 5.0, 19.0], dtype=torch.float64), "score": -x}))
    return cases


def check_pf_ode_drift(student) -> bool:
    """Exercise: ``pf_ode_drift(x, beta, score)`` returns the probability-flow ODE's velocity dx/ds =
    f(x, s) - 1/2 g(s)^2 score for the VP-SDE (f = -1/2 beta x, g^2 = beta; Song et al. 2021 Eq. 13). x and score
    have shape (B, d), beta shape (B,) (beta(s) of each example)."""
    b = _col
    mistakes = [
        Mistake(lambda x, beta, score: -0.5 * b(beta, x) * x - b(beta, x) * score,
                "that is the drift of the reverse-time SDE, f - g^2 score. The probability-flow ODE has no noise, "
                "and carries only half of the score term: f - 1/2 g^2 score."),
        Mistake(lambda x, beta, score: -0.5 * b(beta, x) * (x - score),
                "the score term enters with a minus sign: f - 1/2 beta score (the backward run then moves *up* the "
                "density, because it integrates ds < 0)."),
        Mistake(lambda x, beta, score: -0.5 * b(beta, x) * score,
                "the forward drift f(x, s) = -1/2 beta(s) x is part of the velocity as well."),
        Mistake(lambda x, beta, score: -0.5 * b(beta, x) * x - 0.5 * b(beta, x).sqrt() * score,
                "the diffusion coefficient enters squared: g(s)^2 = beta(s), not g(s) = sqrt(beta(s))."),
    ]
    return check_function("check_pf_ode_drift", student, _pf_drift, _pf_cases(), mistakes=mistakes, rtol=1e-9,
                          atol=1e-12, hint="dx/ds = -1/2 beta(s) x - 1/2 beta(s) score, with beta of shape (B,) "
                                           "reshaped to (B, 1) so that each example gets its own beta.")


def check_vp_marginal_variance(variance) -> bool:
    """Exercise: the variance of x_s given x_0 under the VP-SDE with the linear beta(s) = beta_min + s (beta_max -
    beta_min), as a SymPy expression in ``s, beta_min, beta_max = sympy.symbols("s beta_min beta_max",
    positive=True)``."""
    import sympy as sp

    s, b0, b1 = sp.symbols("s beta_min beta_max", positive=True)
    B = b0 * s + (b1 - b0) * s**2 / 2
    return check_expression(
        "check_vp_marginal_variance", variance, 1 - sp.exp(-B),
        mistakes=[(1 - sp.exp(-(b0 + (b1 - b0) * s) * s),
                   "beta(s) changes with s: the exponent is the integral int_0^s beta(u) du = beta_min s + "
                   "(beta_max - beta_min) s^2 / 2, not beta(s) s."),
                  (1 - sp.exp(-B / 2),
                   "exp(-1/2 int beta) is the factor on the *mean*; the variance ODE v' = -beta v + beta has the "
                   "factor exp(-int beta), the square of the mean's."),
                  (sp.exp(-B), "that is alpha_bar(s), the share of the signal; the noise variance is "
                               "1 - alpha_bar(s).")],
        hint="solve v' = -beta(s) v + beta(s) with v(0) = 0: v(s) = 1 - exp(-int_0^s beta(u) du).")


def check_cosine_beta(beta) -> bool:
    """Exercise: beta(s) = -d/ds log alpha_bar(s) for the cosine schedule alpha_bar(s) = cos^2((s + s_0)/(1 + s_0)
    pi/2) / cos^2(s_0/(1 + s_0) pi/2) (Nichol & Dhariwal 2021), a SymPy expression in ``s, s_0 =
    sympy.symbols("s s_0", positive=True)``."""
    import sympy as sp

    s, s0 = sp.symbols("s s_0", positive=True)
    u = (s + s0) / (1 + s0) * sp.pi / 2
    ab = sp.cos(u) ** 2 / sp.cos(s0 / (1 + s0) * sp.pi / 2) ** 2
    return check_expression(
        "check_cosine_beta", beta, sp.pi / (1 + s0) * sp.tan(u),
        mistakes=[(-sp.diff(ab, s), "beta(s) is minus the derivative of log alpha_bar(s), not of alpha_bar(s): "
                                    "alpha_bar' = -beta alpha_bar."),
                  (2 * sp.tan(u), "chain rule: the derivative of the cosine's argument, pi / (2 (1 + s_0)), "
                                  "multiplies the result."),
                  (sp.pi / (2 * (1 + s0)) * sp.tan(u), "log cos^2(u) = 2 log cos(u): the square gives a factor 2."),
                  (sp.pi / (1 + s0) * sp.tan(s * sp.pi / 2), "keep the offset s_0 inside the tangent: the argument is "
                                                             "(s + s_0) / (1 + s_0) pi / 2.")],
        hint="log alpha_bar(s) = 2 log cos(u) + const with u = (s + s_0) / (1 + s_0) pi / 2; differentiate and "
             "change the sign.")
