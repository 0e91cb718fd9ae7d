"""The machinery behind every exercise checker: run a student's function on named cases, compare with the reference,
and on failure say which case, what was expected, what came back and a hint aimed at the likely mistake.

A hint is chosen by *recognising* the mistake: each checker lists plausible wrong implementations
(:class:`Mistake`); when the student's output agrees with one of them on the failing case, that mistake's hint is
given. Otherwise the checker's generic hint is given. Checkers raise :class:`ExerciseFailed` (an ``AssertionError``,
so ``pytest`` reports it as a failed assertion) and print one line on success.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

__all__ = ["Case", "Mistake", "ExerciseFailed", "check_function", "check_expression", "check_value"]


class ExerciseFailed(AssertionError):
    """A student's answer disagrees with the reference; the message names the case and gives a hint."""

    def __init__(self, exercise: str, message: str, hint: str) -> None:
        self.exercise, self.hint = exercise, hint
        super().__init__(f"{exercise}: {message}\nHint: {hint}")


@dataclass(frozen=True)
class Case:
    """One input of a checker: a label a student can read ("t = 1, the first step"), and the keyword arguments."""

    label: str
    kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer: ``fn`` takes the same arguments as the student's function; ``hint`` explains it."""

    fn: Callable[..., Any]
    hint: str


def _fmt(v: Any, width: int = 160) -> str:
    if isinstance(v, torch.Tensor):
        if v.numel() <= 6:
            text = f"tensor({[round(float(a), 6) for a in v.detach().flatten().tolist()]}, shape={tuple(v.shape)})"
        else:
            f = v.detach().double()
            text = (f"tensor of shape {tuple(v.shape)}, dtype {v.dtype}, mean {f.mean().item():.6g}, "
                    f"std {f.std().item() if f.numel() > 1 else 0.0:.6g}")
    elif isinstance(v, (tuple, list)):
        text = "(" + ", ".join(_fmt(a, 60) for a in v) + ")"
    elif isinstance(v, float):
        text = f"{v:.6g}"
    else:
        text = repr(v)
    return text if len(text) <= width else text[: width - 3] + "..."


