"""Checkers for chapter 5, the Gaussian KL divergence."""
from __future__ import annotations

import math

import torch

from ._checker import Case, Mistake, check_expression, check_function

__all__ = ["check_gaussian_kl_std", "check_best_reverse_variance", "best_variance_symbols"]


def _kl_reference(m1, s1, m2, s2):
    """Eq. (eq-kl-1d) of chapter 5: KL(N(m1, s1^2) || N(m2, s2^2)), elementwise, s the standard deviations."""
    return 0.5 * (torch.log(s2**2 / s1**2) + (s1**2 + (m1 - m2) ** 2) / s2**2 - 1)


def _kl_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    d = dict(dtype=torch.float64)
    cases = [
        Case("scalars m1 = 0.3, s1 = 0.7, m2 = -0.5, s2 = 1.3",
             {"m1": torch.tensor(0.3, **d), "s1": torch.tensor(0.7, **d),
              "m2": torch.tensor(-0.5, **d), "s2": torch.tensor(1.3, **d)}),
        Case("equal means, s1 = 1, s2 = 2 (only the variances differ)",
             {"m1": torch.zeros(3, **d), "s1": torch.ones(3, **d), "m2": torch.zeros(3, **d),
              "s2": torch.full((3,), 2.0, **d)}),
        Case("equal variances s1 = s2 = 0.5 (only the means differ)",
             {"m1": torch.tensor([1.0, -2.0], **d), "s1": torch.full((2,), 0.5, **d),
              "m2": torch.tensor([0.0, 0.5], **d), "s2": torch.full((2,), 0.5, **d)}),
        Case("identical Gaussians (the KL is 0)",
             {"m1": torch.tensor([0.2], **d), "s1": torch.tensor([0.3], **d),
              "m2": torch.tensor([0.2], **d), "s2": torch.tensor([0.3], **d)}),
    ]
    m1, m2 = torch.randn(2, 50, generator=g, **d)
    s1, s2 = torch.exp(torch.randn(2, 50, generator=g, **d))
    cases.append(Case("50 random pairs, std from about 0.1 to 10", {"m1": m1, "s1": s1, "m2": m2, "s2": s2}))
    return cases


def check_gaussian_kl_std(student) -> bool:
    """Exercise (chapter 5): ``gaussian_kl(m1, s1, m2, s2)`` returns KL(N(m1, s1^2) || N(m2, s2^2)) elementwise,
    where ``s1``, ``s2`` are standard deviations (tensors of one shape)."""
    mistakes = [
        Mistake(lambda m1, s1, m2, s2: 0.5 * (torch.log(s1**2 / s2**2) + (s1**2 + (m1 - m2) ** 2) / s2**2 - 1),
                "the log term has the wrong sign: KL(p || q) = E_p[log p - log q] gives + log(s2^2 / s1^2)."),
        Mistake(lambda m1, s1, m2, s2: torch.log(s2**2 / s1**2) + (s1**2 + (m1 - m2) ** 2) / s2**2 - 1,
                "your KL is twice the answer: did you forget the factor 1/2 in front of the bracket?"),
        Mistake(lambda m1, s1, m2, s2: 0.5 * (torch.log(s2 / s1) + (s1 + (m1 - m2) ** 2) / s2 - 1),
                "you used the standard deviations where the variances belong: the formula needs s1^2 and s2^2."),
        Mistake(lambda m1, s1, m2, s2: 0.5 * (torch.log(s1**2 / s2**2) + (s2**2 + (m1 - m2) ** 2) / s1**2 - 1),
                "you computed KL(q || p): the expectation is under the first Gaussian, so divide by s2^2."),
    ]
    return check_function("check_gaussian_kl_std", student, _kl_reference, _kl_cases(), mistakes=mistakes,
                          rtol=1e-7, atol=1e-10,
                          hint="KL = 1/2 [log(s2^2 / s1^2) + (s1^2 + (m1 - m2)^2) / s2^2 - 1] (Eq. eq-kl-1d).")


def best_variance_symbols():
    """The SymPy symbols of the best-variance exercise: ``s1_sq`` (the variance s_1^2 of the posterior) and
    ``delta_sq`` (the mean squared error delta^2 per dimension of the mean), both positive."""
    import sympy as sp

    return sp.symbols("s_1^2 delta^2", positive=True)


def check_best_reverse_variance(answer) -> bool:
    """Exercise (chapter 5): the s_2^2 that minimizes the isotropic KL of Eq. (eq-kl-iso) when
    ||mu_1 - mu_2||^2 = d delta^2, as a SymPy expression in the symbols of :func:`best_variance_symbols`."""
    import sympy as sp

    s1_sq, delta_sq = best_variance_symbols()
    return check_expression(
        "check_best_reverse_variance", answer, s1_sq + delta_sq,
        mistakes=[
            (s1_sq, "that is the optimum for a perfect mean (delta = 0); the squared mean error adds to the "
                    "variance the reverse step should have."),
            (sp.sqrt(s1_sq + delta_sq), "that is a standard deviation: the question asks for the variance s_2^2."),
            (s1_sq + delta_sq / 2, "the mean error enters the KL as d delta^2 / (2 s_2^2), like s_1^2 does "
                                   "(d s_1^2 / (2 s_2^2)): they carry the same factor."),
            (s1_sq - delta_sq, "check the sign: a worse mean needs a wider, not a narrower, reverse step."),
        ],
        hint="differentiate d/2 [log s_2^2 - log s_1^2 + (s_1^2 + delta^2) / s_2^2 - 1] in s_2^2 and set it to 0.")
