"""The training objectives of Ho et al. (2020) as one family: L_simple, the true bound L_vlb, and their hybrid.

    ddpm_core.loss(diffusion, model, x0)                       # L_simple, Eq. (14): the paper's choice
    ddpm_core.loss(diffusion, model, x0, objective="vlb")      # the true variational bound L, Eq. (5), bits/dim
    ddpm_core.loss(diffusion, model, x0, objective="hybrid")   # L_simple + lambda L_vlb (Nichol & Dhariwal 2021)

Every objective is an unbiased single-sample estimate over t ~ U{1, ..., T} and eps ~ N(0, I) (Algorithm 1), one
draw per example, so a training step is the gradient of ``loss(...)`` on a batch. The training engine
(:class:`ddpm_core.train.Trainer`) calls this function; nothing else in the package computes a training loss.
"""
from __future__ import annotations

from typing import Optional

import torch

from .diffusion import GaussianDiffusion, Model, _check_finite, _check_like, randn
from .guidance import bind_labels
from .likelihood import DECODERS, prior_bpd, vb_term_bpd
from .losses import mean_flat

__all__ = ["OBJECTIVES", "loss"]

OBJECTIVES = ("simple", "vlb", "hybrid")


def _simple(diffusion: GaussianDiffusion, model: Model, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
            xt: torch.Tensor) -> torch.Tensor:
    """Per-example L_simple: mean over dimensions of (target - model(x_t, t))^2. Shape (B,)."""
    if diffusion.parameterization == "eps":
        target = noise
    elif diffusion.parameterization == "x0":
        target = x0
    else:
        target = diffusion.q_posterior(x0, xt, t)[0]
    out = model(xt, t)
    if not isinstance(out, torch.Tensor) or out.shape != x0.shape:
        raise ValueError(f"model output must be shaped like x_0 {tuple(x0.shape)}, "
                         f"got {getattr(out, 'shape', type(out).__name__)}")
    dtype = torch.promote_types(out.dtype, torch.float32)  # bf16 outputs are compared in float32
    return mean_flat((out.to(dtype) - target.to(dtype)) ** 2)


def _vlb(diffusion: GaussianDiffusion, model: Model, x0: torch.Tensor, t: torch.Tensor, xt: torch.Tensor,
         decoder: str) -> torch.Tensor:
    """Per-example L_T + T * (L_{t-1} at t, or L_0 at t = 1), in bits/dim, with the unclipped x_0 prediction."""
    term = vb_term_bpd(diffusion, model, x0, xt, t, clip_denoised=False, decoder=decoder)["term"]
    return prior_bpd(diffusion, x0) + diffusion.T * term


def loss(diffusion: GaussianDiffusion, model: Model, x0: torch.Tensor, *, objective: str = "simple",
         t: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None,
         generator: Optional[torch.Generator] = None, reduction: str = "mean", decoder: str = "discretized",
         vlb_weight: float = 1e-3, y: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A training objective of the DDPM family on a batch x_0 (B, ...), one (t, eps) draw per example.

    objective:
        ``"simple"``: L_simple (Eq. 14), E || eps - eps_theta(sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, t) ||^2 averaged
        over dimensions. For ``parameterization="x0"`` the regression target is x_0, for ``"mean"`` the posterior
        mean mu~_t (Eq. 7; the paper's "mu~, MSE" baseline of Table 2).

        ``"vlb"``: the true bound L of Eq. (5) in bits/dim, estimated as L_T + T * L_{t-1} (L_0 at t = 1) with
        t ~ U{1..T}: unbiased for L (the "true variational bound" rows of Tables 1-2). The x_0 prediction is not
        clipped, so :func:`ddpm_core.bits_per_dim` (whose default is also unclipped) reports the bound that
        was trained.

        ``"hybrid"``: L_simple + ``vlb_weight`` * L_vlb, with lambda = 0.001 as in Nichol & Dhariwal (2021). With
        this package's fixed variances both parts train the mean; L_T is a constant (no gradient).

    t, noise:
        the timesteps (B,) (paper's 1..T) and eps (shaped like x_0); drawn with ``generator`` when omitted.
        The same x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps feeds both parts of the hybrid.

    reduction:
        ``"mean"`` (a scalar) or ``"none"`` (shape (B,)).

    decoder:
        L_0 of the bound, ``"discretized"`` (Eq. 13, 8-bit data in [-1, 1]) or ``"gaussian"`` (continuous
        data); used by "vlb" and "hybrid".

    y:
        class labels (B,) int64 for a class-conditional network (``num_classes = K``; label K = no label, so
        label dropout is a replacement of labels by K): the network is called as ``model(x_t, t, y)``
        (through :func:`ddpm_core.guidance.bind_labels`). None: ``model(x_t, t)``.

    Returns a differentiable tensor.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; allowed: {list(OBJECTIVES)}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; allowed: {list(DECODERS)}")
    if isinstance(vlb_weight, bool) or not isinstance(vlb_weight, (int, float)) or not vlb_weight >= 0:
        raise ValueError(f"vlb_weight must be a number >= 0, got {vlb_weight!r}")
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a ddpm_core.GaussianDiffusion, got {type(diffusion).__name__}")
    _check_finite("x0", x0)
    if t is None:
        t = diffusion.sample_t(x0.shape[0], generator, x0.device)
    t = diffusion._t(t, x0)
    if noise is None:
        noise = randn(x0.shape, generator, x0.device, x0.dtype)
    _check_like("noise", noise, x0)
    xt = diffusion.q_sample(x0, t, noise)
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.shape != (x0.shape[0],):
            raise ValueError(f"y must be a tensor of labels of shape (B,) = ({x0.shape[0]},), got "
                             f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
        model = bind_labels(model, y)
    if objective == "simple":
        per_example = _simple(diffusion, model, x0, t, noise, xt)
    elif objective == "vlb":
        per_example = _vlb(diffusion, model, x0, t, xt, decoder)
    else:
        per_example = _simple(diffusion, model, x0, t, noise, xt) + vlb_weight * _vlb(diffusion, model, x0, t, xt,
                                                                                        decoder)
    return per_example.mean() if reduction == "mean" else per_example
