"""Chapter 19 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest
import sympy as sp
import torch

from ddpm_core.analytic_variance import optimal_variance
from ddpm_core.exercises import ExerciseFailed, check_gaussian_optimal_variance, check_optimal_variance_from_score
from ddpm_core.exercises.ch19 import _reference
from ddpm_core.schedules import Schedule


def solution(beta, alpha_bar, score_sq_norm):
    alpha = 1 - beta
    beta_tilde = (1 - alpha_bar / alpha) / (1 - alpha_bar) * beta
    return beta_tilde + beta**2 / (alpha * (1 - alpha_bar)) * (1 - (1 - alpha_bar) * score_sq_norm)


def gaussian_solution():
    beta, ab, s = sp.symbols("beta_t alpha_bar_t s", positive=True)
    beta_tilde = (1 - ab / (1 - beta)) / (1 - ab) * beta
    return beta_tilde + beta**2 / ((1 - beta) * (1 - ab)) * (1 - (1 - ab) / (ab * s**2 + 1 - ab))


def test_solutions_pass(capsys):
    assert check_optimal_variance_from_score(solution)
    assert check_gaussian_optimal_variance(gaussian_solution())
    out = capsys.readouterr().out
    assert "check_optimal_variance_from_score: correct on all" in out and "check_gaussian_optimal_variance" in out


def test_reference_agrees_with_the_package():
    s = Schedule.linear(T=200)
    g = torch.rand(s.T + 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    ours = optimal_variance(s, score_sq_norm=g, clip=False)
    torch.testing.assert_close(_reference(s.betas[2:], s.alpha_bars[2:], g[2:]), ours[2:], rtol=1e-12, atol=0)


@pytest.mark.parametrize("wrong, hint", [
    (lambda beta, alpha_bar, score_sq_norm: solution(beta, alpha_bar, score_sq_norm / (1 - alpha_bar)),
     "multiplied by 1 - alpha_bar_t"),
    (lambda beta, alpha_bar, score_sq_norm: solution(beta, alpha_bar, score_sq_norm) - (
        (1 - alpha_bar / (1 - beta)) / (1 - alpha_bar) * beta) + beta, "not from beta_t"),
    (lambda beta, alpha_bar, score_sq_norm: (1 - alpha_bar / (1 - beta)) / (1 - alpha_bar) * beta
     + beta**2 / (1 - alpha_bar) * (1 - (1 - alpha_bar) * score_sq_norm), "alpha_t is missing"),
])
def test_optimal_variance_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_optimal_variance_from_score(wrong)
    assert hint in err.value.hint
    assert "case" in str(err.value).lower() or "input" in str(err.value).lower()


def test_gaussian_mistakes():
    beta, ab, s = sp.symbols("beta_t alpha_bar_t s", positive=True)
    for wrong, hint in [(beta, "s = 1 only"), ((1 - ab / (1 - beta)) / (1 - ab) * beta, "s -> 0"),
                        (gaussian_solution().subs(ab * s**2, s**2), "alpha_bar_t s^2 + 1 - alpha_bar_t")]:
        with pytest.raises(ExerciseFailed) as err:
            check_gaussian_optimal_variance(wrong)
        assert hint in err.value.hint, (wrong, err.value.hint)
    with pytest.raises(ExerciseFailed, match="symbol"):
        check_gaussian_optimal_variance(sp.Symbol("sigma") ** 2)
