"""Chapter 14 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest

from ddpm_core.exercises import ExerciseFailed, check_resblock_params, check_training_hours


def resblock_params(c_in, c_out, temb_dim):
    conv1 = 9 * c_in * c_out + c_out
    temb = temb_dim * c_out + c_out
    conv2 = 9 * c_out * c_out + c_out
    norms = 2 * c_in + 2 * c_out
    skip = c_in * c_out + c_out if c_in != c_out else 0
    return conv1 + temb + conv2 + norms + skip


def training_hours(steps, images_per_second, batch_size):
    return steps / (images_per_second / batch_size) / 3600


def test_solutions_pass(capsys):
    assert check_resblock_params(resblock_params) and check_training_hours(training_hours)
    assert capsys.readouterr().out.count("correct") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda c_in, c_out, temb_dim: resblock_params(c_in, c_out, temb_dim)
     - (c_in * c_out + c_out if c_in != c_out else 0), "shortcut"),
    (lambda c_in, c_out, temb_dim: resblock_params(c_in, c_out, temb_dim) - 2 * (c_in + c_out), "GroupNorm"),
    (lambda c_in, c_out, temb_dim: resblock_params(c_in, c_out, temb_dim) - 3 * c_out
     - (c_out if c_in != c_out else 0), "bias"),
    (lambda c_in, c_out, temb_dim: resblock_params(c_in, c_out, temb_dim) - 6 * c_in * c_out - 6 * c_out * c_out,
     "9 weights"),
])
def test_resblock_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_resblock_params(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda steps, images_per_second, batch_size: steps / images_per_second / 3600, "not steps/s"),
    (lambda steps, images_per_second, batch_size: steps * batch_size / images_per_second / 60, "minutes"),
    (lambda steps, images_per_second, batch_size: steps / images_per_second / batch_size / 3600, "do not multiply"),
])
def test_hours_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_training_hours(wrong)
    assert hint in err.value.hint
