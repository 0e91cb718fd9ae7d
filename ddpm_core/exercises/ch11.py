"""Checkers for chapter 11, fast sampling: the respaced betas of strided sampling and one DDIM step."""
from __future__ import annotations

import torch

from ..samplers import strided_timesteps
from ..schedules import Schedule
from ._checker import Case, Mistake, check_function

__all__ = ["check_respaced_betas", "check_ddim_step"]


def _respaced(alpha_bars, timesteps, shift=0):
    ts = torch.as_tensor(list(timesteps), dtype=torch.long)
    ab = alpha_bars[ts - shift]
    ab_prev = torch.cat([alpha_bars[:1] if shift == 0 else torch.ones(1, dtype=alpha_bars.dtype),
                         alpha_bars[ts[:-1] - shift]])
    if shift == 0:
        ab_prev[0] = 1.0
    return 1 - ab / ab_prev


def _respaced_reference(alpha_bars, timesteps):
    return _respaced(alpha_bars, timesteps)


def _respaced_cases() -> list[Case]:
    lin, cos = Schedule.linear(), Schedule.cosine()
    return [
        Case("10 uniform steps of the paper's schedule", {"alpha_bars": lin.alpha_bars,
                                                          "timesteps": strided_timesteps(1000, 10)}),
        Case("10 quadratic steps of the cosine schedule", {"alpha_bars": cos.alpha_bars,
                                                           "timesteps": strided_timesteps(1000, 10, "quadratic")}),
        Case("a single step, tau = (T,)", {"alpha_bars": lin.alpha_bars, "timesteps": [1000]}),
        Case("every step 1..T: the original betas", {"alpha_bars": lin.alpha_bars,
                                                     "timesteps": list(range(1, 1001))}),
    ]


def check_respaced_betas(student) -> bool:
    """Exercise: ``respaced_betas(alpha_bars, timesteps)`` returns beta'_i = 1 - ab_{tau_i} / ab_{tau_{i-1}},
    i = 1..S, with ab_{tau_0} = 1 (Eq. eq-fast-respaced), for an increasing list ``timesteps`` = (tau_1, ..., tau_S)
    of the paper's steps and ``alpha_bars[t]`` = alpha-bar_t (index 0 is padding). Shape (S,)."""
    mistakes = [
        Mistake(lambda alpha_bars, timesteps: 1 - alpha_bars[list(timesteps)] / alpha_bars[[t - 1 for t in timesteps]],
                "you took the original beta_{tau_i}: one step of the short chain spans every original step between "
                "tau_{i-1} and tau_i, so derive beta'_i from alpha_bar at the kept steps."),
        Mistake(lambda alpha_bars, timesteps: _respaced(alpha_bars, timesteps, shift=1),
                "your betas match alpha_bar_{tau_i - 1}: the timesteps are the paper's 1..T, index alpha_bars with "
                "them directly."),
        Mistake(lambda alpha_bars, timesteps: 1 - 1 / (1 - _respaced(alpha_bars, timesteps)),
                "the ratio is upside down: alpha'_i = ab_{tau_i} / ab_{tau_{i-1}} < 1, so beta'_i lies in (0, 1)."),
    ]
    return check_function("check_respaced_betas", student, _respaced_reference, _respaced_cases(), mistakes=mistakes,
                          hint="beta'_i = 1 - alpha_bar_{tau_i} / alpha_bar_{tau_{i-1}}, with alpha_bar_{tau_0} = 1.",
                          rtol=1e-9, atol=1e-12)


def _step(x_t, eps_hat, ab_t, ab_s, eta, noise, *, eta_twice=False, no_sqrt=False, var_as_std=False,
          no_sigma_in_coef=False):
    x0_hat = (x_t - (1 - ab_t) ** 0.5 * eps_hat) / ab_t**0.5
    sigma2 = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    sigma = sigma2**0.5
    if eta_twice:
        sigma = eta * sigma
        sigma2 = sigma**2
    coef2 = max(1 - ab_s - (0.0 if no_sigma_in_coef else sigma2), 0.0)
    coef = coef2 if no_sqrt else coef2**0.5
    return ab_s**0.5 * x0_hat + coef * eps_hat + (sigma2 if var_as_std else sigma) * noise


def _ddim_reference(x_t, eps_hat, ab_t, ab_s, eta, noise):
    return _step(x_t, eps_hat, ab_t, ab_s, eta, noise)


def _ddim_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    ab = Schedule.linear().alpha_bars
    cases = []
    for label, t, s, eta in [("t = 1000 -> s = 889, eta = 0", 1000, 889, 0.0),
                             ("t = 445 -> s = 334, eta = 1", 445, 334, 1.0),
                             ("t = 223 -> s = 112, eta = 0.5", 223, 112, 0.5),
                             ("t = 112 -> s = 1, eta = 0.3", 112, 1, 0.3),
                             ("the last step t = 1 -> s = 0 (alpha_bar_0 = 1), eta = 1", 1, 0, 1.0)]:
        cases.append(Case(label, {"x_t": torch.randn(4, 3, generator=g, dtype=torch.float64),
                                  "eps_hat": torch.randn(4, 3, generator=g, dtype=torch.float64),
                                  "ab_t": float(ab[t]), "ab_s": float(ab[s]), "eta": eta,
                                  "noise": torch.randn(4, 3, generator=g, dtype=torch.float64)}))
    return cases


def check_ddim_step(student) -> bool:
    """Exercise: ``ddim_step(x_t, eps_hat, ab_t, ab_s, eta, noise)`` returns x_s of Eq. (eq-fast-ddim): x0_hat from
    x_t and eps_hat, then sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sigma^2) eps_hat + sigma * noise with
    sigma^2 = eta^2 (1 - ab_s)/(1 - ab_t) (1 - ab_t/ab_s). ``ab_t``, ``ab_s`` are floats (ab_s = 1 for s = 0)."""
    mistakes = [
        Mistake(lambda **kw: _step(**kw, eta_twice=True),
                "eta is applied twice: sigma^2 already contains eta^2, so sigma = sqrt(sigma^2) with no further "
                "factor of eta."),
        Mistake(lambda **kw: _step(**kw, no_sqrt=True),
                "the weight of eps_hat is the square root sqrt(1 - ab_s - sigma^2), not 1 - ab_s - sigma^2."),
        Mistake(lambda **kw: _step(**kw, var_as_std=True),
                "the noise is scaled by sigma^2: scale it by the standard deviation sigma."),
        Mistake(lambda **kw: _step(**kw, no_sigma_in_coef=True),
                "the weight of eps_hat is sqrt(1 - ab_s - sigma^2): the fresh noise takes its variance sigma^2 "
                "from the old noise direction, so that the total stays 1 - ab_s."),
    ]
    return check_function("check_ddim_step", student, _ddim_reference, _ddim_cases(), mistakes=mistakes,
                          hint="x0_hat = (x_t - sqrt(1 - ab_t) eps_hat)/sqrt(ab_t); x_s = sqrt(ab_s) x0_hat + "
                               "sqrt(1 - ab_s - sigma^2) eps_hat + sigma z (DDIM, Eq. 12 of Song et al.).",
                          rtol=1e-9, atol=1e-10)
