"""The install cell that opens every chapter notebook, and a checker/fixer for it.

In Colab a chapter opens alone, without the package or the repository's files (the shipped
models in ``book/models``, the experiment results the later chapters read). So every chapter
starts with a code cell that, in Colab only, clones the book's repository, installs
``ddpm_core`` from that clone, puts it first on ``sys.path`` (so the running kernel imports
it without a restart) and moves into its ``book/`` folder, where the chapters' relative paths
hold. It does nothing anywhere else (a local checkout, the book build, nbval). The repository
URL and branch come from ``_config.yml`` (``repository.url``, ``repository.branch``): change
them there and run ``--fix``, which also rewrites every other copy of the URL in the repository
(README, CITATION.cff, pyproject.toml, Colab links in the pages); without ``--fix`` any copy that
disagrees is reported (and fails ``tests/test_repository_url.py``). A fork changes one line.

Usage (from the repository root)::

    python tools/install_cell.py           # check every chapter notebook listed in _toc.yml, and every copy
                                           # of the repository URL (README, CITATION.cff, pyproject, links)
    python tools/install_cell.py --fix     # insert or replace the first cell where needed, rewrite URL copies
    python tools/install_cell.py --print   # show the expected cell
    python tools/install_cell.py --fix book/15_x.ipynb   # only the notebooks named
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CELL_TAG = "colab-install"
# "remove-cell": the book's HTML leaves the cell out (it stays first in the notebook, for Colab); the stylesheet
# also hides any cell tagged CELL_TAG, for notebooks not yet rewritten by --fix.
CELL_TAGS = [CELL_TAG, "remove-cell"]
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


# ---- the repository URL is one setting: every copy in the repository must agree with _config.yml -------------
# GitHub repositories the book refers to that are not the book's own (a copy of the book's URL is any other one).
EXTERNAL_REPOS = frozenset({"mseitzer/pytorch-fid", "mhchem/mhchemParser", "someone/fork", "hojonathanho/diffusion",
                            "lucidrains/denoising-diffusion-pytorch", "huggingface/diffusers", "d2l-ai/d2l-en",
                            "boxed/mutmut"})
SKIP_DIRS = ("book/_mathjax/", "_build/", ".venv/", "venv/")
_GITHUB = re.compile(r"(?<![\w.])github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?(?=[/\s\"'`)\]}>@#?,;]|\.?$|\.\s)")
_COLAB = re.compile(r"colab\.research\.google\.com/github/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/blob/([A-Za-z0-9_.-]+)/")


def _text_files(root: Path) -> list[Path]:
    """The repository's tracked files (``git ls-files``; every file when ``root`` is not a git checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True).stdout
        rels = [r for r in out.decode().split("\0") if r]
    except (OSError, subprocess.CalledProcessError):
        rels = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    return [root / r for r in rels if not r.startswith(SKIP_DIRS) and not r.startswith(".git/")]


def url_copies(root: Path | str = ROOT) -> list[tuple[str, int, str, str]]:
    """Every reference to the book's repository in the repository's files: ``(file, line, kind, value)`` with kind
    ``"repo"`` (value ``org/name`` of a github.com URL) or ``"colab"`` (value ``org/name@branch`` of a Colab link).
    GitHub repositories in ``EXTERNAL_REPOS`` are not copies and are left out."""
    root = Path(root)
    found = []
    for path in _text_files(root):
        try:
            text = path.read_text(encoding="utf8")
        except (UnicodeDecodeError, OSError):
            continue
        rel = str(path.relative_to(root))
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in _GITHUB.finditer(line):
                if f"{m.group(1)}/{m.group(2)}" not in EXTERNAL_REPOS:
                    found.append((rel, lineno, "repo", f"{m.group(1)}/{m.group(2)}"))
            for m in _COLAB.finditer(line):
                if f"{m.group(1)}/{m.group(2)}" not in EXTERNAL_REPOS:
                    found.append((rel, lineno, "colab", f"{m.group(1)}/{m.group(2)}@{m.group(3)}"))
    return found


def _config_repo(root: Path) -> tuple[str, str]:
    """("owner/name", branch) of the repository that ``_config.yml`` names."""
    url, branch, _ = repository(root / "_config.yml")
    return url.removeprefix("https://github.com/"), branch


def disagreeing_url_copies(root: Path | str = ROOT) -> list[str]:
    """The copies of the repository URL (and Colab links) that differ from ``_config.yml``, as readable lines."""
    root = Path(root)
    repo, branch = _config_repo(root)
    problems = []
    for rel, lineno, kind, value in url_copies(root):
        if rel == "_config.yml":
            continue
        want = repo if kind == "repo" else f"{repo}@{branch}"
        if value != want:
            problems.append(f"{rel}:{lineno}: {value} but _config.yml says {want}")
    return problems


def fix_url_copies(root: Path | str = ROOT) -> list[str]:
    """Rewrite every disagreeing copy to the URL and branch of ``_config.yml``; returns the files changed."""
    root = Path(root)
    repo, branch = _config_repo(root)
    changed = []
    for rel in sorted({p.split(":", 1)[0] for p in disagreeing_url_copies(root)}):
        path = root / rel
        text = path.read_text(encoding="utf8")

        def repo_sub(m: re.Match) -> str:
            return m.group(0) if f"{m.group(1)}/{m.group(2)}" in EXTERNAL_REPOS else m.group(0).replace(
                f"{m.group(1)}/{m.group(2)}", repo, 1)

        def colab_sub(m: re.Match) -> str:
            if f"{m.group(1)}/{m.group(2)}" in EXTERNAL_REPOS:
                return m.group(0)
            return f"colab.research.google.com/github/{repo}/blob/{branch}/"

        new = _GITHUB.sub(repo_sub, _COLAB.sub(colab_sub, text))
        if "--branch " in new and rel.endswith(".ipynb"):
            pass  # notebooks' install cells are rewritten whole by fix_notebook
        if new != text:
            path.write_text(new, encoding="utf8")
            changed.append(rel)
    return changed


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
        nb = nbformat.read(path, as_version=4)
        tags = nb.cells[0].setdefault("metadata", {}).setdefault("tags", [])
        missing = [tag for tag in CELL_TAGS if tag not in tags]
        if not missing:
            return False
        tags.extend(missing)
        nbformat.write(nb, path)
        return True
    nb = nbformat.read(path, as_version=4)
    cell = nbformat.v4.new_code_cell(expected, metadata={"tags": list(CELL_TAGS)})
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
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="only these notebooks (default: every chapter notebook listed in _toc.yml)")
    args = parser.parse_args(argv)
    expected = expected_install_cell(args.root / "_config.yml")
    if args.print:
        print(expected)
        return 0
    problems = [f"{name}: listed in _toc.yml but no .ipynb/.md file exists"
                for name, path in toc_sources(args.root).items() if path is None]
    notebooks = [nb.resolve() for nb in args.notebooks] or chapter_notebooks(args.root)
    if not args.notebooks:  # the whole repository: every copy of the URL must agree with _config.yml
        if args.fix:
            for rel in fix_url_copies(args.root):
                print(f"fixed the repository URL in {rel}")
        problems += disagreeing_url_copies(args.root)
    for nb in notebooks:
        if args.fix and fix_notebook(nb, expected):
            print(f"fixed {nb}")
        problem = check_notebook(nb, expected)
        if problem:
            problems.append(problem)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(notebooks)} chapter notebooks checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
