"""Checkers for chapter 8, sampling with Algorithm 2."""
from __future__ import annotations

import torch

from ..schedules import Schedule
from ._checker import Case, Mistake, check_function

__all__ = ["check_ancestral_step", "check_final_variance"]


def _step(x_t, t, eps, z, schedule, variance, *, sigma2=None, noise_at_1=False, coef=None):
    b, a, ab = schedule.betas[t].item(), schedule.alphas[t].item(), schedule.alpha_bars[t].item()
    if sigma2 is None:
        sigma2 = b if variance == "beta" else schedule.beta_tildes[t].item()
    c = b / (1 - ab) ** 0.5 if coef is None else coef(b, a, ab)
    mean = (x_t - c * eps) / a**0.5
    return mean + (sigma2**0.5 * z if (t > 1 or noise_at_1) else 0.0 * z)


def _step_cases() -> list[Case]:
    g = torch.Generator().manual_seed(10)
    sched = Schedule.linear()
    cases = []
    for t, variance, label in [(500, "beta", "t = 500, sigma_t^2 = beta_t"),
                               (3, "beta_tilde", "t = 3, sigma_t^2 = beta~_t"),
                               (2, "beta", "t = 2, sigma_t^2 = beta_t"),
                               (1, "beta", "t = 1, the last step"),
                               (1000, "beta_tilde", "t = T = 1000, sigma_t^2 = beta~_t")]:
        x_t, eps, z = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)
        cases.append(Case(label, {"x_t": x_t, "t": t, "eps": eps, "z": z, "schedule": sched, "variance": variance}))
    return cases


def check_ancestral_step(student) -> bool:
    """Exercise (chapter 8): ``ancestral_step(x_t, t, eps, z, schedule, variance)`` is line 4 of Algorithm 2:
    x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sigma_t z, with ``eps`` the model's
    noise prediction, ``z`` standard normal, sigma_t^2 = beta_t (``variance="beta"``) or beta~_t
    (``"beta_tilde"``), and no noise at t = 1 (line 3). ``t`` is an int, ``schedule`` a ``Schedule``."""
    other = {"beta": "beta_tilde", "beta_tilde": "beta"}
    mistakes = [
        Mistake(lambda x_t, t, eps, z, schedule, variance: _step(x_t, t, eps, z, schedule, variance, noise_at_1=True),
                "line 3 of Algorithm 2: z = 0 at t = 1, the last step returns the mean without noise."),
        Mistake(lambda x_t, t, eps, z, schedule, variance: _step(x_t, t, eps, z, schedule, other[variance]),
                "you used the other variance: sigma_t^2 = beta_t for variance='beta', beta~_t = (1 - ab_{t-1}) / "
                "(1 - ab_t) beta_t for 'beta_tilde'."),
        Mistake(lambda x_t, t, eps, z, schedule, variance: _step(
            x_t, t, eps, z, schedule, variance,
            sigma2=(schedule.betas[t].item() if variance == "beta" else schedule.beta_tildes[t].item()) ** 2),
                "the noise is sigma_t z with sigma_t the standard deviation: take the square root of the variance."),
        Mistake(lambda x_t, t, eps, z, schedule, variance: _step(x_t, t, eps, z, schedule, variance,
                                                                 coef=lambda b, a, ab: b / (1 - ab)),
                "the coefficient of eps is beta_t / sqrt(1 - alpha_bar_t): keep the square root (Eq. 11)."),
        Mistake(lambda x_t, t, eps, z, schedule, variance: _step(x_t, t, eps, z, schedule, variance,
                                                                 coef=lambda b, a, ab: (1 - ab) ** 0.5),
                "that removes the whole noise sqrt(1 - ab_t) eps (it is the x_0 estimate's numerator); one reverse "
                "step removes only beta_t / sqrt(1 - ab_t) eps."),
    ]
    return check_function("check_ancestral_step", student, _step, _step_cases(), mistakes=mistakes,
                          rtol=1e-9, atol=1e-10,
                          hint="line 4 of Algorithm 2: mu_theta of Eq. (11) plus sigma_t z, with z = 0 at t = 1.")


def _final_variance(alphas, sigma2):
    u = 1.0
    for t in range(len(alphas) - 1, 0, -1):
        u = alphas[t].item() * u + (sigma2[t].item() if t > 1 else 0.0)
    return u


def _var_cases() -> list[Case]:
    cases = []
    for T in (1000, 100, 50):
        s = Schedule.linear(T=T, beta_1=1e-4 * 1000 / T, beta_T=0.02 * 1000 / T)
        for name, sig in (("beta", s.betas), ("beta~", s.beta_tildes)):
            cases.append(Case(f"T = {T} (endpoints scaled by 1000/T), sigma_t^2 = {name}",
                              {"alphas": s.alphas, "sigma2": sig}))
    return cases


def check_final_variance(student) -> bool:
    """Exercise (chapter 8): ``final_variance(alphas, sigma2)`` returns the variance u_0 (per coordinate) of the
    samples of Algorithm 2 with the exact model for x_0 ~ N(0, I), started from u_T = 1. Both arguments have length
    T + 1 (index 0 padding); ``sigma2[t]`` is sigma_t^2. With v_t = 1 the chain's recursion is
    u_{t-1} = alpha_t u_t + sigma_t^2, and line 3 of Algorithm 2 adds no noise at t = 1."""
    mistakes = [
        Mistake(lambda alphas, sigma2: _final_variance(alphas, sigma2) + sigma2[1].item(),
                "line 3 of Algorithm 2 sets z = 0 at t = 1: the last step adds no variance."),
        Mistake(lambda alphas, sigma2: _final_variance(alphas.sqrt(), sigma2),
                "the mean scales x_t by sqrt(alpha_t) (for this model), so the variance scales by alpha_t, not "
                "sqrt(alpha_t)."),
        Mistake(lambda alphas, sigma2: _final_variance(alphas, sigma2.sqrt()),
                "sigma2 already holds variances: add sigma_t^2, not sigma_t."),
    ]
    return check_function("check_final_variance", student, _final_variance, _var_cases(), mistakes=mistakes,
                          rtol=1e-9, atol=1e-12,
                          hint="for x_0 ~ N(0, I) the exact model gives mu = sqrt(alpha_t) x_t, so "
                               "Var x_{t-1} = alpha_t Var x_t + sigma_t^2 (Eq. eq-samp-chain with v = 1).")
