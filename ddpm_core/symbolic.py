"""SymPy helpers shared by the book's derivations (imported on use: SymPy is only needed by the chapters)."""
from __future__ import annotations

from typing import Sequence

__all__ = ["gaussian_expectation"]


def gaussian_expectation(expr, variables: Sequence):
    """E[expr] for a polynomial ``expr`` in independent standard normal ``variables``.

    Uses the moments of N(0, 1): E[z^n] = (n - 1)!! for even n and 0 for odd n; every other symbol is a constant.
    Raises ``ValueError`` when ``expr`` is not a polynomial in ``variables`` (say, log or exp of one of them).
    """
    import sympy as sp

    variables = tuple(variables)
    if not variables:
        raise ValueError("variables must name at least one standard normal symbol")
    try:
        poly = sp.Poly(sp.expand(expr), *variables)
    except sp.PolynomialError as err:
        raise ValueError(f"expr must be a polynomial in {variables}: {err}") from err

    def moment(n: int):
        return 0 if n % 2 else sp.factorial2(n - 1)

    return sp.simplify(sum(c * sp.prod([moment(n) for n in mono]) for mono, c in poly.terms()))
