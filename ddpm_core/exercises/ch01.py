"""Checkers for chapter 1, the forward process."""
from __future__ import annotations

import torch

from ..schedules import Schedule, cosine_betas, linear_betas
from ._checker import Case, Mistake, check_expression, check_function

__all__ = ["check_q_sample", "check_alpha_bars", "check_q_xt_given_xs"]


def _cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    sched = Schedule.linear()
    cases = []
    for t, label in [(500, "t = 500"), (1, "t = 1, the first step"), (1000, "t = T = 1000, the last step")]:
        x0 = torch.randn(4, 3, generator=g)
        noise = torch.randn(4, 3, generator=g)
        cases.append(Case(label, {"x0": x0, "t": t, "noise": noise, "alpha_bars": sched.alpha_bars}))
    return cases


def _reference(x0, t, noise, alpha_bars):
    ab = alpha_bars[t].to(x0.dtype)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def check_q_sample(student) -> bool:
    """Exercise: ``q_sample(x0, t, noise, alpha_bars)`` returns x_t of Eq. (4), with ``alpha_bars[t]`` the paper's
    alpha-bar_t (index 0 is padding, alpha_bars[0] = 1)."""
    mistakes = [
        Mistake(lambda x0, t, noise, alpha_bars: alpha_bars[t].to(x0.dtype) * x0
                + (1 - alpha_bars[t].to(x0.dtype)) * noise,
                "your x_t has the right mean direction but variance (1 - alpha_bar_t)^2: did you forget the square "
                "roots on both coefficients?"),
        Mistake(lambda x0, t, noise, alpha_bars: alpha_bars[t - 1].to(x0.dtype).sqrt() * x0
                + (1 - alpha_bars[t - 1].to(x0.dtype)).sqrt() * noise,
                "your result matches alpha_bar_{t-1}: index alpha_bars with t itself (index 0 is padding)."),
        Mistake(lambda x0, t, noise, alpha_bars: (1 - alpha_bars[t].to(x0.dtype)).sqrt() * x0
                + alpha_bars[t].to(x0.dtype).sqrt() * noise,
                "the two coefficients are swapped: x0 is scaled by sqrt(alpha_bar_t), the noise by "
                "sqrt(1 - alpha_bar_t)."),
    ]
    return check_function("check_q_sample", student, _reference, _cases(), mistakes=mistakes,
                          hint="x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise (Eq. 4).")


# ---- alpha-bar from the betas ---------------------------------------------------------------------------------
def _alpha_bars_reference(betas: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.ones(1, dtype=betas.dtype), torch.cumprod(1 - betas, dim=0)])


def _alpha_bars_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    return [
        Case("the paper's linear schedule, T = 1000", {"betas": linear_betas(1000)}),
        Case("three steps beta = (0.1, 0.25, 0.5)", {"betas": torch.tensor([0.1, 0.25, 0.5], dtype=torch.float64)}),
        Case("T = 1, a single step beta_1 = 0.3", {"betas": torch.tensor([0.3], dtype=torch.float64)}),
        Case("random betas in (0, 0.5), T = 7",
             {"betas": torch.rand(7, generator=g, dtype=torch.float64) * 0.5 + 1e-3}),
        Case("the cosine schedule, T = 50 (large last beta)", {"betas": cosine_betas(50)}),
    ]


