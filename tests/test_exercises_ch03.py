"""Chapter 3 checkers: the reference solution passes; plausible wrong answers fail with the hint aimed at them."""
import math

import pytest
import torch

from ddpm_core.exercises import ExerciseFailed, check_gaussian_log_density, check_jensen_gap


def test_jensen_gap_solution_passes(capsys):
    assert check_jensen_gap(lambda values, probs: math.log(float(values @ probs)) - float(probs @ values.log()))
    assert "correct on all 4 cases" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda values, probs: (probs * values.log()).sum() - (probs * values).sum().log(), "wrong sign"),
    (lambda values, probs: values.mean().log() - values.log().mean(), "equal weights"),
    (lambda values, probs: (probs * values).sum() - (probs * values.log()).sum(), "take the log of E[X]"),
])
def test_jensen_gap_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_jensen_gap(wrong)
    assert hint in err.value.hint


def test_log_density_solution_passes(capsys):
    solution = lambda x, mean, var: torch.distributions.Normal(mean, var.sqrt()).log_prob(x)  # noqa: E731
    assert check_gaussian_log_density(solution)
    assert "correct on all 3 cases" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, mean, var: -0.5 * torch.log(2 * math.pi * var) - (x - mean) ** 2 / (2 * var.sqrt()),
     "standard deviation"),
    (lambda x, mean, var: -torch.log(2 * math.pi * var) - (x - mean) ** 2 / (2 * var), "1/sqrt(2 pi var)"),
    (lambda x, mean, var: -(x - mean) ** 2 / (2 * var), "normalizing constant"),
    (lambda x, mean, var: -0.5 * torch.log(2 * math.pi * var) - (x - mean) ** 2 / var, "factor 1/2"),
])
def test_log_density_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_gaussian_log_density(wrong)
    assert hint in err.value.hint
