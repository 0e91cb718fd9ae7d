"""The book's configuration: table of contents, install cells, Colab, MathJax, citation, CI workflow, API page.

These tests read files only (no book build). The API-page test also looks at _build/html when it exists.
"""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "_config.yml"
TOC = ROOT / "_toc.yml"
README = ROOT / "README.md"
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
INTRO = ROOT / "book" / "intro.md"




from conftest import load_module  # noqa: E402

install_cell = load_module("install_cell", ROOT / "tools" / "install_cell.py")
ddpm_book = load_module("ddpm_book", ROOT / "book" / "_ext" / "ddpm_book.py")


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text(encoding="utf8"))


@pytest.fixture(scope="module")
def sources() -> dict:
    return install_cell.toc_sources(ROOT)


def _chapters(sources: dict) -> list[str]:
    return [name for name in sources if re.match(r"\d\d_", Path(name).name)]


# ---- table of contents ----------------------------------------------------------------------------------


def test_every_toc_entry_exists(sources):
    missing = [name for name, path in sources.items() if path is None]
    assert not missing, f"listed in _toc.yml but no .ipynb/.md file: {missing}"


def test_toc_structure(sources):
    toc = yaml.safe_load(TOC.read_text(encoding="utf8"))
    assert toc["format"] == "jb-book" and toc["root"] == "book/intro"
    assert [p["caption"] for p in toc["parts"]] == ["Foundations", "Deriving DDPM", "DDPM at work",
                                                    "Beyond the paper", "Reference"]
    deriving = next(p for p in toc["parts"] if p["caption"] == "Deriving DDPM")["chapters"]
    assert len(deriving) == 7, "the seven derivation chapters: forward, reverse, bound, split, KL, eps, score"
    assert len(_chapters(sources)) >= 9
    assert all(name.startswith("book/") for name in sources)
    for name in ("book/notation", "book/api", "book/exercises", "book/bibliography"):
        assert name in sources


def test_chapters_are_notebooks(sources):
    """Colab buttons appear on .ipynb pages only, so every numbered chapter must be a notebook."""
    not_nb = [name for name in _chapters(sources) if sources[name] is not None and sources[name].suffix != ".ipynb"]
    assert not not_nb, f"chapters that are not .ipynb: {not_nb}"


def test_chapters_are_stored_executed_top_to_bottom(sources):
    """nbval compares stored outputs only where a cell was executed: every code cell of every chapter must carry
    the execution count of one top-to-bottom run (1, 2, 3, ...). Rewriting a cell (e.g. install_cell.py --fix)
    clears its count; run `jupyter execute --inplace` on the chapter afterwards."""
    for name in _chapters(sources):
        nb = nbformat.read(sources[name], as_version=4)
        counts = [c.get("execution_count") for c in nb.cells if c.cell_type == "code"]
        assert counts == list(range(1, len(counts) + 1)), f"{name}: execution counts {counts}"


def test_no_javascript_in_static_folders():
    """Jupyter Book adds every .js under a root _static/ to every page: only CSS may live there."""
    js = [p for d in (ROOT / "_static", ROOT / "book" / "_static") if d.is_dir() for p in d.rglob("*.js")]
    assert not js, f"JavaScript in a _static folder would be loaded by every page: {js}"


def test_exercises_page_lists_every_part_with_chapters():
    toc = yaml.safe_load(TOC.read_text(encoding="utf8"))
    text = (ROOT / "book" / "exercises.md").read_text(encoding="utf8")
    for part in toc["parts"]:
        if any(re.match(r"\d\d_", Path(c["file"]).name) for c in part["chapters"]):
            assert f"```{{ddpm-chapters}} {part['caption']}\n" in text, part["caption"]


# ---- install cell --------------------------------------------------------------------------------------


def test_every_chapter_starts_with_the_install_cell(sources):
    expected = install_cell.expected_install_cell(CONFIG)
    notebooks = [p for p in sources.values() if p is not None and p.suffix == ".ipynb"]
    problems = [problem for nb in notebooks if (problem := install_cell.check_notebook(nb, expected))]
    assert not problems, "\n".join(problems)


