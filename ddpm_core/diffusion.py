"""The Gaussian diffusion of Ho et al. (2020): forward process, posterior, reverse process and Algorithm 2.

Timesteps follow the paper (t = 1..T, see :mod:`ddpm_core.schedules`). Tensors ``x`` have shape (B, ...) (images
(B, C, H, W), points (B, D)); ``t`` is an integer tensor of shape (B,). A *model* is any callable
``model(x_t, t) -> Tensor`` shaped like ``x_t``; what its output means is set by ``parameterization``:

* ``"eps"``  - it predicts the noise epsilon (Eq. 11; the paper's choice),
* ``"x0"``   - it predicts x_0 directly,
* ``"mean"`` - it predicts the reverse mean mu_theta(x_t, t) directly (the paper's mu~-prediction baseline).

The reverse variance sigma_t^2 is fixed (Sec. 3.2): ``"beta"`` (sigma_t^2 = beta_t, optimal for x_0 ~ N(0, I))
or ``"beta_tilde"`` (sigma_t^2 = beta~_t, optimal for x_0 a single point).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import torch
from tqdm import tqdm

from .losses import mean_flat
from .schedules import Schedule

__all__ = ["GaussianDiffusion", "SampleResult", "PARAMETERIZATIONS", "VARIANCES"]

PARAMETERIZATIONS = ("eps", "x0", "mean")
VARIANCES = ("beta", "beta_tilde")
Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def randn(shape: Sequence[int], generator: Optional[torch.Generator] = None, device=None,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise drawn with ``generator`` (on the generator's own device) and moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=gen_device, dtype=dtype).to(device)


def _check_finite(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{name} must have a batch dimension, shape (B, ...); got a 0-d tensor (use "
                         f"{name}.reshape(1, -1) for a single scalar example)")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one example; got batch size 0, shape {tuple(x.shape)}")
    # Value checks read the data back to the host; on an accelerator that would stall every training step, so
    # they run for CPU tensors only (shape and dtype checks run everywhere).
    if x.device.type == "cpu" and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _check_like(name: str, y: torch.Tensor, x: torch.Tensor) -> None:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.shape != x.shape:
        raise ValueError(f"{name} must have the same shape as x, {tuple(x.shape)}; got {tuple(y.shape)}")
    if y.device != x.device:
        raise ValueError(f"{name} is on device {y.device} but x is on {x.device}; move it with .to(x.device)")
    _check_finite(name, y)


def _check_model_output(out: torch.Tensor, t: torch.Tensor) -> None:
    """A model whose output is NaN or inf makes every later x_t non-finite: name the model and the step."""
    if out.device.type == "cpu" and not torch.isfinite(out).all():
        steps = sorted({int(v) for v in t.tolist()})
        raise FloatingPointError(f"the model's output became non-finite (NaN or inf) at step t = "
                                 f"{steps[0] if len(steps) == 1 else steps}; check the model (its weights may "
                                 "have diverged during training) and the sampler's settings")


@dataclass
class SampleResult:
    """Output of :meth:`GaussianDiffusion.sample` with ``record`` steps.

    x0:      (B, ...) final samples.
    steps:   the recorded timesteps t, in the order visited (descending).
    xt:      (len(steps), B, ...) the chain state x_t at each recorded t (before the step to t - 1).
    pred_x0: (len(steps), B, ...) the model's prediction of x_0 from that x_t (progressive generation, Sec. 4.3).
    """

    x0: torch.Tensor
    steps: list
    xt: torch.Tensor
    pred_x0: torch.Tensor


class GaussianDiffusion:
    """Forward and reverse Gaussian diffusion over a :class:`Schedule`.

    Args:
        schedule: the variance schedule; default the paper's linear schedule with T = 1000.
        parameterization: what the model predicts, one of ``PARAMETERIZATIONS`` (default ``"eps"``).
        variance: fixed reverse variance, one of ``VARIANCES`` (default ``"beta"``, the CIFAR-10 choice).
        clip_denoised: clip the x_0 prediction to [-1, 1] when computing the reverse mean (as the official code
            does for images). Set ``False`` for data that is not bounded (e.g. 2-D toys).
    """

    def __init__(self, schedule: Optional[Schedule] = None, parameterization: str = "eps",
                 variance: str = "beta", clip_denoised: bool = True) -> None:
        if schedule is None:
            schedule = Schedule.linear()
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a ddpm_core.Schedule, got {type(schedule).__name__}")
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"unknown parameterization {parameterization!r}; allowed: {list(PARAMETERIZATIONS)}")
        if variance not in VARIANCES:
            raise ValueError(f"unknown variance {variance!r}; allowed: {list(VARIANCES)}")
        self.schedule = schedule
        self.parameterization = parameterization
        self.variance = variance
        self.clip_denoised = bool(clip_denoised)
        s = schedule
        # log sigma_t^2 of the reverse process. "beta" follows the official code's "fixedlarge": at t = 1 it uses
        # beta~_2 instead of beta_1 so that the decoder's variance is not needlessly large.
        if variance == "beta":
            logvar = torch.log(s.betas.clamp(min=1e-300))
            logvar[1] = s.log_beta_tildes_clipped[1]
        else:
            logvar = s.log_beta_tildes_clipped.clone()
        logvar[0] = float("-inf")
        self.model_log_variances = logvar
        self.model_variances = logvar.exp()

    def __repr__(self) -> str:
        return (f"GaussianDiffusion({self.schedule!r}, parameterization={self.parameterization!r}, "
                f"variance={self.variance!r}, clip_denoised={self.clip_denoised})")

    @property
    def T(self) -> int:
        return self.schedule.T

    def _g(self, name: str, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.schedule.gather(name, t, x)

    def _t(self, t, x: torch.Tensor, *, allow_zero: bool = False) -> torch.Tensor:
        """Accept an int or a (B,) integer tensor; return a (B,) long tensor on x's device, checked."""
        if isinstance(t, int) and not isinstance(t, bool):
            t = torch.full((x.shape[0],), t, dtype=torch.long)
        self.schedule.check_t(t, allow_zero=allow_zero)
        if t.ndim != 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f"t must have shape (B,) with B = x.shape[0] = {x.shape[0]}, got {tuple(t.shape)}")
        return t.to(device=x.device, dtype=torch.long)

    def sample_t(self, batch_size: int, generator: Optional[torch.Generator] = None, device=None) -> torch.Tensor:
        """t ~ Uniform{1, ..., T}, shape (batch_size,) (Algorithm 1, line 3)."""
        gen_device = generator.device if generator is not None else device
        return torch.randint(1, self.T + 1, (batch_size,), generator=generator, device=gen_device).to(device)

    # ---- forward process ------------------------------------------------------------------------------------
    def q_mean_variance(self, x0: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean sqrt(alpha_bar_t) x_0 and variance (1 - alpha_bar_t) of q(x_t | x_0) (Eq. 4). Shapes (B, ...), (B, 1, ...)."""
        _check_finite("x0", x0)
        t = self._t(t, x0, allow_zero=True)
        ab = self._g("alpha_bars", t, x0)
        return ab.sqrt() * x0, 1.0 - ab

    def q_sample(self, x0: torch.Tensor, t, noise: Optional[torch.Tensor] = None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw x_t ~ q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (Eq. 4), i.e.
        x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. t = 0 returns x_0. Shape (B, ...)."""
        _check_finite("x0", x0)
        t = self._t(t, x0, allow_zero=True)
        if noise is None:
            noise = randn(x0.shape, generator, x0.device, x0.dtype)
        _check_like("noise", noise, x0)
        ab = self._g("alpha_bars", t, x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def q_step_sample(self, x_prev: torch.Tensor, t, noise: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """One forward step x_t ~ q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I) (Eq. 2)."""
        _check_finite("x_prev", x_prev)
        t = self._t(t, x_prev)
        if noise is None:
            noise = randn(x_prev.shape, generator, x_prev.device, x_prev.dtype)
        _check_like("noise", noise, x_prev)
        return self._g("alphas", t, x_prev).sqrt() * x_prev + self._g("betas", t, x_prev).sqrt() * noise

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The forward posterior q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) (Eq. 6-7); at
        x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t) its mean is the target of Eq. (9).

        mu~_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t.
        Returns (mean (B, ...), variance (B, 1, ...), clipped log-variance (B, 1, ...)). At t = 1, beta~_1 = 0 and
        the mean is x_0 exactly; the log-variance is clipped to log beta~_2 there, as in the official code.
        """
        _check_finite("x0", x0)
        _check_finite("xt", xt)
        _check_like("xt", xt, x0)
        t = self._t(t, x0)
        mean = self._g("posterior_coef_x0", t, x0) * x0 + self._g("posterior_coef_xt", t, x0) * xt
        return mean, self._g("beta_tildes", t, x0), self._g("log_beta_tildes_clipped", t, x0)

    # ---- parameterizations (Sec. 3.2) -----------------------------------------------------------------------
    def predict_x0_from_eps(self, xt: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """Invert Eq. (4): x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)."""
        t = self._t(t, xt)
        ab = self._g("alpha_bars", t, xt)
        return (xt - (1.0 - ab).sqrt() * eps) / ab.sqrt()

    def predict_eps_from_x0(self, xt: torch.Tensor, t, x0: torch.Tensor) -> torch.Tensor:
        """Invert Eq. (4) for the noise: eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)."""
        t = self._t(t, xt)
        ab = self._g("alpha_bars", t, xt)
        return (xt - ab.sqrt() * x0) / (1.0 - ab).sqrt()

    def mean_from_eps(self, xt: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """Eq. (11): mu_theta = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t); with the true noise eps
        it is the target of Eqs. (9)-(10), the posterior mean mu~_t(x_t, x_0(x_t, eps))."""
        t = self._t(t, xt)
        b, a, ab = self._g("betas", t, xt), self._g("alphas", t, xt), self._g("alpha_bars", t, xt)
        return (xt - b / (1.0 - ab).sqrt() * eps) / a.sqrt()

    def x0_from_mean(self, xt: torch.Tensor, t, mean: torch.Tensor) -> torch.Tensor:
        """Invert Eq. (7) for x_0 given the posterior mean: x_0 = (mu - coef_xt x_t) / coef_x0."""
        t = self._t(t, xt)
        return (mean - self._g("posterior_coef_xt", t, xt) * xt) / self._g("posterior_coef_x0", t, xt)

    def model_variance(self, t, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sigma_t^2 and log sigma_t^2 of p_theta(x_{t-1} | x_t), shaped (B, 1, ...) (Sec. 3.2)."""
        t = self._t(t, x)
        lv = self.schedule.gather(self.model_log_variances, t, x)
        return lv.exp(), lv

    def p_mean_variance(self, model: Model, xt: torch.Tensor, t, clip_denoised: Optional[bool] = None) -> dict:
        """Mean and variance of the reverse step p_theta(x_{t-1} | x_t) (Eq. 1 with Sec. 3.2's parameterization).

        Returns a dict with ``mean`` (B, ...), ``variance`` and ``log_variance`` (B, 1, ...), ``pred_x0`` (B, ...),
        ``pred_eps`` (B, ...) and the raw ``model_output``.
        """
        _check_finite("xt", xt)
        t = self._t(t, xt)
        clip = self.clip_denoised if clip_denoised is None else clip_denoised
        out = model(xt, t)
        if not isinstance(out, torch.Tensor) or out.shape != xt.shape:
            raise ValueError(f"model output must be a tensor shaped like x_t {tuple(xt.shape)}, "
                             f"got {getattr(out, 'shape', type(out).__name__)}")
        _check_model_output(out, t)
        out = out.to(xt.dtype)
        if self.parameterization == "mean":
            mean = out
            pred_x0 = self.x0_from_mean(xt, t, mean)
        else:
            pred_x0 = self.predict_x0_from_eps(xt, t, out) if self.parameterization == "eps" else out
            if clip:
                pred_x0 = pred_x0.clamp(-1.0, 1.0)
            mean = self._g("posterior_coef_x0", t, xt) * pred_x0 + self._g("posterior_coef_xt", t, xt) * xt
        var, logvar = self.model_variance(t, xt)
        pred_eps = out if self.parameterization == "eps" else self.predict_eps_from_x0(xt, t, pred_x0)
        return {"mean": mean, "variance": var, "log_variance": logvar, "pred_x0": pred_x0,
                "pred_eps": pred_eps, "model_output": out}

    # ---- sampling (Algorithm 2) -----------------------------------------------------------------------------
    def p_sample(self, model: Model, xt: torch.Tensor, t, generator: Optional[torch.Generator] = None,
                 clip_denoised: Optional[bool] = None, noise: Optional[torch.Tensor] = None) -> dict:
        """One step of Algorithm 2: x_{t-1} = mu_theta(x_t, t) + sigma_t z, z ~ N(0, I), with z = 0 at t = 1.

        Returns the :meth:`p_mean_variance` dict plus ``sample`` = x_{t-1}.
        """
        t = self._t(t, xt)
        out = self.p_mean_variance(model, xt, t, clip_denoised)
        if noise is None:
            noise = randn(xt.shape, generator, xt.device, xt.dtype)
        nonzero = (t > 1).to(xt.dtype).reshape(-1, *([1] * (xt.ndim - 1)))
        out["sample"] = out["mean"] + nonzero * torch.exp(0.5 * out["log_variance"]) * noise
        return out

    @torch.no_grad()
    def sample(self, model: Model, shape: Sequence[int], generator: Optional[torch.Generator] = None,
               device=None, progress: bool = True, record: Optional[Iterable[int]] = None,
               x_start: Optional[torch.Tensor] = None, t_start: Optional[int] = None,
               clip_denoised: Optional[bool] = None):
        """Algorithm 2: ancestral sampling from x_T ~ N(0, I) down to x_0, batched over ``shape[0]``.

        Args:
            model: ``model(x_t, t)``; put it in eval mode yourself (dropout).
            shape: (B, ...) of the samples.
            generator: a ``torch.Generator`` for reproducible noise (its device is used to draw it).
            device: where to run; default the model's parameters' device (or CPU).
            progress: show a tqdm progress bar.
            record: timesteps t at which to keep x_t and the x_0 prediction (progressive generation, Sec. 4.3);
                only those steps are kept in memory. With ``record`` a :class:`SampleResult` is returned.
            x_start, t_start: start the chain from a given x_{t_start} instead of pure noise at T (used for
                interpolation, Sec. 4.4, and for reconstructions from x_t). Default: x_T ~ N(0, I), t_start = T.
        Returns:
            x_0 of shape ``shape``, or a :class:`SampleResult`.
        """
        if device is None:
            try:
                device = next(model.parameters()).device  # type: ignore[union-attr]
            except (AttributeError, StopIteration):
                device = x_start.device if x_start is not None else torch.device("cpu")
        t_start = self.T if t_start is None else t_start
        if not isinstance(t_start, int) or not 1 <= t_start <= self.T:
            raise ValueError(f"t_start must be an int in 1..{self.T}, got {t_start!r}")
        if x_start is None:
            x = randn(shape, generator, device, torch.float32)
        else:
            if tuple(x_start.shape) != tuple(shape):
                raise ValueError(f"x_start must have shape {tuple(shape)}, got {tuple(x_start.shape)}")
            x = x_start.to(device)
        record_set = set()
        if record is not None:
            record_set = {int(r) for r in record}
            bad = [r for r in record_set if not 1 <= r <= t_start]
            if bad:
                raise ValueError(f"record steps must lie in 1..{t_start}, got {sorted(bad)}")
        steps, xts, x0s = [], [], []
        for t_val in tqdm(range(t_start, 0, -1), desc="sampling", disable=not progress, leave=False):
            t = torch.full((x.shape[0],), t_val, dtype=torch.long, device=x.device)
            out = self.p_sample(model, x, t, generator, clip_denoised)
            if t_val in record_set:
                steps.append(t_val)
                xts.append(x.detach().cpu())
                x0s.append(out["pred_x0"].detach().cpu())
            x = out["sample"]
        if not torch.isfinite(x).all():  # off the CPU the per-step checks are skipped: one check at the end
            raise FloatingPointError("the model's output became non-finite (NaN or inf) during sampling; check the "
                                     "model (its weights may have diverged during training)")
        if record is None:
            return x
        empty = torch.empty(0, *x.shape)
        return SampleResult(x0=x, steps=steps, xt=torch.stack(xts) if xts else empty,
                            pred_x0=torch.stack(x0s) if x0s else empty)

    # ---- training objectives --------------------------------------------------------------------------------
    def loss_simple(self, model: Model, x0: torch.Tensor, t: Optional[torch.Tensor] = None,
                    noise: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
                    reduction: str = "mean") -> torch.Tensor:
        """L_simple (Eq. 14): E_{t, x_0, eps} || eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2,
        with t ~ U{1..T} (Algorithm 1), averaged over dimensions.

        For ``parameterization="x0"`` the regression target is x_0 and for ``"mean"`` it is the posterior mean
        mu~_t (the paper's "mu~ with MSE" baseline). ``reduction``: "mean" (scalar) or "none" (shape (B,)).
        """
        _check_finite("x0", x0)
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        if t is None:
            t = self.sample_t(x0.shape[0], generator, x0.device)
        t = self._t(t, x0)
        if noise is None:
            noise = randn(x0.shape, generator, x0.device, x0.dtype)
        _check_like("noise", noise, x0)
        xt = self.q_sample(x0, t, noise)
        if self.parameterization == "eps":
            target = noise
        elif self.parameterization == "x0":
            target = x0
        else:
            target = self.q_posterior(x0, xt, t)[0]
        out = model(xt, t)
        if not isinstance(out, torch.Tensor) or out.shape != x0.shape:
            raise ValueError(f"model output must be shaped like x_0 {tuple(x0.shape)}, "
                             f"got {getattr(out, 'shape', type(out).__name__)}")
        dtype = torch.promote_types(out.dtype, torch.float32)  # bf16 outputs are compared in float32
        per_example = mean_flat((out.to(dtype) - target.to(dtype)) ** 2)
        return per_example.mean() if reduction == "mean" else per_example

    def loss_vlb(self, model: Model, x0: torch.Tensor, t: Optional[torch.Tensor] = None,
                 generator: Optional[torch.Generator] = None, reduction: str = "mean",
                 decoder: str = "discretized") -> torch.Tensor:
        """Unbiased single-t estimate of the true bound L (Eq. 5) in bits/dim: L_T + T * L_{t-1}, t ~ U{1..T}."""
        from .likelihood import loss_vlb
        return loss_vlb(self, model, x0, t=t, generator=generator, reduction=reduction, decoder=decoder)

    def bits_per_dim(self, model: Model, x0: torch.Tensor, progress: bool = True,
                     generator: Optional[torch.Generator] = None, decoder: str = "discretized"):
        """The full bound L of Eq. (5) in bits/dim, term by term; see :func:`ddpm_core.likelihood.bits_per_dim`."""
        from .likelihood import bits_per_dim
        return bits_per_dim(self, model, x0, progress=progress, generator=generator, decoder=decoder)
