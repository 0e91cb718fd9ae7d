"""Exact log-likelihood through the probability-flow ODE (instantaneous change of variables).

Along the ODE dx/ds = v(x, s) (Song et al. 2021, Eq. 13; :func:`ddpm_core.sde.probability_flow_drift`) the density
obeys d log p_s(x_s) / ds = -div v(x_s, s) (Chen et al. 2018, Theorem 1), so

    log p_{s_min}(x) = log p_1(x_1) + int_{s_min}^1 div v(x_s, s) ds,                 (Song et al. Eq. 39)

with x_s the ODE solution started at x_{s_min} = x. ``torchdiffeq`` integrates x and the integral together with an
adaptive solver. The divergence is exact (d autograd passes, for low dimension) or Hutchinson's estimate
E_z[z^T (dv/dx) z] (Hutchinson 1989; Grathwohl et al. 2018), one vector-Jacobian product per probe, with the probes
held fixed along the trajectory. With the exact score and the exact prior this is the exact log-density of the data
up to solver tolerance.

For 8-bit data, :func:`dequantize` spreads each level uniformly over its bin and :func:`dequantized_bits_per_dim`
turns the continuous log-density into an upper bound on the discrete bits/dim (Theis et al. 2016);
:func:`bound_term_ranges` splits the DDPM bound of Eq. (5) into L_T, sums over ranges of t and L_0 to compare with it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .schedules import Schedule
from .sde import VPSDE, ScoreFn, as_score_fn, probability_flow_drift

__all__ = ["divergence", "make_probes", "ODELikelihood", "ode_log_likelihood", "standard_normal_log_prob",
           "dequantize", "dequantized_bits_per_dim", "bound_term_ranges"]

DIVERGENCES = ("exact", "hutchinson")
PROBES = ("rademacher", "gaussian")


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over all but the batch dimension, shape (B,)."""
    d = z[0].numel()
    return -0.5 * (z.reshape(z.shape[0], -1) ** 2).sum(1) - 0.5 * d * math.log(2 * math.pi)


def divergence(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, method: str = "exact",
               probes: Optional[torch.Tensor] = None) -> torch.Tensor:
    """div fn at x: sum_i d fn_i / d x_i per example, shape (B,), for fn mapping (B, ...) -> (B, ...) row-wise.

    ``method="exact"``: d reverse-mode passes (use for d up to ~100). ``"hutchinson"``: z^T J z averaged over
    ``probes`` (shape (P, B, ...), E[z z^T] = I), an unbiased estimate (Hutchinson 1989). Returns a detached tensor.
    """
    return _value_and_divergence(fn, x, method, probes)[1]


def _value_and_divergence(fn, x, method, probes):
    """(fn(x) detached, div fn(x)) from one forward pass; see :func:`divergence`."""
    if method not in DIVERGENCES:
        raise ValueError(f"unknown method {method!r}; allowed: {list(DIVERGENCES)}")
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point or x.ndim < 1:
        raise TypeError("x must be a floating tensor of shape (B, ...)")
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        y = fn(x)
        if y.shape != x.shape:
            raise ValueError(f"fn(x) must have x's shape {tuple(x.shape)}, got {tuple(y.shape)}")
        if method == "exact":
            if probes is not None:
                raise ValueError("probes are only used with method='hutchinson'")
            yf = y.reshape(x.shape[0], -1)
            div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for i in range(yf.shape[1]):
                g = torch.autograd.grad(yf[:, i].sum(), x, retain_graph=True)[0]
                div = div + g.reshape(x.shape[0], -1)[:, i]
            return y.detach(), div.detach()
        if probes is None or probes.ndim != x.ndim + 1 or probes.shape[1:] != x.shape:
            raise ValueError(f"method='hutchinson' needs probes of shape (P, *x.shape) with x.shape = {tuple(x.shape)}, "
                             f"got {None if probes is None else tuple(probes.shape)}")
        est = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for p, z in enumerate(probes):
            g = torch.autograd.grad(y, x, z.to(x), retain_graph=p < probes.shape[0] - 1)[0]
            est = est + (g * z).reshape(x.shape[0], -1).sum(1)
        return y.detach(), (est / probes.shape[0]).detach()