def test_install_cell_is_derived_from_config(tmp_path, config):
    url, branch = config["repository"]["url"], config["repository"]["branch"]
    cell = install_cell.expected_install_cell(CONFIG)
    assert f"--branch {branch} {url} " in cell
    assert cell.splitlines()[0] == install_cell.FIRST_LINE
    # another repository in _config.yml gives another cell, and another Colab address
    other = dict(config, repository={"url": "https://github.com/someone/fork", "branch": "dev", "path_to_book": ""})
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(other), encoding="utf8")
    other_cell = install_cell.expected_install_cell(tmp_path / "_config.yml")
    assert "--branch dev https://github.com/someone/fork /content/fork " in other_cell
    assert "%cd /content/fork/book" in other_cell
    assert install_cell.colab_url(tmp_path / "_config.yml", "book/01_x.ipynb") == (
        "https://colab.research.google.com/github/someone/fork/blob/dev/book/01_x.ipynb")


def test_install_cell_installs_the_notebooks_extra():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf8"))["project"]
    assert f'[{install_cell.EXTRAS}]"' in install_cell.expected_install_cell(CONFIG)
    assert install_cell.EXTRAS in project.get("optional-dependencies", {})
    # the extra holds what the chapters import beyond the package's own dependencies
    extra = " ".join(project["optional-dependencies"][install_cell.EXTRAS])
    for module in ("matplotlib", "sympy", "scikit-learn"):
        assert module in extra, module


def _run_cell(source: str, in_colab: bool) -> tuple[list[tuple[str, str]], list[str]]:
    """Execute the cell as IPython would, with a recording get_ipython(); return the magics and shell commands
    it ran (("system", command) for a ``!`` line) and the entries it put on sys.path (which is then restored)."""
    from IPython.core.inputtransformer2 import TransformerManager

    calls: list[tuple[str, str]] = []
    shell = types.SimpleNamespace(run_line_magic=lambda name, line: calls.append((name, line)),
                                  system=lambda command: calls.append(("system", command)))
    saved = sys.modules.get("google.colab")
    saved_path = list(sys.path)
    try:
        if in_colab:
            sys.modules["google.colab"] = types.ModuleType("google.colab")
        else:
            sys.modules.pop("google.colab", None)
        exec(TransformerManager().transform_cell(source), {"get_ipython": lambda: shell})
        added = [entry for entry in sys.path if entry not in saved_path]
    finally:
        sys.path[:] = saved_path
        if saved is not None:
            sys.modules["google.colab"] = saved
        else:
            sys.modules.pop("google.colab", None)
    return calls, added


def test_install_cell_acts_only_in_colab(config):
    cell = install_cell.expected_install_cell(CONFIG)
    assert _run_cell(cell, in_colab=False) == ([], [])
    calls, added = _run_cell(cell, in_colab=True)
    url, branch = config["repository"]["url"], config["repository"]["branch"]
    clone = "/content/" + url.rsplit("/", 1)[-1]
    assert [name for name, _ in calls] == ["system", "pip", "cd"]
    assert calls[0][1].startswith(f"git clone -q --depth 1 --branch {branch} {url} {clone} ")
    assert calls[1][1] == f'install -q -e "{clone}[{install_cell.EXTRAS}]"'
    # the chapters read ../experiments/results and the package finds book/models next to its clone
    assert calls[2][1] == f"{clone}/book"
    assert added == [clone]


def test_fix_inserts_replaces_and_is_idempotent(tmp_path):
    expected = install_cell.expected_install_cell(CONFIG)
    path = tmp_path / "ch.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title")]), path)
    assert install_cell.check_notebook(path, expected) is not None
    assert install_cell.fix_notebook(path, expected) is True
    nb = nbformat.read(path, as_version=4)
    assert [c.cell_type for c in nb.cells] == ["code", "markdown"]
    assert install_cell.check_notebook(path, expected) is None
    assert install_cell.fix_notebook(path, expected) is False
    # an older install cell (other URL) is replaced, not stacked
    nb.cells[0].source = expected.replace("--branch main", "--branch old-branch")
    nb.cells[0].execution_count = 1  # it was executed (as a no-op) in a top-to-bottom run
    nbformat.write(nb, path)
    assert install_cell.fix_notebook(path, expected) is True
    nb = nbformat.read(path, as_version=4)
    assert len(nb.cells) == 2 and nb.cells[0].source == expected
    assert nb.cells[0].execution_count == 1 and nb.cells[0].outputs == []  # the run stays top to bottom
    assert install_cell.CELL_TAG in nb.cells[0].metadata["tags"]


def test_intro_shows_the_install_cell():
    assert install_cell.expected_install_cell(CONFIG) in INTRO.read_text(encoding="utf8")


