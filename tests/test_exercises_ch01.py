"""Chapter 1 checkers: the reference solution passes; plausible wrong answers fail with the hint aimed at them."""
import pytest
import sympy as sp
import torch

from ddpm_core.exercises import ExerciseFailed, check_alpha_bars, check_q_sample, check_q_xt_given_xs


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


def alpha_bars_solution(betas):
    out = torch.ones(len(betas) + 1, dtype=betas.dtype)
    for t in range(1, len(betas) + 1):
        out[t] = out[t - 1] * (1 - betas[t - 1])
    return out


def test_alpha_bars_solution_passes(capsys):
    assert check_alpha_bars(alpha_bars_solution)
    assert "correct on all 5 cases" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda betas: torch.cumprod(1 - betas, 0), "index 0 is missing"),
    (lambda betas: torch.cat([torch.ones(2, dtype=betas.dtype), torch.cumprod(1 - betas, 0)[:-1]]),
     "alpha-bar_{t-1}"),
    (lambda betas: torch.cat([torch.ones(1, dtype=betas.dtype), torch.exp(-torch.cumsum(betas, 0))]),
     "small-beta approximation"),
    (lambda betas: torch.cat([torch.ones(1, dtype=betas.dtype), torch.cumprod(1 - betas, 0).sqrt()]),
     "no square root"),
    (lambda betas: torch.cat([torch.ones(1, dtype=betas.dtype), torch.cumprod(betas, 0)]), "multiplied the betas"),
])
def test_alpha_bars_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_alpha_bars(wrong)
    assert hint in err.value.hint


ab_s, ab_t = sp.symbols("alphabar_s alphabar_t", positive=True)


def test_q_xt_given_xs_solution_passes(capsys):
    assert check_q_xt_given_xs(sp.sqrt(ab_t) / sp.sqrt(ab_s), (ab_s - ab_t) / ab_s)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("coef, var, hint", [
    (ab_t / ab_s, 1 - ab_t / ab_s, "square root"),
    (sp.sqrt(ab_s / ab_t), 1 - ab_t / ab_s, "upside down"),
    (sp.sqrt(ab_t / ab_s), ab_s - ab_t, "do not subtract"),
    (sp.sqrt(ab_t / ab_s), 1 - ab_t, "given x_0"),
])
def test_q_xt_given_xs_wrong_answers_get_their_hint(coef, var, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_q_xt_given_xs(coef, var)
    assert hint in err.value.hint


def test_q_xt_given_xs_rejects_foreign_symbols():
    with pytest.raises(ExerciseFailed, match="uses the symbol"):
        check_q_xt_given_xs(sp.Symbol("a"), 1 - ab_t / ab_s)
