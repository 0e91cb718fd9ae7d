"""Checkers for chapter 21, conditional generation and guidance: the classifier-free combination (Ho & Salimans
2022, Eq. 6), classifier guidance written for eps (Dhariwal & Nichol 2021, Alg. 2), and the variance of the
distribution that guidance samples for Gaussian class-conditionals."""
from __future__ import annotations

import torch

from ._checker import Case, Mistake, check_expression, check_function

__all__ = ["check_cfg_combination", "check_classifier_guided_eps", "check_guided_variance"]


def _cfg(eps_cond, eps_uncond, w):
    return (1 + w) * eps_cond - w * eps_uncond


def _cfg_cases() -> list[Case]:
    g = torch.Generator().manual_seed(21)
    a, b = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    return [Case("eps_cond = [1, 2], eps_uncond = [0.5, -1], w = 2",
                 {"eps_cond": torch.tensor([1.0, 2.0]), "eps_uncond": torch.tensor([0.5, -1.0]), "w": 2.0}),
            Case("random (4, 1, 8, 8) eps, w = 0.5", {"eps_cond": a, "eps_uncond": b, "w": 0.5}),
            Case("w = 0: the plain conditional model", {"eps_cond": a[:2], "eps_uncond": b[:2], "w": 0.0}),
            Case("w = 4, a strong guidance", {"eps_cond": b[1:], "eps_uncond": a[1:], "w": 4.0})]


def check_cfg_combination(student) -> bool:
    """Exercise: ``cfg(eps_cond, eps_uncond, w)`` returns the classifier-free guided noise prediction of Ho &
    Salimans (2022, Eq. 6) with their scale w (w = 0 is the conditional model)."""
    mistakes = [
        Mistake(lambda eps_cond, eps_uncond, w: w * eps_cond - (w - 1) * eps_uncond,
                "that is the 'gamma' convention, gamma eps_c - (gamma - 1) eps_u with gamma = 1 + w; with the "
                "paper's w the weights are (1 + w) and w, so w = 0 gives the conditional model."),
        Mistake(lambda eps_cond, eps_uncond, w: (1 + w) * eps_uncond - w * eps_cond,
                "conditional and unconditional are swapped: guidance moves *away* from the unconditional "
                "prediction, eps_c + w (eps_c - eps_u)."),
        Mistake(lambda eps_cond, eps_uncond, w: (1 - w) * eps_cond + w * eps_uncond,
                "that interpolates between the two predictions; guidance extrapolates beyond eps_c, "
                "eps_c + w (eps_c - eps_u)."),
        Mistake(lambda eps_cond, eps_uncond, w: eps_cond + w * eps_uncond,
                "the unconditional prediction enters with a minus sign: eps_c + w (eps_c - eps_u)."),
    ]
    return check_function("check_cfg_combination", student, _cfg, _cfg_cases(), mistakes=mistakes, rtol=1e-6,
                          atol=1e-6, hint="eps~ = (1 + w) eps(x_t, y) - w eps(x_t, null) (Ho & Salimans 2022, Eq. 6).")


def _cg(eps, grad_log_prob, alpha_bar, s):
    return eps - s * (1 - alpha_bar) ** 0.5 * grad_log_prob


def _cg_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2021)
    e, gr = torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(3, 2, generator=g, dtype=torch.float64)
    return [Case("eps = [0.1, -0.3], grad = [2, 1], alpha_bar = 0.36, s = 1",
                 {"eps": torch.tensor([0.1, -0.3], dtype=torch.float64),
                  "grad_log_prob": torch.tensor([2.0, 1.0], dtype=torch.float64), "alpha_bar": 0.36, "s": 1.0}),
            Case("random (3, 2), alpha_bar = 0.9, s = 3", {"eps": e, "grad_log_prob": gr, "alpha_bar": 0.9, "s": 3.0}),
            Case("alpha_bar = 0.01 (almost pure noise), s = 2",
                 {"eps": e, "grad_log_prob": gr, "alpha_bar": 0.01, "s": 2.0}),
            Case("s = 0: the unguided model", {"eps": e, "grad_log_prob": gr, "alpha_bar": 0.5, "s": 0.0})]


