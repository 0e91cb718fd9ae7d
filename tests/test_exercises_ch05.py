"""Chapter 5 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest
import sympy as sp
import torch
from torch.distributions import Normal, kl_divergence

from ddpm_core.exercises import ExerciseFailed, check_best_reverse_variance, check_gaussian_kl_std
from ddpm_core.losses import normal_kl


def gaussian_kl(m1, s1, m2, s2):
    return torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def test_kl_solution_passes_and_agrees_with_torch_and_the_package(capsys):
    assert check_gaussian_kl_std(gaussian_kl)
    assert "correct on all" in capsys.readouterr().out
    m1, s1, m2, s2 = (torch.tensor(v, dtype=torch.float64) for v in (0.3, 0.7, -0.5, 1.3))
    torch.testing.assert_close(gaussian_kl(m1, s1, m2, s2), kl_divergence(Normal(m1, s1), Normal(m2, s2)))
    torch.testing.assert_close(gaussian_kl(m1, s1, m2, s2), normal_kl(m1, 2 * s1.log(), m2, 2 * s2.log()))
    # the package's own KL passes the checker too
    assert check_gaussian_kl_std(lambda m1, s1, m2, s2: normal_kl(m1, 2 * s1.log(), m2, 2 * s2.log()))


@pytest.mark.parametrize("wrong, hint", [
    (lambda m1, s1, m2, s2: 0.5 * (torch.log(s1**2 / s2**2) + (s1**2 + (m1 - m2) ** 2) / s2**2 - 1), "wrong sign"),
    (lambda m1, s1, m2, s2: torch.log(s2**2 / s1**2) + (s1**2 + (m1 - m2) ** 2) / s2**2 - 1, "factor 1/2"),
    (lambda m1, s1, m2, s2: 0.5 * (torch.log(s2 / s1) + (s1 + (m1 - m2) ** 2) / s2 - 1), "standard deviations"),
    (lambda m1, s1, m2, s2: 0.5 * (torch.log(s1**2 / s2**2) + (s2**2 + (m1 - m2) ** 2) / s1**2 - 1), "KL(q || p)"),
    (lambda m1, s1, m2, s2: (m1 - m2) ** 2 / (2 * s2**2), "Eq. eq-kl-1d"),
])
def test_kl_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_gaussian_kl_std(wrong)
    assert hint in err.value.hint


def test_best_variance_solution_is_the_minimizer(capsys):
    s1_sq, delta_sq = sp.symbols("s_1^2 delta^2", positive=True)
    s2_sq, d = sp.symbols("s_2^2 d", positive=True)
    kl = d / 2 * (sp.log(s2_sq) - sp.log(s1_sq) + (s1_sq + delta_sq) / s2_sq - 1)
    (solution,) = sp.solve(sp.diff(kl, s2_sq), s2_sq)
    assert check_best_reverse_variance(solution)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda a, b: a, "perfect mean"),
    (lambda a, b: sp.sqrt(a + b), "standard deviation"),
    (lambda a, b: a + b / 2, "same factor"),
    (lambda a, b: a * b, "differentiate"),
])
def test_best_variance_wrong_answers_get_their_hint(wrong, hint):
    s1_sq, delta_sq = sp.symbols("s_1^2 delta^2", positive=True)
    with pytest.raises(ExerciseFailed) as err:
        check_best_reverse_variance(wrong(s1_sq, delta_sq))
    assert hint in err.value.hint


def test_best_variance_rejects_foreign_symbols():
    with pytest.raises(ExerciseFailed, match="symbol"):
        check_best_reverse_variance(sp.Symbol("s1") ** 2)
