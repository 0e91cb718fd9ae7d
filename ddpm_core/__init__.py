"""ddpm_core: Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel 2020), one paper equation per function.

Time index: the paper's t = 1..T throughout (see :mod:`ddpm_core.schedules`). Subpackages: ``ddpm_core.nn``
(networks), ``ddpm_core.data`` (data sets), ``ddpm_core.metrics`` (FID, KID, MMD, ...), ``ddpm_core.train``
(training engine), ``ddpm_core.convert`` (the paper's released checkpoints), ``ddpm_core.samplers`` (DDIM).
"""
__version__ = "0.1.0"

from .schedules import Schedule, linear_betas, cosine_betas, quadratic_betas  # noqa: E402
from .losses import (normal_kl, discretized_gaussian_log_likelihood, discretized_gaussian_bin_probs,  # noqa: E402
                     gaussian_log_likelihood, mean_flat, nats_to_bits_per_dim)
from .diffusion import GaussianDiffusion, SampleResult, PARAMETERIZATIONS, VARIANCES  # noqa: E402
from .likelihood import (BoundTerms, RateDistortion, bits_per_dim, prior_bpd, rate_distortion,  # noqa: E402
                         vb_term_bpd, loss_vlb)
from .samplers import ddim_sample, respace, respaced_betas, strided_timesteps  # noqa: E402
from .nn import UNet, UNetConfig, MLPDenoiser, MLPConfig, build_model, count_parameters  # noqa: E402
from .train import TrainConfig, Trainer, get_preset, load_checkpoint, train_or_load  # noqa: E402
from .train.pretrained import load_pretrained  # noqa: E402

__all__ = [
    "__version__",
    "Schedule", "linear_betas", "cosine_betas", "quadratic_betas",
    "normal_kl", "discretized_gaussian_log_likelihood", "discretized_gaussian_bin_probs",
    "gaussian_log_likelihood", "mean_flat", "nats_to_bits_per_dim",
    "GaussianDiffusion", "SampleResult", "PARAMETERIZATIONS", "VARIANCES",
    "BoundTerms", "bits_per_dim", "prior_bpd", "vb_term_bpd", "loss_vlb", "RateDistortion", "rate_distortion",
    "ddim_sample", "respace", "respaced_betas", "strided_timesteps",
    "UNet", "UNetConfig", "MLPDenoiser", "MLPConfig", "build_model", "count_parameters",
    "TrainConfig", "Trainer", "get_preset", "load_checkpoint", "train_or_load", "load_pretrained",
]
