"""Chapter 6 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest
import sympy as sp
import torch

import ddpm_core
from ddpm_core import GaussianDiffusion, Schedule
from ddpm_core.exercises import ExerciseFailed, check_lambda_t, check_min_lsimple, check_x0_from_eps
from ddpm_core.exercises.ch06 import lambda_symbols


def x0_from_eps(x_t, t, eps, alpha_bars):
    ab = alpha_bars[t]
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()


def test_x0_solution_passes_and_matches_the_package(capsys):
    assert check_x0_from_eps(x0_from_eps)
    assert "correct on all" in capsys.readouterr().out
    sched = Schedule.linear()
    d = GaussianDiffusion(sched)
    x, e = torch.randn(2, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(x0_from_eps(x, 7, e, sched.alpha_bars),
                               d.predict_x0_from_eps(x, torch.full((3,), 7), e))


@pytest.mark.parametrize("wrong, hint", [
    (lambda x_t, t, eps, alpha_bars: (x_t - alpha_bars[t].sqrt() * eps) / (1 - alpha_bars[t]).sqrt(), "swapped"),
    (lambda x_t, t, eps, alpha_bars: x_t - (1 - alpha_bars[t]).sqrt() * eps, "undo the scaling"),
    (lambda x_t, t, eps, alpha_bars: (x_t - (1 - alpha_bars[t]) * eps) / alpha_bars[t], "square roots"),
    (lambda x_t, t, eps, alpha_bars: (x_t + (1 - alpha_bars[t]).sqrt() * eps) / alpha_bars[t].sqrt(), "subtracted"),
    (lambda x_t, t, eps, alpha_bars: (x_t - (1 - alpha_bars[t - 1]).sqrt() * eps) / alpha_bars[t - 1].sqrt(),
     "Eq. eq-eps-x0"),
])
def test_x0_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_x0_from_eps(wrong)
    assert hint in err.value.hint


def test_lambda_solution_derived_in_sympy_passes(capsys):
    beta, alpha, alpha_bar, sigma2 = lambda_symbols()
    x_t, eps, eps_theta = sp.symbols("x_t epsilon epsilon_theta", real=True)
    mean_true = (x_t - beta / sp.sqrt(1 - alpha_bar) * eps) / sp.sqrt(alpha)          # Eq. (10)
    mean_model = (x_t - beta / sp.sqrt(1 - alpha_bar) * eps_theta) / sp.sqrt(alpha)   # Eq. (11)
    weight = sp.simplify((mean_true - mean_model) ** 2 / (2 * sigma2) / (eps - eps_theta) ** 2)
    assert check_lambda_t(weight)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda b, a, ab, s2: b**2 / (s2 * a * (1 - ab)), "twice"),
    (lambda b, a, ab, s2: b / (2 * s2 * a * (1 - ab)), "squared"),
    (lambda b, a, ab, s2: b**2 / (2 * s2 * a * sp.sqrt(1 - ab)), "without a square root"),
    (lambda b, a, ab, s2: b**2 / (2 * s2 * sp.sqrt(a) * (1 - ab)), "first power"),
    (lambda b, a, ab, s2: 1 / (2 * s2), "squared error on means"),
])
def test_lambda_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_lambda_t(wrong(*lambda_symbols()))
    assert hint in err.value.hint


def test_min_lsimple_solution_passes_and_matches_a_monte_carlo_estimate(capsys):
    assert check_min_lsimple(lambda alpha_bars: alpha_bars[1:].mean())
    assert "correct on all" in capsys.readouterr().out
    sched = Schedule.linear(T=10, beta_1=0.01, beta_T=0.2)
    d = GaussianDiffusion(sched)
    oracle = lambda x, t: (1 - sched.alpha_bars[t]).sqrt()[:, None] * x  # noqa: E731 - eps* for N(0, I) data
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    est = ddpm_core.loss(d, oracle, x0, generator=g).item()
    assert abs(est - sched.alpha_bars[1:].mean().item()) < 0.01


@pytest.mark.parametrize("wrong, hint", [
    (lambda alpha_bars: (1 - alpha_bars[1:]).mean(), "removes"),
    (lambda alpha_bars: alpha_bars.mean(), "padding"),
    (lambda alpha_bars: alpha_bars[1:].sqrt().mean(), "square root"),
])
def test_min_lsimple_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_min_lsimple(wrong)
    assert hint in err.value.hint
