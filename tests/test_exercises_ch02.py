"""Chapter 2 checkers: the reference solution passes; plausible wrong answers fail with the hint aimed at them."""
import math

import pytest
import sympy as sp

from ddpm_core.exercises import ExerciseFailed, check_gaussian_reverse_step, check_tweedie_mean

b, s = sp.symbols("beta_t s", positive=True)


def test_reverse_step_solution_passes(capsys):
    y, xt = sp.symbols("y x_t", real=True)
    log_num = -(xt - sp.sqrt(1 - b) * y) ** 2 / (2 * b) - y**2 / (2 * s**2)
    c2, c1, _ = sp.Poly(sp.expand(log_num), y).all_coeffs()
    var, mean = -1 / (2 * c2), -c1 / (2 * c2)
    assert check_gaussian_reverse_step(sp.diff(mean, xt), var)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("coef, var, hint", [
    (sp.sqrt(1 - b), b * s**2 / ((1 - b) * s**2 + b), "only for s = 1"),
    (1 / sp.sqrt(1 - b), b * s**2 / ((1 - b) * s**2 + b), "pulls the mean towards 0"),
    (sp.sqrt(1 - b) * s**2 / ((1 - b) * s**2 + b), b, "precisions alpha_t/beta_t and 1/s^2 add"),
    (sp.sqrt(1 - b) * s**2 / ((1 - b) * s**2 + b), b / (1 - b), "likelihood term alone"),
])
def test_reverse_step_wrong_answers_get_their_hint(coef, var, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_gaussian_reverse_step(coef, var)
    assert hint in err.value.hint


def test_tweedie_solution_passes(capsys):
    assert check_tweedie_mean(lambda x_t, score, beta: (x_t + beta * score) / math.sqrt(1 - beta))
    assert "correct on all 4 cases" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda x_t, score, beta: math.sqrt(1 - beta) * (x_t + beta * score), "divides by it"),
    (lambda x_t, score, beta: (x_t - beta * score) / math.sqrt(1 - beta), "points uphill"),
    (lambda x_t, score, beta: x_t + beta * score, "1/sqrt(alpha_t)"),
    (lambda x_t, score, beta: (x_t + math.sqrt(beta) * score) / math.sqrt(1 - beta), "not sqrt(beta_t)"),
])
def test_tweedie_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_tweedie_mean(wrong)
    assert hint in err.value.hint
