"""Chapter 21 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest
import sympy as sp
import torch

from ddpm_core.exercises import (ExerciseFailed, check_cfg_combination, check_classifier_guided_eps,
                                 check_guided_variance)
from ddpm_core.guidance import cfg_eps, classifier_guided_eps

w, sc, su = sp.symbols("w sigma_c sigma_u", positive=True)


def test_solutions_pass(capsys):
    assert check_cfg_combination(lambda eps_cond, eps_uncond, w: eps_cond + w * (eps_cond - eps_uncond))
    assert check_classifier_guided_eps(lambda eps, grad_log_prob, alpha_bar, s:
                                       eps - s * (1 - alpha_bar) ** 0.5 * grad_log_prob)
    assert check_guided_variance(sc**2 * su**2 / ((1 + w) * su**2 - w * sc**2))
    assert capsys.readouterr().out.count("correct") == 3


def test_the_package_functions_pass():
    assert check_cfg_combination(cfg_eps)
    assert check_classifier_guided_eps(lambda eps, grad_log_prob, alpha_bar, s:
                                       classifier_guided_eps(eps, grad_log_prob, torch.tensor(alpha_bar, dtype=torch.float64), s))


@pytest.mark.parametrize("wrong, hint", [
    (lambda eps_cond, eps_uncond, w: w * eps_cond - (w - 1) * eps_uncond, "gamma"),
    (lambda eps_cond, eps_uncond, w: (1 + w) * eps_uncond - w * eps_cond, "swapped"),
    (lambda eps_cond, eps_uncond, w: (1 - w) * eps_cond + w * eps_uncond, "interpolates"),
])
def test_cfg_mistakes_are_recognised(wrong, hint):
    with pytest.raises(ExerciseFailed, match=hint):
        check_cfg_combination(wrong)


@pytest.mark.parametrize("wrong, hint", [
    (lambda eps, grad_log_prob, alpha_bar, s: eps + s * (1 - alpha_bar) ** 0.5 * grad_log_prob, "the sign"),
    (lambda eps, grad_log_prob, alpha_bar, s: eps - s * (1 - alpha_bar) * grad_log_prob, "not the variance"),
    (lambda eps, grad_log_prob, alpha_bar, s: eps - s * grad_log_prob, "convert the score"),
])
def test_classifier_guidance_mistakes_are_recognised(wrong, hint):
    with pytest.raises(ExerciseFailed, match=hint) as err:
        check_classifier_guided_eps(wrong)
    assert "alpha_bar" in str(err.value)           # the failing input is named


@pytest.mark.parametrize("wrong, hint", [
    (sc**2 / (1 + w), "subtracted"),
    (1 / ((1 + w) / sc**2 + w / su**2), "subtracts its precision"),
    ((1 + w) * sc**2 - w * su**2, "precisions"),
])
def test_guided_variance_mistakes_are_recognised(wrong, hint):
    with pytest.raises(ExerciseFailed, match=hint):
        check_guided_variance(wrong)