def check_alpha_bars(student) -> bool:
    """Exercise: ``alpha_bars(betas)`` takes beta_1..beta_T (shape (T,)) and returns alpha-bar_0..alpha-bar_T
    (shape (T + 1,), alpha-bar_0 = 1, alpha-bar_t = prod_{s <= t} (1 - beta_s), Eq. (4))."""
    one = lambda b: torch.ones(1, dtype=b.dtype)  # noqa: E731
    mistakes = [
        Mistake(lambda betas: torch.cumprod(1 - betas, dim=0),
                "the values are right but index 0 is missing: the result has length T + 1 with alpha_bar_0 = 1 "
                "in front, so that alpha_bars[t] is the paper's alpha-bar_t."),
        Mistake(lambda betas: torch.cat([one(betas), one(betas), torch.cumprod(1 - betas, dim=0)[:-1]]),
                "your alpha_bars[t] is alpha-bar_{t-1}: the product runs over s = 1..t, including step t itself."),
        Mistake(lambda betas: torch.cat([one(betas), torch.cumprod(betas, dim=0)]),
                "you multiplied the betas; alpha-bar is the product of alpha_s = 1 - beta_s."),
        Mistake(lambda betas: torch.cat([one(betas), 1 - torch.cumprod(betas, dim=0)]),
                "1 - prod beta_s is not prod (1 - beta_s): alpha-bar multiplies the alphas."),
        Mistake(lambda betas: torch.cat([one(betas), torch.exp(-torch.cumsum(betas, dim=0))]),
                "exp(-sum beta_s) is only the small-beta approximation of prod (1 - beta_s); compute the product."),
        Mistake(lambda betas: torch.cat([one(betas), torch.cumprod(1 - betas, dim=0).sqrt()]),
                "you returned sqrt(alpha-bar_t), the factor on x_0; alpha-bar_t itself has no square root."),
    ]
    return check_function("check_alpha_bars", student, _alpha_bars_reference, _alpha_bars_cases(),
                          mistakes=mistakes, rtol=1e-10, atol=1e-12,
                          hint="alpha_bars[0] = 1 and alpha_bars[t] = (1 - beta_1)(1 - beta_2)...(1 - beta_t).")


# ---- q(x_t | x_s) ----------------------------------------------------------------------------------------------
def check_q_xt_given_xs(mean_coef, variance) -> bool:
    """Exercise: q(x_t | x_s) = N(mean_coef * x_s, variance * I) for 0 <= s < t. Submit both as SymPy expressions in
    ``alphabar_s, alphabar_t = sympy.symbols("alphabar_s alphabar_t", positive=True)``."""
    import sympy as sp

    ab_s, ab_t = sp.symbols("alphabar_s alphabar_t", positive=True)
    check_expression("check_q_xt_given_xs (mean coefficient)", mean_coef, sp.sqrt(ab_t / ab_s), quiet=True,
                     mistakes=[(ab_t / ab_s, "the mean coefficient is a square root: each step multiplies x by "
                                            "sqrt(alpha), so s -> t multiplies it by sqrt(alphabar_t/alphabar_s)."),
                               (sp.sqrt(ab_s / ab_t), "the ratio is upside down: the signal shrinks, so the "
                                                     "coefficient sqrt(alphabar_t/alphabar_s) is below 1."),
                               (sp.sqrt(ab_t), "sqrt(alphabar_t) is the coefficient on x_0; from x_s only the steps "
                                               "s+1..t act, whose product of alphas is alphabar_t/alphabar_s.")],
                     hint="the steps s+1..t form a forward chain of their own with 'alpha-bar' "
                          "prod_{r=s+1}^t alpha_r = alphabar_t / alphabar_s.")
    check_expression("check_q_xt_given_xs (variance)", variance, 1 - ab_t / ab_s, quiet=True,
                     mistakes=[(ab_s - ab_t, "variances of the marginals do not subtract: (1 - alphabar_t) - "
                                             "(1 - alphabar_s) ignores that x_s's own noise is shrunk by the later "
                                             "steps. Use the closed form of the sub-chain from x_s."),
                               (1 - sp.sqrt(ab_t / ab_s), "the variance is 1 minus the *square* of the mean "
                                                          "coefficient, 1 - alphabar_t/alphabar_s."),
                               (1 - ab_t, "1 - alphabar_t is the variance given x_0, not given x_s.")],
                     hint="the chain keeps unit variance: variance = 1 - (mean coefficient)^2.")
    print("check_q_xt_given_xs: correct (mean coefficient sqrt(alphabar_t/alphabar_s), variance "
          "1 - alphabar_t/alphabar_s).")
    return True
