"""Measure how long every chapter takes to run, for the line under each chapter's title.

Each chapter notebook listed in ``_toc.yml`` is executed top to bottom in a fresh kernel (as the book build does,
with ``book/`` as working directory) and its wall time is stored in ``book/chapter_times.json``. The book's Sphinx
extension (``book/_ext/ddpm_book.py``) renders the line "Runs in about ... on a 2-core CPU; about ... in Colab
(estimate)" under the title of each chapter from that file at build time, so the notebooks themselves are not
touched. The Colab figure is an estimate, not a measurement: Colab's free machines run these CPU-sized chapters on
2 slower virtual cores (``COLAB_CPU_FACTOR``) and first run the install cell (``COLAB_INSTALL_SECONDS``); chapters
run on the CPU there too unless they pick a GPU themselves.

Usage (from the repository root, on an otherwise idle 2-core machine)::

    OMP_NUM_THREADS=2 python tools/chapter_times.py                 # every chapter
    OMP_NUM_THREADS=2 python tools/chapter_times.py book/15_x.ipynb  # only these (others keep their entry)
    python tools/chapter_times.py --from-stored                      # from the stored run's cell timings
    python tools/chapter_times.py --check                            # every chapter has an entry

``--from-stored`` reads the wall time of the top-to-bottom run whose outputs each notebook stores (the cells'
``metadata.execution`` timestamps written by nbclient) instead of running the chapter again.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from install_cell import chapter_notebooks  # noqa: E402

TIMES_FILE = ROOT / "book" / "chapter_times.json"
COLAB_CPU_FACTOR = 1.5       # Colab's free 2 vCPUs against a current 2-core machine (a rough, stated factor)
COLAB_INSTALL_SECONDS = 60   # clone + pip install of the install cell


def load_times(path: Path | str = TIMES_FILE) -> dict:
    """The stored measurements: ``{"chapters": {docname: {...}}, ...}`` (empty if the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return {"chapters": {}}
    return json.loads(path.read_text(encoding="utf8"))


def colab_estimate(cpu_seconds: float) -> float:
    """Estimated seconds in Colab for a chapter measured at ``cpu_seconds`` on the 2-core reference machine."""
    return COLAB_CPU_FACTOR * cpu_seconds + COLAB_INSTALL_SECONDS


def human(seconds: float) -> str:
    """'40 s', '3 min', '1 h 5 min': rounded to what a reader needs."""
    if seconds < 90:
        return f"{max(5, int(round(seconds / 5.0)) * 5)} s"
    minutes = int(round(seconds / 60.0))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def runtime_line(entry: dict) -> str:
    """The sentence shown under a chapter's title."""
    return (f"Runs in about {human(entry['cpu_seconds'])} on a {entry.get('cores', 2)}-core CPU "
            f"(measured {entry.get('date', '?')}); about {human(entry['colab_seconds'])} in Colab (estimate, "
            "including the install cell).")


def measure(notebook: Path, timeout: int = 1800) -> float:
    """Wall seconds to execute ``notebook`` top to bottom in a fresh kernel, outputs discarded."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return time.perf_counter() - start


def stored_seconds(notebook: Path) -> float:
    """Wall seconds of the stored top-to-bottom run: first cell's start to last cell's reply (nbclient timings)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    stamps = [c.metadata.get("execution", {}) for c in nb.cells if c.cell_type == "code"]
    start = stamps[0].get("iopub.execute_input") if stamps else None
    end = stamps[-1].get("shell.execute_reply") if stamps else None
    if not (start and end):
        raise ValueError(f"{notebook}: the stored run has no cell timings (execute it with nbclient first)")
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def docname(notebook: Path, root: Path = ROOT) -> str:
    return str(notebook.resolve().relative_to(root.resolve()).with_suffix(""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="only these chapters (default: all in _toc.yml)")
    parser.add_argument("--check", action="store_true", help="only check that every chapter has a measurement")
    parser.add_argument("--from-stored", action="store_true",
                        help="use the stored run's cell timings instead of executing the chapters again")
    parser.add_argument("--cores", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                        help="cores of the machine measured on (default: OMP_NUM_THREADS or 2)")
    args = parser.parse_args(argv)
    times = load_times()
    chapters = times.setdefault("chapters", {})
    if args.check:
        missing = [docname(nb) for nb in chapter_notebooks(ROOT) if docname(nb) not in chapters]
        for name in missing:
            print(f"{name}: no run time in {TIMES_FILE.relative_to(ROOT)} (run tools/chapter_times.py)",
                  file=sys.stderr)
        return 1 if missing else 0
    for nb in [p.resolve() for p in args.notebooks] or chapter_notebooks(ROOT):
        seconds = stored_seconds(nb) if args.from_stored else measure(nb)
        chapters[docname(nb)] = {"cpu_seconds": round(seconds, 1), "colab_seconds": round(colab_estimate(seconds)),
                                 "cores": args.cores, "date": dt.date.today().isoformat(),
                                 "machine": f"{platform.machine()} {platform.processor() or ''}".strip()}
        print(f"{docname(nb)}: {seconds:.1f} s -> {runtime_line(chapters[docname(nb)])}", flush=True)
        TIMES_FILE.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n", encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
