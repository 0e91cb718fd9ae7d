"""Chapter 15 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest
import torch

from ddpm_core.exercises import ExerciseFailed, check_gaussian_baseline, check_reverse_noise, check_to_model_range
from ddpm_core.schedules import Schedule
from ddpm_core.diagnose import gaussian_baseline_loss


def test_solutions_pass(capsys):
    assert check_reverse_noise(lambda mean, log_variance, z: mean + torch.exp(0.5 * log_variance) * z)
    assert check_to_model_range(lambda levels: levels.to(torch.float32) * (2 / 255) - 1)
    assert check_gaussian_baseline(lambda alpha_bar, eigenvalues: float(
        (alpha_bar * eigenvalues / (alpha_bar * eigenvalues + 1 - alpha_bar)).mean()))
    assert capsys.readouterr().out.count("correct on all") == 3


def test_baseline_checker_agrees_with_the_package():
    # the checker's reference and ddpm_core.diagnose.gaussian_baseline_loss are the same formula on a schedule
    sched = Schedule.linear(T=50)
    cov = torch.tensor([[2.0, 0.5], [0.5, 0.3]], dtype=torch.float64)
    lam = torch.linalg.eigvalsh(cov)
    from ddpm_core.exercises.ch15 import _baseline_reference
    for t in (1, 25, 50):
        assert _baseline_reference(sched.alpha_bars[t], lam) == pytest.approx(
            float(gaussian_baseline_loss(sched, cov)[t]), rel=1e-12)


@pytest.mark.parametrize("wrong, hint", [
    (lambda mean, log_variance, z: mean + log_variance.exp() * z, "variance"),
    (lambda mean, log_variance, z: mean + log_variance * z, "exponentiate"),
    (lambda mean, log_variance, z: mean + (0.5 * log_variance).exp(), "noise z is missing"),
])
def test_reverse_noise_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_reverse_noise(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda levels: levels.float() / 255, "[0, 1]"),
    (lambda levels: levels.float() / 127.5, "subtract 1"),
    (lambda levels: levels.float() / 128 - 1, "127.5, not 128"),
])
def test_to_model_range_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_to_model_range(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda alpha_bar, eigenvalues: float(((1 - alpha_bar) / (alpha_bar * eigenvalues + 1 - alpha_bar)).mean()),
     "1 minus it"),
    (lambda alpha_bar, eigenvalues: float((alpha_bar * eigenvalues / (alpha_bar * eigenvalues + 1 - alpha_bar)).sum()),
     "averaged"),
    (lambda alpha_bar, eigenvalues: float(((1 - alpha_bar) * eigenvalues
                                           / ((1 - alpha_bar) * eigenvalues + alpha_bar)).mean()), "swapped"),
])
def test_gaussian_baseline_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_gaussian_baseline(wrong)
    assert hint in err.value.hint
