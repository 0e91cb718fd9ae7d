"""Chapter 16 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest
import sympy as sp
import torch

from ddpm_core.exercises import (ExerciseFailed, check_cosine_log_snr_density, check_lsimple_to_bound_weight,
                                 check_snr_bound_term)


def snr(ab):
    ab = torch.as_tensor(ab, dtype=torch.float64)
    return ab / (1 - ab)


def snr_bound_term(alpha_bar_prev, alpha_bar_t, x0, x0_hat):
    return 0.5 * (snr(alpha_bar_prev) - snr(alpha_bar_t)) * ((x0 - x0_hat) ** 2).flatten(1).sum(1)


def bound_weight(alpha_bar_prev, alpha_bar_t):
    abp, abt = torch.as_tensor(alpha_bar_prev, dtype=torch.float64), torch.as_tensor(alpha_bar_t, dtype=torch.float64)
    alpha = abt / abp
    return (1 - alpha) / (2 * alpha * (1 - abp))        # beta_t / (2 alpha_t (1 - alpha_bar_{t-1}))


lam = sp.Symbol("lam", real=True)


def test_solutions_pass(capsys):
    assert check_snr_bound_term(snr_bound_term)
    assert check_lsimple_to_bound_weight(bound_weight)
    assert check_cosine_log_snr_density(1 / (sp.pi * (sp.exp(lam / 2) + sp.exp(-lam / 2))))
    phi = sp.atan(sp.exp(-lam / 2))                      # the same answer written through the phase
    assert check_cosine_log_snr_density(sp.sin(2 * phi) / (2 * sp.pi))
    assert capsys.readouterr().out.count("correct") == 4


def test_package_term_passes():
    from ddpm_core.snr import snr_bound_term as package_term
    assert check_snr_bound_term(lambda alpha_bar_prev, alpha_bar_t, x0, x0_hat:
                                package_term(snr(alpha_bar_prev), snr(alpha_bar_t), x0, x0_hat))


@pytest.mark.parametrize("wrong, hint", [
    (lambda abp, abt, x0, xh: -snr_bound_term(abp, abt, x0, xh), "sign is reversed"),
    (lambda abp, abt, x0, xh: 2 * snr_bound_term(abp, abt, x0, xh), "factor 1/2"),
    (lambda abp, abt, x0, xh: 0.5 * (torch.as_tensor(abp) - torch.as_tensor(abt)) * ((x0 - xh) ** 2).flatten(1).sum(1),
     "alpha_bar itself"),
    (lambda abp, abt, x0, xh: 0.5 * (snr(abp) - snr(abt)) * ((x0 - xh) ** 2).flatten(1).mean(1), "summed over"),
    (lambda abp, abt, x0, xh: 0.5 * (snr(abp).sqrt() - snr(abt).sqrt()) * ((x0 - xh) ** 2).flatten(1).sum(1),
     "ratio of variances"),
])
def test_term_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_snr_bound_term(lambda alpha_bar_prev, alpha_bar_t, x0, x0_hat: wrong(alpha_bar_prev, alpha_bar_t, x0, x0_hat))
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda abp, abt: 0.5 * (snr(abp) - snr(abt)), "weight of the x_0 error"),
    (lambda abp, abt: (1 - torch.as_tensor(abt) / abp) / (2 * torch.as_tensor(abt) / abp * (1 - torch.as_tensor(abt))),
     "sigma_t^2 = beta_t"),
    (lambda abp, abt: snr(abp) / snr(abt) - 1, "factor 1/2"),
    (lambda abp, abt: 0.5 * (snr(abt) / snr(abp) - 1), "upside down"),
])
def test_weight_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_lsimple_to_bound_weight(lambda alpha_bar_prev, alpha_bar_t: wrong(alpha_bar_prev, alpha_bar_t))
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (sp.sech(lam / 2), "not normalised"),
    (1 / (sp.pi * sp.cosh(lam)), "argument of sech"),
    (sp.exp(lam) / (1 + sp.exp(lam)) ** 2, "logistic density"),
    (sp.exp(-lam ** 2 / 2) / sp.sqrt(2 * sp.pi), "invert for s(lambda)"),
])
def test_density_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed, match="lam =") as err:
        check_cosine_log_snr_density(wrong)
    assert hint in str(err.value)


def test_density_rejects_other_symbols():
    with pytest.raises(ExerciseFailed, match="symbol"):
        check_cosine_log_snr_density(sp.Symbol("x") / 2)
