"""Checkers for chapter 6, the epsilon-parameterization and L_simple."""
from __future__ import annotations

import torch

from ..schedules import Schedule
from ._checker import Case, Mistake, check_expression, check_function

__all__ = ["check_x0_from_eps", "check_lambda_t", "lambda_symbols", "check_min_lsimple"]


def _x0_cases() -> list[Case]:
    g = torch.Generator().manual_seed(6)
    sched = Schedule.linear()
    cases = []
    for t, label in [(300, "t = 300"), (1, "t = 1, the first step"), (1000, "t = T = 1000, the last step")]:
        x_t = torch.randn(4, 3, generator=g, dtype=torch.float64)
        eps = torch.randn(4, 3, generator=g, dtype=torch.float64)
        cases.append(Case(label, {"x_t": x_t, "t": t, "eps": eps, "alpha_bars": sched.alpha_bars}))
    cos = Schedule.cosine(50)
    x_t = torch.randn(2, 5, generator=g, dtype=torch.float64)
    cases.append(Case("cosine schedule with T = 50, t = 25", {"x_t": x_t, "t": 25, "eps": torch.randn(
        2, 5, generator=g, dtype=torch.float64), "alpha_bars": cos.alpha_bars}))
    return cases


def _x0_reference(x_t, t, eps, alpha_bars):
    ab = alpha_bars[t].to(x_t.dtype)
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()


def check_x0_from_eps(student) -> bool:
    """Exercise (chapter 6): ``x0_from_eps(x_t, t, eps, alpha_bars)`` inverts Eq. (4), returning the x_0 for which
    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (``alpha_bars[t]`` is alpha-bar_t, index 0 padding)."""
    ab = lambda a, t, x: a[t].to(x.dtype)  # noqa: E731
    mistakes = [
        Mistake(lambda x_t, t, eps, alpha_bars: (x_t - ab(alpha_bars, t, x_t).sqrt() * eps)
                / (1 - ab(alpha_bars, t, x_t)).sqrt(),
                "sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) are swapped: the noise carries sqrt(1 - alpha_bar_t), "
                "and you divide by the coefficient of x_0, sqrt(alpha_bar_t)."),
        Mistake(lambda x_t, t, eps, alpha_bars: x_t - (1 - ab(alpha_bars, t, x_t)).sqrt() * eps,
                "you removed the noise but did not undo the scaling: divide by sqrt(alpha_bar_t)."),
        Mistake(lambda x_t, t, eps, alpha_bars: (x_t - (1 - ab(alpha_bars, t, x_t)) * eps) / ab(alpha_bars, t, x_t),
                "the coefficients need square roots: sqrt(1 - alpha_bar_t) on the noise and sqrt(alpha_bar_t) in "
                "the division."),
        Mistake(lambda x_t, t, eps, alpha_bars: (x_t + (1 - ab(alpha_bars, t, x_t)).sqrt() * eps)
                / ab(alpha_bars, t, x_t).sqrt(),
                "the noise was added to make x_t, so it is subtracted to recover x_0."),
    ]
    return check_function("check_x0_from_eps", student, _x0_reference, _x0_cases(), mistakes=mistakes,
                          rtol=1e-9, atol=1e-10,
                          hint="solve x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps for x_0 (Eq. eq-eps-x0).")


def lambda_symbols():
    """The SymPy symbols of the weight exercise, all positive: ``beta`` (beta_t), ``alpha`` (alpha_t),
    ``alpha_bar`` (alpha-bar_t) and ``sigma2`` (sigma_t^2), treated as independent."""
    import sympy as sp

    return sp.symbols("beta_t alpha_t alphabar_t sigma_t^2", positive=True)


def check_lambda_t(answer) -> bool:
    """Exercise (chapter 6): the weight lambda_t with L_{t-1} - C = E[lambda_t ||eps - eps_theta||^2] (Eq. 12), as a
    SymPy expression in the symbols of :func:`lambda_symbols`."""
    beta, alpha, alpha_bar, sigma2 = lambda_symbols()
    import sympy as sp

    ref = beta**2 / (2 * sigma2 * alpha * (1 - alpha_bar))
    return check_expression(
        "check_lambda_t", answer, ref,
        mistakes=[
            (beta**2 / (sigma2 * alpha * (1 - alpha_bar)),
             "twice the answer: Eq. (8) weights the squared error on means by 1 / (2 sigma_t^2)."),
            (beta / (2 * sigma2 * alpha * (1 - alpha_bar)),
             "the mean error is beta_t / (sqrt(alpha_t) sqrt(1 - alpha_bar_t)) times the noise error, and it is "
             "squared: beta_t appears squared."),
            (beta**2 / (2 * sigma2 * alpha * sp.sqrt(1 - alpha_bar)),
             "square the whole coefficient beta_t / (sqrt(alpha_t) sqrt(1 - alpha_bar_t)): (1 - alpha_bar_t) "
             "enters without a square root."),
            (beta**2 / (2 * sigma2 * sp.sqrt(alpha) * (1 - alpha_bar)),
             "the 1 / sqrt(alpha_t) of Eq. (11) is squared too: alpha_t enters to the first power."),
            (1 / (2 * sigma2), "that is the weight of the squared error on means (Eq. 8); convert it to noise units "
                               "with Eq. (11)."),
        ],
        hint="subtract Eq. (11) from Eq. (10): the x_t terms cancel; square the coefficient of (eps_theta - eps) "
             "and multiply by 1 / (2 sigma_t^2).")


def _min_cases() -> list[Case]:
    return [Case("the paper's linear schedule, T = 1000", {"alpha_bars": Schedule.linear().alpha_bars}),
            Case("cosine schedule, T = 1000", {"alpha_bars": Schedule.cosine(1000).alpha_bars}),
            Case("linear schedule with T = 10, beta from 0.01 to 0.2",
                 {"alpha_bars": Schedule.linear(T=10, beta_1=0.01, beta_T=0.2).alpha_bars})]


def check_min_lsimple(student) -> bool:
    """Exercise (chapter 6): ``min_lsimple(alpha_bars)`` returns the minimum of L_simple (Eq. 14, per dimension, t
    uniform on 1..T) for data x_0 ~ N(0, I); ``alpha_bars`` has length T + 1 with alpha_bars[0] = 1 as padding."""
    mistakes = [
        Mistake(lambda alpha_bars: (1 - alpha_bars[1:]).mean(),
                "that is how much of the loss a perfect model removes, 1 - alpha_bar_t; the minimum left is "
                "alpha_bar_t (Eq. eq-eps-optimal with m = 0, s = 1)."),
        Mistake(lambda alpha_bars: alpha_bars.mean(),
                "index 0 is padding (alpha_bar_0 = 1): average over t = 1..T only."),
        Mistake(lambda alpha_bars: alpha_bars[1:].sqrt().mean(),
                "the minimum per step is alpha_bar_t itself, not its square root."),
    ]
    return check_function("check_min_lsimple", student, lambda alpha_bars: alpha_bars[1:].mean(), _min_cases(),
                          mistakes=mistakes, rtol=1e-9, atol=1e-12,
                          hint="by Eq. (eq-eps-optimal) the minimum of step t is "
                               "1 - (1 - ab_t) / (ab_t s^2 + 1 - ab_t); put m = 0, s = 1 and average over t = 1..T.")
