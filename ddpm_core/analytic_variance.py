"""The optimal reverse variance of a Gaussian reverse step (Analytic-DPM, Bao et al. 2022, Theorem 1).

With the reverse mean of Eq. (11) at the exact eps-predictor and a per-t scalar variance sigma_t^2, the variance that
minimises the bound's expected L_{t-1} (equivalently KL(q(x_{t-1} | x_t) || p(x_{t-1} | x_t)) averaged over q(x_t))
is, per dimension,

    sigma*_t^2 = beta~_t + beta_t^2 / (alpha_t (1 - alpha_bar_t)) * (1 - (1 - alpha_bar_t) E||grad log q_t(x_t)||^2 / d)

which is Bao et al.'s Theorem 1 with lambda_t^2 = beta~_t (their (sqrt(b_t / a_t) - sqrt(b_{t-1} - lambda_t^2))^2 with
b = 1 - alpha_bar and a_t = alpha_t reduces to beta_t^2 / (alpha_t (1 - alpha_bar_t)); their official code writes the
same as beta~_t + coef_x0_t^2 (1 - alpha_bar_t) / alpha_bar_t (1 - Gamma_t)). Since eps*(x_t) =
-sqrt(1 - alpha_bar_t) grad log q_t (Tweedie), (1 - alpha_bar_t) E||score||^2 / d = E||eps*(x_t)||^2 / d =: Gamma_t,
which a trained eps-model estimates by Monte Carlo (Bao et al. Sec. 3). For a point mass Gamma_t = 1 and
sigma*^2 = beta~_t; for N(0, I) data Gamma_t = 1 - alpha_bar_t and sigma*^2 = beta_t: the paper's two choices
(Ho et al. Sec. 3.2) are these two cases. In general beta~_t <= sigma*_t^2 (Gamma_t <= E||eps||^2 / d = 1), and
sigma*_t^2 <= beta_t whenever tr Cov(x_0) <= d (then tr Cov(x_t) <= d and, by the Cramer-Rao bound
E||score||^2 >= d^2 / tr Cov(x_t), Gamma_t >= 1 - alpha_bar_t); data more spread out than N(0, I) can have
sigma*_t^2 > beta_t. Estimated values are clipped (Bao et al. Theorem 2) into [beta~_t, upper] with upper the
smaller of beta~_t + beta_t^2 / (alpha_t (1 - alpha_bar_t)) (Gamma_t >= 0) and, for data in [a, b]^d,
beta~_t + coef_x0_t^2 ((b - a) / 2)^2 (Cov(x_0 | x_t) <= ((b - a) / 2)^2 per dimension; coef_x0 of Eq. 7).

``GaussianDiffusion(..., variance=table)`` and ``bits_per_dim(..., variance=...)`` take such a table (or
``"optimal"``, estimated by :func:`estimate_optimal_variance`); :func:`vb_term_bpd_with_variance` and
:func:`bound_terms_with_variance` compute the bound's terms with a table independently of them (they keep the
diffusion's named variance and replace only the KL's variance), which the tests use as a cross-check.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch

from .diffusion import GaussianDiffusion
from .losses import discretized_gaussian_log_likelihood, gaussian_log_likelihood, mean_flat, normal_kl
from .mixtures import GaussianMixture
from .schedules import Schedule

__all__ = ["optimal_variance", "mixture_score_sq_norm", "mixture_optimal_variance", "estimate_eps_sq_norm",
           "model_optimal_variance", "estimate_optimal_variance", "vb_term_bpd_with_variance",
           "bound_terms_with_variance"]

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_schedule(schedule: Schedule) -> None:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")


def optimal_variance(schedule: Schedule, *, eps_sq_norm: Optional[torch.Tensor] = None,
                     score_sq_norm: Optional[torch.Tensor] = None, clip: bool = True,
                     data_range: Optional[tuple[float, float]] = None) -> torch.Tensor:
    """sigma*_t^2 for t = 1..T (Bao et al. 2022, Theorem 1 with lambda^2 = beta~), a float64 table (T + 1,).

    Give exactly one of ``eps_sq_norm`` = Gamma_t = E||eps(x_t, t)||^2 / d or ``score_sq_norm`` =
    E||grad log q_t(x_t)||^2 / d, each a tensor of shape (T + 1,) indexed by t (index 0 ignored). ``clip`` clips into
    the bounds of the module docstring (Bao et al. Theorem 2); ``data_range=(a, b)`` tightens the upper one for data
    in [a, b]^d (images: (-1, 1)). Index 0 of the result is 0 (padding).
    """
    _check_schedule(schedule)
    if (eps_sq_norm is None) == (score_sq_norm is None):
        raise ValueError("give exactly one of eps_sq_norm and score_sq_norm")
    given = eps_sq_norm if eps_sq_norm is not None else score_sq_norm
    name = "eps_sq_norm" if eps_sq_norm is not None else "score_sq_norm"
    if not isinstance(given, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of shape (T + 1,), got {type(given).__name__}")
    if given.shape != (schedule.T + 1,):
        raise ValueError(f"{name} must have shape (T + 1,) = ({schedule.T + 1},), got {tuple(given.shape)}")
    g = given.detach().double().cpu()
    if not torch.isfinite(g[1:]).all() or (g[1:] < 0).any():
        raise ValueError(f"{name} must be finite and >= 0 for t = 1..T")
    if data_range is not None:
        if (not isinstance(data_range, (tuple, list)) or len(data_range) != 2
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in data_range)
                or not data_range[0] < data_range[1]):
            raise ValueError(f"data_range must be a pair (a, b) of finite floats with a < b, got {data_range!r}")
    s = schedule
    one_minus = 1 - s.alpha_bars
    gamma = g if eps_sq_norm is not None else one_minus * g
    var = torch.zeros(s.T + 1, dtype=torch.float64)
    coef = s.betas[1:] ** 2 / (s.alphas[1:] * one_minus[1:])
    var[1:] = s.beta_tildes[1:] + coef * (1 - gamma[1:])
    if clip:
        upper = s.beta_tildes[1:] + coef
        if data_range is not None:
            half = (data_range[1] - data_range[0]) / 2
            upper = torch.minimum(upper, s.beta_tildes[1:] + s.posterior_coef_x0[1:] ** 2 * half**2)
        var[1:] = torch.minimum(torch.maximum(var[1:], s.beta_tildes[1:]), upper)
    return var


def mixture_score_sq_norm(mixture: GaussianMixture, alpha_bars: torch.Tensor, n_nodes: int = 40) -> torch.Tensor:
    """E_{q_t}||grad log q_t(x)||^2 / d for mixture data at each alpha-bar, by Gauss-Hermite quadrature.

    q_t is the mixture's marginal at alpha-bar (see :mod:`ddpm_core.mixtures`); each component is integrated with an
    ``n_nodes``^d product rule (d <= 3), exact for polynomials and accurate to ~1e-8 for smooth mixtures.
    ``alpha_bars``: shape (N,) in [0, 1) (or 1 when no component is a point mass). Returns float64 (N,).
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    if mixture.dim > 3:
        raise ValueError(f"quadrature needs dim <= 3, got {mixture.dim}; estimate by Monte Carlo instead")
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or n_nodes < 2:
        raise ValueError(f"n_nodes must be an int >= 2, got {n_nodes!r}")
    ab = torch.as_tensor(alpha_bars, dtype=torch.float64).flatten()
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)  # weight exp(-z^2 / 2), sum sqrt(2 pi)
    z1 = torch.from_numpy(nodes)
    w1 = torch.from_numpy(weights) / math.sqrt(2 * math.pi)
    d = mixture.dim
    z = torch.cartesian_prod(*([z1] * d)).reshape(-1, d)            # (n^d, d)
    w = torch.cartesian_prod(*([w1] * d)).reshape(-1, d).prod(1)    # (n^d,)
    out = torch.empty_like(ab)
    for i, a in enumerate(ab.tolist()):
        std = (a * mixture.stds**2 + 1 - a).sqrt()                    # (K, d)
        x = (math.sqrt(a) * mixture.means[:, None, :] + std[:, None, :] * z[None]).reshape(-1, d)
        sq = (mixture.score(x, a) ** 2).sum(1).reshape(mixture.K, -1)  # (K, n^d)
        out[i] = (mixture.weights * (sq * w).sum(1)).sum() / d
    return out


