"""Run times under the chapter titles: tools/chapter_times.py (the numbers) and book/_ext/ddpm_book.py (the line)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from docutils import nodes
from docutils.utils import new_document
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser

from conftest import load_module

ROOT = Path(__file__).resolve().parent.parent
chapter_times = load_module("chapter_times", ROOT / "tools" / "chapter_times.py")


def test_human_durations():
    assert chapter_times.human(3) == "5 s"
    assert chapter_times.human(42) == "40 s"
    assert chapter_times.human(95) == "2 min"
    assert chapter_times.human(3 * 3600 + 300) == "3 h 5 min"


def test_runtime_line_and_colab_estimate():
    entry = {"cpu_seconds": 40.0, "colab_seconds": chapter_times.colab_estimate(40.0), "cores": 2, "date": "2026-12-02"}
    assert entry["colab_seconds"] == chapter_times.COLAB_CPU_FACTOR * 40 + chapter_times.COLAB_INSTALL_SECONDS
    line = chapter_times.runtime_line(entry)
    assert line.startswith("Runs in about 40 s on a 2-core CPU (measured 2026-12-02); about 2 min in Colab")


def test_stored_times_are_well_formed():
    times = chapter_times.load_times()
    for name, entry in times.get("chapters", {}).items():
        assert (ROOT / f"{name}.ipynb").is_file(), name
        assert entry["cpu_seconds"] > 0 and entry["colab_seconds"] >= entry["cpu_seconds"]


def _doctree(text: str) -> nodes.document:
    doc = new_document("<test>", get_default_settings(Parser))
    Parser().parse(text, doc)
    return doc


def test_extension_puts_the_line_under_the_title(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        ext = load_module("ddpm_book_ext", ROOT / "book" / "_ext" / "ddpm_book.py")
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    times = tmp_path / "chapter_times.json"
    times.write_text(json.dumps({"chapters": {"book/15_x": {"cpu_seconds": 60, "colab_seconds": 150, "cores": 2,
                                                            "date": "2026-12-02"}}}))
    monkeypatch.setattr(ext, "TIMES_FILE", times)
    deps = []
    app = SimpleNamespace(env=SimpleNamespace(docname="book/15_x", note_dependency=deps.append))
    doc = _doctree("Title\n=====\n\nFirst paragraph.\n")
    ext._add_runtime_line(app, doc)
    section = next(iter(doc.findall(nodes.section)))
    assert isinstance(section[0], nodes.title) and "ddpm-runtime" in section[1]["classes"]
    assert section[1].astext().startswith("Runs in about 60 s") and section[2].astext() == "First paragraph."
    assert deps == [str(times)]
    # a page without an entry is left alone
    other = _doctree("Other\n=====\n\nText.\n")
    ext._add_runtime_line(SimpleNamespace(env=SimpleNamespace(docname="book/intro", note_dependency=deps.append)), other)
    assert not any("ddpm-runtime" in n["classes"] for n in other.findall(nodes.paragraph))


def test_every_chapter_has_a_run_time():
    assert chapter_times.main(["--check"]) == 0


def test_stored_seconds_reads_the_stored_runs_cell_timings(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1"), nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell("2")]
    nb.cells[0].metadata["execution"] = {"iopub.execute_input": "2026-12-02T10:00:00.000000Z",
                                         "shell.execute_reply": "2026-12-02T10:00:01.000000Z"}
    nb.cells[2].metadata["execution"] = {"iopub.execute_input": "2026-12-02T10:00:30.000000Z",
                                         "shell.execute_reply": "2026-12-02T10:01:12.500000Z"}
    path = tmp_path / "ch.ipynb"
    nbformat.write(nb, path)
    assert chapter_times.stored_seconds(path) == 72.5
    del nb.cells[2].metadata["execution"]
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="no cell timings"):
        chapter_times.stored_seconds(path)
