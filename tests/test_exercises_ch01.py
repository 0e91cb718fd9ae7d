"""Chapter 1 checkers: the reference solution passes; plausible wrong answers fail with the hint aimed at them."""
import pytest

from ddpm_core.exercises import ExerciseFailed, check_q_sample


def solution(x0, t, noise, alpha_bars):
    ab = alpha_bars[t].to(x0.dtype)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def test_solution_passes(capsys):
    assert check_q_sample(solution)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda x0, t, noise, alpha_bars: alpha_bars[t] * x0 + (1 - alpha_bars[t]) * noise, "square root"),
    (lambda x0, t, noise, alpha_bars: alpha_bars[t - 1].sqrt() * x0 + (1 - alpha_bars[t - 1]).sqrt() * noise,
     "alpha_bar_{t-1}"),
    (lambda x0, t, noise, alpha_bars: (1 - alpha_bars[t]).sqrt() * x0 + alpha_bars[t].sqrt() * noise, "swapped"),
    (lambda x0, t, noise, alpha_bars: x0, "Eq. 4"),
])
def test_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="t = ") as err:
        check_q_sample(wrong)
    assert hint in err.value.hint