def mixture_optimal_variance(mixture: GaussianMixture, schedule: Schedule, *, clip: bool = False,
                             n_nodes: int = 40) -> torch.Tensor:
    """sigma*_t^2 (T + 1,) for mixture data with the exact E||score||^2 (quadrature; :func:`optimal_variance`)."""
    _check_schedule(schedule)
    sq = torch.zeros(schedule.T + 1, dtype=torch.float64)
    sq[1:] = mixture_score_sq_norm(mixture, schedule.alpha_bars[1:], n_nodes)
    return optimal_variance(schedule, score_sq_norm=sq, clip=clip)


def estimate_eps_sq_norm(model: Model, schedule: Schedule, x0: torch.Tensor, *,
                         generator: Optional[torch.Generator] = None, batch_t: int = 1) -> torch.Tensor:
    """Monte Carlo Gamma_t = E||eps_theta(x_t, t)||^2 / d over x_t ~ q(x_t | x0) for every t (Bao et al. Sec. 3).

    x0: (B, ...) data; each t draws fresh noise. Returns float64 (T + 1,) (index 0 = 0). The model is called T times
    with batch B (``batch_t`` timesteps per call stacks them into one batch of batch_t * B).
    """
    _check_schedule(schedule)
    if not isinstance(x0, torch.Tensor) or not x0.dtype.is_floating_point or x0.ndim < 1:
        raise TypeError("x0 must be a floating tensor of shape (B, ...)")
    if isinstance(batch_t, bool) or not isinstance(batch_t, int) or batch_t < 1:
        raise ValueError(f"batch_t must be an int >= 1, got {batch_t!r}")
    B, d = x0.shape[0], x0[0].numel()
    gamma = torch.zeros(schedule.T + 1, dtype=torch.float64)
    with torch.no_grad():
        for start in range(1, schedule.T + 1, batch_t):
            ts = torch.arange(start, min(start + batch_t, schedule.T + 1))
            t = ts.repeat_interleave(B)
            x = x0.repeat(len(ts), *([1] * (x0.ndim - 1)))
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            ab = schedule.gather(schedule.alpha_bars, t, x)
            xt = ab.sqrt() * x + (1 - ab).sqrt() * noise
            out = model(xt, t.to(x.device)).double()
            gamma[ts] = (out.reshape(len(ts), B, -1) ** 2).sum(-1).mean(1).cpu() / d
    return gamma


