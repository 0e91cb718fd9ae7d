"""Ground truth for Gaussian data: the optimal noise predictor in closed form (a test and teaching oracle).

For x_0 ~ N(m, s^2 I) the marginal q(x_t) is N(sqrt(ab_t) m, (ab_t s^2 + 1 - ab_t) I) (Eq. 4), and the minimiser of
L_simple (Eq. 14) is the posterior mean E[eps | x_t] = sqrt(1 - ab_t) (x_t - sqrt(ab_t) m) / (ab_t s^2 + 1 - ab_t),
with ab_t = alpha-bar_t. The book derives it in chapter 6 and uses it wherever a model with known answers is needed.
"""
from __future__ import annotations

from typing import Callable

import torch

from .schedules import Schedule

__all__ = ["gaussian_eps_oracle"]


def gaussian_eps_oracle(schedule: Schedule, mean: float = 0.0, std: float = 1.0
                        ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The exact eps-predictor ``model(x_t, t)`` for data x_0 ~ N(mean, std^2 I) under ``schedule``.

    ``t`` has shape (B,) with the paper's values 1..T; the result has x_t's shape and dtype. ``std = 0`` is the point
    mass at ``mean``; ``mean = 0, std = 1`` gives eps* = sqrt(1 - ab_t) x_t.
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")
    mean, std = float(mean), float(std)
    if not std >= 0.0 or std == float("inf"):
        raise ValueError(f"std must be finite and >= 0, got {std}")

    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = schedule.check_t(t)
        if t.ndim != 1 or t.shape[0] != x_t.shape[0]:
            raise ValueError(f"t must have shape (B,) with B = x_t.shape[0] = {x_t.shape[0]}, got {tuple(t.shape)}")
        ab = schedule.alpha_bars.to(x_t.device)[t.to(x_t.device)].to(x_t.dtype)
        ab = ab.reshape(-1, *([1] * (x_t.ndim - 1)))
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * mean) / (ab * std**2 + 1 - ab)

    return model
