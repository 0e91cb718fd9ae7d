"""Checkers for chapter 15, when DDPM goes wrong: the reverse step's noise, the data map, the Gaussian baseline."""
from __future__ import annotations

import torch

from ._checker import Case, Mistake, check_function

__all__ = ["check_reverse_noise", "check_to_model_range", "check_gaussian_baseline"]


def _noise_cases() -> list[Case]:
    g = torch.Generator().manual_seed(15)
    cases = []
    for label, logvar in [("log sigma^2 = log 0.02 (t near T)", torch.full((4, 1), 0.02).log()),
                          ("log sigma^2 = log 1e-4 (t near 1)", torch.full((4, 1), 1e-4).log()),
                          ("random log-variances", torch.rand(4, 1, generator=g) * -8.0)]:
        cases.append(Case(label, {"mean": torch.randn(4, 3, generator=g), "log_variance": logvar,
                                  "z": torch.randn(4, 3, generator=g)}))
    return cases


def check_reverse_noise(student) -> bool:
    """Exercise: ``reverse_noise(mean, log_variance, z)`` returns x_{t-1} = mean + sigma_t z of Algorithm 2, line 4,
    given log sigma_t^2 (shape (B, 1)) and z ~ N(0, I) (shape like ``mean``)."""
    mistakes = [
        Mistake(lambda mean, log_variance, z: mean + log_variance.exp() * z,
                "you scaled z by the variance sigma_t^2; the standard deviation is exp(0.5 * log_variance)."),
        Mistake(lambda mean, log_variance, z: mean + log_variance * z,
                "log_variance is log sigma_t^2: exponentiate it (and halve it) before scaling z."),
        Mistake(lambda mean, log_variance, z: mean + (0.5 * log_variance).exp(),
                "the noise z is missing: x_{t-1} = mean + sigma_t * z."),
    ]
    return check_function("check_reverse_noise", student, lambda mean, log_variance, z:
                          mean + (0.5 * log_variance).exp() * z, _noise_cases(), mistakes=mistakes,
                          hint="x_{t-1} = mean + exp(0.5 * log_variance) * z (Algorithm 2, line 4).")


def _levels_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    return [Case("black and white", {"levels": torch.tensor([[0, 255], [255, 0]], dtype=torch.uint8)}),
            Case("mid grey 127 and 128", {"levels": torch.tensor([127, 128], dtype=torch.uint8)}),
            Case("random 8-bit image", {"levels": torch.randint(0, 256, (2, 1, 4, 4), generator=g,
                                                                 dtype=torch.uint8)})]


def check_to_model_range(student) -> bool:
    """Exercise: ``to_model_range(levels)`` maps 8-bit levels 0..255 (uint8) linearly onto [-1, 1] (float32),
    0 -> -1 and 255 -> 1, as DDPM's data must be (Sec. 3.3)."""
    mistakes = [
        Mistake(lambda levels: levels.float() / 255, "that is [0, 1]: the data must be centred, map to 2 x - 1."),
        Mistake(lambda levels: levels.float() / 127.5, "that is [0, 2]: subtract 1 after dividing by 127.5."),
        Mistake(lambda levels: levels.float() / 128 - 1, "255 must map exactly to 1: divide by 127.5, not 128."),
        Mistake(lambda levels: levels.float(), "the levels are unscaled (0..255): divide by 127.5 and subtract 1."),
    ]
    return check_function("check_to_model_range", student, lambda levels: levels.float() / 127.5 - 1,
                          _levels_cases(), mistakes=mistakes,
                          hint="x = levels / 127.5 - 1 maps 0 -> -1 and 255 -> 1.")


def _baseline_reference(alpha_bar, eigenvalues):
    ab = torch.as_tensor(alpha_bar, dtype=torch.float64)
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64)
    return float((ab * lam / (ab * lam + 1 - ab)).mean())


def check_gaussian_baseline(student) -> bool:
    """Exercise: ``gaussian_baseline(alpha_bar, eigenvalues)`` returns the per-dimension L_simple of the exact
    eps-predictor for Gaussian data whose covariance has the given eigenvalues, at one t (a float)."""
    g = torch.Generator().manual_seed(3)
    cases = [Case("alpha_bar = 0.5, unit covariance", {"alpha_bar": 0.5, "eigenvalues": torch.ones(3)}),
             Case("alpha_bar = 0.9, eigenvalues 0.1 and 4", {"alpha_bar": 0.9, "eigenvalues": torch.tensor([0.1, 4.0])}),
             Case("alpha_bar = 0.01, random spectrum", {"alpha_bar": 0.01,
                                                        "eigenvalues": torch.rand(16, generator=g, dtype=torch.float64) * 3}),
             Case("a zero eigenvalue (flat direction)", {"alpha_bar": 0.3, "eigenvalues": torch.tensor([0.0, 2.0])})]

    def lam64(e):
        return torch.as_tensor(e, dtype=torch.float64)

    mistakes = [
        Mistake(lambda alpha_bar, eigenvalues: float(((1 - alpha_bar) / (alpha_bar * lam64(eigenvalues)
                                                                           + 1 - alpha_bar)).mean()),
                "that is the fraction of the noise that x_t reveals; the remaining error is 1 minus it."),
        Mistake(lambda alpha_bar, eigenvalues: float((alpha_bar * lam64(eigenvalues) / (alpha_bar * lam64(eigenvalues)
                                                                                       + 1 - alpha_bar)).sum()),
                "the loss is averaged over dimensions (mean_flat), not summed."),
        Mistake(lambda alpha_bar, eigenvalues: float(((1 - alpha_bar) * lam64(eigenvalues)
                                                      / ((1 - alpha_bar) * lam64(eigenvalues) + alpha_bar)).mean()),
                "alpha_bar and 1 - alpha_bar are swapped: the signal's variance is alpha_bar * lambda, the noise's "
                "1 - alpha_bar."),
    ]
    return check_function("check_gaussian_baseline", student, _baseline_reference, cases, mistakes=mistakes,
                          hint="per direction i the error is ab l_i / (ab l_i + 1 - ab); average over i.",
                          rtol=1e-6, atol=1e-9)
