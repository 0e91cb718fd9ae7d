"""Chapter 12 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import math

import pytest
import torch

from ddpm_core.exercises import ExerciseFailed, check_bits_per_dim, check_decoder_log_prob


def decoder_log_prob(x, mean, log_scale):
    s = log_scale.exp()
    upper = torch.where(x > 0.999, torch.ones_like(x), torch.special.ndtr((x + 1 / 255 - mean) / s))
    lower = torch.where(x < -0.999, torch.zeros_like(x), torch.special.ndtr((x - 1 / 255 - mean) / s))
    return torch.log(upper - lower)


def bits_per_dim(nll_nats, shape):
    return nll_nats / (math.prod(shape) * math.log(2))


def test_solutions_pass(capsys):
    assert check_decoder_log_prob(decoder_log_prob)
    assert check_bits_per_dim(bits_per_dim)
    assert capsys.readouterr().out.count("correct") == 2


def test_package_decoder_passes():
    from ddpm_core.losses import discretized_gaussian_log_likelihood
    # the package's decoder (floored at 1e-12, which these cases never reach) is a correct answer too
    assert check_decoder_log_prob(lambda x, mean, log_scale: discretized_gaussian_log_likelihood(x, mean, log_scale))


def no_edges(x, mean, log_scale):
    s = log_scale.exp()
    return torch.log(torch.special.ndtr((x + 1 / 255 - mean) / s) - torch.special.ndtr((x - 1 / 255 - mean) / s))


def wide_bins(x, mean, log_scale):
    s = log_scale.exp()
    upper = torch.where(x > 0.999, torch.ones_like(x), torch.special.ndtr((x + 2 / 255 - mean) / s))
    lower = torch.where(x < -0.999, torch.zeros_like(x), torch.special.ndtr((x - 2 / 255 - mean) / s))
    return torch.log(upper - lower)


@pytest.mark.parametrize("wrong, hint", [
    (no_edges, "-inf and +inf"),
    (wide_bins, "half-width is 1/255"),
    (lambda x, mean, log_scale: decoder_log_prob(x, mean, 0.5 * log_scale), "not log sigma^2"),
    (lambda x, mean, log_scale: torch.zeros_like(x), "Eq. 13"),
])
def test_decoder_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_decoder_log_prob(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda nll_nats, shape: nll_nats / math.prod(shape), "nats per dimension"),
    (lambda nll_nats, shape: nll_nats / math.log(2), "bits per example"),
    (lambda nll_nats, shape: nll_nats / (shape[-1] * shape[-2] * math.log(2)), "channels too"),
    (lambda nll_nats, shape: nll_nats * math.log(2) / math.prod(shape), "not by ln 2"),
])
def test_bits_per_dim_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_bits_per_dim(wrong)
    assert hint in err.value.hint