def check_classifier_guided_eps(student) -> bool:
    """Exercise: ``guided_eps(eps, grad_log_prob, alpha_bar, s)`` returns the classifier-guided noise prediction
    for eps = -sqrt(1 - alpha_bar) * score and the classifier's gradient grad_x log p(y | x_t), scale s."""
    mistakes = [
        Mistake(lambda eps, grad_log_prob, alpha_bar, s: eps + s * (1 - alpha_bar) ** 0.5 * grad_log_prob,
                "the sign: eps is *minus* sqrt(1 - alpha_bar) times the score, so adding s grad log p(y|x_t) to the "
                "score subtracts s sqrt(1 - alpha_bar) grad log p(y|x_t) from eps."),
        Mistake(lambda eps, grad_log_prob, alpha_bar, s: eps - s * (1 - alpha_bar) * grad_log_prob,
                "the factor is sqrt(1 - alpha_bar), the standard deviation of the noise, not the variance."),
        Mistake(lambda eps, grad_log_prob, alpha_bar, s: eps - s * alpha_bar ** 0.5 * grad_log_prob,
                "the factor is sqrt(1 - alpha_bar) (eps = -sqrt(1 - alpha_bar) score), not sqrt(alpha_bar)."),
        Mistake(lambda eps, grad_log_prob, alpha_bar, s: eps - s * grad_log_prob,
                "convert the score to the eps scale: multiply the classifier's gradient by sqrt(1 - alpha_bar)."),
    ]
    return check_function("check_classifier_guided_eps", student, _cg, _cg_cases(), mistakes=mistakes, rtol=1e-9,
                          atol=1e-12, hint="eps~ = eps - s sqrt(1 - alpha_bar) grad_x log p(y | x_t) "
                                           "(Dhariwal & Nichol 2021, Alg. 2 written for eps).")


def check_guided_variance(variance) -> bool:
    """Exercise: with a Gaussian conditional p(x | y) = N(mu, sigma_c^2) and a Gaussian unconditional p(x) =
    N(0, sigma_u^2), the guided density p(x | y)^(1 + w) / p(x)^w (the density whose score is CFG's guided
    score) is Gaussian; submit its variance as a SymPy expression in ``w, sigma_c, sigma_u =
    sympy.symbols("w sigma_c sigma_u", positive=True)``."""
    import sympy as sp

    w, sc, su = sp.symbols("w sigma_c sigma_u", positive=True)
    reference = 1 / ((1 + w) / sc**2 - w / su**2)
    mistakes = [
        (sc**2 / (1 + w), "the unconditional density divides: its precision w / sigma_u^2 is *subtracted* from "
                          "(1 + w) / sigma_c^2. Only if sigma_u were infinite would the variance be sigma_c^2/(1+w)."),
        (1 / ((1 + w) / sc**2 + w / su**2), "dividing by p(x)^w subtracts its precision, it does not add it."),
        ((1 + w) * sc**2 - w * su**2, "exponents of Gaussian densities combine *precisions* (1 / variance), not "
                                      "variances: the log density is a sum of -x^2 / (2 sigma^2) terms."),
        (sc**2, "that is p(x | y) itself (w = 0); with w > 0 the extra factor (p(x|y)/p(x))^w changes the width."),
    ]
    return check_expression("check_guided_variance", variance, reference, mistakes=mistakes,
                            hint="log of the guided density = (1 + w) log N(x; mu, sigma_c^2) - w log N(x; 0, "
                                 "sigma_u^2) + const; collect the x^2 terms: the precision is (1 + w)/sigma_c^2 - "
                                 "w/sigma_u^2.")
