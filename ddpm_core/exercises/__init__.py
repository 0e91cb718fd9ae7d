"""Self-checking exercises for the book: ``check_<name>(your_function)`` for each coding exercise.

Each chapter's checkers live in a module ``ddpm_core.exercises.chNN``; every ``check_*`` name is also reachable
from here, e.g. ``from ddpm_core.exercises import check_q_sample``. A checker runs your code on fixed, random and
edge inputs, compares with the reference implementation and, on the first disagreement, raises
:class:`ExerciseFailed` naming the input, the expected and the returned value, with a hint aimed at the likely
mistake. On success it prints one line. :func:`list_exercises` lists every checker with its chapter.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from ._checker import Case, ExerciseFailed, Mistake, check_expression, check_function, check_value

__all__ = ["ExerciseFailed", "list_exercises", "Case", "Mistake", "check_function", "check_expression",
           "check_value"]


def _chapter_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("ch"))


def list_exercises() -> dict[str, list[str]]:
    """Every checker name, grouped by chapter module (``{"ch01": ["check_q_sample", ...], ...}``)."""
    out = {}
    for name in _chapter_modules():
        mod = importlib.import_module(f"{__name__}.{name}")
        out[name] = sorted(n for n in getattr(mod, "__all__", ()) if n.startswith("check_"))
    return out


def __getattr__(name: str) -> Any:
    if name.startswith("check_"):
        for mod_name in _chapter_modules():
            mod = importlib.import_module(f"{__name__}.{mod_name}")
            if name in getattr(mod, "__all__", ()):
                return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; see ddpm_core.exercises.list_exercises()")
