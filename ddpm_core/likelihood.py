"""The variational bound L of Eq. (5), term by term, in bits per dimension (Ho et al. 2020, Sec. 3 and 4.2).

    L = L_T + sum_{t=2}^T L_{t-1} + L_0,
    L_T     = KL( q(x_T | x_0) || p(x_T) )                          (the prior term, no parameters)
    L_{t-1} = KL( q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t) )  (Gaussian KL, Eq. 8 in closed form)
    L_0     = -log p_theta(x_0 | x_1)                               (the discretized decoder, Eq. 13)

Each L_{t-1} is an expectation over x_t ~ q(x_t | x_0); like the official code, one sample of x_t per t is drawn.
Data must lie on the 8-bit grid in [-1, 1] for L_0 to be a probability (the decoder is discrete).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import torch
from tqdm import tqdm

from .diffusion import VARIANCES, GaussianDiffusion, Model, randn
from .losses import discretized_gaussian_log_likelihood, gaussian_log_likelihood, mean_flat, normal_kl

__all__ = ["DECODERS", "BoundTerms", "RateDistortion", "rate_distortion", "prior_bpd", "vb_term_bpd", "bits_per_dim"]


def prior_bpd(diffusion: GaussianDiffusion, x0: torch.Tensor) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) in bits/dim, shape (B,). About 1e-5 for the paper's schedule on [-1, 1] data."""
    out_dtype = torch.promote_types(x0.dtype, torch.float32)
    x0 = x0.double() if x0.device.type != "mps" else x0  # L_T ~ 1e-5 is near float32 resolution: use float64
    T = torch.full((x0.shape[0],), diffusion.T, dtype=torch.long, device=x0.device)
    mean, var = diffusion.q_mean_variance(x0, T)
    kl = normal_kl(mean, torch.log(var).expand_as(mean), torch.zeros_like(mean), torch.zeros_like(mean))
    return (mean_flat(kl) / math.log(2.0)).to(out_dtype)


DECODERS = ("discretized", "gaussian")


def vb_term_bpd(diffusion: GaussianDiffusion, model: Model, x0: torch.Tensor, xt: torch.Tensor,
                t: torch.Tensor, clip_denoised: Optional[bool] = None, decoder: str = "discretized") -> dict:
    """The bound's term at step t for each example, in bits/dim: L_{t-1} (Gaussian KL) where t >= 2 and L_0
    where t = 1. ``t`` has shape (B,); mixed values are allowed.

    ``decoder="discretized"`` is the paper's L_0 for 8-bit data (Eq. 13), a probability; ``"gaussian"`` uses the
    continuous density N(x_0; mu_theta(x_1, 1), sigma_1^2) instead, for continuous data (2-D toys), in which case
    the bound is on a differential (continuous) negative log-likelihood.

    Returns a dict with ``term`` (B,), plus ``pred_x0`` and ``pred_eps`` (B, ...) from the model.
    """
    out = diffusion.p_mean_variance(model, xt, t, clip_denoised)
    true_mean, _, true_logvar = diffusion.q_posterior(x0, xt, t)
    kl = mean_flat(normal_kl(true_mean, true_logvar.expand_as(true_mean),
                             out["mean"], out["log_variance"].expand_as(out["mean"]))) / math.log(2.0)
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; allowed: {list(DECODERS)}")
    term = kl
    first = (t == 1).to(kl.device)
    if bool(first.any()):  # L_0 only where t = 1 (the decoder needs x_0 on its grid only there)
        x, mu, lv = x0[first], out["mean"][first], out["log_variance"].expand_as(x0)[first]
        if decoder == "discretized":
            decoder_ll = discretized_gaussian_log_likelihood(x, mu, 0.5 * lv)
        else:
            decoder_ll = gaussian_log_likelihood(x, mu, lv)
        term = kl.clone()
        term[first] = (-mean_flat(decoder_ll) / math.log(2.0)).to(kl.dtype)
    return {"term": term, "pred_x0": out["pred_x0"], "pred_eps": out["pred_eps"]}


@dataclass
class BoundTerms:
    """The bound L of Eq. (5) for a batch, in bits/dim.

    total:   (B,) L = prior + terms.sum(1), an upper bound on -log p(x_0) / (D ln 2).
    prior:   (B,) L_T.
    terms:   (B, T) column t - 1 holds the term of step t: L_0 for t = 1, L_{t-1} for t >= 2.
    x0_mse:  (B, T) mean squared error of the model's x_0 prediction from x_t (distortion, Sec. 4.3).
    eps_mse: (B, T) mean squared error of the implied epsilon prediction.
    """

    total: torch.Tensor
    prior: torch.Tensor
    terms: torch.Tensor
    x0_mse: torch.Tensor
    eps_mse: torch.Tensor

    @property
    def decoder(self) -> torch.Tensor:
        """L_0 per example, (B,)."""
        return self.terms[:, 0]

    def mean(self) -> dict:
        """Batch means as plain floats: total, prior, L_0 and the sum of the L_{t-1} terms."""
        return {"total": self.total.mean().item(), "prior": self.prior.mean().item(),
                "decoder": self.decoder.mean().item(), "diffusion": self.terms[:, 1:].sum(1).mean().item()}

    def rate_distortion(self, data_range: float = 255.0) -> "RateDistortion":
        """The rate-distortion curve of progressive coding with these terms (see :func:`rate_distortion`)."""
        return rate_distortion(self.prior, self.terms, self.x0_mse, data_range)


