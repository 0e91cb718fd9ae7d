"""Sampling: :func:`sample`, the one entry point for Algorithm 2, strided ancestral sampling and DDIM.

    x0 = ddpm_core.sample(model, diffusion, (64, 1, 8, 8))                     # Algorithm 2, all T steps
    x0 = ddpm_core.sample(model, diffusion, shape, steps=50)                   # strided Algorithm 2
    x0 = ddpm_core.sample(model, diffusion, shape, steps=50, sampler="ddim")   # DDIM, eta = 0
    res = ddpm_core.sample(model, diffusion, shape, record=[1000, 500, 1])     # progressive output (Sec. 4.3)

Strided and DDIM sampling walk a decreasing subsequence tau_S > ... > tau_1 of the paper's timesteps instead of
all T of them, with the same trained model. With every step and ``eta = 1`` DDIM *is* Algorithm 2 with
sigma_t^2 = beta~_t (tested); with ``eta = 0`` it is deterministic (an ODE-like map from x_T to x_0, used for
interpolation). :func:`respace` exposes the strided process itself (its betas, Nichol & Dhariwal 2021).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch
from tqdm import tqdm

from .diffusion import GaussianDiffusion, Model, randn
from .guidance import ClassifierFreeGuidance, ClassifierGuidance, bind_labels
from .schedules import Schedule

__all__ = ["SAMPLERS", "SampleResult", "sample", "strided_timesteps", "respaced_betas", "respace"]

SAMPLERS = ("ancestral", "ddim")


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


@dataclass
class SampleResult:
    """Output of :func:`sample` with ``record`` steps (progressive generation, Sec. 4.3).

    x0:      (B, ...) final samples.
    steps:   the recorded timesteps t (the paper's), in the order visited (descending).
    xt:      (len(steps), B, ...) the chain state x_t at each recorded t (before the step from t).
    pred_x0: (len(steps), B, ...) the model's prediction of x_0 from that x_t.
    """

    x0: torch.Tensor
    steps: list
    xt: torch.Tensor
    pred_x0: torch.Tensor


def _noise(shape: Sequence[int], generator, device, dtype, share: int) -> torch.Tensor:
    """N(0, I) of ``shape``; with ``share = k`` consecutive groups of k examples get the same draw."""
    if share == 1:
        return randn(shape, generator, device, dtype)
    z = randn((shape[0] // share, *shape[1:]), generator, device, dtype)
    return z.repeat_interleave(share, dim=0)


def _ddim_step(diffusion: GaussianDiffusion, model: Model, x: torch.Tensor, t_val: int, s_val: int, eta: float,
               z: torch.Tensor, clip_denoised: Optional[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """DDIM (Song et al. 2021, Eq. 12) from t to s < t: x_s = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sigma^2) eps_hat
    + sigma z, sigma^2 = eta^2 (1 - ab_s)/(1 - ab_t) (1 - ab_t/ab_s). eps_hat is recomputed from the (clipped)
    x0_hat so that it is consistent with x_t. Returns (x_s, x0_hat)."""
    t = torch.full((x.shape[0],), t_val, dtype=torch.long, device=x.device)
    x0_hat = diffusion.p_mean_variance(model, x, t, clip_denoised)["pred_x0"]
    eps_hat = diffusion.predict_eps_from_x0(x, t, x0_hat)
    ab = diffusion.schedule.alpha_bars
    ab_t, ab_s = ab[t_val].item(), ab[s_val].item()
    sigma2 = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    x = ab_s**0.5 * x0_hat + max(1 - ab_s - sigma2, 0.0) ** 0.5 * eps_hat + sigma2**0.5 * z
    return x, x0_hat


@torch.no_grad()
def sample(model: Model, diffusion: GaussianDiffusion, shape: Sequence[int], *, sampler: str = "ancestral",
           steps: Optional[int] = None, timesteps: Optional[Sequence[int]] = None, eta: float = 0.0,
           generator: Optional[torch.Generator] = None, device=None, x_start: Optional[torch.Tensor] = None,
           t_start: Optional[int] = None, record: Optional[Iterable[int]] = None, share_noise: int = 1,
           clip_denoised: Optional[bool] = None, progress: bool = False, y=None, guidance_scale: float = 0.0,
           classifier=None):
    """Draw samples x_0 from the reverse process, batched over ``shape[0]``.

    Args:
        model: ``model(x_t, t)`` with the paper's t; put it in eval mode yourself (dropout).
        diffusion: the :class:`~ddpm_core.GaussianDiffusion` the model was trained with.
        shape: (B, ...) of the samples.
        sampler: ``"ancestral"`` (Algorithm 2: x_{t-1} = mu_theta(x_t, t) + sigma_t z, z = 0 at t = 1) or
            ``"ddim"`` (Song et al. 2021, Eq. 12, noise scale ``eta``; ``eta=0`` is deterministic).
        steps: how many steps S (default all T); S < T walks :func:`strided_timesteps` (T, S). Ancestral sampling
            then runs the respaced process of :func:`respace`.
        timesteps: an explicit increasing subsequence of 1..T instead of ``steps``.
        eta: DDIM's noise scale (``sampler="ddim"`` only; with all T steps, ``eta=1`` is Algorithm 2 with beta~).
        generator: a ``torch.Generator`` for reproducible noise (its device is used to draw it).
        device: where to run; default the model's parameters' device (or x_start's, or CPU).
        x_start, t_start: start from a given x_{t_start} instead of x_T ~ N(0, I) (interpolation, Sec. 4.4, and
            reconstructions from x_t). t_start must be one of the visited timesteps (default T).
        record: timesteps t at which to keep x_t and the x_0 prediction (progressive generation, Sec. 4.3); they
            must be visited steps. With ``record`` a :class:`SampleResult` is returned.
        share_noise: k > 1 gives consecutive groups of k samples the same reverse-process noise z at every step
            (not the same x_T): samples then differ only through their start, e.g. frames of an interpolation.
        clip_denoised: clip x0_hat to [-1, 1] (default: the diffusion's setting).
        progress: show a tqdm progress bar.
        y: class labels for conditional sampling, an int (every sample) or an int64 tensor of shape (B,).
        guidance_scale: without ``classifier``, classifier-free guidance (Ho & Salimans 2022, Eq. 6) of a
            class-conditional network ``model(x_t, t, y)`` trained with label dropout: eps~ = (1 + w) eps(x_t, t, y)
            - w eps(x_t, t, null) with w = ``guidance_scale``; w = 0 is the plain conditional model, exactly.
            With ``classifier``, classifier guidance (Dhariwal & Nichol 2021, Alg. 2 for eps): eps~ = eps(x_t, t)
            - s sqrt(1 - ab_t) grad log p(y | x_t) with s = ``guidance_scale``; s = 0 is the unguided model.
            For exact models CFG at w equals classifier guidance at s = 1 + w (see :mod:`ddpm_core.guidance`).
        classifier: ``classifier(x_t, t) -> (B, K)`` logits of p(y | x_t), differentiable in x_t; ``model`` is
            then called as ``model(x_t, t)`` (for a conditional network: its null-label, unconditional output).
    Returns:
        x_0 of shape ``shape``, or a :class:`SampleResult` when ``record`` is given.

    The noise is drawn in a fixed order (x_T, then one z per step, also for DDIM with eta = 0), so a generator
    seeded alike gives the same samples as the step-by-step loop over :meth:`GaussianDiffusion.p_sample`.
    """
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a ddpm_core.GaussianDiffusion, got {type(diffusion).__name__} "
                        "(the order is sample(model, diffusion, shape))")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; allowed: {list(SAMPLERS)}")
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta < 0:
        raise ValueError(f"eta must be a finite number >= 0 (0 = deterministic DDIM), got {eta!r}")
    if eta != 0 and sampler != "ddim":
        raise ValueError("eta applies to sampler='ddim' only")
    if isinstance(share_noise, bool) or not isinstance(share_noise, int) or share_noise < 1:
        raise ValueError(f"share_noise must be an int >= 1, got {share_noise!r}")
    shape = tuple(int(n) for n in shape)
    if not shape or shape[0] % share_noise:
        raise ValueError(f"the batch size shape[0] must be a multiple of share_noise={share_noise}, got {shape}")
    if classifier is not None:
        if y is None:
            raise ValueError("classifier guidance needs the target classes y")
        model = ClassifierGuidance(model, classifier, y, guidance_scale, diffusion.schedule)
    elif y is not None:
        model = ClassifierFreeGuidance(bind_labels(model, y), bind_labels(model, None), guidance_scale)
    elif isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)) or guidance_scale != 0:
        raise ValueError(f"guidance_scale={guidance_scale!r} needs class labels y (and, for classifier guidance, a "
                         "classifier); without y leave it 0")
    T = diffusion.T
    if timesteps is not None and steps is not None:
        raise ValueError("pass steps or timesteps, not both")
    if timesteps is not None:
        ts = _check_timesteps(timesteps, T)
    else:
        ts = list(range(1, T + 1)) if steps is None else strided_timesteps(T, steps)
    t_start = ts[-1] if t_start is None else t_start
    if isinstance(t_start, bool) or not isinstance(t_start, int) or t_start not in ts:
        raise ValueError(f"t_start must be one of the visited timesteps (an int in 1..{T}"
                         f"{'' if len(ts) == T else ', on the strided grid'}), got {t_start!r}")
    ts = ts[:ts.index(t_start) + 1]
    record_set: set = set()
    if record is not None:
        record_set = {int(r) for r in record}
        bad = sorted(r for r in record_set if r not in ts)
        if bad:
            raise ValueError(f"record steps must be visited timesteps in 1..{t_start}, got {bad}")
    if device is None:
        try:
            device = next(model.parameters()).device  # type: ignore[union-attr]
        except (AttributeError, StopIteration):
            device = x_start.device if x_start is not None else torch.device("cpu")
    if x_start is None:
        x = randn(shape, generator, device, torch.float32)
    else:
        if tuple(x_start.shape) != shape:
            raise ValueError(f"x_start must have shape {shape}, got {tuple(x_start.shape)}")
        x = x_start.to(device)

    if sampler == "ancestral" and len(ts) < ts[-1]:      # strided: Algorithm 2 on the respaced process
        d, m = respace(diffusion, model, ts)
        index = {t_val: i + 1 for i, t_val in enumerate(ts)}
    else:
        d, m, index = diffusion, model, None
    prevs = [0] + ts[:-1]
    kept_steps, xts, x0s = [], [], []
    for t_val, s_val in tqdm(list(zip(ts, prevs))[::-1], desc=sampler, disable=not progress, leave=False):
        if sampler == "ancestral":
            i = t_val if index is None else index[t_val]
            z = _noise(x.shape, generator, x.device, x.dtype, share_noise)
            out = d.p_sample(m, x, torch.full((x.shape[0],), i, dtype=torch.long, device=x.device),
                             clip_denoised=clip_denoised, noise=z)
            x_next, x0_hat = out["sample"], out["pred_x0"]
        else:
            z = _noise(x.shape, generator, x.device, x.dtype, share_noise)
            x_next, x0_hat = _ddim_step(diffusion, model, x, t_val, s_val, float(eta), z, clip_denoised)
        if t_val in record_set:
            kept_steps.append(t_val)
            xts.append(x.detach().cpu())
            x0s.append(x0_hat.detach().cpu())
        x = x_next
    if not torch.isfinite(x).all():  # off the CPU the per-step checks are skipped: one check at the end
        raise FloatingPointError(f"the model's output became non-finite (NaN or inf) during {sampler} sampling; "
                                 "check the model (its weights may have diverged during training)")
    if record is None:
        return x
    empty = torch.empty(0, *x.shape)
    return SampleResult(x0=x, steps=kept_steps, xt=torch.stack(xts) if xts else empty,
                        pred_x0=torch.stack(x0s) if x0s else empty)