def model_optimal_variance(model: Model, schedule: Schedule, x0: torch.Tensor, *, clip: bool = True,
                           data_range: Optional[tuple[float, float]] = None,
                           generator: Optional[torch.Generator] = None, batch_t: int = 1) -> torch.Tensor:
    """sigma*_t^2 (T + 1,) estimated from an eps-model on data x0 (B, ...) (Analytic-DPM, Bao et al. Theorem 1 with
    the Monte Carlo estimate of Gamma_t), clipped as in :func:`optimal_variance`."""
    gamma = estimate_eps_sq_norm(model, schedule, x0, generator=generator, batch_t=batch_t)
    return optimal_variance(schedule, eps_sq_norm=gamma, clip=clip, data_range=data_range)


def estimate_optimal_variance(diffusion: GaussianDiffusion, model: Model, x0: torch.Tensor, *,
                              decoder: str = "discretized", generator: Optional[torch.Generator] = None,
                              batch_t: int = 1) -> torch.Tensor:
    """The table that ``bits_per_dim(..., variance="optimal")`` uses: sigma*_t^2 (T + 1,) float64 estimated from the
    model on x0 (B, ...), for any parameterization of ``diffusion`` (its implied eps is used).

    Clipped into Bao et al.'s bounds (Theorem 2; with data in [-1, 1] when ``decoder="discretized"``). At t = 1 the
    lower bound beta~_1 is 0 and an estimate Gamma_1 >= 1 would give sigma_1^2 = 0, so the table is floored there
    at beta~_2, the value the named variances use at t = 1 (the official code's clipped log-variance).
    """
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a GaussianDiffusion, got {type(diffusion).__name__}")
    if decoder not in ("discretized", "gaussian"):
        raise ValueError(f"unknown decoder {decoder!r}; allowed: ['discretized', 'gaussian']")

    def eps_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if diffusion.parameterization == "eps":
            return model(x, t)
        return diffusion.p_mean_variance(model, x, t, clip_denoised=False)["pred_eps"]

    s = diffusion.schedule
    table = model_optimal_variance(eps_model, s, x0, clip=True,
                                   data_range=(-1.0, 1.0) if decoder == "discretized" else None,
                                   generator=generator, batch_t=batch_t)
    if s.T >= 2:
        table[1] = max(float(table[1]), float(s.beta_tildes[2]))
    elif not table[1] > 0:
        table[1] = float(s.betas[1])
    return table


