"""The install cell that opens every chapter notebook, and a checker/fixer for it.

In Colab a chapter opens alone, without the package or the repository's files (the shipped
models in ``book/models``, the experiment results the later chapters read). So every chapter
starts with a code cell that, in Colab only, clones the book's repository, installs
``ddpm_core`` from that clone, puts it first on ``sys.path`` (so the running kernel imports
it without a restart) and moves into its ``book/`` folder, where the chapters' relative paths
hold. It does nothing anywhere else (a local checkout, the book build, nbval). The repository
URL and branch come from ``_config.yml`` (``repository.url``, ``repository.branch``): change
them there and run ``--fix``.

Usage (from the repository root)::

    python tools/install_cell.py           # check every chapter notebook listed in _toc.yml
    python tools/install_cell.py --fix     # insert or replace the first cell where needed
    python tools/install_cell.py --print   # show the expected cell
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CELL_TAG = "colab-install"
EXTRAS = "notebooks"
FIRST_LINE = "# Colab only: fetch the book's repository and install ddpm_core from it (no-op elsewhere)."
COLAB_ROOT = "/content"


def load_config(config_path: Path | str) -> dict:
    """The parsed ``_config.yml``."""
    return yaml.safe_load(Path(config_path).read_text(encoding="utf8"))


def repository(config_path: Path | str) -> tuple[str, str, str]:
    """``(url, branch, path_to_book)`` of the book's repository, from ``_config.yml``."""
    repo = load_config(config_path).get("repository") or {}
    url, branch = str(repo.get("url", "")).rstrip("/"), str(repo.get("branch", ""))
    if not url.startswith("https://github.com/") or not branch:
        raise ValueError(f"{config_path}: repository.url must be a https://github.com/ URL and "
                         f"repository.branch must be set (got url={url!r}, branch={branch!r})")
    return url, branch, str(repo.get("path_to_book") or "").strip("/")


def expected_install_cell(config_path: Path | str = ROOT / "_config.yml") -> str:
    """Source of the first cell of every chapter, derived from ``_config.yml`` (no trailing newline)."""
    url, branch, path_to_book = repository(config_path)
    clone = f"{COLAB_ROOT}/{url.rsplit('/', 1)[-1]}"
    book = f"{clone}/{path_to_book}/book" if path_to_book else f"{clone}/book"
    return "\n".join([
        FIRST_LINE,
        "import sys",
        'if "google.colab" in sys.modules:',
        f"    !git clone -q --depth 1 --branch {branch} {url} {clone} || git -C {clone} pull -q",
        f'    %pip install -q -e "{clone}[{EXTRAS}]"',
        f'    sys.path.insert(0, "{clone}")',
        f"    %cd {book}",
    ])


def colab_url(config_path: Path | str, notebook: str) -> str:
    """The Colab address of ``notebook`` (a path relative to the book's root, e.g. ``book/01_x.ipynb``)."""
    url, branch, path_to_book = repository(config_path)
    colab = str((load_config(config_path).get("launch_buttons") or {}).get("colab_url", "")).rstrip("/")
    if not colab:
        raise ValueError(f"{config_path}: launch_buttons.colab_url is not set")
    org_repo = url.removeprefix("https://github.com/")
    rel = f"{path_to_book}/{notebook}" if path_to_book else notebook
    return f"{colab}/github/{org_repo}/blob/{branch}/{rel}"


def toc_docnames(toc_path: Path | str = ROOT / "_toc.yml") -> list[str]:
    """Every document of ``_toc.yml`` in reading order (root first), as paths without suffix."""
    toc = yaml.safe_load(Path(toc_path).read_text(encoding="utf8"))
    names = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key))

    for key in ("parts", "chapters", "sections"):
        walk(toc.get(key))
    return [str(Path(n).with_suffix("")) if Path(n).suffix in (".md", ".ipynb") else n for n in names]


def toc_sources(root: Path | str = ROOT) -> dict[str, Path | None]:
    """Docname -> existing source file (``.ipynb`` or ``.md``), ``None`` where none exists."""
    root = Path(root)
    out: dict[str, Path | None] = {}
    for name in toc_docnames(root / "_toc.yml"):
        found = [root / f"{name}{ext}" for ext in (".ipynb", ".md") if (root / f"{name}{ext}").is_file()]
        out[name] = found[0] if found else None
    return out


def chapter_notebooks(root: Path | str = ROOT) -> list[Path]:
    """The ``.ipynb`` files listed in ``_toc.yml`` that exist."""
    return [p for p in toc_sources(root).values() if p is not None and p.suffix == ".ipynb"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def check_notebook(path: Path, expected: str) -> str | None:
    """``None`` when the first cell of ``path`` is exactly the install cell, else what is wrong."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if not nb.cells:
        return f"{path}: the notebook has no cells"
    first = nb.cells[0]
    if first.cell_type != "code":
        return f"{path}: the first cell is a {first.cell_type} cell, not the install cell"
    if _source(first).rstrip("\n") != expected:
        return f"{path}: the first cell differs from the install cell (run `python tools/install_cell.py --fix`)"
    return None


def fix_notebook(path: Path, expected: str) -> bool:
    """Make the first cell of ``path`` the install cell (replacing an older one). True if changed."""
    import nbformat

    if check_notebook(path, expected) is None:
        return False
    nb = nbformat.read(path, as_version=4)
    cell = nbformat.v4.new_code_cell(expected, metadata={"tags": [CELL_TAG]})
    first = nb.cells[0] if nb.cells else None
    is_old_install = first is not None and first.cell_type == "code" and (
        CELL_TAG in first.get("metadata", {}).get("tags", []) or "google.colab" in _source(first))
    if is_old_install:
        # outside Colab the cell does nothing, so its stored result (no output) and its place in the run stay valid
        cell["id"] = first.get("id", cell.get("id"))
        cell["execution_count"] = first.get("execution_count")
        cell["outputs"] = first.get("outputs", [])
        nb.cells[0] = cell
    else:
        nb.cells.insert(0, cell)
    nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (holds _config.yml, _toc.yml)")
    parser.add_argument("--fix", action="store_true", help="insert or replace the install cell where needed")
    parser.add_argument("--print", action="store_true", help="print the expected install cell and exit")
    args = parser.parse_args(argv)
    expected = expected_install_cell(args.root / "_config.yml")
    if args.print:
        print(expected)
        return 0
    problems = [f"{name}: listed in _toc.yml but no .ipynb/.md file exists"
                for name, path in toc_sources(args.root).items() if path is None]
    for nb in chapter_notebooks(args.root):
        if args.fix and fix_notebook(nb, expected):
            print(f"fixed {nb.relative_to(args.root)}")
        problem = check_notebook(nb, expected)
        if problem:
            problems.append(problem)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(chapter_notebooks(args.root))} chapter notebooks checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
