"""Checkers for chapter 9, training on 2-D data: one step of Algorithm 1 and the moving average of the weights."""
from __future__ import annotations

import torch

from ..schedules import Schedule
from ._checker import Case, Mistake, check_function

__all__ = ["check_algorithm1_loss", "check_ema_update"]


class _FixedNet(torch.nn.Module):
    """A fixed stand-in for eps_theta(x_t, t): depends on both arguments, so a wrong x_t or a wrong t shows."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * x + 0.3 * torch.tanh(x.flip(-1)) + 1e-3 * t.to(x.dtype)[:, None]


def _loss_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)
    net = _FixedNet()
    cases = []
    for label, sched, t in [
        ("paper's schedule, t = 1..T mixed", Schedule.linear(), torch.tensor([1, 7, 250, 500, 999, 1000])),
        ("the chapter's T = 100 schedule, random t", Schedule.linear(100, 1e-3, 0.2), torch.randint(1, 101, (6,), generator=g)),
        ("t = 1 only (the smallest noise)", Schedule.linear(), torch.ones(4, dtype=torch.long)),
    ]:
        x0 = torch.randn(len(t), 2, generator=g)
        noise = torch.randn(len(t), 2, generator=g)
        cases.append(Case(label, {"model": net, "x0": x0, "t": t, "noise": noise, "alpha_bars": sched.alpha_bars}))
    return cases


def _xt(x0, t, noise, alpha_bars, shift=0, root=True):
    ab = alpha_bars[t - shift].to(x0.dtype)[:, None]
    return (ab.sqrt() * x0 + (1 - ab).sqrt() * noise) if root else (ab * x0 + (1 - ab) * noise)


def _loss_reference(model, x0, t, noise, alpha_bars):
    return ((noise - model(_xt(x0, t, noise, alpha_bars), t)) ** 2).mean()


def check_algorithm1_loss(student) -> bool:
    """Exercise: ``algorithm1_loss(model, x0, t, noise, alpha_bars)`` returns the loss of one step of Algorithm 1:
    the squared error between ``noise`` and ``model(x_t, t)``, x_t from Eq. (4), averaged over the batch and the
    coordinates (what ``GaussianDiffusion.loss_simple`` returns). ``t`` has shape (B,) with values in 1..T and
    ``alpha_bars[t]`` is the paper's alpha-bar_t (index 0 is padding)."""
    mistakes = [
        Mistake(lambda model, x0, t, noise, alpha_bars: ((x0 - model(_xt(x0, t, noise, alpha_bars), t)) ** 2).mean(),
                "your loss regresses x0: in Algorithm 1 (line 5) the target is the noise eps that built x_t."),
        Mistake(lambda model, x0, t, noise, alpha_bars:
                ((noise - model(_xt(x0, t, noise, alpha_bars, shift=1), t)) ** 2).mean(),
                "your x_t uses alpha_bar_{t-1}: index alpha_bars with t itself (t runs over 1..T, index 0 is padding)."),
        Mistake(lambda model, x0, t, noise, alpha_bars:
                ((noise - model(_xt(x0, t, noise, alpha_bars), t - 1)) ** 2).mean(),
                "you feed the network t - 1: it is trained and sampled with the paper's t = 1..T as is."),
        Mistake(lambda model, x0, t, noise, alpha_bars:
                ((noise - model(_xt(x0, t, noise, alpha_bars, root=False), t)) ** 2).mean(),
                "x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps: the square roots are missing."),
        Mistake(lambda model, x0, t, noise, alpha_bars:
                ((noise - model(_xt(x0, t, noise, alpha_bars), t)) ** 2).sum(-1).mean(),
                "you sum over the coordinates: the paper's ||.||^2 is a sum, but loss_simple averages over the "
                "coordinates as well (a factor of the dimension, 2 here)."),
    ]
    return check_function("check_algorithm1_loss", student, _loss_reference, _loss_cases(), mistakes=mistakes,
                          hint="mean over batch and coordinates of (eps - model(sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, t))^2 "
                               "(Algorithm 1, line 5; Eq. 14).")


def _ema_cases() -> list[Case]:
    g = torch.Generator().manual_seed(19)
    cases = []
    for label, decay in [("decay 0.995 (the toy2d preset)", 0.995), ("decay 0.9999 (the paper)", 0.9999),
                         ("decay 0.5", 0.5), ("decay 0: the average is the current weights", 0.0)]:
        cases.append(Case(label, {"shadow": torch.randn(3, 4, generator=g), "params": torch.randn(3, 4, generator=g),
                                  "decay": decay}))
    return cases


def _ema_reference(shadow, params, decay):
    return decay * shadow + (1 - decay) * params


def check_ema_update(student) -> bool:
    """Exercise: ``ema_update(shadow, params, decay)`` returns the moving average after one update,
    theta_ema <- decay * theta_ema + (1 - decay) * theta (App. B; ``ddpm_core.train.EMA``). It must not modify its
    inputs in place."""
    mistakes = [
        Mistake(lambda shadow, params, decay: (1 - decay) * shadow + decay * params,
                "the decay is applied the wrong way round: the average keeps the fraction `decay` of itself and "
                "takes 1 - decay of the new weights (with decay 0.9999 it moves slowly)."),
        Mistake(lambda shadow, params, decay: decay * shadow + params,
                "the new weights enter with weight 1 - decay, not 1: the two weights of an average sum to one."),
        Mistake(lambda shadow, params, decay: params.clone(),
                "you return the current weights: the average mixes them into the old average."),
    ]
    cases = _ema_cases()
    originals = [{k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in c.kwargs.items()} for c in cases]
    ok = check_function("check_ema_update", student, _ema_reference, cases, mistakes=mistakes,
                        hint="theta_ema <- decay * theta_ema + (1 - decay) * theta.", quiet=True)
    for case, orig in zip(cases, originals):
        if not (torch.equal(case.kwargs["shadow"], orig["shadow"]) and torch.equal(case.kwargs["params"], orig["params"])):
            from ._checker import ExerciseFailed
            raise ExerciseFailed("check_ema_update", f"your function changed its inputs in place on the case "
                                 f"'{case.label}'", "return a new tensor (or work on a copy) instead of updating "
                                 "shadow or params in place, so that the checker's cases stay what they were.")
    print(f"check_ema_update: correct on all {len(cases)} cases.")
    return ok
