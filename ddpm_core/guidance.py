"""Conditional sampling: class labels bound to a network, classifier guidance and classifier-free guidance.

Both guidance modes follow from Bayes' rule on scores, grad log p(x_t | y) = grad log p(x_t) + grad log p(y | x_t),
with eps = -sqrt(1 - ab_t) grad log p(x_t) (Tweedie; Song et al. 2021). Scaling the classifier's term gives

    classifier guidance (Dhariwal & Nichol 2021, Sec. 4 / Alg. 2, written for eps):
        eps~(x_t, t) = eps(x_t, t) - s sqrt(1 - ab_t) grad_x log p_phi(y | x_t)
    classifier-free guidance (Ho & Salimans 2022, Eq. 6):
        eps~(x_t, t) = (1 + w) eps(x_t, t, y) - w eps(x_t, t, null)

Scale conventions (used everywhere in this package): ``s`` as in Dhariwal & Nichol, s = 0 is the unguided model and
s = 1 the exact conditional p(x_t | y) when eps and the classifier are exact; ``w`` as in Ho & Salimans, w = 0 is the
plain conditional model (other libraries write gamma = 1 + w). With exact models, CFG at w equals classifier
guidance at s = 1 + w with the implicit classifier p(y | x_t) = p(x_t | y) p(y) / p(x_t): both are
grad log p(x_t) + (1 + w) grad log p(y | x_t). For any scale above those values the guided process samples a
sharpened distribution, not p(x | y).

Every wrapper here returns a ``model(x_t, t)`` callable (an ``nn.Module``), so the samplers, the respacing of
strided sampling and the objectives need to know nothing about labels: :func:`ddpm_core.sample` and
:func:`ddpm_core.loss` take ``y=`` and use these wrappers.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Union

import torch
from torch import nn

from .mixtures import GaussianMixture
from .schedules import Schedule

__all__ = ["LabelBound", "bind_labels", "cfg_eps", "classifier_guided_eps", "ClassifierFreeGuidance",
           "ClassifierGuidance", "mixture_classifier", "mixture_conditional"]

Labels = Union[int, torch.Tensor, None]
EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_scale(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _labels(y: Labels, x: torch.Tensor) -> Optional[torch.Tensor]:
    """y as a (B,) int64 tensor on x's device (an int is broadcast); None stays None."""
    if y is None:
        return None
    if isinstance(y, bool):
        raise TypeError("y must be an int, an int64 tensor of shape (B,) or None, got a bool")
    if isinstance(y, int):
        return torch.full((x.shape[0],), y, dtype=torch.int64, device=x.device)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be an int, an int64 tensor of shape (B,) or None, got {type(y).__name__}")
    if y.ndim == 0:
        y = y.expand(x.shape[0])
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape (B,) = ({x.shape[0]},), got {tuple(y.shape)}")
    return y.to(x.device)


class LabelBound(nn.Module):
    """``model(x_t, t, y)`` with the labels fixed: called as ``(x_t, t)``. ``y=None`` is the null label (the
    network's unconditional output). The labels are an int (the same for every example) or a (B,) tensor."""

    def __init__(self, model: nn.Module, y: Labels) -> None:
        super().__init__()
        if not callable(model):
            raise TypeError(f"model must be callable as model(x_t, t, y), got {type(model).__name__}")
        if y is not None and not isinstance(y, (int, torch.Tensor)) or isinstance(y, bool):
            raise TypeError(f"y must be an int, an int64 tensor of shape (B,) or None, got {type(y).__name__}")
        self.model = model
        self.y = y

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model(x, t, _labels(self.y, x))


def bind_labels(model: nn.Module, y: Labels) -> LabelBound:
    """The conditional network with its labels bound: a ``model(x_t, t)`` callable (see :class:`LabelBound`)."""
    return LabelBound(model, y)


