"""Checkers for chapter 1, the forward process."""
from __future__ import annotations

import torch

from ..schedules import Schedule
from ._checker import Case, Mistake, check_function

__all__ = ["check_q_sample"]


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