def _check_variances(diffusion: GaussianDiffusion, variances: torch.Tensor) -> torch.Tensor:
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a GaussianDiffusion, got {type(diffusion).__name__}")
    if not isinstance(variances, torch.Tensor) or variances.shape != (diffusion.T + 1,):
        raise ValueError(f"variances must be a tensor of shape (T + 1,) = ({diffusion.T + 1},), got "
                         f"{getattr(variances, 'shape', type(variances).__name__)}")
    v = variances.detach().double().cpu()
    if not torch.isfinite(v[1:]).all() or (v[1:] <= 0).any():
        raise ValueError("variances must be finite and > 0 for t = 1..T")
    return v


def vb_term_bpd_with_variance(diffusion: GaussianDiffusion, model: Model, x0: torch.Tensor, xt: torch.Tensor,
                              t: torch.Tensor, variances: torch.Tensor, *, clip_denoised: bool = False,
                              decoder: str = "gaussian") -> torch.Tensor:
    """The bound's term at step t in bits/dim, shape (B,), with reverse variance sigma_t^2 = ``variances[t]``.

    Like :func:`ddpm_core.likelihood.vb_term_bpd`: L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || N(mu_theta, sigma_t^2))
    (Eq. 5, 7) where t >= 2 and the decoder term L_0 (Eq. 13 if ``decoder="discretized"``, or the Gaussian density for
    continuous data) where t = 1. The mean is the diffusion's mu_theta (Eq. 11); only the variance is replaced.
    """
    v = _check_variances(diffusion, variances)
    if decoder not in ("discretized", "gaussian"):
        raise ValueError(f"unknown decoder {decoder!r}; allowed: ['discretized', 'gaussian']")
    out = diffusion.p_mean_variance(model, xt, t, clip_denoised)
    logvar = diffusion.schedule.gather(v.log(), t, xt).expand_as(xt)
    true_mean, _, true_logvar = diffusion.q_posterior(x0, xt, t)
    kl = mean_flat(normal_kl(true_mean, true_logvar.expand_as(true_mean), out["mean"], logvar)) / math.log(2.0)
    first = (t == 1).to(kl.device)
    if bool(first.any()):
        x, mu, lv = x0[first], out["mean"][first], logvar[first]
        ll = discretized_gaussian_log_likelihood(x, mu, 0.5 * lv) if decoder == "discretized" \
            else gaussian_log_likelihood(x, mu, lv)
        kl = kl.clone()
        kl[first] = (-mean_flat(ll) / math.log(2.0)).to(kl.dtype)
    return kl


def bound_terms_with_variance(diffusion: GaussianDiffusion, model: Model, x0: torch.Tensor, variances: torch.Tensor,
                              *, clip_denoised: bool = False, decoder: str = "gaussian",
                              generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Every term of the bound (Eq. 5) with the variance table, in bits/dim averaged over x0 (B, ...).

    Returns float64 (T + 1,): index t >= 1 holds the batch mean of L_{t-1} (index 1 is L_0); index 0 holds L_T, the
    prior term. Sum it for the whole bound. One model call per t, fresh noise per t.
    """
    _check_variances(diffusion, variances)
    from .likelihood import prior_bpd

    out = torch.zeros(diffusion.T + 1, dtype=torch.float64)
    out[0] = prior_bpd(diffusion, x0).double().mean().cpu()
    with torch.no_grad():
        for step in range(1, diffusion.T + 1):
            t = torch.full((x0.shape[0],), step, dtype=torch.long, device=x0.device)
            noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
            xt = diffusion.q_sample(x0, t, noise)
            out[step] = vb_term_bpd_with_variance(diffusion, model, x0, xt, t, variances, clip_denoised=clip_denoised,
                                                  decoder=decoder).double().mean().cpu()
    return out
