"""Fast samplers: strided (respaced) ancestral sampling and DDIM (Song, Meng & Ermon 2021).

Both walk a decreasing subsequence tau_S > ... > tau_1 of the paper's timesteps instead of all T of them, with
the same trained model. With every step and ``eta = 1`` DDIM *is* Algorithm 2 with sigma_t^2 = beta~_t
(tested); with ``eta = 0`` it is deterministic (an ODE-like map from x_T to x_0, used for interpolation).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from tqdm import tqdm

from .diffusion import GaussianDiffusion, Model, randn
from .schedules import Schedule

__all__ = ["strided_timesteps", "ddim_sample", "respaced_betas", "respace"]


def strided_timesteps(T: int, num_steps: int, spacing: str = "uniform") -> list[int]:
    """An increasing subsequence of 1..T with ``num_steps`` entries that always contains 1 and T.

    ``spacing="uniform"`` spaces them evenly in t; ``"quadratic"`` packs them near t = 1 (as in the DDIM paper's
    CIFAR-10 experiments), where the data's details are decided.
    """
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or not 1 <= num_steps <= T:
        raise ValueError(f"num_steps must be an int in 1..T={T}, got {num_steps!r}")
    if spacing not in ("uniform", "quadratic"):
        raise ValueError(f"spacing must be 'uniform' or 'quadratic', got {spacing!r}")
    if num_steps == 1:
        return [T]
    u = torch.linspace(0.0, 1.0, num_steps, dtype=torch.float64)
    if spacing == "quadratic":
        u = u**2
    ts = sorted({int(round(1 + float(v) * (T - 1))) for v in u})
    # rounding can merge neighbours; fill in so exactly num_steps distinct steps remain
    missing = [t for t in range(1, T + 1) if t not in ts]
    while len(ts) < num_steps:
        ts.append(missing.pop(0))
        ts.sort()
    return ts


def _check_timesteps(timesteps: Sequence[int], T: int) -> list[int]:
    ts = [int(t) for t in timesteps]
    if not ts or ts != sorted(set(ts)) or ts[0] < 1 or ts[-1] > T:
        raise ValueError(f"timesteps must be a strictly increasing sequence of ints in 1..{T}, got {list(timesteps)[:8]}...")
    return ts


@torch.no_grad()
def ddim_sample(diffusion: GaussianDiffusion, model: Model, shape: Sequence[int], num_steps: int = 50,
                eta: float = 0.0, timesteps: Optional[Sequence[int]] = None,
                generator: Optional[torch.Generator] = None, device=None, progress: bool = True,
                clip_denoised: Optional[bool] = None, x_start: Optional[torch.Tensor] = None) -> torch.Tensor:
    """DDIM sampling (Song et al. 2021, Eq. 12) over a strided subsequence tau of the paper's timesteps.

    x_{s} = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sigma^2) eps_hat + sigma z, s the previous step in tau (0 at the
    end), sigma^2 = eta^2 (1 - ab_s)/(1 - ab_t) (1 - ab_t/ab_s). eps_hat is recomputed from the (clipped) x0_hat so
    that it is consistent with x_t. ``eta=0``: deterministic; ``eta=1`` with all T steps: Algorithm 2 with beta~.

    Args:
        diffusion: gives the schedule and the model's parameterization (any of eps / x0 / mean).
        num_steps: how many steps (ignored when ``timesteps`` is given).
        timesteps: an explicit increasing subsequence of 1..T (default :func:`strided_timesteps`).
        x_start: start from this x_T instead of drawing it (shape ``shape``).
    Returns: x_0 of shape ``shape``.
    """
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta < 0:
        raise ValueError(f"eta must be a finite float >= 0 (0 = deterministic DDIM), got {eta!r}")
    T = diffusion.T
    ts = _check_timesteps(timesteps, T) if timesteps is not None else strided_timesteps(T, num_steps)
    if device is None:
        try:
            device = next(model.parameters()).device  # type: ignore[union-attr]
        except (AttributeError, StopIteration):
            device = x_start.device if x_start is not None else torch.device("cpu")
    x = randn(shape, generator, device) if x_start is None else x_start.to(device)
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"x_start must have shape {tuple(shape)}, got {tuple(x.shape)}")
    ab = diffusion.schedule.alpha_bars
    prevs = [0] + ts[:-1]
    for t_val, s_val in tqdm(list(zip(ts, prevs))[::-1], desc="ddim", disable=not progress, leave=False):
        t = torch.full((x.shape[0],), t_val, dtype=torch.long, device=x.device)
        out = diffusion.p_mean_variance(model, x, t, clip_denoised)
        x0_hat = out["pred_x0"]
        eps_hat = diffusion.predict_eps_from_x0(x, t, x0_hat)
        ab_t, ab_s = ab[t_val].item(), ab[s_val].item()
        sigma2 = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
        noise = randn(x.shape, generator, x.device, x.dtype)
        x = ab_s**0.5 * x0_hat + max(1 - ab_s - sigma2, 0.0) ** 0.5 * eps_hat + sigma2**0.5 * noise
    if not torch.isfinite(x).all():  # off the CPU the per-step checks are skipped: one check at the end
        raise FloatingPointError("the model's output became non-finite (NaN or inf) during DDIM sampling; check "
                                 "the model (its weights may have diverged during training)")
    return x


def respaced_betas(schedule: Schedule, timesteps: Sequence[int]) -> torch.Tensor:
    """Betas of the forward process seen only at ``timesteps`` tau_1 < ... < tau_S (Nichol & Dhariwal 2021, Sec. 4):
    beta'_i = 1 - ab_{tau_i} / ab_{tau_{i-1}} (ab_{tau_0} = 1), so that alpha-bar is unchanged at the kept steps."""
    ts = _check_timesteps(timesteps, schedule.T)
    ab = schedule.alpha_bars[ts]
    ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    return 1 - ab / ab_prev


class _TimestepMap(torch.nn.Module):
    """Calls the original model with the original timestep tau_i when the respaced process asks for step i."""

    def __init__(self, model: Model, timesteps: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("table", torch.tensor([0] + list(timesteps), dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.table.to(i.device)[i])


def respace(diffusion: GaussianDiffusion, model: Model, timesteps: Sequence[int]):
    """Strided Algorithm 2: a :class:`GaussianDiffusion` over the respaced betas and the model re-indexed to it.

    Returns ``(respaced_diffusion, respaced_model)``; ``respaced_diffusion.sample(respaced_model, shape)`` runs
    ancestral sampling over S = len(timesteps) steps with the same variance choice as ``diffusion``.
    """
    ts = _check_timesteps(timesteps, diffusion.T)
    d = GaussianDiffusion(Schedule(respaced_betas(diffusion.schedule, ts), name=f"{diffusion.schedule.name}-respaced"),
                          parameterization=diffusion.parameterization, variance=diffusion.variance,
                          clip_denoised=diffusion.clip_denoised)
    return d, _TimestepMap(model, ts)