def cfg_eps(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022, Eq. 6): (1 + w) eps(x_t, y) - w eps(x_t, null).
    Shapes (B, ...) each; w = 0 returns ``eps_cond`` itself."""
    w = _check_scale("w", w)
    if eps_cond.shape != eps_uncond.shape:
        raise ValueError(f"eps_cond and eps_uncond must have the same shape, got {tuple(eps_cond.shape)} and "
                         f"{tuple(eps_uncond.shape)}")
    if w == 0:
        return eps_cond
    return (1 + w) * eps_cond - w * eps_uncond


def classifier_guided_eps(eps: torch.Tensor, grad_log_prob: torch.Tensor, alpha_bar: torch.Tensor,
                          s: float) -> torch.Tensor:
    """Classifier guidance for eps (Dhariwal & Nichol 2021, Alg. 2 and Sec. 4.2):
    eps - s sqrt(1 - ab_t) grad_x log p(y | x_t). eps, grad_log_prob: (B, ...); alpha_bar: broadcastable to them
    (e.g. ``schedule.gather(schedule.alpha_bars, t, x)``). s = 0 returns ``eps`` itself."""
    s = _check_scale("s", s)
    if eps.shape != grad_log_prob.shape:
        raise ValueError(f"eps and grad_log_prob must have the same shape, got {tuple(eps.shape)} and "
                         f"{tuple(grad_log_prob.shape)}")
    if s == 0:
        return eps
    alpha_bar = torch.as_tensor(alpha_bar, dtype=eps.dtype, device=eps.device)
    if (alpha_bar < 0).any() or (alpha_bar > 1).any():
        raise ValueError("alpha_bar must lie in [0, 1]")
    return eps - s * (1 - alpha_bar).sqrt() * grad_log_prob.to(eps.dtype)


class ClassifierFreeGuidance(nn.Module):
    """eps~(x_t, t) = (1 + w) cond(x_t, t) - w uncond(x_t, t) (Ho & Salimans 2022, Eq. 6).

    cond, uncond: ``(x_t, t) -> eps`` callables, e.g. ``bind_labels(net, y)`` and ``bind_labels(net, None)`` of one
    conditional network trained with label dropout, or exact eps-oracles. At w = 0 ``uncond`` is never called and
    the output is exactly ``cond``'s.
    """

    def __init__(self, cond: EpsModel, uncond: EpsModel, w: float) -> None:
        super().__init__()
        if not callable(cond) or not callable(uncond):
            raise TypeError("cond and uncond must be callables (x_t, t) -> eps")
        self.cond, self.uncond, self.w = cond, uncond, _check_scale("w", w)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps_c = self.cond(x, t)
        if self.w == 0:
            return eps_c
        return cfg_eps(eps_c, self.uncond(x, t), self.w)


class ClassifierGuidance(nn.Module):
    """eps~(x_t, t) = eps(x_t, t) - s sqrt(1 - ab_t) grad_x log p_phi(y | x_t) (Dhariwal & Nichol 2021, Alg. 2).

    model: ``(x_t, t) -> eps``. classifier: ``(x_t, t) -> logits or log-probabilities`` of shape (B, K) (the
    gradient of log_softmax is taken, so either works), differentiable in x_t. y: the target class, an int or a
    (B,) tensor. schedule: the diffusion's schedule (its alpha-bar at the paper's t). At s = 0 the classifier is
    never called and the output is exactly ``model``'s.
    """

    def __init__(self, model: EpsModel, classifier: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 y: Labels, s: float, schedule: Schedule) -> None:
        super().__init__()
        if not callable(model) or not callable(classifier):
            raise TypeError("model and classifier must be callables of (x_t, t)")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")
        if y is None:
            raise ValueError("classifier guidance needs the target class y (an int or a (B,) tensor)")
        self.model, self.classifier, self.y, self.schedule = model, classifier, y, schedule
        self.s = _check_scale("s", s)

    def grad_log_prob(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """grad_x log p_phi(y | x_t), shape of x (autograd, also inside ``torch.no_grad``)."""
        y = _labels(self.y, x)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            logits = self.classifier(xg, t)
            if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
                raise ValueError(f"the classifier must return (B, K) logits, got {tuple(logits.shape)}")
            if (y < 0).any() or (y >= logits.shape[1]).any():
                raise ValueError(f"y must hold classes in 0..{logits.shape[1] - 1}, got {y.unique().tolist()}")
            log_p = torch.log_softmax(logits, dim=1).gather(1, y[:, None]).sum()
            (grad,) = torch.autograd.grad(log_p, xg)
        return grad.to(x.dtype)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = self.model(x, t)
        if self.s == 0:
            return eps
        ab = self.schedule.gather(self.schedule.alpha_bars, t.to(torch.long), eps)
        return classifier_guided_eps(eps, self.grad_log_prob(x, t), ab, self.s)


def mixture_classifier(mixture: GaussianMixture, schedule: Schedule
                       ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The exact noisy classifier of a Gaussian mixture whose components are the classes: ``(x_t, t) ->
    log p(k | x_t)``, shape (B, K), differentiable in x_t (float64 inside, returned in x_t's dtype)."""
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")

    def classifier(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = schedule.alpha_bars[schedule.check_t(t).cpu()].to(x_t.device)
        return mixture.posterior(x_t, ab).log().to(x_t.dtype)

    return classifier


def mixture_conditional(mixture: GaussianMixture, k: int) -> GaussianMixture:
    """p(x_0 | y = k) of a mixture whose components are the classes: component k alone (a one-component
    GaussianMixture, so its ``eps_oracle`` is the exact conditional eps at every t)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < mixture.K:
        raise ValueError(f"k must be a class in 0..{mixture.K - 1}, got {k!r}")
    return GaussianMixture([1.0], mixture.means[k:k + 1], mixture.stds[k:k + 1])