@dataclass
class RateDistortion:
    """Progressive lossy compression with the reverse process (Sec. 4.3, Algorithms 3 and 4, Fig. 5, Table 4).

    The sender transmits x_T, x_{T-1}, ..., x_1 (each with the model's p(x_{t-1} | x_t) as the coding distribution)
    and finally x_0. Entry t - 1 of each array describes the moment the receiver holds x_t:

    t
        (T,) 1, ..., T.
    rate
        (T,) bits/dim sent so far, L_T + sum over s = t .. T-1 of L_s (``rate[-1]`` is L_T).
    distortion
        (T,) root mean squared error of the receiver's estimate x0_hat(x_t), in units of ``data_range / 2`` per
        unit of the [-1, 1] data (the paper's RMSE on a 0..255 scale for ``data_range=255``).
    total
        the full bound L in bits/dim: the rate once x_0 itself is sent as well (lossless).
    """

    t: torch.Tensor
    rate: torch.Tensor
    distortion: torch.Tensor
    total: float

    def at(self, t: int) -> tuple[float, float]:
        """(rate, distortion) when the receiver holds x_t, t in 1..T."""
        T = self.t.numel()
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= T:
            raise ValueError(f"t must be an int in 1..{T}, got {t!r}")
        return float(self.rate[t - 1]), float(self.distortion[t - 1])


def rate_distortion(prior, terms, x0_mse, data_range: float = 255.0) -> RateDistortion:
    """Rate and distortion of progressive coding per reverse step (Sec. 4.3), averaged over a data set.

    prior: L_T, shape (B,) or a scalar; terms: (B, T) or (T,) bound terms in bits/dim as in :class:`BoundTerms`
    (column t - 1: L_{t-1}, and L_0 at t = 1); x0_mse: (B, T) or (T,) squared error of x0_hat(x_t) per dimension
    for data in [-1, 1]. Means over the batch are taken first, so ``distortion`` is the data set's RMSE,
    sqrt(mean squared error) * data_range / 2. Per-example arrays and their batch means give the same curve.
    """
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    prior = torch.as_tensor(prior, dtype=torch.float64).detach().cpu().reshape(-1)
    terms = torch.as_tensor(terms, dtype=torch.float64).detach().cpu()
    x0_mse = torch.as_tensor(x0_mse, dtype=torch.float64).detach().cpu()
    terms = terms.unsqueeze(0) if terms.ndim == 1 else terms
    x0_mse = x0_mse.unsqueeze(0) if x0_mse.ndim == 1 else x0_mse
    if terms.ndim != 2 or terms.shape[1] < 1:
        raise ValueError(f"terms must have shape (B, T) or (T,), got {tuple(terms.shape)}")
    if x0_mse.ndim != 2 or x0_mse.shape[1] != terms.shape[1]:
        raise ValueError(f"x0_mse must have the shape of terms {tuple(terms.shape)}, got {tuple(x0_mse.shape)}")
    if prior.numel() < 1:
        raise ValueError("prior must hold at least one value")
    if bool((x0_mse < 0).any()):
        raise ValueError("x0_mse must be non-negative (it is a squared error)")
    T = terms.shape[1]
    mean_terms, mean_prior = terms.mean(0), prior.mean()
    # sent after x_t arrives: L_T plus the terms of steps T, ..., t + 1, i.e. columns t .. T-1
    tail = torch.flip(torch.cumsum(torch.flip(mean_terms, [0]), 0), [0])  # tail[i] = sum_{j >= i} mean_terms[j]
    rate = mean_prior + torch.cat([tail[1:], tail.new_zeros(1)])
    distortion = x0_mse.mean(0).sqrt() * (data_range / 2)
    return RateDistortion(t=torch.arange(1, T + 1), rate=rate, distortion=distortion,
                          total=float(mean_prior + mean_terms.sum()))


