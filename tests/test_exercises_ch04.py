"""Chapter 4 checkers: the reference solution passes; plausible wrong answers fail with the hint aimed at them."""
import pytest
import sympy as sp
import torch

from ddpm_core.exercises import ExerciseFailed, check_forward_posterior, check_gaussian_kl

a, abp = sp.symbols("alpha_t alphabar_prev", positive=True)
b, ab = 1 - a, a * abp
X0 = sp.sqrt(abp) * b / (1 - ab)
XT = sp.sqrt(a) * (1 - abp) / (1 - ab)
VAR = (1 - abp) * b / (1 - ab)


def test_posterior_solution_passes(capsys):
    y, x0, xt = sp.symbols("y x_0 x_t", real=True)
    exponent = -(xt - sp.sqrt(a) * y) ** 2 / (2 * b) - (y - sp.sqrt(abp) * x0) ** 2 / (2 * (1 - abp))
    c2, c1, _ = sp.Poly(sp.expand(exponent), y).all_coeffs()
    var = -1 / (2 * c2)
    mean = sp.expand(c1 * var)
    assert check_forward_posterior(sp.diff(mean, x0), sp.diff(mean, xt), var)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("coefs, hint", [
    ((XT, X0, VAR), "swapped"),
    ((X0, XT, b), "beta~_t"),
    ((X0, XT, (1 - ab) / (1 - abp) * b), "upside down"),
    ((sp.sqrt(ab) * b / (1 - ab), XT, VAR), "not sqrt(alphabar_t)"),
])
def test_posterior_wrong_answers_get_their_hint(coefs, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_forward_posterior(*coefs)
    assert hint in err.value.hint


def test_gaussian_kl_solution_passes(capsys):
    def solution(m1, v1, m2, v2):
        p, q = torch.distributions.Normal(m1, v1.sqrt()), torch.distributions.Normal(m2, v2.sqrt())
        return torch.distributions.kl_divergence(p, q)
    assert check_gaussian_kl(solution)
    assert "correct on all 5 cases" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda m1, v1, m2, v2: 0.5 * (torch.log(v1 / v2) + (v2 + (m1 - m2) ** 2) / v1 - 1), "not symmetric"),
    (lambda m1, v1, m2, v2: torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1, "factor of 2"),
    (lambda m1, v1, m2, v2: 0.5 * (torch.log(v1 / v2) + (v1 + (m1 - m2) ** 2) / v2 - 1), "sign of the log"),
    (lambda m1, v1, m2, v2: 0.5 * (torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2), "the -1"),
])
def test_gaussian_kl_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_gaussian_kl(wrong)
    assert hint in err.value.hint
