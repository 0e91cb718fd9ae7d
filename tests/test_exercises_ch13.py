"""Chapter 13 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import math

import pytest
import torch

from ddpm_core import rate_distortion
from ddpm_core.exercises import ExerciseFailed, check_distortion, check_mrc_probs, check_rate


def rate(prior, terms):
    return torch.stack([prior + terms[t:].sum() for t in range(1, len(terms) + 1)])


def distortion(x0, x0_hat):
    return 127.5 * ((x0 - x0_hat) ** 2).mean().sqrt()


def mrc_probs(candidates, q_mean, q_var, p_mean, p_var):
    log_q = (-0.5 * (candidates - q_mean) ** 2 / q_var - 0.5 * math.log(2 * math.pi * q_var)).sum(-1)
    log_p = (-0.5 * (candidates - p_mean) ** 2 / p_var - 0.5 * math.log(2 * math.pi * p_var)).sum(-1)
    return torch.softmax(log_q - log_p, 0)


def raw_weights(candidates, q_mean, q_var, p_mean, p_var):
    log_q = (-0.5 * (candidates - q_mean) ** 2 / q_var - 0.5 * math.log(2 * math.pi * q_var)).sum(-1)
    log_p = (-0.5 * (candidates - p_mean) ** 2 / p_var - 0.5 * math.log(2 * math.pi * p_var)).sum(-1)
    return (log_q - log_p).exp()


def test_solutions_pass(capsys):
    assert check_rate(rate) and check_distortion(distortion) and check_mrc_probs(mrc_probs)
    assert capsys.readouterr().out.count("correct") == 3


def test_package_rate_passes():
    assert check_rate(lambda prior, terms: rate_distortion(prior, terms, torch.zeros_like(terms)).rate)


@pytest.mark.parametrize("wrong, hint", [
    (lambda prior, terms: prior + torch.cumsum(terms, 0) - terms, "wrong way"),
    (lambda prior, terms: torch.stack([prior + terms[t - 1:].sum() for t in range(1, len(terms) + 1)]),
     "own term"),
    (lambda prior, terms: rate(0.0, terms), "prior term"),
])
def test_rate_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_rate(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda x0, x0_hat: 255 * ((x0 - x0_hat) ** 2).mean().sqrt(), "127.5"),
    (lambda x0, x0_hat: (127.5 * (x0 - x0_hat)).pow(2).mean(), "square root"),
    (lambda x0, x0_hat: torch.stack([distortion(a, b) for a, b in zip(x0, x0_hat)]).mean(), "RMSE of each image"),
])
def test_distortion_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_distortion(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda candidates, q_mean, q_var, p_mean, p_var: mrc_probs(candidates, p_mean, p_var, q_mean, q_var),
     "not p(c) / q(c)"),
    (lambda candidates, q_mean, q_var, p_mean, p_var: mrc_probs(candidates, q_mean, q_var ** 0.5, p_mean,
                                                                p_var ** 0.5), "variances"),
    (raw_weights, "not normalised"),
])
def test_mrc_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_mrc_probs(wrong)
    assert hint in err.value.hint
