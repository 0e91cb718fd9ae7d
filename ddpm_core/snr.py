"""The bound in terms of the signal-to-noise ratio (Kingma et al. 2021, "Variational Diffusion Models", Sec. 4-5).

With SNR(t) = alpha_bar_t / (1 - alpha_bar_t), each term of the bound (eps- or x0-parameterization, reverse variance
sigma_t^2 = beta~_t) is

    L_{t-1} = 1/2 (SNR(t-1) - SNR(t)) ||x_0 - x0_hat(x_t, t)||^2                       (Kingma et al., Sec. 4)

(nats, summed over dimensions), and as T -> infinity the sum of these terms tends to

    L_inf = 1/2 int_{SNR_min}^{SNR_max} E ||x_0 - x0_hat(x_v, v)||^2 dv                 (Kingma et al., Sec. 5)

which depends on the schedule only through SNR_min and SNR_max when x0_hat is a function of (x, SNR).

Here a *continuous schedule* (:class:`LogSNRSchedule`) is a decreasing log-SNR lambda(s) on s in [0, 1], with
lambda(0) = log SNR_max (least noise) and lambda(1) = log SNR_min; :meth:`LogSNRSchedule.discretize` turns it into a
T-step :class:`~ddpm_core.schedules.Schedule` with alpha_bar_t = sigmoid(lambda((t - 1) / (T - 1))), t = 1..T, so
that the T - 1 terms L_1..L_{T-1} cover [SNR_min, SNR_max] at every T. A *denoiser* is a callable
``x0_hat(x, log_snr)`` with x of shape (B, ...) and log_snr of shape (B,) (float64), returning x's shape:
:func:`mixture_denoiser` is the exact posterior mean E[x_0 | x_v] of a Gaussian mixture, :func:`eps_model_denoiser`
turns an eps-model ``model(x_t, t)`` of a schedule into one (linear interpolation in log-SNR between integer t).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .mixtures import GaussianMixture
from .schedules import Schedule

__all__ = ["LogSNRSchedule", "Denoiser", "schedule_from_alpha_bars", "cosine_log_snr_schedule",
           "interpolated_log_snr_schedule", "loglinear_log_snr_schedule", "mixture_denoiser", "eps_model_denoiser", "denoiser_as_eps_model",
           "snr_bound_term", "bound_weights", "x0_mse", "discrete_diffusion_loss", "continuous_diffusion_loss",
           "gaussian_diffusion_loss"]

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _as_s(s) -> torch.Tensor:
    s = torch.as_tensor(s, dtype=torch.float64) if not isinstance(s, torch.Tensor) else s.detach().double().cpu()
    if s.numel() and (not torch.isfinite(s).all() or s.min() < 0 or s.max() > 1):
        raise ValueError("s must lie in [0, 1] (continuous time; s = 0 is the least noisy end)")
    return s


def _check_T(T: int) -> None:
    if isinstance(T, bool) or not isinstance(T, int) or T < 2:
        raise ValueError(f"T must be an int >= 2 (the bound's terms L_1..L_(T-1) need two steps), got {T!r}")


@dataclass(frozen=True)
class LogSNRSchedule:
    """A continuous noise schedule given by its log-SNR lambda(s), s in [0, 1], decreasing from lambda(0) =
    log SNR_max to lambda(1) = log SNR_min, and its derivative d lambda / ds (both float64, any shape of s).

    alpha_bar(s) = sigmoid(lambda(s)), 1 - alpha_bar(s) = sigmoid(-lambda(s)).
    """

    name: str
    log_snr_fn: Callable[[torch.Tensor], torch.Tensor]
    dlog_snr_fn: Callable[[torch.Tensor], torch.Tensor]

    def log_snr(self, s) -> torch.Tensor:
        """lambda(s) = log SNR(s)."""
        return self.log_snr_fn(_as_s(s))

    def dlog_snr(self, s) -> torch.Tensor:
        """d lambda / ds (negative)."""
        return self.dlog_snr_fn(_as_s(s))

    def snr(self, s) -> torch.Tensor:
        """SNR(s) = exp(lambda(s))."""
        return self.log_snr(s).exp()

    def alpha_bar(self, s) -> torch.Tensor:
        """alpha_bar(s) = SNR / (1 + SNR) = sigmoid(lambda(s))."""
        return torch.sigmoid(self.log_snr(s))

    @property
    def snr_max(self) -> float:
        return float(self.snr(0.0))

    @property
    def snr_min(self) -> float:
        return float(self.snr(1.0))

    def discretize(self, T: int) -> Schedule:
        """The T-step schedule with alpha_bar_t = alpha_bar((t - 1) / (T - 1)), t = 1..T (so SNR(1) = SNR_max and
        SNR(T) = SNR_min at every T), built with :func:`schedule_from_alpha_bars`."""
        _check_T(T)
        s = torch.linspace(0.0, 1.0, T, dtype=torch.float64)
        return schedule_from_alpha_bars(self.alpha_bar(s), name=f"{self.name}, T={T}")

    def __repr__(self) -> str:
        return f"LogSNRSchedule({self.name!r}, SNR_max={self.snr_max:.4g}, SNR_min={self.snr_min:.4g})"


def schedule_from_alpha_bars(alpha_bars: torch.Tensor, name: str = "custom") -> Schedule:
    """The :class:`Schedule` whose alpha_bar_1..alpha_bar_T are ``alpha_bars`` (shape (T,), strictly decreasing in
    (0, 1)): beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} with alpha_bar_0 = 1 (Eq. 4 inverted)."""
    if not isinstance(alpha_bars, torch.Tensor):
        raise TypeError(f"alpha_bars must be a tensor of shape (T,), got {type(alpha_bars).__name__}")
    ab = alpha_bars.detach().double().cpu()
    if ab.ndim != 1 or ab.numel() < 1:
        raise ValueError(f"alpha_bars must have shape (T,) with T >= 1, got {tuple(ab.shape)}")
    if not torch.isfinite(ab).all() or (ab <= 0).any() or (ab >= 1).any():
        raise ValueError("every alpha_bar_t must lie in the open interval (0, 1)")
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    if not (ab < prev).all():
        raise ValueError("alpha_bars must be strictly decreasing (every beta_t > 0)")
    return Schedule(1.0 - ab / prev, name=name)


def _check_ends(snr_max: float, snr_min: float) -> None:
    for nm, v in (("snr_max", snr_max), ("snr_min", snr_min)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{nm} must be a finite number > 0, got {v!r}")
    if not snr_max > snr_min:
        raise ValueError(f"snr_max must be > snr_min, got snr_max={snr_max}, snr_min={snr_min}")


def cosine_log_snr_schedule(snr_max: float, snr_min: float) -> LogSNRSchedule:
    """The cosine schedule of Nichol & Dhariwal (2021, Eq. 17), alpha_bar = cos^2(phi), with phi linear in s and its
    end points chosen so that SNR(0) = ``snr_max`` and SNR(1) = ``snr_min``:

        phi(s) = phi_0 + s (phi_1 - phi_0),  phi_i = arctan(SNR_i^(-1/2)),  lambda(s) = -2 log tan phi(s),
        d lambda / ds = -4 (phi_1 - phi_0) / sin(2 phi(s)).

    (Nichol & Dhariwal's offset s = 0.008 and their normalisation by alpha_bar(0) fix the ends differently; this
    form keeps the shape, cos^2 of a linear function of time, and matches any pair of end points.)
    """
    _check_ends(snr_max, snr_min)
    phi0, phi1 = math.atan(snr_max ** -0.5), math.atan(snr_min ** -0.5)

    def phi(s: torch.Tensor) -> torch.Tensor:
        return phi0 + s * (phi1 - phi0)

    return LogSNRSchedule("cosine", lambda s: -2.0 * torch.log(torch.tan(phi(s))),
                          lambda s: -4.0 * (phi1 - phi0) / torch.sin(2.0 * phi(s)))


def loglinear_log_snr_schedule(snr_max: float, snr_min: float) -> LogSNRSchedule:
    """lambda(s) linear in s from log ``snr_max`` to log ``snr_min``: s ~ U(0, 1) draws lambda uniformly, the
    sampling that makes the continuous estimator's weight -d lambda/ds constant (Kingma et al. 2021, Sec. 5)."""
    _check_ends(snr_max, snr_min)
    hi, lo = math.log(snr_max), math.log(snr_min)
    return LogSNRSchedule("log-linear", lambda s: hi + s * (lo - hi), lambda s: torch.full_like(s, lo - hi))


