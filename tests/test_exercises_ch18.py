"""Chapter 18 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import math

import pytest
import sympy as sp
import torch

from ddpm_core.exercises import (ExerciseFailed, check_dequantized_bpd, check_hutchinson_trace,
                                 check_linear_flow_log_density)
from ddpm_core.ode_likelihood import dequantized_bits_per_dim, divergence, make_probes

a11, a12, a21, a22, s = sp.symbols("a11 a12 a21 a22 s", real=True)


def test_solutions_pass(capsys):
    assert check_hutchinson_trace(lambda A, z: ((z @ A.T) * z).sum(1).mean())
    assert check_linear_flow_log_density(-s * a11 - s * a22)
    assert check_dequantized_bpd(lambda log_likelihood, dim, bits: dequantized_bits_per_dim(log_likelihood, dim,
                                                                                             bits=bits))
    out = capsys.readouterr().out
    assert out.count("correct on all") == 2 and "check_linear_flow_log_density: correct" in out


def test_hutchinson_reference_agrees_with_the_package():
    # the checker's estimator and ddpm_core.ode_likelihood.divergence (one VJP per probe) on a linear map
    from ddpm_core.exercises.ch18 import _hutchinson_reference
    g = torch.Generator().manual_seed(0)
    A = torch.randn(4, 4, generator=g, dtype=torch.float64)
    z = make_probes((1, 4), 6, generator=g, dtype=torch.float64)
    pkg = divergence(lambda x: x @ A.T, torch.zeros(1, 4, dtype=torch.float64), method="hutchinson", probes=z)
    torch.testing.assert_close(pkg[0], _hutchinson_reference(A, z[:, 0]))


def test_linear_flow_answer_is_the_liouville_formula():
    # independent: the density of x_s = expm(A s) x_0 is p_0(x_0) / |det expm(A s)| = p_0 exp(-s tr A)
    A = sp.Matrix([[a11, a12], [a21, a22]])
    assert sp.simplify(-sp.log(sp.exp(A.trace() * s)) - (-s * (a11 + a22))) == 0
    Anum = torch.tensor([[0.3, -1.2], [0.4, -0.9]], dtype=torch.float64)
    det = torch.linalg.det(torch.linalg.matrix_exp(Anum * 0.7))
    assert float(-torch.log(det)) == pytest.approx(-0.7 * float(Anum.trace()), rel=1e-12)


@pytest.mark.parametrize("wrong, hint", [
    (lambda A, z: ((z @ A.T) * z).sum(), "mean"),
    (lambda A, z: (z @ A.T).sum(1).mean(), "second factor"),
    (lambda A, z: ((z @ A.T) * z).sum(1).mean() / A.shape[0], "divided by d"),
    (lambda A, z: (z * z).sum(1).mean(), "A is missing"),
])
def test_hutchinson_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_hutchinson_trace(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (s * (a11 + a22), "the sign"),
    (-(a11 + a22), "integrate"),
    (-s * (a11 * a22 - a12 * a21), "determinant"),
    (-s * (a11 + a12 + a21 + a22), "diagonal"),
])
def test_linear_flow_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_linear_flow_log_density(wrong)
    assert hint in err.value.hint


def test_linear_flow_foreign_symbol():
    with pytest.raises(ExerciseFailed, match="symbol"):
        check_linear_flow_log_density(-sp.Symbol("t") * (a11 + a22))


@pytest.mark.parametrize("wrong, hint", [
    (lambda log_likelihood, dim, bits: -log_likelihood / (dim * math.log(2.0)), "bin width is missing"),
    (lambda log_likelihood, dim, bits: -log_likelihood / (dim * math.log(2.0)) + bits - 1, "2 / 2^bits"),
    (lambda log_likelihood, dim, bits: -log_likelihood / (dim * math.log(2.0)) + bits, "not bits"),
    (lambda log_likelihood, dim, bits: -log_likelihood / dim + math.log2((2**bits - 1) / 2), "nats"),
    (lambda log_likelihood, dim, bits: -log_likelihood / math.log(2.0) + math.log2((2**bits - 1) / 2), "by dim"),
])
def test_dequantized_bpd_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_dequantized_bpd(wrong)
    assert hint in err.value.hint
