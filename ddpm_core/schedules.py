"""Variance schedules beta_1..beta_T and every constant derived from them (Ho et al. 2020, Sec. 2 and 4).

Time-index convention (the one place it is fixed): ``ddpm_core`` uses the paper's t = 1, ..., T everywhere.
Every per-step array has length T + 1 and is indexed directly by t; index 0 is a padding entry that makes the
recursions exact at the boundary: beta_0 = 0, alpha_0 = 1, alpha_bar_0 = 1 (x_0 is the data, with no noise).

All constants are computed in float64 and only cast to the data's dtype at the moment they are used
(:func:`gather`). A :class:`Schedule` is a frozen dataclass of plain tensors: read ``schedule.alpha_bars[t]`` for one
t, or ``gather(schedule.alpha_bars, t, x)`` for a batch of timesteps shaped to broadcast against x.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

__all__ = ["linear_betas", "cosine_betas", "quadratic_betas", "Schedule", "SCHEDULES", "gather"]


def _check_T(T: int) -> None:
    if isinstance(T, bool) or not isinstance(T, int):
        raise TypeError(f"T must be an int >= 1, got {type(T).__name__}")
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")


def _check_bounds(beta_1: float, beta_T: float) -> None:
    for name, v in (("beta_1", beta_1), ("beta_T", beta_T)):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise TypeError(f"{name} must be a float in (0, 1), got {type(v).__name__}")
        if not math.isfinite(v) or not 0.0 < v < 1.0:
            raise ValueError(f"{name} must lie in the open interval (0, 1), got {v}")
    if beta_T < beta_1:
        raise ValueError(f"beta_T must be >= beta_1 (the schedule increases), got beta_1={beta_1}, beta_T={beta_T}")


def linear_betas(T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """The paper's schedule (Sec. 4): beta_t linear from beta_1 = 1e-4 to beta_T = 0.02, T = 1000.

    Returns a float64 tensor of shape (T,) holding beta_1..beta_T (no padding).
    """
    _check_T(T)
    _check_bounds(beta_1, beta_T)
    return torch.linspace(beta_1, beta_T, T, dtype=torch.float64)


def quadratic_betas(T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """sqrt(beta_t) linear between sqrt(beta_1) and sqrt(beta_T) (the official code's "quad" option). Shape (T,)."""
    _check_T(T)
    _check_bounds(beta_1, beta_T)
    return torch.linspace(beta_1**0.5, beta_T**0.5, T, dtype=torch.float64) ** 2


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal (2021), Eq. (17): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2).

    beta_t = 1 - alpha_bar(t) / alpha_bar(t-1), clipped at ``max_beta`` to avoid a singularity at t = T.
    Returns float64, shape (T,).
    """
    _check_T(T)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"s must lie in [0, 1), got {s}")
    if not 0.0 < max_beta < 1.0:
        raise ValueError(f"max_beta must lie in (0, 1), got {max_beta}")
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
    return betas.clamp(max=max_beta)


def gather(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Pick ``values[t]`` for per-example timesteps ``t`` (shape (B,)) and shape it to broadcast against ``x``.

    values: a table of length T + 1 indexed by the paper's t (e.g. ``schedule.alpha_bars``, Eq. 4).
    Returns shape (B, 1, ..., 1) with ``x.ndim`` dimensions, on x's device and in x's dtype (the cast happens after
    indexing, so float64 tables keep their precision until then).
    """
    if not isinstance(values, torch.Tensor) or values.ndim != 1:
        raise TypeError(f"values must be a 1-D tensor indexed by t (e.g. schedule.alpha_bars), "
                        f"got {getattr(values, 'shape', type(values).__name__)}")
    if not isinstance(t, torch.Tensor) or t.ndim != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"t must be a tensor of shape (B,) with B = x.shape[0] = {x.shape[0]}, "
                         f"got {getattr(t, 'shape', type(t).__name__)}")
    out = values.to(x.device)[t.to(device=x.device, dtype=torch.long)].to(dtype=x.dtype)
    return out.reshape(-1, *([1] * (x.ndim - 1)))


SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas, "quadratic": quadratic_betas}


_TABLES = ("betas", "alphas", "alpha_bars", "beta_tildes", "log_beta_tildes_clipped", "posterior_coef_x0",
           "posterior_coef_xt", "snr")


@dataclass(frozen=True)
class Schedule:
    """A variance schedule and its derived constants, all float64 tensors of shape (T + 1,) indexed by t = 0..T.

    Attributes (index 0 is padding: beta_0 = 0, alpha_bar_0 = 1):
        betas:          beta_t                                       (forward step variance, Eq. 2)
        alphas:         alpha_t = 1 - beta_t                          (Sec. 2, before Eq. 4)
        alpha_bars:     alpha_bar_t = prod_{s<=t} alpha_s             (Eq. 4)
        beta_tildes:    beta~_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t   (Eq. 7); beta~_0 = 0
        log_beta_tildes_clipped: log beta~_t with beta~_1 (= 0) replaced by beta~_2, as in the official code
        posterior_coef_x0:  sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t)        (Eq. 7, weight of x_0)
        posterior_coef_xt:  sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) (Eq. 7, weight of x_t)
        snr:            alpha_bar_t / (1 - alpha_bar_t), signal-to-noise ratio of q(x_t | x_0) (inf at t = 0)
    """

    betas: torch.Tensor
    name: str = "custom"
    T: int = field(init=False)
    alphas: torch.Tensor = field(init=False)
    alpha_bars: torch.Tensor = field(init=False)
    beta_tildes: torch.Tensor = field(init=False)
    log_beta_tildes_clipped: torch.Tensor = field(init=False)
    posterior_coef_x0: torch.Tensor = field(init=False)
    posterior_coef_xt: torch.Tensor = field(init=False)
    snr: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        b = self.betas
        if isinstance(b, (str, bytes)):
            raise TypeError(f"betas must be a sequence or tensor of numbers beta_1..beta_T, got the string {b!r}; for "
                            "a named schedule use Schedule.from_name('linear') or Schedule.linear(T=...)")
        if not isinstance(b, torch.Tensor):
            try:
                b = torch.as_tensor(b, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError) as e:
                raise TypeError(f"betas must be a sequence or tensor of numbers beta_1..beta_T, got "
                                f"{type(b).__name__} ({e})") from None
        b = b.detach().to(dtype=torch.float64, device="cpu")
        if b.ndim != 1 or b.numel() < 1:
            raise ValueError(f"betas must be a 1-D sequence of T >= 1 values beta_1..beta_T, got shape {tuple(b.shape)}")
        if not torch.isfinite(b).all():
            raise ValueError("betas must be finite")
        if not ((b > 0) & (b < 1)).all():
            raise ValueError(f"every beta_t must lie in (0, 1); got min {b.min().item():.3g}, max {b.max().item():.3g}")
        T = b.numel()
        betas = torch.cat([torch.zeros(1, dtype=torch.float64), b])
        alphas = 1.0 - betas
        alpha_bars = torch.cumprod(alphas, dim=0)
        alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        one_minus = 1.0 - alpha_bars
        # t = 0 is padding: guard 0/0 there and define the coefficients so that the posterior is the identity.
        safe = torch.where(one_minus > 0, one_minus, torch.ones_like(one_minus))
        beta_tildes = torch.where(one_minus > 0, (1.0 - alpha_bars_prev) / safe * betas, torch.zeros_like(betas))
        coef_x0 = torch.where(one_minus > 0, alpha_bars_prev.sqrt() * betas / safe, torch.ones_like(betas))
        coef_xt = torch.where(one_minus > 0, alphas.sqrt() * (1.0 - alpha_bars_prev) / safe, torch.zeros_like(betas))
        log_bt = torch.full_like(beta_tildes, float("-inf"))
        if T >= 2:
            log_bt[1:] = torch.log(torch.cat([beta_tildes[2:3], beta_tildes[2:]]))
        else:
            log_bt[1] = torch.log(betas[1])  # T = 1: no beta~_2 exists; fall back to beta_1
        snr = torch.where(one_minus > 0, alpha_bars / safe, torch.full_like(alpha_bars, float("inf")))
        for k, v in dict(T=T, betas=betas, alphas=alphas, alpha_bars=alpha_bars, beta_tildes=beta_tildes,
                         log_beta_tildes_clipped=log_bt, posterior_coef_x0=coef_x0, posterior_coef_xt=coef_xt,
                         snr=snr).items():
            object.__setattr__(self, k, v)

    # ---- constructors -------------------------------------------------------------------------------------
    @classmethod
    def linear(cls, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> "Schedule":
        """The paper's default: T = 1000, beta linear from 1e-4 to 0.02 (Sec. 4)."""
        return cls(linear_betas(T, beta_1, beta_T), name="linear")

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008) -> "Schedule":
        """Nichol & Dhariwal (2021) cosine schedule."""
        return cls(cosine_betas(T, s), name="cosine")

    @classmethod
    def quadratic(cls, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> "Schedule":
        return cls(quadratic_betas(T, beta_1, beta_T), name="quadratic")

    @classmethod
    def from_name(cls, name: str, T: int = 1000, **kwargs) -> "Schedule":
        """Build a schedule by name: one of ``SCHEDULES`` ("linear", "cosine", "quadratic")."""
        if name not in SCHEDULES:
            raise ValueError(f"unknown schedule {name!r}; allowed: {sorted(SCHEDULES)}")
        return cls(SCHEDULES[name](T, **kwargs), name=name)

    # ---- helpers ------------------------------------------------------------------------------------------
    def check_t(self, t: torch.Tensor, *, allow_zero: bool = False) -> torch.Tensor:
        """Validate a timestep tensor: integer dtype, values in 1..T (or 0..T with ``allow_zero``).

        The range is checked for CPU tensors (reading GPU values back would stall the device every step)."""
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"t must be an integer torch.Tensor of paper timesteps, got {type(t).__name__}")
        if t.dtype.is_floating_point or t.dtype == torch.bool or t.dtype.is_complex:
            raise TypeError(f"t must have an integer dtype (e.g. torch.long), got {t.dtype}")
        lo = 0 if allow_zero else 1
        if t.device.type == "cpu" and t.numel() and (int(t.min()) < lo or int(t.max()) > self.T):
            raise ValueError(f"t must lie in {lo}..{self.T} (the paper's 1-based index); "
                             f"got values in {int(t.min())}..{int(t.max())}")
        return t

    def gather(self, values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped (B, 1, ..., 1) to broadcast against ``x``; see :func:`gather`.

        ``values`` is one of this schedule's tensors, e.g. ``schedule.gather(schedule.alpha_bars, t, x)``. (A
        field name as a string, ``schedule.gather("alpha_bars", t, x)``, is still accepted in 0.2 with a
        DeprecationWarning; it will be removed.)
        """
        if isinstance(values, str):
            if values not in _TABLES:
                raise ValueError(f"unknown schedule table {values!r}; allowed: {list(_TABLES)}")
            warnings.warn(f"Schedule.gather({values!r}, t, x) is deprecated: pass the tensor, "
                          f"schedule.gather(schedule.{values}, t, x)", DeprecationWarning, stacklevel=2)
            values = getattr(self, values)
        return gather(values, t, x)

    def __repr__(self) -> str:
        return (f"Schedule(name={self.name!r}, T={self.T}, beta_1={self.betas[1].item():.3g}, "
                f"beta_T={self.betas[-1].item():.3g}, alpha_bar_T={self.alpha_bars[-1].item():.3g})")
