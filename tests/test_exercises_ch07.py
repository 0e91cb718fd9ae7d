"""Chapter 7 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import math

import pytest
import torch
from torch.distributions import Normal

from ddpm_core import Schedule
from ddpm_core.exercises import ExerciseFailed, check_langevin_step, check_score_from_eps, check_tweedie_x0


def score_from_eps(eps, t, alpha_bars):
    return -eps / (1 - alpha_bars[t]).sqrt()


def tweedie_x0(x_t, t, score, alpha_bars):
    ab = alpha_bars[t]
    return (x_t + (1 - ab) * score) / ab.sqrt()


def langevin_step(x, score, step_size, z):
    return x + 0.5 * step_size * score + math.sqrt(step_size) * z


def test_solutions_pass(capsys):
    assert check_score_from_eps(score_from_eps)
    assert check_tweedie_x0(tweedie_x0)
    assert check_langevin_step(langevin_step)
    assert capsys.readouterr().out.count("correct on all") == 3


def test_score_solution_is_the_autograd_score_of_the_kernel():
    sched = Schedule.linear()
    ab = sched.alpha_bars[250]
    x0, eps = torch.randn(2, 8, dtype=torch.float64)
    x_t = (ab.sqrt() * x0 + (1 - ab).sqrt() * eps).requires_grad_(True)
    (grad,) = torch.autograd.grad(Normal(ab.sqrt() * x0, (1 - ab).sqrt()).log_prob(x_t).sum(), x_t)
    torch.testing.assert_close(score_from_eps(eps, 250, sched.alpha_bars), grad)


def test_tweedie_solution_is_the_posterior_mean_for_gaussian_data():
    sched = Schedule.linear()
    ab, s = sched.alpha_bars[400], 0.5
    x_t = torch.randn(6, dtype=torch.float64)
    score = -x_t / (ab * s**2 + 1 - ab)                       # q(x_t) = N(0, ab s^2 + 1 - ab)
    posterior_mean = ab.sqrt() * s**2 / (ab * s**2 + 1 - ab) * x_t
    torch.testing.assert_close(tweedie_x0(x_t, 400, score, sched.alpha_bars), posterior_mean)


@pytest.mark.parametrize("wrong, hint", [
    (lambda eps, t, alpha_bars: eps / (1 - alpha_bars[t]).sqrt(), "wrong sign"),
    (lambda eps, t, alpha_bars: -eps, "divide by sqrt(1 - alpha_bar_t)"),
    (lambda eps, t, alpha_bars: -eps / (1 - alpha_bars[t]), "not the variance"),
    (lambda eps, t, alpha_bars: -eps * (1 - alpha_bars[t]).sqrt(), "multiplied"),
])
def test_score_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_score_from_eps(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda x_t, t, score, alpha_bars: (x_t + (1 - alpha_bars[t]).sqrt() * score) / alpha_bars[t].sqrt(), "variance"),
    (lambda x_t, t, score, alpha_bars: (x_t - (1 - alpha_bars[t]) * score) / alpha_bars[t].sqrt(), "wrong sign"),
    (lambda x_t, t, score, alpha_bars: x_t + (1 - alpha_bars[t]) * score, "undo the scaling"),
    (lambda x_t, t, score, alpha_bars: (x_t + (1 - alpha_bars[t]) * score) / alpha_bars[t], "not by alpha_bar_t"),
])
def test_tweedie_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_tweedie_x0(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, score, step_size, z: x + step_size * score + math.sqrt(step_size) * z, "half the step size"),
    (lambda x, score, step_size, z: x + 0.5 * step_size * score + step_size * z, "sqrt(delta)"),
    (lambda x, score, step_size, z: x - 0.5 * step_size * score + math.sqrt(step_size) * z, "wrong sign"),
    (lambda x, score, step_size, z: x + 0.5 * step_size * score, "gradient ascent"),
])
def test_langevin_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_langevin_step(wrong)
    assert hint in err.value.hint