def make_probes(shape: tuple, n: int, kind: str = "rademacher", generator: Optional[torch.Generator] = None,
                dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``n`` probe vectors of shape ``shape`` with E[z z^T] = I: Rademacher (+-1) or standard Gaussian.

    Returns a tensor of shape ``(n, *shape)``."""
    if kind not in PROBES:
        raise ValueError(f"unknown probe kind {kind!r}; allowed: {list(PROBES)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    z = torch.randn((n, *shape), generator=generator, dtype=dtype)
    if kind == "rademacher":
        z = z.sign()
    return z.to(device)


@dataclass
class ODELikelihood:
    """Result of :func:`ode_log_likelihood` (all shapes (B,), nats unless stated).

    log_likelihood = prior_log_prob + delta_log_prob (Eq. 39 of Song et al.); z is x at s = 1 (B, ...);
    nfe counts the velocity evaluations; bits_per_dim = -log_likelihood / (d ln 2) (no dequantisation offset).
    """

    log_likelihood: torch.Tensor
    prior_log_prob: torch.Tensor
    delta_log_prob: torch.Tensor
    z: torch.Tensor
    nfe: int

    @property
    def bits_per_dim(self) -> torch.Tensor:
        d = self.z[0].numel()
        return -self.log_likelihood / (d * math.log(2.0))


def ode_log_likelihood(sde: VPSDE, model: Callable, x0: torch.Tensor, *, divergence_method: str = "exact",
                       n_probes: int = 1, probe: str = "rademacher", s_min: float = 1e-5, rtol: float = 1e-5,
                       atol: float = 1e-5, method: str = "dopri5",
                       prior_log_prob: Callable[[torch.Tensor], torch.Tensor] = standard_normal_log_prob,
                       parameterization: str = "score", schedule: Optional[Schedule] = None,
                       generator: Optional[torch.Generator] = None) -> ODELikelihood:
    """log p(x0) by the probability-flow ODE (Song et al. 2021, Eq. 39; Chen et al. 2018), per example.

    x0: (B, ...) data points, integrated from s = ``s_min`` to 1 with ``torchdiffeq.odeint`` (``method``, ``rtol``,
    ``atol``). ``model`` is a score function ``score(x, s)``, or an eps-model with ``parameterization="eps"`` and its
    ``schedule`` (interpolated in t, :func:`ddpm_core.sde.score_from_eps`); either must be differentiable in x.
    ``prior_log_prob(z)`` -> (B,) is log p_1 (default N(0, I), Song et al.'s choice). The divergence
    is ``"exact"`` or ``"hutchinson"`` with ``n_probes`` fixed ``probe`` vectors per example.
    Returns an :class:`ODELikelihood`. ``s_min = 0`` is allowed when the score exists at s = 0.
    """
    from torchdiffeq import odeint

    if not isinstance(sde, VPSDE):
        raise TypeError(f"sde must be a VPSDE, got {type(sde).__name__}")
    if not isinstance(x0, torch.Tensor) or not x0.dtype.is_floating_point or x0.ndim < 1:
        raise TypeError("x0 must be a floating tensor of shape (B, ...)")
    if divergence_method not in DIVERGENCES:
        raise ValueError(f"unknown divergence_method {divergence_method!r}; allowed: {list(DIVERGENCES)}")
    if not 0.0 <= s_min < 1.0:
        raise ValueError(f"s_min must lie in [0, 1), got {s_min}")
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be > 0, got rtol={rtol}, atol={atol}")
    raw: ScoreFn = as_score_fn(model, parameterization=parameterization, schedule=schedule, sde=sde)

    def score(y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = raw(y, s)
        if y.requires_grad and not out.requires_grad:
            raise ValueError("the model's output does not depend on x through autograd (it detaches), so its "
                             "divergence cannot be computed; e.g. GaussianMixture.eps_oracle detaches: use "
                             "ddpm_core.sde.mixture_score")
        return out

    probes = None
    if divergence_method == "hutchinson":
        probes = make_probes(tuple(x0.shape), n_probes, probe, generator, x0.dtype, x0.device)
    nfe = 0

    def f(s: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal nfe
        nfe += 1
        x = state[0]
        sb = s.detach().double().cpu().clamp(0.0, 1.0).expand(x.shape[0])
        v = lambda y: probability_flow_drift(sde, score, y, sb)  # noqa: E731
        return _value_and_divergence(v, x, divergence_method, probes)

    times = torch.tensor([s_min, 1.0], dtype=x0.dtype, device=x0.device)
    state0 = (x0.detach(), torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device))
    xs, ints = odeint(f, state0, times, rtol=rtol, atol=atol, method=method)
    z, delta = xs[-1], ints[-1]
    prior = prior_log_prob(z)
    return ODELikelihood(log_likelihood=prior + delta, prior_log_prob=prior, delta_log_prob=delta, z=z, nfe=nfe)


def dequantize(x: torch.Tensor, *, bits: int = 8, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Uniform dequantization of ``bits``-bit data (Theis et al. 2016; Song et al. 2021, App. D.2).

    ``x`` (B, ...) holds levels k in 0..K-1, K = 2^bits, stored as x = 2 k / (K - 1) - 1 (this package's scaling to
    [-1, 1], grid spacing 2 h with h = 1 / (K - 1)). Returns y = x + (2 u - 1) h with u ~ U[0, 1) per entry: uniform
    on the bin [x - h, x + h) centred on x, the bins of the decoder of Eq. (13) (they tile [-1 - h, 1 + h)).
    Same shape and dtype as ``x``.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an int in 1..16, got {bits!r}")
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError("x must be a floating tensor of data scaled to [-1, 1]")
    top = 2**bits - 1
    levels = (x.double() + 1) * top / 2
    k = levels.round()
    if (levels - k).abs().max() > 1e-3 or k.min() < 0 or k.max() > top:
        raise ValueError(f"x must lie on the {bits}-bit grid x = 2 k / {top} - 1, k in 0..{top}")
    u = torch.rand(x.shape, generator=generator, dtype=torch.float64).to(k.device)
    return (2 * k / top - 1 + (2 * u - 1) / top).to(x.dtype)


def dequantized_bits_per_dim(log_likelihood: torch.Tensor, dim: int, *, bits: int = 8) -> torch.Tensor:
    """Bits/dim of ``bits``-bit data from the continuous log-density of its dequantized version (nats, (B,)).

    With the bins of :func:`dequantize` (width 2 / (2^bits - 1) around each level of [-1, 1]),
    P(k) = int_bin p(y) dy >= (2 / (2^bits - 1))^D exp(E_u log p(y)) (Jensen), so
    -log2 P(k) / D <= -E_u[log p(y)] / (D ln 2) + log2((2^bits - 1) / 2)   (+ 6.994 bits/dim for 8 bits).
    Returns -log_likelihood / (dim ln 2) + log2((2^bits - 1) / 2), shape (B,).
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an int in 1..16, got {bits!r}")
    return -log_likelihood / (dim * math.log(2.0)) + math.log2((2**bits - 1) / 2)


def bound_term_ranges(prior: torch.Tensor, terms: torch.Tensor,
                      ranges: tuple[tuple[int, int], ...] = ((2, 10), (11, 100), (101, 1000))) -> dict:
    """The bound of Eq. (5) of Ho et al. 2020 split into L_T, sums of L_{t-1} over ranges of t, and L_0.

    ``prior`` (B,) is L_T and ``terms`` (B, T) holds the term of step t in column t - 1 (L_0 for t = 1, L_{t-1}
    for t >= 2), as in :class:`ddpm_core.likelihood.BoundTerms`. ``ranges``: inclusive (first, last) step
    numbers, disjoint, within 2..T. Returns ``{"L_T": (B,), "t=a..b": (B,) for each range, "L_0": (B,)}``
    (units of the input); the values add up to the bound when the ranges cover 2..T.
    """
    if not isinstance(terms, torch.Tensor) or terms.ndim != 2:
        raise ValueError(f"terms must be a tensor of shape (B, T), got "
                         f"{tuple(terms.shape) if isinstance(terms, torch.Tensor) else type(terms).__name__}")
    if not isinstance(prior, torch.Tensor) or prior.shape != terms.shape[:1]:
        raise ValueError(f"prior must be a tensor of shape (B,) = ({terms.shape[0]},)")
    T = terms.shape[1]
    out = {"L_T": prior}
    used: set[int] = set()
    for r in ranges:
        if (not isinstance(r, tuple) or len(r) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in r)
                or not 2 <= r[0] <= r[1] <= T):
            raise ValueError(f"each range must be a tuple (first, last) of ints with 2 <= first <= last <= T = {T}, "
                             f"got {r!r}")
        if used & set(range(r[0], r[1] + 1)):
            raise ValueError(f"ranges must be disjoint, got {ranges!r}")
        used |= set(range(r[0], r[1] + 1))
        out[f"t={r[0]}..{r[1]}"] = terms[:, r[0] - 1:r[1]].sum(1)
    out["L_0"] = terms[:, 0]
    return out
