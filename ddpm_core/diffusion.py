"""The Gaussian diffusion of Ho et al. (2020): forward process, posterior, reverse process and Algorithm 2.

Timesteps follow the paper (t = 1..T, see :mod:`ddpm_core.schedules`). Tensors ``x`` have shape (B, ...) (images
(B, C, H, W), points (B, D)); ``t`` is an integer tensor of shape (B,). A *model* is any callable
``model(x_t, t) -> Tensor`` shaped like ``x_t``; what its output means is set by ``parameterization``:

* ``"eps"``  - it predicts the noise epsilon (Eq. 11; the paper's choice),
* ``"x0"``   - it predicts x_0 directly,
* ``"mean"`` - it predicts the reverse mean mu_theta(x_t, t) directly (the paper's mu~-prediction baseline).

The reverse variance sigma_t^2 is fixed (Sec. 3.2): ``"beta"`` (sigma_t^2 = beta_t, optimal for x_0 ~ N(0, I))
or ``"beta_tilde"`` (sigma_t^2 = beta~_t, optimal for x_0 a single point), or any table of sigma_t^2 given as a
tensor of shape (T + 1,) indexed by t (e.g. the optimal variance of :mod:`ddpm_core.analytic_variance`).

This module holds the model's distributions only. The training objectives are in :mod:`ddpm_core.objectives`
(``ddpm_core.loss``), the sampling loops in :mod:`ddpm_core.samplers` (``ddpm_core.sample``) and the bound in
bits/dim in :mod:`ddpm_core.likelihood` (``ddpm_core.bits_per_dim``); all of them take a diffusion as an argument.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch

from .schedules import Schedule, gather

__all__ = ["GaussianDiffusion", "PARAMETERIZATIONS", "VARIANCES"]

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


def _check_variance_table(variance: torch.Tensor, T: int) -> torch.Tensor:
    """A reverse-variance table sigma_t^2, t = 1..T, as a float64 CPU tensor (T + 1,) with index 0 set to 0."""
    if variance.ndim != 1 or variance.shape[0] != T + 1:
        raise ValueError(f"a variance table must have shape (T + 1,) = ({T + 1},) (index t holds sigma_t^2, index 0 "
                         f"is padding), got {tuple(variance.shape)}")
    if not variance.dtype.is_floating_point:
        raise TypeError(f"a variance table must be a floating-point tensor, got {variance.dtype}")
    table = variance.detach().to(device="cpu", dtype=torch.float64).clone()
    if not torch.isfinite(table[1:]).all() or (table[1:] <= 0).any():
        raise ValueError("a variance table must be finite and > 0 at t = 1..T")
    table[0] = 0.0
    return table


class GaussianDiffusion:
    """Forward and reverse Gaussian diffusion over a :class:`Schedule`: q(x_t | x_0) (Eq. 4), the posterior
    q(x_{t-1} | x_t, x_0) (Eq. 6-7), the reverse step p_theta(x_{t-1} | x_t) (Eq. 1, Sec. 3.2, Eq. 11).

    Args:
        schedule: the variance schedule; default the paper's linear schedule with T = 1000.
        parameterization: what the model predicts, one of ``PARAMETERIZATIONS`` (default ``"eps"``).
        variance: fixed reverse variance, one of ``VARIANCES`` (default ``"beta"``, the CIFAR-10 choice), or a
            table: a tensor of shape (T + 1,) with sigma_t^2 at index t = 1..T (index 0 is padding and ignored),
            finite and > 0. The tables of the named choices are their ``model_variances``; passing one of them
            gives the named diffusion's numbers exactly.
        clip_denoised: clip the x_0 prediction to [-1, 1] when computing the reverse mean (as the official code
            does for images). Set ``False`` for data that is not bounded (e.g. 2-D toys).
    """

    def __init__(self, schedule: Optional[Schedule] = None, parameterization: str = "eps",
                 variance: Union[str, torch.Tensor] = "beta", clip_denoised: bool = True) -> None:
        if schedule is None:
            schedule = Schedule.linear()
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a ddpm_core.Schedule, got {type(schedule).__name__}")
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"unknown parameterization {parameterization!r}; allowed: {list(PARAMETERIZATIONS)}")
        table = None
        if isinstance(variance, torch.Tensor):
            table = _check_variance_table(variance, schedule.T)
        elif not isinstance(variance, str) or variance not in VARIANCES:
            raise ValueError(f"unknown variance {variance!r}; allowed: {list(VARIANCES)} or a tensor of sigma_t^2 "
                             f"of shape (T + 1,) = ({schedule.T + 1},)")
        self.schedule = schedule
        self.parameterization = parameterization
        self.variance = variance if table is None else table
        self.clip_denoised = bool(clip_denoised)
        s = schedule
        # log sigma_t^2 of the reverse process. "beta" follows the official code's "fixedlarge": at t = 1 it uses
        # beta~_2 instead of beta_1 so that the decoder's variance is not needlessly large.
        if table is not None:
            logvar = table.log()
        elif variance == "beta":
            logvar = torch.log(s.betas.clamp(min=1e-300))
            logvar[1] = s.log_beta_tildes_clipped[1]
        else:
            logvar = s.log_beta_tildes_clipped.clone()
        logvar[0] = float("-inf")
        self.model_log_variances = logvar
        self.model_variances = logvar.exp()
        # The float64 tables, copied once per device: a copy from host memory on every step would make an
        # accelerator wait for the host (a synchronising copy) at every call.
        self._tables: dict = {}

    @classmethod
    def from_settings(cls, *, schedule: str = "linear", T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02,
                      parameterization: str = "eps", variance: str = "beta",
                      clip_denoised: bool = True) -> GaussianDiffusion:
        """The diffusion described by plain settings (a training config, a released checkpoint's scheduler).

        schedule: a name of ``ddpm_core.schedules.SCHEDULES`` ("linear", Sec. 4, is the paper's); beta_1 and
        beta_T are ignored by "cosine". The other arguments are those of the constructor.
        """
        kwargs = {} if schedule == "cosine" else {"beta_1": beta_1, "beta_T": beta_T}
        return cls(Schedule.from_name(schedule, T=T, **kwargs), parameterization=parameterization,
                   variance=variance, clip_denoised=clip_denoised)

    def __repr__(self) -> str:
        variance = repr(self.variance) if isinstance(self.variance, str) else f"<table of {self.T} variances>"
        return (f"GaussianDiffusion({self.schedule!r}, parameterization={self.parameterization!r}, "
                f"variance={variance}, clip_denoised={self.clip_denoised})")

    @property
    def T(self) -> int:
        return self.schedule.T

    def _g(self, name: str, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The schedule's table ``name`` (or ``model_log_variances``) at t, shaped to broadcast against x."""
        key = (name, x.device)
        table = self._tables.get(key)
        if table is None:
            source = self.model_log_variances if name == "model_log_variances" else getattr(self.schedule, name)
            table = self._tables[key] = source.to(x.device)
        return gather(table, t, x)

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
        lv = self._g("model_log_variances", t, x)
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
