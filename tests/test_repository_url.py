"""The repository URL is one setting (_config.yml repository.url/branch): every copy in the repository agrees."""
from __future__ import annotations

from pathlib import Path

import yaml

from conftest import load_module

ROOT = Path(__file__).resolve().parent.parent
install_cell = load_module("install_cell", ROOT / "tools" / "install_cell.py")


def test_every_copy_of_the_url_agrees_with_the_config():
    problems = install_cell.disagreeing_url_copies(ROOT)
    assert not problems, "run `python tools/install_cell.py --fix`:\n" + "\n".join(problems)


def test_the_scan_sees_the_copies():
    files = {rel for rel, *_ in install_cell.url_copies(ROOT)}
    for rel in ("README.md", "CITATION.cff", "pyproject.toml", "book/01_forward_process.ipynb"):
        assert rel in files, rel
    kinds = {(rel, kind) for rel, _, kind, _ in install_cell.url_copies(ROOT)}
    assert ("README.md", "colab") in kinds


def _fork(tmp_path: Path) -> Path:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    old = config["repository"]["url"].removeprefix("https://github.com/")
    config["repository"] = {"url": "https://github.com/someone/fork", "branch": "dev", "path_to_book": ""}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "README.md").write_text(
        f"Clone https://github.com/{old}.git or open https://colab.research.google.com/github/{old}/blob/main/"
        "book/01_x.ipynb.\nFID as in https://github.com/mseitzer/pytorch-fid.\n"
        f"@software{{x, url = {{https://github.com/{old}}}}}\n")
    (tmp_path / "CITATION.cff").write_text(f'repository-code: "https://github.com/{old}"\n')
    return tmp_path


def test_a_fork_changes_one_line(tmp_path):
    root = _fork(tmp_path)
    problems = install_cell.disagreeing_url_copies(root)
    assert len(problems) == 4 and all("someone/fork" in p for p in problems), problems
    assert {p.split(":")[0] for p in problems} == {"README.md", "CITATION.cff"}
    assert install_cell.fix_url_copies(root) == ["CITATION.cff", "README.md"]
    assert install_cell.disagreeing_url_copies(root) == []
    readme = (root / "README.md").read_text()
    assert "colab.research.google.com/github/someone/fork/blob/dev/book/01_x.ipynb" in readme
    assert "github.com/mseitzer/pytorch-fid" in readme  # external repositories are left alone
