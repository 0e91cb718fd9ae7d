"""Checkers for chapter 18, exact likelihood: Hutchinson's trace estimator, the log-density change of a linear flow,
and bits/dim of 8-bit data from a continuous density."""
from __future__ import annotations

import math

import torch

from ._checker import Case, ExerciseFailed, Mistake, check_expression, check_function

__all__ = ["check_hutchinson_trace", "check_linear_flow_log_density", "check_dequantized_bpd"]


def _hutchinson_reference(A: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # per probe z_p^T A z_p, then the mean over the P probes
    return torch.einsum("pi,ij,pj->p", z, A, z).mean()


def _hutchinson_cases() -> list[Case]:
    g = torch.Generator().manual_seed(18)
    rad = lambda p, d: torch.randn(p, d, generator=g, dtype=torch.float64).sign()  # noqa: E731
    cases = [
        Case("A = diag(1, 2, 3), one probe (1, 1, 1)",
             {"A": torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)),
              "z": torch.ones(1, 3, dtype=torch.float64)}),
        Case("non-symmetric 2 x 2 A, probes (1, -1) and (1, 1)",
             {"A": torch.tensor([[1.0, 4.0], [-2.0, 0.5]], dtype=torch.float64),
              "z": torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)}),
        Case("random 5 x 5 A, 7 Rademacher probes",
             {"A": torch.randn(5, 5, generator=g, dtype=torch.float64), "z": rad(7, 5)}),
        Case("random 8 x 8 A, 3 Gaussian probes",
             {"A": torch.randn(8, 8, generator=g, dtype=torch.float64),
              "z": torch.randn(3, 8, generator=g, dtype=torch.float64)}),
        Case("1 x 1 A = [[-2.5]], probe [[1]]", {"A": torch.tensor([[-2.5]], dtype=torch.float64),
                                                   "z": torch.ones(1, 1, dtype=torch.float64)}),
    ]
    return cases


def check_hutchinson_trace(student) -> bool:
    """Exercise: ``hutchinson_trace(A, z)`` estimates tr(A) of a (d, d) matrix from probes ``z`` of shape (P, d)
    with E[z z^T] = I: the mean over p of z_p^T A z_p (Hutchinson 1989), a tensor scalar."""
    mistakes = [
        Mistake(lambda A, z: torch.einsum("pi,ij,pj->p", z, A, z).sum(),
                "you summed over the probes; the estimator is their mean (each z^T A z is already unbiased)."),
        Mistake(lambda A, z: (z @ A.T).sum(1).mean(),
                "you summed the entries of A z: the second factor z^T is missing (z^T A z, not 1^T A z)."),
        Mistake(lambda A, z: torch.einsum("pi,ij,pj->p", z, A, z).mean() / A.shape[0],
                "you divided by d: z^T A z estimates the trace itself, not the trace per dimension."),
        Mistake(lambda A, z: (z * z).sum(1).mean(),
                "A is missing: z^T z estimates tr(I) = d, not tr(A)."),
    ]
    return check_function("check_hutchinson_trace", student, _hutchinson_reference, _hutchinson_cases(),
                          mistakes=mistakes, hint="tr(A) ~ (1/P) sum_p z_p^T A z_p.", rtol=1e-9, atol=1e-9)


def check_linear_flow_log_density(student) -> bool:
    """Exercise (SymPy): for the linear flow dx/ds = A x in two dimensions, A = [[a11, a12], [a21, a22]] constant,
    the change log p_s(x_s) - log p_0(x_0) along a trajectory after time s. Symbols: a11, a12, a21, a22, s (real)."""
    import sympy as sp

    a11, a12, a21, a22, s = sp.symbols("a11 a12 a21 a22 s", real=True)
    reference = -s * (a11 + a22)
    mistakes = [
        (s * (a11 + a22), "the sign: a flow that expands volume (tr A > 0) spreads the mass, so the density "
                          "along the trajectory falls: d log p / ds = -div f."),
        (-(a11 + a22), "that is the rate d log p / ds; integrate it over the time s."),
        (-s * (a11 * a22 - a12 * a21), "the divergence of A x is the trace of A (the sum of the diagonal), "
                                       "not its determinant."),
        (-s * (a11 + a12 + a21 + a22), "the divergence sums only the diagonal entries d f_i / d x_i."),
        (-sp.log(s * (a11 + a22)), "the log-density changes by -integral of div f ds; no logarithm is taken of it."),
    ]
    hint = "d log p_s(x_s) / ds = -div f = -tr A, constant along the path."
    # wrong answers with the off-diagonal entries would be refused for their symbols alone: name the mistake
    try:
        answer = sp.sympify(student)
    except (sp.SympifyError, TypeError):
        answer = None
    if answer is not None and answer.free_symbols & {a12, a21}:
        for wrong, why in mistakes:
            if sp.simplify(answer - wrong) == 0:
                raise ExerciseFailed("check_linear_flow_log_density",
                                     f"your expression is not equal to the answer.\n  returned: {answer}", why)
    return check_expression("check_linear_flow_log_density", student, reference, mistakes=mistakes, hint=hint)