def _as_tuple(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _close(got: Any, expected: Any, rtol: float, atol: float) -> Optional[str]:
    """None when ``got`` matches ``expected``; otherwise a short reason."""
    got_t, exp_t = _as_tuple(got), _as_tuple(expected)
    if len(got_t) != len(exp_t):
        return f"expected {len(exp_t)} value(s), got {len(got_t)}"
    for k, (g, e) in enumerate(zip(got_t, exp_t)):
        where = f"output {k}: " if len(exp_t) > 1 else ""
        if isinstance(e, torch.Tensor):
            if not isinstance(g, torch.Tensor):
                try:
                    g = torch.as_tensor(g, dtype=e.dtype)
                except (TypeError, ValueError, RuntimeError):
                    return f"{where}expected a tensor, got {type(g).__name__}"
            if tuple(g.shape) != tuple(e.shape):
                try:
                    torch.broadcast_shapes(g.shape, e.shape)
                except RuntimeError:
                    return f"{where}shape {tuple(g.shape)}, expected {tuple(e.shape)}"
                if g.numel() != e.numel():
                    return f"{where}shape {tuple(g.shape)}, expected {tuple(e.shape)}"
                g = g.reshape(e.shape)
            g64, e64 = g.detach().double().cpu(), e.detach().double().cpu()
            if not torch.isfinite(g64).all():
                return f"{where}the result contains NaN or inf"
            if not torch.allclose(g64, e64, rtol=rtol, atol=atol):
                return f"{where}largest difference {(g64 - e64).abs().max().item():.3g}"
        else:
            try:
                gf, ef = float(g), float(e)
            except (TypeError, ValueError):
                return f"{where}expected a number, got {type(g).__name__}"
            if not math.isfinite(gf) or abs(gf - ef) > atol + rtol * abs(ef):
                return f"{where}differs by {abs(gf - ef):.3g}" if math.isfinite(gf) else f"{where}got {gf}"
    return None


def _recognise(mistakes: Sequence[tuple[Any, str]], matches: Callable[[Any], bool], default: str) -> str:
    """The hint of the first plausible wrong answer that the student's answer matches (else ``default``)."""
    for wrong, why in mistakes:
        try:
            if matches(wrong):
                return why
        except Exception:  # noqa: BLE001 - a mistake model that does not apply to this input
            continue
    return default


def check_function(exercise: str, student: Callable[..., Any], reference: Callable[..., Any],
                   cases: Sequence[Case], *, mistakes: Sequence[Mistake] = (), hint: str,
                   rtol: float = 1e-5, atol: float = 1e-6, quiet: bool = False) -> bool:
    """Run ``student(**case.kwargs)`` for every case and compare with ``reference(**case.kwargs)``.

    Raises :class:`ExerciseFailed` at the first case that disagrees (or that raises), naming the case, the expected
    and the returned value, and the hint of the first :class:`Mistake` whose output the student's matches on that
    case (else ``hint``). Prints one line and returns True when every case passes.
    """
    if not callable(student):
        raise TypeError(f"{exercise}: pass your function itself (got {type(student).__name__})")
    for case in cases:
        expected = reference(**case.kwargs)
        try:
            got = student(**case.kwargs)
        except Exception as err:  # noqa: BLE001 - a student's error becomes a readable failure
            raise ExerciseFailed(exercise, f"on the case '{case.label}' your function raised "
                                           f"{type(err).__name__}: {err}", hint) from err
        reason = _close(got, expected, rtol, atol)
        if reason is None:
            continue
        chosen = _recognise([(m.fn, m.hint) for m in mistakes],
                            lambda fn: _close(got, fn(**case.kwargs), rtol, atol) is None, hint)
        raise ExerciseFailed(exercise, f"wrong result on the case '{case.label}' ({reason}).\n"
                                       f"  expected: {_fmt(expected)}\n  returned: {_fmt(got)}", chosen)
    if not quiet:
        print(f"{exercise}: correct on all {len(cases)} cases.")
    return True


def check_expression(exercise: str, student: Any, reference: Any, *, mistakes: Sequence[tuple[Any, str]] = (),
                     hint: str, assumptions: Sequence[Any] = (), quiet: bool = False) -> bool:
    """Compare a SymPy expression with the reference by simplifying their difference to zero.

    ``mistakes`` pairs plausible wrong expressions with hints. The symbols of ``reference`` are the ones the student
    must use; an answer with other free symbols fails with a message that lists them.
    """
    import sympy as sp

    try:
        student = sp.sympify(student)
    except (sp.SympifyError, TypeError) as err:
        raise ExerciseFailed(exercise, f"your answer is not a SymPy expression ({err})", hint) from err
    reference = sp.sympify(reference)
    extra = student.free_symbols - reference.free_symbols
    if extra:
        names = ", ".join(sorted(str(s) for s in extra))
        allowed = ", ".join(sorted(str(s) for s in reference.free_symbols))
        raise ExerciseFailed(exercise, f"your answer uses the symbol(s) {names}; the answer is a function of "
                                       f"{allowed} only (same names and assumptions)", hint)

    def same(a, b) -> bool:
        diff = sp.simplify(sp.expand(a - b))
        return diff == 0 or sp.simplify(sp.logcombine(sp.expand_log(diff, force=True), force=True)) == 0

    if not same(student, reference):
        chosen = _recognise(mistakes, lambda wrong: same(student, sp.sympify(wrong)), hint)
        raise ExerciseFailed(exercise, f"your expression is not equal to the answer.\n  returned: {student}", chosen)
    if not quiet:
        print(f"{exercise}: correct ({reference} up to simplification).")
    return True


def check_value(exercise: str, student: Any, expected: float, *, rtol: float = 1e-3, atol: float = 0.0,
                mistakes: Sequence[tuple[float, str]] = (), hint: str, quiet: bool = False) -> bool:
    """Compare a number the student computed with the reference value, recognising known wrong values."""
    try:
        got = float(student)
    except (TypeError, ValueError) as err:
        raise ExerciseFailed(exercise, f"expected a number, got {type(student).__name__}", hint) from err
    if not (math.isfinite(got) and abs(got - expected) <= atol + rtol * abs(expected)):
        chosen = _recognise(mistakes, lambda wrong: math.isfinite(got) and abs(got - wrong) <= atol + rtol * abs(wrong),
                            hint)
        raise ExerciseFailed(exercise, f"expected {expected:.6g}, returned {got:.6g}", chosen)
    if not quiet:
        print(f"{exercise}: correct ({got:.6g}).")
    return True