@torch.no_grad()
def bits_per_dim(diffusion: GaussianDiffusion, model: Model, x0: torch.Tensor, *, progress: bool = False,
                 generator: Optional[torch.Generator] = None, clip_denoised: bool = False,
                 decoder: str = "discretized", variance: Union[None, str, torch.Tensor] = None) -> BoundTerms:
    """Evaluate every term of Eq. (5) for a batch x_0 (B, ...): T model calls, one x_t ~ q(x_t | x_0) per t.

    With the default ``decoder="discretized"`` x_0 must lie on the 8-bit grid in [-1, 1] and ``total`` bounds
    -log2 P(x_0) / D; with ``"gaussian"`` it bounds the continuous -log2 p(x_0) / D (see :func:`vb_term_bpd`).

    clip_denoised: clip the model's x_0 prediction to [-1, 1] inside the reverse means. The default ``False`` is
    the model that ``ddpm_core.loss(..., objective="vlb")`` trains, so the reported number is the bound that was
    optimised; ``True`` evaluates the bound of the clipped reverse process that sampling uses for images (a
    different model, usually a slightly lower number for image data).

    variance: the reverse variance sigma_t^2 the bound is evaluated with; the mean mu_theta is the model's either
    way. ``None`` (default) uses the diffusion's own; ``"beta"`` or ``"beta_tilde"`` the named choices of Sec. 3.2;
    a tensor of shape (T + 1,) a table of sigma_t^2 (index t, see :class:`GaussianDiffusion`); ``"optimal"`` the
    analytic optimal variance (Analytic-DPM, Bao et al. 2022) estimated from the model on this same batch x0 by
    :func:`ddpm_core.analytic_variance.estimate_optimal_variance` (T extra model calls, drawing their noise from
    ``generator`` first). To keep the estimate and the evaluation on separate data, call that function on other
    data and pass its table.
    """
    if not isinstance(x0, torch.Tensor) or not x0.dtype.is_floating_point:
        raise TypeError("x0 must be a floating-point tensor of data scaled to [-1, 1]")
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; allowed: {list(DECODERS)}")
    if not isinstance(clip_denoised, bool):
        raise TypeError(f"clip_denoised must be True or False, got {clip_denoised!r}")
    if x0.ndim == 0 or x0.shape[0] == 0:
        raise ValueError(f"x0 must have shape (B, ...) with B >= 1, got {tuple(x0.shape)}")
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains NaN or infinite values")
    if decoder == "discretized":
        levels = (x0.float() + 1) * 127.5  # float32 is exact enough (1e-5 levels) and exists on every device
        off = (levels - levels.round()).abs().max().item()
        if x0.min() < -1 - 1e-6 or x0.max() > 1 + 1e-6 or off > 1e-3:
            raise ValueError(
                "the discretized decoder (Eq. 13) needs 8-bit data in [-1, 1]: x0 = k / 127.5 - 1 with integers k in 0..255, "
                f"but x0 spans [{x0.min().item():.4g}, {x0.max().item():.4g}] and is up to {off:.3g} levels off "
                "that grid. Quantize it with x0 = torch.round((x0 + 1) * 127.5).clamp(0, 255) / 127.5 - 1, or pass "
                "decoder='gaussian' for continuous data")
    if variance is not None:
        if isinstance(variance, str) and variance == "optimal":
            from .analytic_variance import estimate_optimal_variance

            variance = estimate_optimal_variance(diffusion, model, x0, decoder=decoder, generator=generator)
        elif not isinstance(variance, (str, torch.Tensor)):
            raise TypeError(f"variance must be None, a name ('beta', 'beta_tilde', 'optimal') or a tensor of "
                            f"shape (T + 1,), got {type(variance).__name__}")
        elif isinstance(variance, str) and variance not in VARIANCES:
            raise ValueError(f"unknown variance {variance!r}; allowed: None, 'beta', 'beta_tilde', 'optimal' or a "
                             f"tensor of shape (T + 1,) = ({diffusion.T + 1},)")
        diffusion = GaussianDiffusion(diffusion.schedule, parameterization=diffusion.parameterization,
                                      variance=variance, clip_denoised=diffusion.clip_denoised)
    B, T = x0.shape[0], diffusion.T
    terms = torch.zeros(B, T, dtype=torch.float64)
    x0_mse = torch.zeros(B, T, dtype=torch.float64)
    eps_mse = torch.zeros(B, T, dtype=torch.float64)
    for t_val in tqdm(range(T, 0, -1), desc="bound", disable=not progress, leave=False):
        t = torch.full((B,), t_val, dtype=torch.long, device=x0.device)
        noise = randn(x0.shape, generator, x0.device, x0.dtype)
        xt = diffusion.q_sample(x0, t, noise)
        out = vb_term_bpd(diffusion, model, x0, xt, t, clip_denoised, decoder)
        terms[:, t_val - 1] = out["term"].double().cpu()
        x0_mse[:, t_val - 1] = mean_flat((out["pred_x0"] - x0) ** 2).double().cpu()
        eps_mse[:, t_val - 1] = mean_flat((out["pred_eps"] - noise) ** 2).double().cpu()
    prior = prior_bpd(diffusion, x0).double().cpu()
    return BoundTerms(total=prior + terms.sum(1), prior=prior, terms=terms, x0_mse=x0_mse, eps_mse=eps_mse)

