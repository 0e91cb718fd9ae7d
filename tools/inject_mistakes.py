"""Inject classic DDPM mistakes into ddpm_core, one at a time, and record which checks catch each one.

For every mistake of ``tools/ddpm_mistakes.py`` (and once without any, the baseline) this script

* executes the derivation chapters (default book/01..08) with nbclient, a first cell injecting the mistake into
  the kernel, ``allow_errors`` so every cell runs and every failing cell is recorded (a per-cell timeout
  interrupts a cell that hangs);
* runs the fast unit tests under the same mistake (``pytest -p ddpm_mistakes``) and records the failing tests.

A chapter cell *catches* a mistake when it raises under the mistake but not in the baseline, with an exception
other than ``NameError`` (a ``NameError`` only follows an earlier failing cell; those are counted separately).
Results are cached in ``.mistake_cache/`` keyed by (mistake, the notebook's code, the package's code, the mistake
table), so a rerun only executes what changed. The results go to ``tools/mistakes_results.json`` and the book's
appendix ``book/what_the_checks_catch.md`` is generated from that file.

    OMP_NUM_THREADS=1 .venv/bin/python tools/inject_mistakes.py              # everything (cached)
    .venv/bin/python tools/inject_mistakes.py --only kl_wrong_sign --chapters 05
    .venv/bin/python tools/inject_mistakes.py --render                         # only rewrite the page
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
BOOK = ROOT / "book"
CACHE = ROOT / ".mistake_cache"
RESULTS = TOOLS / "mistakes_results.json"
PAGE = BOOK / "what_the_checks_catch.md"
COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python tools/inject_mistakes.py"
DEFAULT_CHAPTERS = ["01", "02", "03", "04", "05", "06", "07", "08"]
DEFAULT_TESTS = ["tests/test_schedules.py", "tests/test_diffusion.py", "tests/test_likelihood.py",
                 "tests/test_samplers.py", "tests/test_losses.py", "tests/test_oracles.py",
                 "tests/test_nn.py::test_timestep_embedding_closed_form", "tests/test_nn.py::test_model_depends_on_t",
                 "tests/test_nn.py::test_mlp_denoiser",
                 "tests/test_mutation_killers.py", "tests/test_exercises_ch*.py"]
# Test files whose results are cached separately (they change more often than the rest).
SEPARATE_TESTS = ("tests/test_mutation_killers.py",)
BASELINE = "(none)"
CASCADE = ("NameError",)

sys.path.insert(0, str(TOOLS))
import ddpm_mistakes  # noqa: E402


# ---- hashing -----------------------------------------------------------------------------------------------------
def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:16]


def package_hash() -> str:
    files = sorted((ROOT / "ddpm_core").rglob("*.py"))
    return _sha(*(str(f.relative_to(ROOT)).encode() + f.read_bytes() for f in files))


def mistake_hash(name: str | None) -> str:
    """Hash of one mistake: its table entry's text and the source of its wrong implementation (helpers that an
    entry calls are not followed: edit the entry, or clear .mistake_cache/, after changing one)."""
    if name is None:
        return BASELINE
    import inspect
    m = ddpm_mistakes.BY_NAME[name]
    text = (TOOLS / "ddpm_mistakes.py").read_text()
    start = text.index(f'Mistake("{name}"')
    nxt = text.find("Mistake(", start + 1)
    entry = text[start:nxt if nxt > 0 else len(text)]
    try:
        src = inspect.getsource(m.wrong)
    except (OSError, TypeError):
        src = ""
    return _sha(entry.encode(), src.encode())


def notebook_hash(path: Path) -> str:
    nb = json.loads(path.read_text())
    return _sha(*("".join(c["source"]).encode() for c in nb["cells"] if c["cell_type"] == "code"))


def tests_hash(tests: list[str]) -> str:
    files = sorted({ROOT / t.partition("::")[0] for t in tests} | {ROOT / "tests/conftest.py"})
    return _sha(" ".join(tests).encode(), *(str(f.relative_to(ROOT)).encode() + f.read_bytes() for f in files))


def _cached(key: str, compute):
    CACHE.mkdir(exist_ok=True)
    f = CACHE / f"{key}.json"
    if f.exists():
        return json.loads(f.read_text()), True
    value = compute()
    f.write_text(json.dumps(value, indent=1))
    return value, False


# ---- chapters ----------------------------------------------------------------------------------------------------
def cell_label(source: str) -> str:
    lines = [ln.strip() for ln in source.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("#") and not ln.startswith("#!") and len(ln.lstrip("# ").split()) >= 2:
            label = ln.lstrip("# ").strip()
            break
    else:
        label = lines[0] if lines else ""
    return label if len(label) <= 70 else label[:67] + "..."


def inject_cell_source(mistake: str | None) -> str:
    name = mistake or ""
    return (f"import os, sys\nsys.path.insert(0, {str(TOOLS)!r})\nos.environ['DDPM_CORE_MISTAKE'] = {name!r}\n"
            "import ddpm_mistakes\nddpm_mistakes.apply_from_env()")


def run_chapter(path: Path, mistake: str | None, cell_timeout: int, attempts: int = 3) -> dict:
    """Execute one chapter with the mistake injected; return {cells: [{index, id, label, error, ename, evalue}]}.
    A kernel that fails to start (e.g. a port taken by another process) is retried."""
    for _ in range(attempts - 1):
        out = _run_chapter_once(path, mistake, cell_timeout)
        if "kernel_info" not in out["status"]:
            return out
    return _run_chapter_once(path, mistake, cell_timeout)


def _run_chapter_once(path: Path, mistake: str | None, cell_timeout: int) -> dict:
    import nbclient
    import nbformat
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:  # stored outputs must not pass for this run's (a cell that never ran has none)
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    originals = list(nb.cells)
    inject = nbformat.v4.new_code_cell(inject_cell_source(mistake))
    nb.cells = [inject] + originals
    env_before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    client = nbclient.NotebookClient(nb, timeout=cell_timeout, allow_errors=True, interrupt_on_timeout=True,
                                     kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    status, t0 = "ok", time.time()
    try:
        client.execute()
    except DeadKernelError as e:
        status = f"kernel died: {str(e)[:200]}"
    except Exception as e:  # noqa: BLE001 - record, do not stop the whole table
        status = f"{type(e).__name__}: {str(e)[:200]}"
    finally:
        if env_before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env_before
    inject_errors = [o for o in nb.cells[0].get("outputs", []) if o.get("output_type") == "error"]
    if inject_errors:
        raise RuntimeError(f"injecting {mistake!r} failed in {path.name}: {inject_errors[0].get('evalue')}")
    cells = []
    for i, c in enumerate(originals):
        if c.cell_type != "code":
            continue
        errs = [o for o in c.get("outputs", []) if o.get("output_type") == "error"]
        ran = c.get("execution_count") is not None
        cells.append({"index": i, "id": c.get("id"), "label": cell_label(c.source), "ran": ran,
                      "error": bool(errs), "ename": errs[0]["ename"] if errs else None,
                      "evalue": (errs[0]["evalue"].splitlines() or [""])[0][:160] if errs else None})
    return {"status": status, "seconds": round(time.time() - t0, 1), "cells": cells}


# ---- unit tests --------------------------------------------------------------------------------------------------
def run_tests(files: list[str], mistake: str | None, timeout: int = 900) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        env = dict(os.environ, OMP_NUM_THREADS="1", DDPM_CORE_MISTAKE=mistake or "",
                   PYTHONPATH=os.pathsep.join([str(TOOLS)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-p", "ddpm_mistakes",
               "-m", "not browser", f"--junitxml={xml}", *files]
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        if not xml.exists():
            raise RuntimeError(f"pytest produced no report under {mistake!r}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        failed, passed = [], 0
        for case in ET.parse(xml).getroot().iter("testcase"):
            node = _nodeid(case)
            bad = case.find("failure") if case.find("failure") is not None else case.find("error")
            if bad is not None:
                failed.append({"test": node, "message": (bad.get("message") or "").splitlines()[0][:160]
                               if bad.get("message") else ""})
            elif case.find("skipped") is None:
                passed += 1
    return {"seconds": round(time.time() - t0, 1), "passed": passed, "failed": failed}


def _nodeid(case) -> str:
    cls = case.get("classname")  # "tests.test_losses" or "tests.test_losses.TestX"
    parts = cls.split(".")
    for k in range(len(parts), 0, -1):
        f = ROOT.joinpath(*parts[:k]).with_suffix(".py")
        if f.exists():
            return "::".join([str(f.relative_to(ROOT))] + parts[k:] + [case.get("name")])
    return f"{cls}::{case.get('name')}"


# ---- the table ---------------------------------------------------------------------------------------------------
def chapter_paths(chapters: list[str]) -> list[Path]:
    out = []
    for c in chapters:
        hits = sorted(BOOK.glob(f"{c}_*.ipynb")) if re.fullmatch(r"\d\d", c) else [BOOK / c]
        if not hits or not hits[0].exists():
            raise SystemExit(f"no chapter {c!r} in book/")
        out.extend(hits)
    return out


def test_paths(patterns: list[str]) -> list[str]:
    """Test files (globs) or node ids ("tests/test_x.py::test_name"), as pytest arguments relative to the root."""
    out = []
    for p in patterns:
        path, sep, node = p.partition("::")
        out.extend(f"{f.relative_to(ROOT)}{sep}{node}" for f in sorted(ROOT.glob(path)))
    return out


def test_groups(tests: list[str]) -> list[list[str]]:
    """Split the unit tests into groups that are run and cached separately."""
    groups = [[t for t in tests if t.partition("::")[0] not in SEPARATE_TESTS]]
    groups += [[t for t in tests if t.partition("::")[0] == f] for f in SEPARATE_TESTS]
    return [g for g in groups if g]


def _work(job, cell_timeout):
    kind, m, ch, key = job
    if kind == "chapter":
        value, hit = _cached(key, lambda: run_chapter(ch, m, cell_timeout))
    else:
        value, hit = _cached(key, lambda: run_tests(list(ch), m))
    what = ch.name if kind == "chapter" else f"unit tests ({len(ch)} args)"
    print(f"{'cached' if hit else 'ran   '} {m or BASELINE:28s} {what:36s} "
          f"{value['seconds']:7.1f} s", flush=True)
    return job, value


def measure(mistakes: list[str], chapters: list[Path], tests: list[str], cell_timeout: int, jobs: int) -> dict:
    pkg = package_hash()
    groups = test_groups(tests)
    jobs_list = []
    for m in [None] + mistakes:
        for ch in chapters:
            key = _sha(b"chapter", mistake_hash(m).encode(), ch.name.encode(), notebook_hash(ch).encode(), pkg.encode())
            jobs_list.append(("chapter", m, ch, key))
        for g in groups:
            key = _sha(b"tests", mistake_hash(m).encode(), tests_hash(g).encode(), pkg.encode())
            jobs_list.append(("tests", m, tuple(g), key))

    raw = {}
    if jobs > 1:
        with cf.ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_work, jobs_list, [cell_timeout] * len(jobs_list)))
    else:
        results = [_work(job, cell_timeout) for job in jobs_list]
    for (kind, m, ch, _), value in results:
        if kind == "chapter":
            raw[(kind, m, ch.name)] = value
        else:
            own = {t.partition("::")[0] for t in ch}  # a group reports only its own files' tests
            value = dict(value, failed=[f for f in value["failed"] if f["test"].split("::")[0] in own])
            prev = raw.setdefault((kind, m, None), {"seconds": 0.0, "passed": 0, "failed": []})
            prev["seconds"] += value["seconds"]
            prev["passed"] += value["passed"]
            prev["failed"] = prev["failed"] + value["failed"]
    return {"raw": raw, "package_hash": pkg}


def summarize(measured: dict, mistakes: list[str], chapters: list[Path], tests: list[str]) -> dict:
    raw = measured["raw"]
    base_cells = {ch.name: {c["index"] for c in raw[("chapter", None, ch.name)]["cells"] if c["error"]}
                  for ch in chapters}
    base_tests = {f["test"] for f in raw[("tests", None, None)]["failed"]}
    out = {}
    for m in mistakes:
        entry = ddpm_mistakes.BY_NAME[m]
        cells, cascades, statuses = [], 0, {}
        for ch in chapters:
            r = raw[("chapter", m, ch.name)]
            if r["status"] != "ok":
                statuses[ch.name] = r["status"]
            for c in r["cells"]:
                if not c["error"] or c["index"] in base_cells[ch.name]:
                    continue
                if c["ename"] in CASCADE:
                    cascades += 1
                    continue
                label = cell_label("".join(json.loads(ch.read_text())["cells"][c["index"]]["source"]))
                cells.append({"notebook": ch.name, **{k: c[k] for k in ("index", "id", "ename", "evalue")},
                              "label": label})
        failed = [f for f in raw[("tests", m, None)]["failed"] if f["test"] not in base_tests]
        out[m] = {"target": entry.target, "description": entry.description, "cells": cells,
                  "cascaded_cells": cascades, "tests": failed, "chapter_status": statuses}
    return {
        "command": COMMAND,
        "chapters": [ch.name for ch in chapters],
        "unit_tests": tests,
        "package_hash": measured["package_hash"],
        "notebook_hashes": {ch.name: notebook_hash(ch) for ch in chapters},
        "baseline": {"failing_cells": {k: sorted(v) for k, v in base_cells.items() if v},
                     "failing_tests": sorted(base_tests)},
        "mistakes": out,
    }


# ---- the page ----------------------------------------------------------------------------------------------------
def _chapter_label(nb: str) -> str:
    return nb.split("_", 1)[0]


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render(data: dict) -> str:
    mistakes = data["mistakes"]
    lines = [
        "# What the checks catch",
        "",
        "Every derivation in this book ends in checks that can fail: each compares `ddpm_core` with an independent",
        "computation. This appendix shows that they do fail when the code is wrong. Each row below is a classic",
        "DDPM mistake, injected into `ddpm_core` on its own (the correct function is replaced by a wrong one before",
        "the chapter or the test imports it); the table lists the chapter cells that then raise and the unit tests",
        "that then fail. A cell counts when it raises under the mistake and not without it; cells that fail only",
        "because an earlier cell failed (a `NameError`) are not counted.",
        "",
        f"Chapters run: {', '.join(_chapter_label(c) for c in data['chapters'])}. "
        f"Unit tests run: {', '.join('`' + t + '`' for t in data['unit_tests'])}.",
        "",
        "| Mistake | What is wrong | Chapter cells that catch it | Unit tests that catch it |",
        "| --- | --- | --- | --- |",
    ]
    for name, m in mistakes.items():
        by_nb: dict[str, list[str]] = {}
        for c in m["cells"]:
            by_nb.setdefault(c["notebook"], []).append(str(c["index"]))
        cells = "; ".join(f"[{_chapter_label(nb)}]({nb}): {', '.join(ix)}" for nb, ix in by_nb.items())
        cells = cells or "**none**"
        tests = f"{len(m['tests'])}" if m["tests"] else "**none**"
        lines.append(f"| `{name}` | {_md(m['description'])} | {cells} | {tests} |")
    lines += [
        "",
        "Cells are numbered from 0 in the order of the notebook, markdown cells included (the number the Jupyter",
        "interface shows minus one). The lists below give each cell's label (its first comment line) and id, the",
        "exception it raised, and the failing unit tests.",
        "",
    ]
    for name, m in mistakes.items():
        lines += [f"## `{name}`", "", f"{m['description']}. Injected into `{m['target']}`.", ""]
        if m["cells"]:
            lines.append("Chapter cells:")
            lines.append("")
            for c in m["cells"]:
                lines.append(f"- [{_chapter_label(c['notebook'])}]({c['notebook']}), cell {c['index']} "
                             f"(`{c['id']}`) *{_md(c['label'])}*: `{c['ename']}`")
        else:
            lines.append("**No chapter cell catches this mistake.**")
        if m["cascaded_cells"]:
            lines += ["", f"({m['cascaded_cells']} further cells failed only because an earlier cell had failed.)"]
        lines.append("")
        if m["tests"]:
            lines.append("Unit tests:")
            lines.append("")
            lines += [f"- `{t['test']}`" for t in m["tests"]]
        else:
            lines.append("**No unit test catches this mistake.**")
        lines.append("")
    base = data["baseline"]
    if base["failing_cells"] or base["failing_tests"]:
        lines += ["## Without any mistake", "",
                  "These already failed without a mistake and are left out above: "
                  + ", ".join([f"{nb} cells {v}" for nb, v in base["failing_cells"].items()]
                              + [f"`{t}`" for t in base["failing_tests"]]) + ".", ""]
    lines += [
        "## Regenerating this page",
        "",
        "The mistakes are listed in `tools/ddpm_mistakes.py` (one entry each: name, the function it replaces, the",
        "wrong version, a description). The measurement runs every chapter above once per mistake; results are",
        "cached by the code of the notebook and of the package, so a rerun only repeats what changed:",
        "",
        "```bash",
        data["command"],
        "```",
        "",
        "It writes `tools/mistakes_results.json` and this page. `tests/test_mistakes.py` keeps the table true: for",
        "every mistake it re-runs one listed unit test with the mistake (it must fail) and without it (it must pass).",
        "",
    ]
    return "\n".join(lines)


def uncaught(data: dict) -> list[str]:
    return [f"{n}: {'no chapter cell' if not m['cells'] else ''}{' and ' if not m['cells'] and not m['tests'] else ''}"
            f"{'no unit test' if not m['tests'] else ''}"
            for n, m in data["mistakes"].items() if not m["cells"] or not m["tests"]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="MISTAKE", help="measure only these mistakes (others keep their "
                    "stored results)")
    ap.add_argument("--chapters", nargs="+", default=DEFAULT_CHAPTERS, help="chapter numbers (default 01..08)")
    ap.add_argument("--tests", nargs="+", default=DEFAULT_TESTS, help="unit test files (globs)")
    ap.add_argument("--cell-timeout", type=int, default=300, help="seconds per cell before it is interrupted")
    ap.add_argument("--jobs", type=int, default=1, help="chapter executions in parallel (default 1)")
    ap.add_argument("--render", action="store_true", help="only rewrite the page from the stored results")
    ap.add_argument("--list", action="store_true", help="list the mistakes and exit")
    args = ap.parse_args(argv)
    if args.list:
        for m in ddpm_mistakes.MISTAKES:
            print(f"{m.name:28s} {m.target}\n{'':28s} {m.description}")
        return 0
    if not args.render:
        for m in ddpm_mistakes.MISTAKES:
            ddpm_mistakes.resolve(m.target)  # fail loudly, before running anything, if a target is gone
        names = args.only or [m.name for m in ddpm_mistakes.MISTAKES]
        unknown = [n for n in names if n not in ddpm_mistakes.BY_NAME]
        if unknown:
            raise SystemExit(f"unknown mistakes {unknown}; allowed: {sorted(ddpm_mistakes.BY_NAME)}")
        chapters, tests = chapter_paths(args.chapters), test_paths(args.tests)
        measured = measure(names, chapters, tests, args.cell_timeout, args.jobs)
        new = summarize(measured, names, chapters, tests)
        if args.chapters != DEFAULT_CHAPTERS:  # the page shows the command that measured it
            new["command"] = f"{COMMAND} --chapters {' '.join(args.chapters)}"
        if RESULTS.exists() and (args.only or args.chapters != DEFAULT_CHAPTERS):
            old = json.loads(RESULTS.read_text())
            if not set(DEFAULT_CHAPTERS) <= set(args.chapters):
                print("note: a partial --chapters run is printed but not stored (the table covers all chapters)")
                print(json.dumps(new["mistakes"], indent=1))
                return 0
            old_m = old["mistakes"]
            same = all(old.get(k) == new[k] for k in ("package_hash", "notebook_hashes", "chapters", "unit_tests"))
            if not same:  # rows measured on other code would be presented as current: drop them
                stale = sorted(set(old_m) - set(new["mistakes"]))
                if stale:
                    print(f"note: the stored rows {stale} were measured on other package, chapter or test code and are "
                          "dropped; rerun without --only to measure them")
                old_m = {}
            old_m.update(new["mistakes"])
            new["mistakes"] = {m.name: old_m[m.name] for m in ddpm_mistakes.MISTAKES if m.name in old_m}
        RESULTS.write_text(json.dumps(new, indent=1) + "\n")
    data = json.loads(RESULTS.read_text())
    PAGE.write_text(render(data))
    bad = uncaught(data)
    print(f"wrote {RESULTS.relative_to(ROOT)} and {PAGE.relative_to(ROOT)}")
    if bad:
        print("NOT CAUGHT:\n  " + "\n  ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
