"""Score matching: the three objectives that fit a score, Tweedie's posterior mean, and Langevin dynamics.

A *score function* here is a callable ``score_fn(x)`` mapping x of shape (B, d) to a tensor of the same shape (an
estimate of grad_x log p(x)); every objective returns one value per example, shape (B,), so that a caller can average
it and attach a standard error. The objectives, for data x ~ p:

- explicit score matching (Hyvarinen 2005, Eq. 2): J_ESM(x) = 1/2 ||s(x) - grad log p(x)||^2, needs the true score;
- implicit score matching (Hyvarinen 2005, Theorem 1): J_ISM(x) = 1/2 ||s(x)||^2 + div s(x); by integration by parts
  E_p[J_ESM] = E_p[J_ISM] + 1/2 E_p||grad log p||^2, whatever s is;
- denoising score matching (Vincent 2011): for x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps (Ho et al. Eq. 4),
  J_DSM = 1/2 ||s(x_t) - grad_{x_t} log q(x_t | x_0)||^2 with the known target -(x_t - sqrt(ab) x_0) / (1 - ab)
  = -eps / sqrt(1 - ab); E[J_DSM] equals E[J_ESM] on q(x_t) up to a constant.

Tweedie's formula (Robbins 1956; Efron 2011, Sec. 2): E[x_0 | x_t] = (x_t + (1 - ab) grad log q(x_t)) / sqrt(ab).
:func:`mixture_posterior_mean` gives the same posterior mean for Gaussian-mixture data *without* the score (Gaussian
conditioning within each component, weighted by the component posterior), and :func:`importance_posterior_mean` by
self-normalised importance sampling from data samples: two independent routes to check Tweedie against.

Langevin dynamics (unadjusted, Welling & Teh 2011; Song & Ermon 2019, Sec. 2.2): x <- x + delta/2 score(x) + sqrt(delta) z.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Union

import torch

from .mixtures import GaussianMixture

__all__ = ["divergence", "explicit_score_matching", "implicit_score_matching", "dsm_target",
           "denoising_score_matching", "tweedie_posterior_mean", "mixture_posterior_mean",
           "importance_posterior_mean", "langevin", "ula_gaussian_variance"]

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
AlphaBar = Union[float, torch.Tensor]


def _check_x(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point or x.ndim != 2:
        got = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating tensor of shape (B, d), got {got}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")


def _check_score_fn(score_fn: ScoreFn) -> None:
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable as score_fn(x) with x of shape (B, d), got "
                        f"{type(score_fn).__name__}")


def _eval(score_fn: ScoreFn, x: torch.Tensor) -> torch.Tensor:
    s = score_fn(x)
    if not isinstance(s, torch.Tensor) or s.shape != x.shape:
        got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
        raise ValueError(f"score_fn(x) must return x's shape {tuple(x.shape)}, got {got}")
    return s


def _alpha_bar(alpha_bar: AlphaBar, x: torch.Tensor) -> torch.Tensor:
    """alpha-bar as a (B, 1) float64 column, checked to lie in (0, 1)."""
    ab = torch.as_tensor(alpha_bar, dtype=torch.float64)
    if ab.ndim == 0:
        ab = ab.expand(x.shape[0])
    if ab.shape != (x.shape[0],):
        raise ValueError(f"alpha_bar must be a float or a tensor of shape (B,) = ({x.shape[0]},), "
                         f"got {tuple(ab.shape)}")
    if not torch.isfinite(ab).all() or (ab <= 0).any() or (ab >= 1).any():
        raise ValueError("alpha_bar must lie strictly between 0 and 1 (a noised x_t)")
    return ab[:, None]


def divergence(score_fn: ScoreFn, x: torch.Tensor) -> torch.Tensor:
    """The exact divergence div s(x) = sum_i d s_i / d x_i, by automatic differentiation (d backward passes).

    ``x`` (B, d); returns (B,) in x's dtype. ``score_fn`` must act on each example separately (no batch mixing).
    """
    _check_score_fn(score_fn)
    _check_x("x", x)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        s = _eval(score_fn, x)
        div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(x.shape[1]):
            (g,) = torch.autograd.grad(s[:, i].sum(), x, retain_graph=i + 1 < x.shape[1], allow_unused=True)
            if g is not None:
                div = div + g[:, i]
    return div.detach()


def explicit_score_matching(score_fn: ScoreFn, x: torch.Tensor, true_score: torch.Tensor) -> torch.Tensor:
    """Hyvarinen (2005) Eq. 2 per example: 1/2 ||s(x) - grad log p(x)||^2, shape (B,).

    ``x`` (B, d) are draws of p; ``true_score`` (B, d) is grad log p at x (known only for toy data).
    """
    _check_score_fn(score_fn)
    _check_x("x", x)
    _check_x("true_score", true_score)
    if true_score.shape != x.shape:
        raise ValueError(f"true_score must have x's shape {tuple(x.shape)}, got {tuple(true_score.shape)}")
    with torch.no_grad():
        s = _eval(score_fn, x)
    return 0.5 * ((s - true_score) ** 2).sum(1)


def implicit_score_matching(score_fn: ScoreFn, x: torch.Tensor) -> torch.Tensor:
    """Hyvarinen (2005) Theorem 1 per example: 1/2 ||s(x)||^2 + div s(x), shape (B,); no true score needed.

    Its mean over x ~ p differs from that of :func:`explicit_score_matching` by 1/2 E_p||grad log p||^2, a constant
    that does not depend on ``score_fn`` (integration by parts; p must vanish at infinity fast enough).
    """
    div = divergence(score_fn, x)
    with torch.no_grad():
        s = _eval(score_fn, x)
    return 0.5 * (s**2).sum(1) + div


def dsm_target(x_t: torch.Tensor, x0: torch.Tensor, alpha_bar: AlphaBar) -> torch.Tensor:
    """grad_{x_t} log q(x_t | x_0) = -(x_t - sqrt(ab) x_0) / (1 - ab), the target of denoising score matching, (B, d).

    With x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps (Eq. 4 of Ho et al.) it equals -eps / sqrt(1 - ab).
    ``alpha_bar``: a float or (B,), strictly inside (0, 1).
    """
    _check_x("x_t", x_t)
    _check_x("x0", x0)
    if x0.shape != x_t.shape:
        raise ValueError(f"x0 must have x_t's shape {tuple(x_t.shape)}, got {tuple(x0.shape)}")
    ab = _alpha_bar(alpha_bar, x_t).to(x_t.dtype)
    return -(x_t - ab.sqrt() * x0) / (1 - ab)


def denoising_score_matching(score_fn: ScoreFn, x0: torch.Tensor, alpha_bar: AlphaBar,
                             noise: torch.Tensor) -> torch.Tensor:
    """Vincent (2011) denoising score matching per example, shape (B,), at the noise level of alpha-bar:

        x_t = sqrt(ab) x_0 + sqrt(1 - ab) noise,   J_DSM = 1/2 ||s(x_t) - dsm_target(x_t, x_0, ab)||^2.

    ``x0`` and ``noise`` (B, d). Its mean is E_{q(x_t)}[1/2 ||s - grad log q(x_t)||^2] plus a constant independent of s.
    """
    _check_score_fn(score_fn)
    _check_x("x0", x0)
    _check_x("noise", noise)
    if noise.shape != x0.shape:
        raise ValueError(f"noise must have x0's shape {tuple(x0.shape)}, got {tuple(noise.shape)}")
    ab = _alpha_bar(alpha_bar, x0).to(x0.dtype)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    with torch.no_grad():
        s = _eval(score_fn, x_t)
    return 0.5 * ((s - dsm_target(x_t, x0, ab[:, 0])) ** 2).sum(1)


def tweedie_posterior_mean(x_t: torch.Tensor, score: torch.Tensor, alpha_bar: AlphaBar) -> torch.Tensor:
    """Tweedie's formula (Efron 2011, Sec. 2) for x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps:

        E[x_0 | x_t] = (x_t + (1 - ab) grad log q(x_t)) / sqrt(ab),

    ``x_t``, ``score`` (= grad log q(x_t)) of shape (B, d); ``alpha_bar`` a float or (B,) in (0, 1). Returns (B, d).
    """
    _check_x("x_t", x_t)
    _check_x("score", score)
    if score.shape != x_t.shape:
        raise ValueError(f"score must have x_t's shape {tuple(x_t.shape)}, got {tuple(score.shape)}")
    ab = _alpha_bar(alpha_bar, x_t).to(x_t.dtype)
    return (x_t + (1 - ab) * score) / ab.sqrt()


def mixture_posterior_mean(mixture: GaussianMixture, x_t: torch.Tensor, alpha_bar: AlphaBar) -> torch.Tensor:
    """E[x_0 | x_t] for Gaussian-mixture data, computed without the score: (B, d) float64.

    Within component k (x_0 ~ N(m_k, diag s_k^2)), Gaussian conditioning gives
    E[x_0 | x_t, k] = m_k + sqrt(ab) s_k^2 / (ab s_k^2 + 1 - ab) (x_t - sqrt(ab) m_k); these are averaged with the
    exact component posterior p(k | x_t) (``mixture.posterior``).
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    _check_x("x_t", x_t)
    x = x_t.to(torch.float64)
    ab = _alpha_bar(alpha_bar, x)[:, :, None]                          # (B, 1, 1)
    var0 = mixture.stds[None] ** 2                                    # (1, K, d)
    gain = ab.sqrt() * var0 / (ab * var0 + 1 - ab)                    # (B, K, d)
    comp_mean = mixture.means[None] + gain * (x[:, None, :] - ab.sqrt() * mixture.means[None])
    r = mixture.posterior(x, ab[:, 0, 0])                             # (B, K)
    return (r[:, :, None] * comp_mean).sum(1)


