"""Execute chapters top to bottom in a fresh kernel and store their outputs, as the book build does.

    python tools/execute_chapter.py book/16_bound_in_snr_form.ipynb [more.ipynb ...]

Each notebook runs with ``book/`` as its working folder (as in the build); consecutive stream outputs of a cell are
merged into one (so the stored outputs match what nbval compares), cell ids are kept. Prints the seconds each took.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def coalesce(nb: nbformat.NotebookNode) -> None:
    """Merge consecutive outputs of the same stream (stdout, stderr) within each code cell."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            if (outputs and out.output_type == "stream" and outputs[-1].output_type == "stream"
                    and outputs[-1].name == out.name):
                outputs[-1].text += out.text
            else:
                outputs.append(out)
        cell.outputs = outputs


def execute(path: Path, timeout: int = 900) -> float:
    """Run ``path`` in place; returns the wall-clock seconds."""
    t0 = time.time()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "book")}}).execute()
    coalesce(nb)
    nbformat.write(nb, path)
    return time.time() - t0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for name in argv:
        print(f"{name}: {execute(Path(name)):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
