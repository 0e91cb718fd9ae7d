"""Chapter 14 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest

from ddpm_core.exercises import ExerciseFailed, check_attention_params, check_training_hours


def attention_params(channels):
    norm = 2 * channels                          # GroupNorm: a scale and a shift per channel
    qkv = 3 * (channels * channels + channels)   # 1x1 convolutions to q, k, v, with biases
    proj = channels * channels + channels        # 1x1 output projection
    return norm + qkv + proj


def training_hours(steps, images_per_second, batch_size):
    return steps / (images_per_second / batch_size) / 3600


def test_solutions_pass(capsys):
    assert check_attention_params(attention_params) and check_training_hours(training_hours)
    assert capsys.readouterr().out.count("correct") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda channels: attention_params(channels) - channels * channels - channels, "proj_out"),
    (lambda channels: attention_params(channels) - 2 * channels, "GroupNorm"),
    (lambda channels: attention_params(channels) - 4 * channels, "bias"),
    (lambda channels: attention_params(channels) - 2 * channels * channels - 2 * channels, "three separate"),
])
def test_attention_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_attention_params(wrong)
    assert hint in err.value.hint


def test_the_checker_counts_the_package_block():
    # the reference is the package's AttnBlock, counted on the meta device: 4c^2 + 6c at the CIFAR-10 model's 256
    from ddpm_core.exercises.ch14 import _attention_reference
    assert _attention_reference(256) == 4 * 256**2 + 6 * 256 == 263_680


@pytest.mark.parametrize("wrong, hint", [
    (lambda steps, images_per_second, batch_size: steps / images_per_second / 3600, "not steps/s"),
    (lambda steps, images_per_second, batch_size: steps * batch_size / images_per_second / 60, "minutes"),
    (lambda steps, images_per_second, batch_size: steps / images_per_second / batch_size / 3600, "do not multiply"),
])
def test_hours_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_training_hours(wrong)
    assert hint in err.value.hint