def interpolated_log_snr_schedule(schedule: Schedule, name: Optional[str] = None) -> LogSNRSchedule:
    """A discrete schedule as a continuous one: lambda(s) linear between the points (s_t, lambda_t), s_t =
    (t - 1) / (T - 1), t = 1..T. Its :meth:`~LogSNRSchedule.discretize` at T' steps keeps the schedule's alpha-bar at
    T' evenly spaced t where (T - 1) / (T' - 1) is an integer (respacing, Nichol & Dhariwal 2021), and gives back the
    schedule itself at T' = T."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")
    _check_T(schedule.T)
    lam = schedule.snr[1:].log()                       # (T,), lambda_1 > ... > lambda_T
    T = schedule.T
    slopes = (lam[1:] - lam[:-1]) * (T - 1)            # d lambda / ds on each of the T - 1 segments

    def seg(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = s * (T - 1)
        i = x.floor().long().clamp(0, T - 2)
        return i, x - i

    def log_snr(s: torch.Tensor) -> torch.Tensor:
        i, w = seg(s)
        return (1 - w) * lam[i] + w * lam[i + 1]

    return LogSNRSchedule(name or schedule.name, log_snr, lambda s: slopes[seg(s)[0]])


# ---- denoisers ---------------------------------------------------------------------------------------------------
def _check_log_snr(log_snr: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(log_snr, torch.Tensor) or log_snr.shape != (x.shape[0],):
        raise ValueError(f"log_snr must be a tensor of shape (B,) = ({x.shape[0]},), got "
                         f"{getattr(log_snr, 'shape', type(log_snr).__name__)}")
    return log_snr.detach().double().cpu()


def mixture_denoiser(mixture: GaussianMixture) -> Denoiser:
    """The exact optimal denoiser of mixture data, x0_hat(x_v, lambda) = E[x_0 | x_v] (Tweedie):
    (x + (1 - alpha_bar) grad log q(x)) / sqrt(alpha_bar), alpha_bar = sigmoid(lambda). x: (B, d)."""
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")

    def denoise(x: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        lam = _check_log_snr(log_snr, x)
        ab = torch.sigmoid(lam)
        x64 = x.detach().double().cpu()
        out = (x64 + torch.sigmoid(-lam)[:, None] * mixture.score(x64, ab)) / ab.sqrt()[:, None]
        return out.to(device=x.device, dtype=x.dtype)

    return denoise


def eps_model_denoiser(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], schedule: Schedule) -> Denoiser:
    """An eps-model ``model(x_t, t)`` (t = 1..T of ``schedule``) as a function of (x, log-SNR).

    For lambda between lambda_{t+1} and lambda_t the predicted noise is interpolated linearly in lambda between
    model(x, t) and model(x, t + 1) (one call on a batch of 2B); then x0_hat = (x - sqrt(1 - alpha_bar) eps) /
    sqrt(alpha_bar) with alpha_bar = sigmoid(lambda). At lambda = lambda_t it is exactly the model's x_0 prediction
    at t. Raises ValueError for lambda outside [lambda_T, lambda_1] (the model never saw those noise levels).
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
    _check_T(schedule.T)
    neg = -schedule.snr[1:].log()                      # increasing: -lambda_1 < ... < -lambda_T
    lo_lam, hi_lam = float(-neg[-1]), float(-neg[0])

    def denoise(x: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        lam = _check_log_snr(log_snr, x)
        tol = 1e-9 * max(1.0, abs(lo_lam), abs(hi_lam))
        if lam.numel() and (lam.min() < lo_lam - tol or lam.max() > hi_lam + tol):
            raise ValueError(f"log_snr must lie in [{lo_lam:.6g}, {hi_lam:.6g}], the range of the model's schedule "
                             f"(t = T..1); got values in [{lam.min().item():.6g}, {lam.max().item():.6g}]")
        i = (torch.searchsorted(neg, -lam) - 1).clamp(0, schedule.T - 2)   # 0-based: t = i + 1 and i + 2
        w = ((-lam - neg[i]) / (neg[i + 1] - neg[i])).clamp(0.0, 1.0)
        t = torch.cat([i + 1, i + 2]).to(x.device)
        eps = model(torch.cat([x, x]), t)
        B = x.shape[0]
        shape = (-1,) + (1,) * (x.ndim - 1)
        w_ = w.to(device=x.device, dtype=x.dtype).reshape(shape)
        eps = (1 - w_) * eps[:B] + w_ * eps[B:]
        ab = torch.sigmoid(lam).to(device=x.device, dtype=x.dtype).reshape(shape)
        return (x - (1 - ab).sqrt() * eps) / ab.sqrt()

    return denoise


def denoiser_as_eps_model(denoiser: Denoiser, schedule: Schedule) -> Callable[[torch.Tensor, torch.Tensor],
                                                                              torch.Tensor]:
    """The eps-model ``model(x_t, t)`` of ``schedule`` that predicts x0_hat(x_t, lambda_t) (so that
    ``ddpm_core``'s bound, :func:`~ddpm_core.likelihood.vb_term_bpd`, can evaluate a denoiser on any schedule):
    eps = (x_t - sqrt(alpha_bar_t) x0_hat) / sqrt(1 - alpha_bar_t)."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")
    lam_table = schedule.snr.log()

    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = schedule.check_t(t)
        ab = schedule.gather(schedule.alpha_bars, t, x_t)
        x0 = denoiser(x_t, lam_table[t.cpu()])
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()

    return model


# ---- the bound in SNR form ---------------------------------------------------------------------------------------
def snr_bound_term(snr_prev: torch.Tensor, snr_t: torch.Tensor, x0: torch.Tensor, x0_hat: torch.Tensor) -> torch.Tensor:
    """L_{t-1} = 1/2 (SNR(t-1) - SNR(t)) ||x_0 - x0_hat||^2 in nats per example, shape (B,) (Kingma et al. 2021,
    Sec. 4). ``snr_prev``, ``snr_t``: floats or (B,); x0, x0_hat: (B, ...), the squared error summed over dims."""
    if not isinstance(x0, torch.Tensor) or not isinstance(x0_hat, torch.Tensor) or x0.shape != x0_hat.shape:
        raise ValueError(f"x0 and x0_hat must be tensors of the same shape (B, ...), got "
                         f"{getattr(x0, 'shape', None)} and {getattr(x0_hat, 'shape', None)}")
    err = ((x0.double() - x0_hat.double()) ** 2).flatten(1).sum(1)
    return 0.5 * (torch.as_tensor(snr_prev, dtype=torch.float64) - torch.as_tensor(snr_t, dtype=torch.float64)) * err


WEIGHTS_ON = ("eps", "x0")


def bound_weights(schedule: Schedule, on: str = "eps") -> torch.Tensor:
    """The weight w_t with L_{t-1} = w_t ||error||^2 (sigma_t^2 = beta~_t), shape (T + 1,) indexed by t; entries
    t = 0, 1 (no KL term there) are NaN.

    ``on="x0"``: w_t = 1/2 (SNR(t-1) - SNR(t)), the weight of ||x_0 - x0_hat||^2.
    ``on="eps"``: w_t = 1/2 (SNR(t-1) / SNR(t) - 1) = beta_t / (2 alpha_t (1 - alpha_bar_{t-1})), the weight of
    ||eps - eps_hat||^2 (= SNR(t) ||x_0 - x0_hat||^2): Eq. (12)'s weight, which L_simple (Eq. 14) sets to 1.
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")
    if on not in WEIGHTS_ON:
        raise ValueError(f"on must be one of {list(WEIGHTS_ON)}, got {on!r}")
    snr = schedule.snr
    w = torch.full_like(snr, float("nan"))
    if on == "x0":
        w[2:] = 0.5 * (snr[1:-1] - snr[2:])
    else:
        w[2:] = 0.5 * (snr[1:-1] / snr[2:] - 1.0)
    return w


@torch.no_grad()
def x0_mse(denoiser: Denoiser, x0: torch.Tensor, log_snr: torch.Tensor,
           generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """||x_0 - x0_hat(x_v, lambda)||^2 per example and per lambda, shape (L, B), for the L values of ``log_snr`` (L,):
    x_v = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps with a fresh eps for each lambda (the integrand of L_inf)."""
    if not isinstance(log_snr, torch.Tensor) or log_snr.ndim != 1:
        raise ValueError("log_snr must be a 1-D tensor of log-SNR values")
    out = []
    for lam in log_snr.double():
        ab = torch.sigmoid(lam)
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        x = ab.sqrt().to(x0.dtype) * x0 + (1 - ab).sqrt().to(x0.dtype) * eps
        x0_hat = denoiser(x, lam.expand(x0.shape[0]))
        out.append(((x0.double() - x0_hat.double()) ** 2).flatten(1).sum(1))
    return torch.stack(out)


@torch.no_grad()
def discrete_diffusion_loss(denoiser: Denoiser, x0: torch.Tensor, schedule: Schedule,
                            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """sum_{t=2}^T L_{t-1} in SNR form, in nats per example, shape (B,): one x_t ~ q(x_t | x_0) per t and example
    (as :func:`~ddpm_core.bits_per_dim`), x0_hat = denoiser(x_t, lambda_t). The bound's L_T and L_0 are not
    included: this is the "diffusion loss" of Kingma et al. (2021), Sec. 4, between SNR(T) and SNR(1)."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")
    _check_T(schedule.T)
    if not isinstance(x0, torch.Tensor) or not x0.dtype.is_floating_point or x0.ndim < 2:
        raise TypeError("x0 must be a floating tensor of shape (B, ...)")
    snr, lam = schedule.snr, schedule.snr.log()
    total = torch.zeros(x0.shape[0], dtype=torch.float64)
    for t in range(2, schedule.T + 1):
        ab = schedule.alpha_bars[t]
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        x = ab.sqrt().to(x0.dtype) * x0 + (1 - ab).sqrt().to(x0.dtype) * eps
        x0_hat = denoiser(x, lam[t].expand(x0.shape[0]))
        total += snr_bound_term(snr[t - 1], snr[t], x0, x0_hat).cpu()
    return total


@torch.no_grad()
def continuous_diffusion_loss(denoiser: Denoiser, x0: torch.Tensor, schedule: LogSNRSchedule,
                              generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The T -> infinity diffusion loss L_inf = -1/2 int_0^1 SNR'(s) E||x_0 - x0_hat(x_s, lambda(s))||^2 ds
    (Kingma et al. 2021, Sec. 5), one unbiased sample per example, shape (B,), in nats: s ~ U(0, 1),
    value = 1/2 (-d lambda/ds) exp(lambda) ||x_0 - x0_hat||^2. Its mean depends on the schedule only through
    SNR(0) and SNR(1) (for a denoiser that is a function of (x, lambda)); its variance depends on all of it."""
    if not isinstance(schedule, LogSNRSchedule):
        raise TypeError(f"schedule must be a LogSNRSchedule, got {type(schedule).__name__}")
    if not isinstance(x0, torch.Tensor) or not x0.dtype.is_floating_point or x0.ndim < 2:
        raise TypeError("x0 must be a floating tensor of shape (B, ...)")
    B = x0.shape[0]
    s = torch.rand(B, generator=generator, dtype=torch.float64)
    lam, dlam = schedule.log_snr(s), schedule.dlog_snr(s)
    shape = (-1,) + (1,) * (x0.ndim - 1)
    ab = torch.sigmoid(lam).to(x0.dtype).reshape(shape)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    x = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    err = ((x0.double() - denoiser(x, lam).double()) ** 2).flatten(1).sum(1).cpu()
    return 0.5 * (-dlam) * lam.exp() * err


def gaussian_diffusion_loss(variance: float, snr_max: float, snr_min: float, dim: int = 1) -> float:
    """The exact L_inf for N(m, variance I_dim) data and the optimal denoiser, whose error is
    E||x_0 - E[x_0 | x_v]||^2 = dim variance / (1 + variance v):  L_inf = dim/2 log((1 + variance SNR_max) /
    (1 + variance SNR_min)) nats."""
    if not variance > 0 or not snr_max > snr_min > 0:
        raise ValueError("need variance > 0 and snr_max > snr_min > 0")
    return 0.5 * dim * (math.log1p(variance * snr_max) - math.log1p(variance * snr_min))
