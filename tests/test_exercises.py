"""The exercise collection as a whole: unique checker names, >= 2 checked exercises per chapter, a test per checker."""
import json
import re
from pathlib import Path

from ddpm_core.exercises import list_exercises

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def test_checker_names_are_unique_across_chapters():
    names = [n for mods in list_exercises().values() for n in mods]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_every_chapter_calls_at_least_two_checkers_of_its_own():
    exercises = list_exercises()
    for nb_path in CHAPTERS:
        nb = json.loads(nb_path.read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        called = set(re.findall(r"\b(check_\w+)\(", code))
        mod = f"ch{nb_path.name[:2]}"
        own = called & set(exercises.get(mod, []))
        assert len(own) >= 2, f"{nb_path.name} calls {sorted(own)} of ddpm_core.exercises.{mod}; at least 2 needed"


def test_every_checker_has_a_test_that_uses_it():
    for mod, names in list_exercises().items():
        text = (ROOT / "tests" / f"test_exercises_{mod}.py").read_text()
        missing = [n for n in names if n not in text]
        assert not missing, f"tests/test_exercises_{mod}.py does not exercise {missing}"


def test_the_exercises_page_lists_every_checker():
    page = (ROOT / "book" / "exercises.md").read_text()
    listed = set(re.findall(r"`(check_\w+)`", page.split("| Chapter | Module | Checkers |")[1]))
    every = {n for names in list_exercises().values() for n in names}
    assert listed == every, (sorted(every - listed), sorted(listed - every))