# ---- _config.yml ----------------------------------------------------------------------------------------


def test_config_is_valid_for_jupyter_book():
    from jupyter_book.config import validate_yaml

    validate_yaml(yaml.safe_load(CONFIG.read_text(encoding="utf8")), raise_on_errors=True)


def test_config_settings(config):
    assert config["title"] == "Denoising Diffusion Probabilistic Models, derived and run"
    assert config["only_build_toc_files"] is True
    for pattern in ("README.md", "tests/*", ".*", "_build/*", ".venv/*", "benchmarks/*", "experiments/*"):
        assert pattern in config["exclude_patterns"], pattern
    execute = config["execute"]
    assert execute["execute_notebooks"] == "force"
    assert execute["timeout"] >= 180
    assert execute["allow_errors"] is False and execute["raise_on_error"] is True
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    repo = config["repository"]
    assert repo["url"].startswith("https://github.com/") and repo["branch"] and repo["path_to_book"] == ""
    sphinx = config["sphinx"]
    for ext in ("sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon"):
        assert ext in sphinx["extra_extensions"]
    assert sphinx["local_extensions"] == {"ddpm_book": "book/_ext"}
    assert sphinx["config"]["html_theme_options"]["use_download_button"] is True
    assert "noundefined" in sphinx["config"]["mathjax3_config"]["tex"]["packages"]["[-]"]
    for bib in config["bibtex_bibfiles"]:
        assert (ROOT / bib).is_file()


