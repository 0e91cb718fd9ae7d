"""Checkers for chapter 7, score matching and Langevin dynamics."""
from __future__ import annotations

import math

import torch

from ..schedules import Schedule
from ._checker import Case, Mistake, check_function

__all__ = ["check_score_from_eps", "check_tweedie_x0", "check_langevin_step"]


def _ab(alpha_bars, t, x):
    return alpha_bars[t].to(x.dtype)


def _score_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    sched = Schedule.linear()
    cases = []
    for t, label in [(200, "t = 200"), (1, "t = 1, the first step (tiny noise)"), (1000, "t = T = 1000")]:
        cases.append(Case(label, {"eps": torch.randn(4, 2, generator=g, dtype=torch.float64), "t": t,
                                  "alpha_bars": sched.alpha_bars}))
    return cases


def check_score_from_eps(student) -> bool:
    """Exercise (chapter 7): ``score_from_eps(eps, t, alpha_bars)`` turns a noise prediction into a score,
    s = -eps / sqrt(1 - alpha_bar_t) (Eq. eq-sm-eps-score)."""
    mistakes = [
        Mistake(lambda eps, t, alpha_bars: eps / (1 - _ab(alpha_bars, t, eps)).sqrt(),
                "wrong sign: the score points towards higher density, against the noise that was added."),
        Mistake(lambda eps, t, alpha_bars: -eps,
                "the score has units of 1 / (noise std): divide by sqrt(1 - alpha_bar_t)."),
        Mistake(lambda eps, t, alpha_bars: -eps / (1 - _ab(alpha_bars, t, eps)),
                "divide by the standard deviation sqrt(1 - alpha_bar_t), not the variance: the score of "
                "N(mu, v) is -(x - mu) / v and x - mu = sqrt(v) eps."),
        Mistake(lambda eps, t, alpha_bars: -eps * (1 - _ab(alpha_bars, t, eps)).sqrt(),
                "you multiplied by sqrt(1 - alpha_bar_t); eps = -sqrt(1 - alpha_bar_t) s, so s = -eps / sqrt(...)."),
    ]
    return check_function("check_score_from_eps", student,
                          lambda eps, t, alpha_bars: -eps / (1 - _ab(alpha_bars, t, eps)).sqrt(), _score_cases(),
                          mistakes=mistakes, rtol=1e-9, atol=1e-10,
                          hint="grad log q(x_t | x_0) = -(x_t - sqrt(ab_t) x_0) / (1 - ab_t) = -eps / sqrt(1 - ab_t).")


def _tweedie_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)
    sched = Schedule.linear()
    cases = []
    for t, label in [(400, "t = 400"), (1, "t = 1, the first step"), (1000, "t = T = 1000 (x_t is nearly noise)")]:
        cases.append(Case(label, {"x_t": torch.randn(3, 2, generator=g, dtype=torch.float64),
                                  "t": t, "score": torch.randn(3, 2, generator=g, dtype=torch.float64),
                                  "alpha_bars": sched.alpha_bars}))
    return cases


def _tweedie(x_t, t, score, alpha_bars):
    ab = _ab(alpha_bars, t, x_t)
    return (x_t + (1 - ab) * score) / ab.sqrt()


def check_tweedie_x0(student) -> bool:
    """Exercise (chapter 7): ``tweedie_x0(x_t, t, score, alpha_bars)`` returns Tweedie's denoiser
    E[x_0 | x_t] = (x_t + (1 - alpha_bar_t) score) / sqrt(alpha_bar_t), given the score of q(x_t)."""
    mistakes = [
        Mistake(lambda x_t, t, score, alpha_bars: (x_t + (1 - _ab(alpha_bars, t, x_t)).sqrt() * score)
                / _ab(alpha_bars, t, x_t).sqrt(),
                "the score is multiplied by the noise variance 1 - alpha_bar_t, not by its square root "
                "(eps = -sqrt(1 - ab) s, and eps enters x_0 with another sqrt(1 - ab))."),
        Mistake(lambda x_t, t, score, alpha_bars: (x_t - (1 - _ab(alpha_bars, t, x_t)) * score)
                / _ab(alpha_bars, t, x_t).sqrt(),
                "wrong sign: moving along the score goes towards the data, so the score term is added."),
        Mistake(lambda x_t, t, score, alpha_bars: x_t + (1 - _ab(alpha_bars, t, x_t)) * score,
                "that is the denoised sqrt(alpha_bar_t) x_0: divide by sqrt(alpha_bar_t) to undo the scaling."),
        Mistake(lambda x_t, t, score, alpha_bars: (x_t + (1 - _ab(alpha_bars, t, x_t)) * score)
                / _ab(alpha_bars, t, x_t),
                "divide by sqrt(alpha_bar_t), the factor in front of x_0 in Eq. (4), not by alpha_bar_t."),
    ]
    return check_function("check_tweedie_x0", student, _tweedie, _tweedie_cases(), mistakes=mistakes,
                          rtol=1e-9, atol=1e-10,
                          hint="take E[. | x_t] of x_0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t) and use "
                               "E[eps | x_t] = -sqrt(1 - ab_t) grad log q(x_t).")


def _langevin_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)
    cases = []
    for delta, label in [(0.01, "step size 0.01"), (0.5, "step size 0.5"), (1e-4, "step size 1e-4")]:
        x = torch.randn(5, 2, generator=g, dtype=torch.float64)
        cases.append(Case(label, {"x": x, "score": -x / 0.04 + 0.3, "step_size": delta,
                                  "z": torch.randn(5, 2, generator=g, dtype=torch.float64)}))
    return cases


def check_langevin_step(student) -> bool:
    """Exercise (chapter 7): ``langevin_step(x, score, step_size, z)`` returns one step of Eq. (eq-sm-langevin),
    x + (step_size / 2) score + sqrt(step_size) z, given the score at x and the standard normal z."""
    mistakes = [
        Mistake(lambda x, score, step_size, z: x + step_size * score + math.sqrt(step_size) * z,
                "the drift is half the step size times the score: with delta, the noise variance is delta and the "
                "drift delta / 2 (this pairing makes p stationary)."),
        Mistake(lambda x, score, step_size, z: x + 0.5 * step_size * score + step_size * z,
                "the noise has variance delta, so its standard deviation is sqrt(delta)."),
        Mistake(lambda x, score, step_size, z: x - 0.5 * step_size * score + math.sqrt(step_size) * z,
                "wrong sign of the drift: Langevin dynamics climbs the log-density, along the score."),
        Mistake(lambda x, score, step_size, z: x + 0.5 * step_size * score,
                "without the noise term this is gradient ascent, which collapses onto a mode."),
    ]
    return check_function("check_langevin_step", student,
                          lambda x, score, step_size, z: x + 0.5 * step_size * score + math.sqrt(step_size) * z,
                          _langevin_cases(), mistakes=mistakes, rtol=1e-9, atol=1e-10,
                          hint="x_{k+1} = x_k + (delta / 2) grad log p(x_k) + sqrt(delta) z_k (Eq. eq-sm-langevin).")
