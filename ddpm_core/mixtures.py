"""Gaussian-mixture data with everything known in closed form at every t: a ground-truth oracle.

Data x_0 ~ sum_k w_k N(m_k, diag(s_k^2)). Under the forward process q(x_t | x_0) = N(sqrt(ab) x_0, (1 - ab) I) (Eq. 4)
the marginal q(x_t) is again a mixture, sum_k w_k N(sqrt(ab) m_k, diag(ab s_k^2 + 1 - ab)), so its density, its
score grad log q(x_t), the optimal noise predictor eps*(x_t, t) = -sqrt(1 - ab) grad log q(x_t) (Tweedie) and the
component posterior p(k | x_t) are exact for every alpha-bar in [0, 1] (discrete t or continuous time alike).
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import torch

from .schedules import Schedule

__all__ = ["GaussianMixture", "MIXTURE_NAMES", "named_mixture"]

AlphaBar = Union[float, torch.Tensor]


class GaussianMixture:
    """A mixture of K diagonal Gaussians in d dimensions (float64 throughout).

    ``weights`` (K,) positive (normalised here), ``means`` (K, d), ``stds`` (K, d) or (K,) or a float, >= 0
    (std 0 gives a point mass, whose density exists only for ab < 1).
    """

    def __init__(self, weights: Sequence[float] | torch.Tensor, means: Sequence | torch.Tensor,
                 stds: Union[float, Sequence, torch.Tensor]) -> None:
        w = torch.as_tensor(weights, dtype=torch.float64).flatten()
        m = torch.as_tensor(means, dtype=torch.float64)
        if m.ndim == 1:
            m = m[:, None]
        if m.ndim != 2 or m.shape[0] != w.shape[0]:
            raise ValueError(f"means must have shape (K, d) with K = len(weights) = {w.shape[0]}, "
                             f"got {tuple(m.shape)}")
        if not torch.isfinite(w).all() or (w <= 0).any():
            raise ValueError(f"weights must be finite and > 0, got {w.tolist()}")
        s = torch.as_tensor(stds, dtype=torch.float64)
        if s.ndim == 0:
            s = s.expand(m.shape)
        elif s.ndim == 1 and s.shape[0] == m.shape[0]:
            s = s[:, None].expand(m.shape)
        if tuple(s.shape) != tuple(m.shape):
            raise ValueError(f"stds must be a float, shape (K,) or shape (K, d) = {tuple(m.shape)}, "
                             f"got {tuple(s.shape)}")
        if not torch.isfinite(m).all() or not torch.isfinite(s).all() or (s < 0).any():
            raise ValueError("means must be finite and stds finite and >= 0")
        self.weights = w / w.sum()
        self.means = m.clone()
        self.stds = s.clone()

    @property
    def K(self) -> int:
        return self.weights.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.K}, dim={self.dim})"

    # ---- moments and sampling of the data ------------------------------------------------------------------
    def mean(self) -> torch.Tensor:
        """E[x_0], shape (d,)."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """Cov[x_0], shape (d, d): sum_k w_k (diag(s_k^2) + m_k m_k^T) - E[x_0] E[x_0]^T."""
        mu = self.mean()
        second = (self.weights[:, None, None] * (torch.diag_embed(self.stds**2)
                                                 + self.means[:, :, None] * self.means[:, None, :])).sum(0)
        return second - mu[:, None] * mu[None, :]

    def sample(self, n: int, generator: Optional[torch.Generator] = None, *,
               return_labels: bool = False):
        """n draws of x_0, shape (n, d) float64 (and the component labels, shape (n,), on request)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[k] + self.stds[k] * z
        return (x, k) if return_labels else x

    # ---- the marginal q(x_t) ---------------------------------------------------------------------------------
    def _ab(self, alpha_bar: AlphaBar, x: torch.Tensor) -> torch.Tensor:
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64)
        if ab.ndim == 0:
            ab = ab.expand(x.shape[0])
        if ab.shape != (x.shape[0],):
            raise ValueError(f"alpha_bar must be a float or a tensor of shape (B,) = ({x.shape[0]},), "
                             f"got {tuple(ab.shape)}")
        if not torch.isfinite(ab).all() or (ab < 0).any() or (ab > 1).any():
            raise ValueError("alpha_bar must lie in [0, 1]")
        return ab[:, None, None]  # (B, 1, 1) against (B, K, d)

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must be a tensor of shape (B, {self.dim}), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        return x.to(torch.float64)

    def _parts(self, x: torch.Tensor, alpha_bar: AlphaBar):
        x = self._check_x(x)
        ab = self._ab(alpha_bar, x)
        mean = ab.sqrt() * self.means[None]                      # (B, K, d)
        var = ab * self.stds[None] ** 2 + (1 - ab)               # (B, K, d)
        if (var <= 0).any():
            raise ValueError("the density does not exist here (a point-mass component at alpha_bar = 1)")
        diff = x[:, None, :] - mean
        log_comp = -0.5 * (diff**2 / var + var.log() + math.log(2 * math.pi)).sum(-1)   # (B, K)
        log_joint = self.weights.log()[None] + log_comp
        return x, diff, var, log_joint

    def log_prob(self, x: torch.Tensor, alpha_bar: AlphaBar = 1.0) -> torch.Tensor:
        """log q(x_t) at ``x`` (B, d) for alpha-bar_t = ``alpha_bar`` (a float or (B,)); ``alpha_bar=1`` is the data."""
        return torch.logsumexp(self._parts(x, alpha_bar)[3], dim=1)

    def posterior(self, x: torch.Tensor, alpha_bar: AlphaBar = 1.0) -> torch.Tensor:
        """p(k | x_t), shape (B, K): the exact class posterior (the classifier that guidance differentiates)."""
        return torch.softmax(self._parts(x, alpha_bar)[3], dim=1)

    def score(self, x: torch.Tensor, alpha_bar: AlphaBar = 1.0) -> torch.Tensor:
        """grad_x log q(x_t), shape (B, d): sum_k p(k | x_t) (-(x - sqrt(ab) m_k) / (ab s_k^2 + 1 - ab))."""
        x, diff, var, log_joint = self._parts(x, alpha_bar)
        r = torch.softmax(log_joint, dim=1)
        return -(r[:, :, None] * diff / var).sum(1)

    def eps_oracle(self, schedule: Schedule) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The exact eps-predictor ``model(x_t, t)`` (t in 1..T): eps* = -sqrt(1 - ab_t) grad log q(x_t)."""
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")

        def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            t = schedule.check_t(t)
            if t.ndim != 1 or t.shape[0] != x_t.shape[0]:
                raise ValueError(f"t must have shape (B,) with B = {x_t.shape[0]}, got {tuple(t.shape)}")
            ab = schedule.alpha_bars[t.cpu()]
            eps = -(1 - ab)[:, None].sqrt() * self.score(x_t.detach().cpu().double(), ab)
            return eps.to(device=x_t.device, dtype=x_t.dtype)

        return model


# The book's ground-truth data sets: fixed mixtures, roughly unit scale (like the 2-D toys), with unequal weights
# and widths so that no symmetry hides a mistake. ``sample_toy("gaussian_mixture", n)`` draws from the 2-D one,
# ``sample_toy("gaussian_mixture_1d", n)`` from the 1-D one; the data sets of the same names label every point with
# its component (the class of the conditional-generation chapter).
_NAMED = {
    "gaussian_mixture": dict(weights=[0.5, 0.3, 0.2], means=[[-1.0, -0.6], [1.1, -0.4], [0.1, 1.2]],
                             stds=[[0.35, 0.25], [0.2, 0.45], [0.4, 0.2]]),
    "gaussian_mixture_1d": dict(weights=[0.4, 0.6], means=[[-1.2], [0.8]], stds=[[0.25], [0.45]]),
}
MIXTURE_NAMES: tuple[str, ...] = tuple(_NAMED)


def named_mixture(name: str) -> GaussianMixture:
    """The fixed mixture ``name`` (one of ``MIXTURE_NAMES``): the exact density, score and class posterior of the
    toy data sets of the same name, at every alpha-bar."""
    if name not in _NAMED:
        raise ValueError(f"unknown mixture {name!r}; allowed names: {', '.join(MIXTURE_NAMES)}")
    return GaussianMixture(**_NAMED[name])
