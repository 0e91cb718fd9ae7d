"""Chapter 20 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import math

import pytest
import sympy as sp
import torch

from ddpm_core.exercises import (ExerciseFailed, check_dsm_target, check_implicit_score_matching,
                                 check_vincent_constant)


def implicit_sm(score_fn, x):
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    div = sum(torch.autograd.grad(s[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1]))
    return (0.5 * (s**2).sum(1) + div).detach()


def _with_divergence(combine):
    def student(score_fn, x):
        x = x.detach().requires_grad_(True)
        s = score_fn(x)
        div = sum(torch.autograd.grad(s[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1]))
        return combine(s, div, x).detach()
    return student


def test_solutions_pass(capsys):
    assert check_implicit_score_matching(implicit_sm)
    assert check_dsm_target(lambda x_t, x0, alpha_bar: -(x_t - math.sqrt(alpha_bar) * x0) / (1 - alpha_bar))
    ab, s = sp.symbols("alphabar_t s", positive=True)
    # 1/2 E[target^2] - 1/2 E[score^2] written as the posterior-variance form
    assert check_vincent_constant(ab * s**2 / (2 * (1 - ab) * (ab * s**2 + 1 - ab)))
    out = capsys.readouterr().out
    assert out.count("correct on all") == 2 and "check_vincent_constant: correct" in out


@pytest.mark.parametrize("wrong, hint", [
    (_with_divergence(lambda s, div, x: (s**2).sum(1) + div), "factor 1/2"),
    (_with_divergence(lambda s, div, x: 0.5 * (s**2).sum(1) - div), "plus sign"),
    (lambda score_fn, x: 0.5 * (score_fn(x) ** 2).sum(1), "divergence term is missing"),
])
def test_implicit_score_matching_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_implicit_score_matching(wrong)
    assert hint in err.value.hint


def test_implicit_score_matching_recognises_the_jacobian_sum():
    def wrong(score_fn, x):
        x = x.detach().requires_grad_(True)
        s = score_fn(x)
        (g,) = torch.autograd.grad(s.sum(), x, retain_graph=True)
        return (0.5 * (s**2).sum(1) + g.sum(1)).detach()

    with pytest.raises(ExerciseFailed) as err:
        check_implicit_score_matching(wrong)
    assert "trace" in err.value.hint
    assert "non-symmetric" in str(err.value)  # the failing case is named


@pytest.mark.parametrize("wrong, hint", [
    (lambda x_t, x0, alpha_bar: (x_t - math.sqrt(alpha_bar) * x0) / (1 - alpha_bar), "sign"),
    (lambda x_t, x0, alpha_bar: -(x_t - math.sqrt(alpha_bar) * x0) / math.sqrt(1 - alpha_bar), "-eps"),
    (lambda x_t, x0, alpha_bar: -(x_t - x0) / (1 - alpha_bar), "shrinks the data"),
    (lambda x_t, x0, alpha_bar: -(x_t - alpha_bar * x0) / (1 - alpha_bar), "not alpha_bar"),
])
def test_dsm_target_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_dsm_target(wrong)
    assert hint in err.value.hint


def test_vincent_constant_mistakes():
    ab, s = sp.symbols("alphabar_t s", positive=True)
    var_t = ab * s**2 + 1 - ab
    for wrong, hint in [(1 / (1 - ab) - 1 / var_t, "factor 1/2"),
                        ((1 / var_t - 1 / (1 - ab)) / 2, "the sign"),
                        (1 / (2 * (1 - ab)), "subtracted"),
                        ((1 / sp.sqrt(1 - ab) - 1 / sp.sqrt(var_t)) / 2, "inverse variance")]:
        with pytest.raises(ExerciseFailed) as err:
            check_vincent_constant(wrong)
        assert hint in err.value.hint
    with pytest.raises(ExerciseFailed, match="symbol"):
        check_vincent_constant(sp.Symbol("tau") ** 2)
