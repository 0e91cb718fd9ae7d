"""Chapter 17 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest
import sympy as sp
import torch

from ddpm_core.exercises import (ExerciseFailed, check_cosine_beta, check_pf_ode_drift,
                                 check_vp_marginal_variance)
from ddpm_core.sde import VPSDE, probability_flow_drift

s, b0, b1 = sp.symbols("s beta_min beta_max", positive=True)
s0 = sp.Symbol("s_0", positive=True)
u = (s + s0) / (1 + s0) * sp.pi / 2


def pf_ode_drift(x, beta, score):
    return -0.5 * beta[:, None] * (x + score)


def test_solutions_pass(capsys):
    assert check_pf_ode_drift(pf_ode_drift)
    assert check_vp_marginal_variance(1 - sp.exp(-(b0 * s + (b1 - b0) * s**2 / 2)))
    # the derivative itself (unsimplified) is a correct answer too
    assert check_cosine_beta(-sp.diff(sp.log(sp.cos(u) ** 2), s))
    assert capsys.readouterr().out.count("correct") == 3


def test_package_drift_passes():
    # ddpm_core's probability_flow_drift, fed beta through a VPSDE whose beta(s) is the given value at s = 0
    def via_package(x, beta, score):
        return torch.stack([probability_flow_drift(VPSDE(float(b), float(b)), lambda y, t, sc=sc: sc[None], xi[None],
                                                   torch.zeros(1, dtype=torch.float64))[0]
                            for xi, b, sc in zip(x, beta, score)])
    assert check_pf_ode_drift(via_package)


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, beta, score: -0.5 * beta[:, None] * x - beta[:, None] * score, "reverse-time SDE"),
    (lambda x, beta, score: -0.5 * beta[:, None] * (x - score), "minus sign"),
    (lambda x, beta, score: -0.5 * beta[:, None] * score, "forward drift"),
    (lambda x, beta, score: -0.5 * beta[:, None] * x - 0.5 * beta[:, None].sqrt() * score, "enters squared"),
    (lambda x, beta, score: -0.5 * beta * (x + score), "reshaped to (B, 1)"),
])
def test_pf_drift_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_pf_ode_drift(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (1 - sp.exp(-(b0 + (b1 - b0) * s) * s), "integral"),
    (1 - sp.exp(-(b0 * s + (b1 - b0) * s**2 / 2) / 2), "factor on the *mean*"),
    (sp.exp(-(b0 * s + (b1 - b0) * s**2 / 2)), "1 - alpha_bar(s)"),
    (1 - sp.exp(-b1 * s), "v(0) = 0"),
])
def test_marginal_variance_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_vp_marginal_variance(wrong)
    assert hint in err.value.hint


def test_marginal_variance_with_other_symbols_names_them():
    x = sp.Symbol("x")
    with pytest.raises(ExerciseFailed, match="x"):
        check_vp_marginal_variance(1 - sp.exp(-x))


@pytest.mark.parametrize("wrong, hint", [
    (sp.pi / (1 + s0) * sp.sin(u) * sp.cos(u) / sp.cos(s0 / (1 + s0) * sp.pi / 2) ** 2, "not of alpha_bar(s)"),
    (2 * sp.tan(u), "chain rule"),
    (sp.pi / (2 * (1 + s0)) * sp.tan(u), "factor 2"),
    (sp.pi / (1 + s0) * sp.tan(s * sp.pi / 2), "offset s_0"),
])
def test_cosine_beta_wrong_answers(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_cosine_beta(wrong)
    assert hint in err.value.hint
