"""Checkers for chapter 16, the bound in terms of the signal-to-noise ratio: one term in SNR form, the weight that
turns L_simple into the bound, and the density of log-SNR under the cosine schedule."""
from __future__ import annotations

import math

import torch

from ._checker import Case, ExerciseFailed, Mistake, _recognise, check_function

__all__ = ["check_snr_bound_term", "check_lsimple_to_bound_weight", "check_cosine_log_snr_density"]


def _snr(ab):
    ab = torch.as_tensor(ab, dtype=torch.float64)
    return ab / (1 - ab)


def _f64(v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def _err(x0, x0_hat):
    return ((x0.double() - x0_hat.double()) ** 2).flatten(1).sum(1)


def _term_reference(alpha_bar_prev, alpha_bar_t, x0, x0_hat):
    return 0.5 * (_snr(alpha_bar_prev) - _snr(alpha_bar_t)) * _err(x0, x0_hat)


def _term_cases() -> list[Case]:
    g = torch.Generator().manual_seed(16)
    cases = []
    for label, abp, abt, shape in [("t = 2 of the paper's schedule (alpha_bars 0.9999, 0.99978)", 0.9999, 0.99978, (4, 2)),
                                   ("a middle step (alpha_bars 0.5, 0.45), images of shape (1, 3, 3)", 0.5, 0.45,
                                    (3, 1, 3, 3)),
                                   ("t near T (alpha_bars 1e-4, 9e-5)", 1e-4, 9e-5, (5, 2))]:
        x0 = torch.randn(*shape, generator=g, dtype=torch.float64)
        cases.append(Case(label, {"alpha_bar_prev": _f64(abp), "alpha_bar_t": _f64(abt), "x0": x0,
                                  "x0_hat": x0 + 0.3 * torch.randn(*shape, generator=g, dtype=torch.float64)}))
    abp = torch.rand(6, generator=g, dtype=torch.float64) * 0.5 + 0.45
    x0 = torch.randn(6, 3, generator=g, dtype=torch.float64)
    cases.append(Case("per-example alpha_bars (tensors of shape (6,))",
                      {"alpha_bar_prev": abp, "alpha_bar_t": abp * 0.9, "x0": x0,
                       "x0_hat": x0 + torch.randn(6, 3, generator=g, dtype=torch.float64)}))
    x0 = torch.randn(2, 2, generator=g, dtype=torch.float64)
    cases.append(Case("a perfect prediction (x0_hat = x0)", {"alpha_bar_prev": _f64(0.8), "alpha_bar_t": _f64(0.7), "x0": x0,
                                                             "x0_hat": x0.clone()}))
    return cases


def check_snr_bound_term(student) -> bool:
    """Exercise: ``snr_bound_term(alpha_bar_prev, alpha_bar_t, x0, x0_hat)`` returns L_{t-1} in nats per example,
    shape (B,): 1/2 (SNR(t-1) - SNR(t)) ||x0 - x0_hat||^2 with SNR = alpha_bar / (1 - alpha_bar), the squared error
    summed over every dimension but the batch. alpha_bar_prev, alpha_bar_t: float64 tensors of shape () or (B,)
    (float32 cannot resolve 1 - alpha_bar near t = 1 to the checker's tolerance)."""
    mistakes = [
        Mistake(lambda alpha_bar_prev, alpha_bar_t, x0, x0_hat: -_term_reference(alpha_bar_prev, alpha_bar_t, x0, x0_hat),
                "the sign is reversed: SNR decreases with t, so SNR(t-1) - SNR(t) > 0 and the term (a KL) is >= 0."),
        Mistake(lambda alpha_bar_prev, alpha_bar_t, x0, x0_hat: 2 * _term_reference(alpha_bar_prev, alpha_bar_t, x0, x0_hat),
                "the factor 1/2 of the Gaussian KL is missing."),
        Mistake(lambda alpha_bar_prev, alpha_bar_t, x0, x0_hat: 0.5 * (torch.as_tensor(alpha_bar_prev, dtype=torch.float64)
                                                                     - torch.as_tensor(alpha_bar_t, dtype=torch.float64))
                * _err(x0, x0_hat),
                "you used alpha_bar itself; the SNR is alpha_bar / (1 - alpha_bar)."),
        Mistake(lambda alpha_bar_prev, alpha_bar_t, x0, x0_hat: 0.5 * (_snr(alpha_bar_prev).sqrt() - _snr(alpha_bar_t).sqrt())
                * _err(x0, x0_hat),
                "the SNR is a ratio of variances, alpha_bar / (1 - alpha_bar), not of standard deviations."),
        Mistake(lambda alpha_bar_prev, alpha_bar_t, x0, x0_hat: 0.5 * (_snr(alpha_bar_prev) - _snr(alpha_bar_t))
                * ((x0.double() - x0_hat.double()) ** 2).flatten(1).mean(1),
                "the squared error is summed over the dimensions of an example (a KL of independent coordinates "
                "adds up), not averaged."),
    ]
    return check_function("check_snr_bound_term", student, _term_reference, _term_cases(), mistakes=mistakes,
                          hint="L_{t-1} = 0.5 * (SNR(t-1) - SNR(t)) * ||x0 - x0_hat||^2, SNR = ab / (1 - ab), summed "
                               "over all dimensions but the first.", rtol=1e-7, atol=1e-10)


def _weight_reference(alpha_bar_prev, alpha_bar_t):
    return 0.5 * (_snr(alpha_bar_prev) / _snr(alpha_bar_t) - 1)


def check_lsimple_to_bound_weight(student) -> bool:
    """Exercise: ``bound_weight(alpha_bar_prev, alpha_bar_t)`` returns the weight w_t with
    L_{t-1} = w_t ||eps - eps_hat||^2 (sigma_t^2 = beta~_t): the factor that turns L_simple's term at t into the
    bound's. Inputs are float64 tensors of one shape (() or (B,)); return that shape."""
    def ab_ratio(abp, abt):
        abp, abt = torch.as_tensor(abp, dtype=torch.float64), torch.as_tensor(abt, dtype=torch.float64)
        return abp, abt, abt / abp            # alpha_t = ab_t / ab_{t-1}
    g = torch.Generator().manual_seed(61)
    abp = torch.rand(8, generator=g, dtype=torch.float64) * 0.9 + 0.05
    cases = [Case("t = 2 of the paper's schedule (0.9999, 0.99978)", {"alpha_bar_prev": _f64(0.9999),
                                                                       "alpha_bar_t": _f64(0.99978)}),
             Case("a middle step (0.5, 0.49)", {"alpha_bar_prev": _f64(0.5), "alpha_bar_t": _f64(0.49)}),
             Case("t near T (4.1e-5, 4.04e-5)", {"alpha_bar_prev": _f64(4.1e-5), "alpha_bar_t": _f64(4.04e-5)}),
             Case("random steps, tensors of shape (8,)", {"alpha_bar_prev": abp,
                                                          "alpha_bar_t": abp * (1 - torch.rand(8, generator=g,
                                                                                               dtype=torch.float64) * 0.2)})]

    def with_beta(alpha_bar_prev, alpha_bar_t):
        abp, abt, alpha = ab_ratio(alpha_bar_prev, alpha_bar_t)
        return (1 - alpha) / (2 * alpha * (1 - abt))

    mistakes = [
        Mistake(lambda alpha_bar_prev, alpha_bar_t: 0.5 * (_snr(alpha_bar_prev) - _snr(alpha_bar_t)),
                "that is the weight of the x_0 error; ||eps - eps_hat||^2 = SNR(t) ||x0 - x0_hat||^2, so divide by "
                "SNR(t)."),
        Mistake(with_beta, "that is Eq. (12)'s weight with sigma_t^2 = beta_t; with sigma_t^2 = beta~_t the bound's "
                           "weight is beta_t / (2 alpha_t (1 - alpha_bar_{t-1}))."),
        Mistake(lambda alpha_bar_prev, alpha_bar_t: _snr(alpha_bar_prev) / _snr(alpha_bar_t) - 1,
                "the factor 1/2 of the Gaussian KL is missing."),
        Mistake(lambda alpha_bar_prev, alpha_bar_t: 0.5 * (_snr(alpha_bar_t) / _snr(alpha_bar_prev) - 1),
                "the ratio is upside down (your weights are negative): SNR(t-1) / SNR(t) > 1."),
    ]
    return check_function("check_lsimple_to_bound_weight", student, _weight_reference, cases, mistakes=mistakes,
                          hint="w_t = 0.5 * (SNR(t-1) / SNR(t) - 1) with SNR = ab / (1 - ab).", rtol=1e-7, atol=0.0)


_LAM_POINTS = (-9.0, -3.0, -0.5, 0.0, 1.0, 4.0, 9.0)


def check_cosine_log_snr_density(student) -> bool:
    """Exercise: a SymPy expression in ``lam = sympy.Symbol("lam", real=True)`` for the density p(lambda) of the
    log-SNR lambda = log(alpha_bar / (1 - alpha_bar)) when s ~ U(0, 1) and alpha_bar(s) = cos^2(pi s / 2) (the cosine
    schedule without offset or truncation, lambda from +inf to -inf). Compared at several lambda."""
    import sympy as sp

    name = "check_cosine_log_snr_density"
    lam = sp.Symbol("lam", real=True)
    reference = sp.sech(lam / 2) / (2 * sp.pi)
    hint = ("lambda = -2 log tan(pi s / 2): invert for s(lambda) and take |ds / dlambda|; sin(2 phi) = "
            "2 sqrt(alpha_bar (1 - alpha_bar)) = sech(lambda / 2).")
    try:
        expr = sp.sympify(student)
    except (sp.SympifyError, TypeError) as err:
        raise ExerciseFailed(name, f"your answer is not a SymPy expression ({err})", hint) from err
    extra = expr.free_symbols - {lam}
    if extra:
        raise ExerciseFailed(name, f"your answer uses the symbol(s) {', '.join(sorted(map(str, extra)))}; write it in "
                                   "lam = sympy.Symbol('lam', real=True) only", hint)

    def values(e):
        out = []
        for v in _LAM_POINTS:
            z = complex(sp.N(e.subs(lam, v), 30))
            out.append(z)
        return out

    def agrees(e, target=reference) -> bool:
        got = values(e)
        ref = values(target)
        return all(abs(g.imag) < 1e-12 and math.isclose(g.real, r.real, rel_tol=1e-9, abs_tol=1e-15)
                   for g, r in zip(got, ref))

    try:
        ok = agrees(expr)
    except (TypeError, ValueError) as err:
        raise ExerciseFailed(name, f"your expression cannot be evaluated at lam = {_LAM_POINTS} ({err})", hint) from err
    if not ok:
        mistakes = [
            (sp.sech(lam / 2), "not normalised: the density must integrate to 1 over the real line; "
                               "int sech(lambda / 2) d lambda = 2 pi."),
            (sp.sech(lam / 2) / sp.pi, "the normalisation is off by 2: int sech(lambda / 2) d lambda = 2 pi."),
            (sp.sech(lam) / sp.pi, "lambda = log SNR = 2 log cot(phi): the argument of sech is lambda / 2."),
            (sp.sech(lam / 2) ** 2 / 4, "that is the logistic density, the one for alpha_bar = 1 - s (uniform "
                                        "alpha_bar); for alpha_bar = cos^2(pi s / 2) it is sech(lambda / 2) / (2 pi)."),
        ]
        chosen = _recognise(mistakes, lambda wrong: agrees(expr, wrong), hint)
        got = ", ".join(f"{complex(sp.N(expr.subs(lam, v))).real:.6g}" for v in _LAM_POINTS[:3])
        want = ", ".join(f"{float(reference.subs(lam, v)):.6g}" for v in _LAM_POINTS[:3])
        raise ExerciseFailed(name, f"your density differs from the answer; at lam = {_LAM_POINTS[:3]} it gives "
                                   f"[{got}], expected [{want}].\n  returned: {expr}", chosen)
    print(f"{name}: correct (equal to {reference} at {len(_LAM_POINTS)} values of lam).")
    return True