def importance_posterior_mean(x_t: torch.Tensor, alpha_bar: float, x0_samples: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo E[x_0 | x_t] by self-normalised importance sampling with the data as proposal.

    The posterior is q(x_0 | x_t) proportional to q(x_t | x_0) q(x_0); with N draws x_0^(n) of the data the weights are
    w_n proportional to N(x_t; sqrt(ab) x_0^(n), (1 - ab) I). Returns ``(mean, se)``, both (B, d) float64: the weighted
    mean and its delta-method standard error sqrt(sum_n w_n^2 (x_0^(n) - mean)^2) (w normalised). Reliable only
    when the effective sample size 1 / sum w_n^2 is large (moderate noise levels).
    """
    _check_x("x_t", x_t)
    _check_x("x0_samples", x0_samples)
    if x0_samples.shape[1] != x_t.shape[1]:
        raise ValueError(f"x0_samples must have x_t's dimension {x_t.shape[1]}, got {x0_samples.shape[1]}")
    if isinstance(alpha_bar, bool) or not isinstance(alpha_bar, (int, float)) or not 0 < alpha_bar < 1:
        raise ValueError(f"alpha_bar must be a float strictly between 0 and 1, got {alpha_bar!r}")
    x, x0 = x_t.to(torch.float64), x0_samples.to(torch.float64)
    sq = torch.cdist(x, math.sqrt(alpha_bar) * x0) ** 2               # (B, N)
    w = torch.softmax(-sq / (2 * (1 - alpha_bar)), dim=1)            # (B, N)
    mean = w @ x0                                                     # (B, d)
    se = ((w**2)[:, :, None] * (x0[None] - mean[:, None, :]) ** 2).sum(1).sqrt()
    return mean, se


def langevin(score_fn: ScoreFn, x: torch.Tensor, step_size: float, n_steps: int, *,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Unadjusted Langevin dynamics, ``n_steps`` times: x <- x + step_size / 2 score_fn(x) + sqrt(step_size) z.

    (Song & Ermon 2019, Sec. 2.2; Welling & Teh 2011.) ``x`` (B, d) are the starting points of B independent chains;
    returns their states after ``n_steps`` steps (B, d). Its stationary law tends to p as step_size -> 0; for a finite
    step it is biased (for N(m, v) see :func:`ula_gaussian_variance`).
    """
    _check_score_fn(score_fn)
    _check_x("x", x)
    if isinstance(step_size, bool) or not isinstance(step_size, (int, float)) or not step_size > 0 \
            or not math.isfinite(step_size):
        raise ValueError(f"step_size must be a finite float > 0, got {step_size!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"n_steps must be an int >= 0, got {n_steps!r}")
    root = math.sqrt(step_size)
    with torch.no_grad():
        for _ in range(n_steps):
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x + 0.5 * step_size * _eval(score_fn, x) + root * z
    return x


def ula_gaussian_variance(variance: float, step_size: float) -> float:
    """The stationary variance of :func:`langevin` on N(m, v): v / (1 - step_size / (4 v)).

    The chain x <- (1 - delta / (2 v)) x + sqrt(delta) z is stable for delta < 4 v; its fixed point V solves
    V = (1 - delta / (2 v))^2 V + delta. The bias V / v - 1 = delta / (4 v - delta) vanishes as delta -> 0.
    """
    for name, v in (("variance", variance), ("step_size", step_size)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite float > 0, got {v!r}")
    if step_size >= 4 * variance:
        raise ValueError(f"step_size must be < 4 * variance = {4 * variance} for a stable chain, got {step_size}")
    return variance / (1 - step_size / (4 * variance))
