"""Exponential moving average of the parameters (App. B: decay 0.9999). Samples are drawn from the EMA weights."""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Keeps ``shadow``, a float32 copy of a model whose parameters follow theta_ema <- d theta_ema + (1 - d) theta.

    decay: d. warmup: if True, use min(d, (1 + n) / (10 + n)) at the n-th update, so that a short run is not
    dominated by the random initial weights (with d = 0.9999 the plain average needs ~10^4 steps to forget them).
    Buffers (if any) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay!r}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.shadow = copy.deepcopy(model).float().eval().requires_grad_(False)
        self.num_updates = 0

    def current_decay(self) -> float:
        """The decay used by the next update."""
        if self.warmup:
            return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """theta_ema <- lerp(theta_ema, theta, 1 - d), for every parameter, in one fused call per device."""
        d = self.current_decay()
        ema_params = list(self.shadow.parameters())
        params = [p.detach().float() for p in model.parameters()]
        if len(ema_params) != len(params):
            raise ValueError("model does not match the EMA copy (different number of parameters)")
        torch._foreach_lerp_(ema_params, params, 1.0 - d)
        for b_ema, b in zip(self.shadow.buffers(), model.buffers()):
            b_ema.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {"shadow": self.shadow.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict) -> None:
        self.shadow.load_state_dict(state["shadow"])
        self.num_updates = int(state["num_updates"])