def test_final_sphinx_config_keeps_launch_buttons():
    """The theme options of sphinx.config are merged with those derived from launch_buttons/repository."""
    from jupyter_book.config import get_final_config

    final, _ = get_final_config(user_yaml=CONFIG, cli_config={"latex_individualpages": False}, sourcedir=ROOT)
    theme = final["html_theme_options"]
    assert theme["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert theme["repository_url"] == yaml.safe_load(CONFIG.read_text())["repository"]["url"]
    assert theme["use_download_button"] is True
    assert final["nb_execution_raise_on_error"] is True and final["nb_execution_mode"] == "force"
    assert final["bibtex_reference_style"] == "author_year"


# ---- MathJax --------------------------------------------------------------------------------------------


def test_mathjax_is_vendored_with_the_recorded_version():
    js = ROOT / "book" / "_mathjax" / "mathjax" / ddpm_book.MATHJAX_FILE
    assert js.is_file(), "run tools/vendor_mathjax.sh"
    head = js.read_bytes()
    assert f'VERSION="{ddpm_book.MATHJAX_VERSION}"'.encode() in head
    assert (js.parent / "LICENSE").is_file()
    assert f"mathjax@{ddpm_book.MATHJAX_VERSION}/es5/{ddpm_book.MATHJAX_FILE}" in ddpm_book.MATHJAX_CDN


def test_mathjax_switch(monkeypatch):
    monkeypatch.delenv(ddpm_book.MATHJAX_ENV, raising=False)
    assert ddpm_book.mathjax_source() == "local"
    monkeypatch.setenv(ddpm_book.MATHJAX_ENV, "cdn")
    assert ddpm_book.mathjax_source() == "cdn"
    monkeypatch.setenv(ddpm_book.MATHJAX_ENV, "offline")
    with pytest.raises(ValueError, match="local, cdn"):
        ddpm_book.mathjax_source()


# ---- citations ------------------------------------------------------------------------------------------

REQUIRED_KEYS = ("ho2020ddpm sohldickstein2015 kingma2013vae vincent2011 song2019ncsn nichol2021improved song2021ddim "
                 "salimans2017pixelcnnpp heusel2017fid binkowski2018kid ronneberger2015unet zagoruyko2016wrn "
                 "hyvarinen2005 welling2011sgld salimans2016is karras2018pggan yu2015lsun krizhevsky2009cifar "
                 "lecun1998mnist kingma2015adam wu2018groupnorm").split()


@pytest.fixture(scope="module")
def bib_keys() -> set[str]:
    from pybtex.database import parse_file

    return set(parse_file(str(ROOT / "book" / "references.bib")).entries.keys())


def test_bibliography_has_the_required_entries(bib_keys):
    assert not set(REQUIRED_KEYS) - bib_keys


def test_every_cited_key_is_in_the_bibliography(bib_keys, sources):
    cited = {}
    for path in sources.values():
        if path is None:
            continue
        text = path.read_text(encoding="utf8")
        for keys in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]*)`", text):
            for key in keys.split(","):
                cited.setdefault(key.strip(), path.name)
    unknown = {k: v for k, v in cited.items() if k not in bib_keys}
    assert not unknown, f"cited but not in book/references.bib: {unknown}"


def test_citation_cff(config):
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf8"))
    assert cff["cff-version"] == "1.2.0"
    assert cff["title"] == config["title"]
    assert cff["repository-code"] == config["repository"]["url"]
    assert str(cff["date-released"]) == "2026-12-02"
    assert any("Denoising Diffusion Probabilistic Models" in r["title"] and "2006.11239" in str(r.get("url", ""))
               for r in cff["references"])
    ddpm_core = pytest.importorskip("ddpm_core")
    assert str(cff["version"]) == ddpm_core.__version__
    assert str(cff["preferred-citation"]["version"]) == ddpm_core.__version__


def test_intro_bibtex_matches_citation_cff(config):
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf8"))
    text = INTRO.read_text(encoding="utf8")
    assert f"version = {{{cff['version']}}}" in text
    assert f"url     = {{{config['repository']['url']}}}" in text


# ---- README commands, GitHub workflow -------------------------------------------------------------------


def readme_commands() -> tuple[str, str]:
    """The README's build command (``jupyter-book build ...``) and test command (``pytest ...``)."""
    if not README.is_file():
        pytest.skip("README.md does not exist yet")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README.read_text(encoding="utf8"), flags=re.S)
    lines = [line.strip().removeprefix("$ ").strip() for block in blocks for line in block.splitlines()]
    build = [line for line in lines if "jupyter-book build" in line]
    test = [line for line in lines if re.search(r"(^|[\s/])pytest(\s|$)", line)]
    assert build, "README.md has no `jupyter-book build` command in a code block"
    assert test, "README.md has no `pytest` command in a code block"
    return build[0], test[0]


def test_readme_build_command_is_strict():
    build, _ = readme_commands()
    for flag in ("-W", "-n", "--keep-going"):
        assert flag in build.split()


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf8"))


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_workflow_runs_the_readme_commands(workflow):
    runs = "\n".join(step.get("run", "") for step in _steps(workflow))
    for command in readme_commands():
        assert command in runs, f"the workflow does not run the README's command {command!r}"


def test_intro_shows_the_readme_commands():
    text = INTRO.read_text(encoding="utf8")
    for command in readme_commands():
        assert command in text, f"book/intro.md does not show the README's command {command!r}"


def test_workflow_publishes_to_pages_with_cdn_mathjax(workflow):
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "main" in on["push"]["branches"]
    uses = [step.get("uses", "") for step in _steps(workflow)]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    upload = next(s for s in _steps(workflow) if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    env = {**workflow.get("env", {}), **{k: v for job in workflow["jobs"].values() for k, v in job.get("env", {}).items()}}
    assert env.get(ddpm_book.MATHJAX_ENV) == "cdn"
    assert workflow["permissions"]["pages"] == "write" and workflow["permissions"]["id-token"] == "write"


# ---- API reference --------------------------------------------------------------------------------------


def test_api_page_documents_the_package():
    assert ".. ddpm-api:: ddpm_core" in (ROOT / "book" / "api.md").read_text(encoding="utf8")


def test_exported_names_are_defined_in_documented_modules():
    ddpm_core = pytest.importorskip("ddpm_core")
    modules = set(ddpm_book.public_modules("ddpm_core"))
    for name in ddpm_core.__all__:
        obj = getattr(ddpm_core, name)
        target = ddpm_book.canonical_name("ddpm_core", name, obj)
        if target != f"ddpm_core.{name}":  # classes and functions: documented in their defining module
            assert obj.__module__ in modules, f"{name} is defined in {obj.__module__}, which the API page skips"


def test_built_api_page_has_an_anchor_for_every_exported_name():
    ddpm_core = pytest.importorskip("ddpm_core")
    html = ROOT / "_build" / "html" / "book" / "api.html"
    if not html.is_file():
        pytest.skip("the book is not built (_build/html/book/api.html)")
    ids = set(re.findall(r'\sid="([^"]+)"', html.read_text(encoding="utf8")))
    missing = [name for name in ddpm_core.__all__
               if ddpm_book.canonical_name("ddpm_core", name, getattr(ddpm_core, name)) not in ids]
    assert not missing, f"no documentation anchor in api.html for: {missing}"