def _bpd_reference(log_likelihood: torch.Tensor, dim: int, bits: int) -> torch.Tensor:
    return -log_likelihood / (dim * math.log(2.0)) + math.log2((2**bits - 1) / 2)


def check_dequantized_bpd(student) -> bool:
    """Exercise: ``dequantized_bpd(log_likelihood, dim, bits)``: bits/dim of ``bits``-bit data on this package's
    grid x = 2 k / (2^bits - 1) - 1, from the log-density (nats, shape (B,)) of its uniform dequantization over the
    bins of width 2 / (2^bits - 1) centred on the levels, in ``dim`` dimensions."""
    g = torch.Generator().manual_seed(8)
    cases = [
        Case("uniform density on the 256 bins of [-1 - 1/255, 1 + 1/255]^64, 8 bits",
             {"log_likelihood": torch.tensor([-64 * math.log(2 * 256 / 255)], dtype=torch.float64),
              "dim": 64, "bits": 8}),
        Case("log p = 0 in 3072 dimensions, 8 bits", {"log_likelihood": torch.zeros(2, dtype=torch.float64),
                                                      "dim": 3072, "bits": 8}),
        Case("random log-likelihoods, 64 dims, 5 bits", {"log_likelihood": 100 * torch.randn(4, generator=g,
                                                                                             dtype=torch.float64),
                                                         "dim": 64, "bits": 5}),
        Case("1 bit (levels -1 and 1, bins of width 2), 2 dims",
             {"log_likelihood": torch.tensor([1.5, -0.5], dtype=torch.float64), "dim": 2, "bits": 1}),
    ]
    nats_to_bits = lambda ll, dim: -ll / (dim * math.log(2.0))  # noqa: E731
    mistakes = [
        Mistake(lambda log_likelihood, dim, bits: nats_to_bits(log_likelihood, dim),
                "the bin width is missing: each of the D coordinates lives in a bin of width 2 / (2^bits - 1), "
                "which adds -log2(2 / (2^bits - 1)) bits per dimension."),
        Mistake(lambda log_likelihood, dim, bits: nats_to_bits(log_likelihood, dim) + bits - 1,
                "bins of width 2 / 2^bits belong to data scaled as (k + u) / 2^(bits-1) - 1; this grid has spacing "
                "2 / (2^bits - 1): add log2((2^bits - 1) / 2)."),
        Mistake(lambda log_likelihood, dim, bits: nats_to_bits(log_likelihood, dim) + bits,
                "the levels span [-1, 1], not [0, 1]: the bins have width 2 / (2^bits - 1), so add "
                "log2((2^bits - 1) / 2), not bits."),
        Mistake(lambda log_likelihood, dim, bits: -log_likelihood / dim + math.log2((2**bits - 1) / 2),
                "log_likelihood is in nats: divide by ln 2 to get bits."),
        Mistake(lambda log_likelihood, dim, bits: -log_likelihood / math.log(2.0) + math.log2((2**bits - 1) / 2),
                "bits per dimension: divide the total by dim."),
        Mistake(lambda log_likelihood, dim, bits: -nats_to_bits(log_likelihood, dim) + math.log2((2**bits - 1) / 2),
                "the sign: bits/dim is a negative log-likelihood."),
    ]
    return check_function("check_dequantized_bpd", student, _bpd_reference, cases, mistakes=mistakes,
                          hint="bits/dim = -log p(y) / (D ln 2) + log2((2^bits - 1) / 2) for levels on [-1, 1].",
                          rtol=1e-9, atol=1e-9)
