"""Checkers for chapter 19, the optimal reverse variance: sigma*_t^2 from E||score||^2, and its closed form for
Gaussian data N(0, s^2 I) (Analytic-DPM, Bao et al. 2022, Theorem 1)."""
from __future__ import annotations

import torch

from ._checker import Case, Mistake, check_expression, check_function

__all__ = ["check_optimal_variance_from_score", "check_gaussian_optimal_variance"]


def _parts(beta, alpha_bar):
    beta = torch.as_tensor(beta, dtype=torch.float64)
    alpha_bar = torch.as_tensor(alpha_bar, dtype=torch.float64)
    alpha = 1 - beta
    beta_tilde = (1 - alpha_bar / alpha) / (1 - alpha_bar) * beta
    return beta, alpha_bar, alpha, beta_tilde


def _reference(beta, alpha_bar, score_sq_norm):
    beta, alpha_bar, alpha, beta_tilde = _parts(beta, alpha_bar)
    g = torch.as_tensor(score_sq_norm, dtype=torch.float64)
    return beta_tilde + beta**2 / (alpha * (1 - alpha_bar)) * (1 - (1 - alpha_bar) * g)


def _score_cases() -> list[Case]:
    g = torch.Generator().manual_seed(19)
    beta = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - beta, 0)
    idx = torch.tensor([1, 9, 99, 499, 999])
    b, ab = beta[idx], alpha_bar[idx]
    return [
        Case("a point mass: E||score||^2 / d = 1 / (1 - alpha_bar) (answer: beta~)",
             {"beta": b, "alpha_bar": ab, "score_sq_norm": 1 / (1 - ab)}),
        Case("N(0, I) data: E||score||^2 / d = 1 (answer: beta)",
             {"beta": b, "alpha_bar": ab, "score_sq_norm": torch.ones_like(b)}),
        Case("N(0, 0.25 I) data, linear schedule, t = 2, 10, 100, 500, 1000",
             {"beta": b, "alpha_bar": ab, "score_sq_norm": 1 / (0.25 * ab + 1 - ab)}),
        Case("random steps of a short schedule, random E||score||^2 / d in [1, 5]",
             {"beta": torch.tensor([0.1, 0.3, 0.05], dtype=torch.float64),
              "alpha_bar": torch.tensor([0.5, 0.2, 0.9], dtype=torch.float64),
              "score_sq_norm": 1 + 4 * torch.rand(3, generator=g, dtype=torch.float64)}),
    ]


def check_optimal_variance_from_score(student) -> bool:
    """Exercise: ``optimal_variance_from_score(beta, alpha_bar, score_sq_norm)`` returns sigma*_t^2 (Bao et al. 2022,
    Theorem 1 with the mean of Eq. 11) for tensors beta_t, alpha_bar_t (t >= 2) and E||grad log q_t||^2 / d, all of
    shape (N,)."""
    def wrong_gamma(beta, alpha_bar, score_sq_norm):  # forgets the factor 1 - alpha_bar: uses E||score||^2 as Gamma
        beta, alpha_bar, alpha, beta_tilde = _parts(beta, alpha_bar)
        return beta_tilde + beta**2 / (alpha * (1 - alpha_bar)) * (1 - torch.as_tensor(score_sq_norm))

    def wrong_base(beta, alpha_bar, score_sq_norm):  # starts from beta instead of beta~
        b, ab, alpha, _ = _parts(beta, alpha_bar)
        return b + b**2 / (alpha * (1 - ab)) * (1 - (1 - ab) * torch.as_tensor(score_sq_norm))

    def wrong_coef(beta, alpha_bar, score_sq_norm):  # drops alpha_t from the coefficient
        b, ab, _, beta_tilde = _parts(beta, alpha_bar)
        return beta_tilde + b**2 / (1 - ab) * (1 - (1 - ab) * torch.as_tensor(score_sq_norm))

    def wrong_sign(beta, alpha_bar, score_sq_norm):  # adds the score term instead of subtracting it
        b, ab, alpha, beta_tilde = _parts(beta, alpha_bar)
        return beta_tilde + b**2 / (alpha * (1 - ab)) * (1 + (1 - ab) * torch.as_tensor(score_sq_norm))

    mistakes = [
        Mistake(wrong_gamma, "E||eps*||^2 / d = (1 - alpha_bar_t) E||score||^2 / d (Tweedie): the score's moment "
                             "must be multiplied by 1 - alpha_bar_t."),
        Mistake(wrong_base, "the variance starts from the posterior's beta~_t (the KL's floor), not from beta_t."),
        Mistake(wrong_coef, "the coefficient is beta_t^2 / (alpha_t (1 - alpha_bar_t)) = coef_x0^2 (1 - alpha_bar_t) "
                            "/ alpha_bar_t: alpha_t is missing."),
        Mistake(wrong_sign, "the better x_t reveals the noise, the smaller the variance: subtract (1 - alpha_bar_t) "
                            "E||score||^2 / d from 1."),
    ]
    return check_function("check_optimal_variance_from_score", student, _reference, _score_cases(),
                          mistakes=mistakes, rtol=1e-9, atol=1e-15,
                          hint="sigma*^2 = beta~_t + beta_t^2 / (alpha_t (1 - alpha_bar_t)) * (1 - (1 - alpha_bar_t) "
                               "E||score||^2 / d), with alpha_t = 1 - beta_t and alpha_bar_{t-1} = alpha_bar_t / "
                               "alpha_t.")


def gaussian_symbols():
    """The symbols of :func:`check_gaussian_optimal_variance`: ``beta_t, alpha_bar_t, s`` (all positive)."""
    import sympy as sp

    return sp.symbols("beta_t alpha_bar_t s", positive=True)


def check_gaussian_optimal_variance(student) -> bool:
    """Exercise: the optimal sigma*_t^2 for data x_0 ~ N(0, s^2 I), a SymPy expression in the symbols
    ``beta_t, alpha_bar_t, s = sympy.symbols("beta_t alpha_bar_t s", positive=True)`` (alpha_bar_t at step t)."""
    import sympy as sp

    beta, ab, s = gaussian_symbols()
    alpha = 1 - beta
    ab_prev = ab / alpha
    beta_tilde = (1 - ab_prev) / (1 - ab) * beta
    coef = beta**2 / (alpha * (1 - ab))
    reference = beta_tilde + coef * (1 - (1 - ab) / (ab * s**2 + 1 - ab))
    mistakes = [
        (beta, "beta_t is the answer for s = 1 only; the data's variance s^2 enters through E||score||^2."),
        (beta_tilde, "beta~_t is the answer for s -> 0 (a single point) only."),
        (beta_tilde + coef * (1 - (1 - ab) / (s**2 + 1 - ab)),
         "x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps has variance alpha_bar_t s^2 + 1 - alpha_bar_t."),
        (beta_tilde + coef * (1 - 1 / (ab * s**2 + 1 - ab)),
         "Gamma_t = (1 - alpha_bar_t) E||score||^2 / d: the factor 1 - alpha_bar_t is missing."),
    ]
    return check_expression("check_gaussian_optimal_variance", sp.sympify(student), reference, mistakes=mistakes,
                            hint="q_t = N(0, (alpha_bar_t s^2 + 1 - alpha_bar_t) I), so E||score||^2 / d = "
                                 "1 / (alpha_bar_t s^2 + 1 - alpha_bar_t); insert it into sigma*^2.")
