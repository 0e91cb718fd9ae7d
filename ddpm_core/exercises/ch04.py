"""Checkers for chapter 4, splitting the bound."""
from __future__ import annotations

import torch

from ._checker import Case, Mistake, check_expression, check_function

__all__ = ["check_forward_posterior", "check_gaussian_kl"]


def check_forward_posterior(coef_x0, coef_xt, variance) -> bool:
    """Exercise: q(x_{t-1} | x_t, x_0) = N(coef_x0 * x_0 + coef_xt * x_t, variance) (Eqs. 6-7). Submit the three
    as SymPy expressions in ``alpha_t, alphabar_prev = sympy.symbols("alpha_t alphabar_prev", positive=True)``
    (alphabar_prev is alpha-bar_{t-1}; beta_t = 1 - alpha_t, alpha-bar_t = alpha_t * alphabar_prev)."""
    import sympy as sp

    a, abp = sp.symbols("alpha_t alphabar_prev", positive=True)
    b, ab = 1 - a, a * abp
    ref_x0, ref_xt, ref_var = sp.sqrt(abp) * b / (1 - ab), sp.sqrt(a) * (1 - abp) / (1 - ab), (1 - abp) / (1 - ab) * b
    swapped = "the two weights are swapped: x_0 enters through q(x_{t-1} | x_0), with sqrt(alphabar_{t-1}); x_t " \
              "through q(x_t | x_{t-1}), with sqrt(alpha_t)."
    check_expression("check_forward_posterior (weight of x_0)", coef_x0, ref_x0, quiet=True,
                     mistakes=[(ref_xt, swapped),
                               (sp.sqrt(ab) * b / (1 - ab), "the x_0 weight has sqrt(alphabar_{t-1}), the signal "
                                                            "left in x_{t-1}, not sqrt(alphabar_t).")],
                     hint="complete the square in x_{t-1}: the mean is the x_{t-1}-coefficient of the exponent "
                          "times the variance.")
    check_expression("check_forward_posterior (weight of x_t)", coef_xt, ref_xt, quiet=True,
                     mistakes=[(ref_x0, swapped),
                               (1 / sp.sqrt(a), "1/sqrt(alpha_t) would invert the forward step; the posterior "
                                                "also listens to x_0.")],
                     hint="the weight of x_t is sqrt(alpha_t)/beta_t times the posterior variance.")
    check_expression("check_forward_posterior (variance)", variance, ref_var, quiet=True,
                     mistakes=[(b, "beta_t is the forward variance; knowing x_0 too shrinks it by "
                                   "(1 - alphabar_{t-1})/(1 - alphabar_t): that is beta~_t."),
                               ((1 - ab) / (1 - abp) * b, "the ratio is upside down: beta~_t <= beta_t, so the "
                                                          "factor is (1 - alphabar_{t-1})/(1 - alphabar_t).")],
                     hint="the precisions add: 1/variance = alpha_t/beta_t + 1/(1 - alphabar_{t-1}).")
    print("check_forward_posterior: correct (the weights of Eq. (7) and beta~_t).")
    return True


# ---- KL divergence between two Gaussians (the terms L_T and L_{t-1}) -----------------------------------------------
def _kl_reference(m1, v1, m2, v2):
    return 0.5 * (torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)


def _kl_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    f64 = dict(dtype=torch.float64)
    return [
        Case("prior term L_T: N(0.006, 0.99996) against N(0, 1)",
             {"m1": torch.tensor([0.00635], **f64), "v1": torch.tensor([0.99996], **f64),
              "m2": torch.zeros(1, **f64), "v2": torch.ones(1, **f64)}),
        Case("equal variances, different means", {"m1": torch.tensor([1.0, -0.5], **f64),
                                                  "v1": torch.tensor([0.3, 0.3], **f64),
                                                  "m2": torch.tensor([0.0, 0.5], **f64),
                                                  "v2": torch.tensor([0.3, 0.3], **f64)}),
        Case("beta~_t against beta_t at t = 2 (unequal variances)",
             {"m1": torch.tensor([0.2], **f64), "v1": torch.tensor([5.453188e-05], **f64),
              "m2": torch.tensor([0.21], **f64), "v2": torch.tensor([1.199199e-04], **f64)}),
        Case("random means and variances, shape (3, 4)",
             {"m1": torch.randn(3, 4, generator=g, **f64), "v1": torch.rand(3, 4, generator=g, **f64) + 0.1,
              "m2": torch.randn(3, 4, generator=g, **f64), "v2": torch.rand(3, 4, generator=g, **f64) + 0.1}),
        Case("identical Gaussians (KL = 0)", {"m1": torch.tensor([0.7], **f64), "v1": torch.tensor([0.5], **f64),
                                              "m2": torch.tensor([0.7], **f64), "v2": torch.tensor([0.5], **f64)}),
    ]


def check_gaussian_kl(student) -> bool:
    """Exercise: ``gaussian_kl(m1, v1, m2, v2)`` returns KL(N(m1, v1) || N(m2, v2)) elementwise in nats (variances,
    not standard deviations; tensors of one shape). With m2 = 0, v2 = 1 it is L_T; with the posterior and the
    model's step it is L_{t-1}."""
    mistakes = [
        Mistake(lambda m1, v1, m2, v2: _kl_reference(m2, v2, m1, v1),
                "you computed KL(N(m2, v2) || N(m1, v1)): the KL divergence is not symmetric; the expectation is "
                "under the first Gaussian, q."),
        Mistake(lambda m1, v1, m2, v2: torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1,
                "you are off by a factor of 2: KL = 1/2 [log(v2/v1) + (v1 + (m1 - m2)^2)/v2 - 1]."),
        Mistake(lambda m1, v1, m2, v2: 0.5 * (torch.log(v1 / v2) + (v1 + (m1 - m2) ** 2) / v2 - 1),
                "the sign of the log term: it is + 1/2 log(v2/v1) (the entropy of q enters with a minus sign)."),
        Mistake(lambda m1, v1, m2, v2: 0.5 * (torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2),
                "you left out the -1: the KL of a Gaussian from itself must be 0."),
        Mistake(lambda m1, v1, m2, v2: 0.5 * (torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v1 - 1),
                "the quadratic terms are divided by the variance of the *second* Gaussian, v2."),
    ]
    return check_function("check_gaussian_kl", student, _kl_reference, _kl_cases(), mistakes=mistakes,
                          rtol=1e-9, atol=1e-13,
                          hint="KL(N(m1, v1) || N(m2, v2)) = E_{x ~ N(m1, v1)}[log N(x; m1, v1) - log N(x; m2, v2)].")
