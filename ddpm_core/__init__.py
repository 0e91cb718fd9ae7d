"""ddpm_core: Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel 2020), one paper equation per function.

The top level holds what a reader needs to build, train, sample and evaluate a DDPM, grouped by layer:

============  ==========================================================================================
schedule      :class:`Schedule`: beta_1..beta_T and every derived constant, alpha_bar_t (Eq. 4), beta~_t (Eq. 7)
diffusion     :class:`GaussianDiffusion`: q(x_t | x_0) (Eq. 4), the posterior (Eq. 6-7), p_theta (Eq. 1, 11)
objectives    :func:`loss`: L_simple (Eq. 14), the bound L_vlb (Eq. 5) and their hybrid, one family
sampling      :func:`sample`: Algorithm 2, strided and DDIM; :func:`strided_timesteps`
likelihood    :func:`bits_per_dim` (Eq. 5, 13 term by term), :func:`rate_distortion` (Sec. 4.3),
              :func:`normal_kl` (the closed form behind L_{t-1}), :func:`discretized_gaussian_log_likelihood`
              (the decoder L_0, Eq. 13)
models        :func:`build_model` (the paper's U-Net, App. B, and small presets), :func:`count_parameters`
training      :class:`TrainConfig`, :func:`get_preset`, :class:`Trainer` (Algorithm 1 with App. B's recipe),
              :func:`load_pretrained`
pictures      :func:`make_grid`
============  ==========================================================================================

Time index: the paper's t = 1..T throughout (see :mod:`ddpm_core.schedules`). Everything else lives in
submodules: ``ddpm_core.losses`` (Gaussian formulas), ``ddpm_core.likelihood`` (the bound's terms),
``ddpm_core.samplers`` (respacing), ``ddpm_core.nn`` (networks), and, imported on first use so that
``import ddpm_core`` stays light, ``ddpm_core.train`` (training engine), ``ddpm_core.data`` (data sets),
``ddpm_core.metrics`` (FID, KID, MMD, ...), ``ddpm_core.convert`` (the paper's released checkpoints),
``ddpm_core.exercises`` (the book's exercise checkers), ``ddpm_core.viz`` and ``ddpm_core.provenance``.
"""
from __future__ import annotations

import importlib
import warnings
from typing import Any

__version__ = "0.2.0"

from .schedules import Schedule  # noqa: E402
from .diffusion import GaussianDiffusion  # noqa: E402
from .objectives import loss  # noqa: E402
from .samplers import sample, strided_timesteps  # noqa: E402
from .likelihood import bits_per_dim, rate_distortion  # noqa: E402
from .losses import discretized_gaussian_log_likelihood, normal_kl  # noqa: E402
from .nn import build_model, count_parameters  # noqa: E402

__all__ = [
    "__version__",
    # schedule
    "Schedule",
    # diffusion
    "GaussianDiffusion",
    # objectives
    "loss",
    # sampling
    "sample", "strided_timesteps",
    # likelihood
    "bits_per_dim", "rate_distortion", "normal_kl", "discretized_gaussian_log_likelihood",
    # models
    "build_model", "count_parameters",
    # training (imported on first use)
    "TrainConfig", "get_preset", "Trainer", "load_pretrained",
    # pictures (imported on first use)
    "make_grid",
]

# Top-level names whose module is imported only when the name is first used.
_LAZY = {
    "TrainConfig": "ddpm_core.train.config",
    "get_preset": "ddpm_core.train.config",
    "Trainer": "ddpm_core.train.engine",
    "load_pretrained": "ddpm_core.train.pretrained",
    "make_grid": "ddpm_core.viz",
}
_SUBMODULES = ("train", "data", "metrics", "convert", "exercises", "viz", "provenance", "cli", "oracles",
               "symbolic", "mixtures", "coding", "sde", "ode_likelihood", "analytic_variance", "snr",
               "score_matching", "guidance")
# Names that 0.1 exported at the top level: still found (with a DeprecationWarning) at their module.
_MOVED = {
    "linear_betas": "schedules", "cosine_betas": "schedules", "quadratic_betas": "schedules",
    "discretized_gaussian_bin_probs": "losses", "gaussian_log_likelihood": "losses", "mean_flat": "losses",
    "nats_to_bits_per_dim": "losses",
    "PARAMETERIZATIONS": "diffusion", "VARIANCES": "diffusion",
    "SampleResult": "samplers", "respace": "samplers", "respaced_betas": "samplers",
    "BoundTerms": "likelihood", "RateDistortion": "likelihood", "prior_bpd": "likelihood",
    "vb_term_bpd": "likelihood",
    "UNet": "nn", "UNetConfig": "nn", "MLPDenoiser": "nn", "MLPConfig": "nn",
    "load_checkpoint": "train", "train_or_load": "train",
}
_REMOVED = {
    "loss_vlb": "ddpm_core.loss(diffusion, model, x0, objective='vlb')",
    "ddim_sample": "ddpm_core.sample(model, diffusion, shape, sampler='ddim', ...)",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _MOVED:
        where = f"{__name__}.{_MOVED[name]}"
        warnings.warn(f"ddpm_core.{name} moved in 0.2: import it from {where}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(where), name)
    if name in _REMOVED:
        raise AttributeError(f"ddpm_core.{name} was removed in 0.2; use {_REMOVED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(_SUBMODULES) | {n for n in globals() if not n.startswith("_")})
