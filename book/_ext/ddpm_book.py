"""Sphinx extension of the book: the MathJax switch and the API reference.

MathJax
    ``DDPM_BOOK_MATHJAX=local`` (the default) serves the MathJax copy vendored in
    ``book/_mathjax/`` (npm package ``mathjax``, version ``MATHJAX_VERSION``), so the
    built book renders its equations without network access. ``DDPM_BOOK_MATHJAX=cdn``
    loads the same file of the same version from a CDN instead (used for the
    published site). The vendored copy is refreshed with ``tools/vendor_mathjax.sh``.

API reference
    ``.. ddpm-api:: ddpm_core`` (reStructuredText; in a MyST page put it in an
    ``{eval-rst}`` block) documents a package: a table of the names in its ``__all__``
    (linked to their documentation), then one section per public module (no part of
    the dotted name starts with ``_``), each rendered with
    ``automodule :members: :ignore-module-all:`` so that every object is documented
    exactly once, in the module that defines it. References to a re-exported name
    (``ddpm_core.Schedule``, ``ddpm_core.data.infinite_loader``) resolve to that place.

Chapter lists
    ``.. ddpm-chapters:: Deriving DDPM`` lists the chapters of that part of ``_toc.yml``,
    numbered, each linked with its title as the table of contents shows it (equations
    rendered).

Run times
    ``book/chapter_times.json`` (written by ``tools/chapter_times.py``) holds how long each
    chapter takes to run. Under the title of every chapter listed there, the page shows one
    line, "Runs in about ... on a 2-core CPU ...; about ... in Colab (estimate ...)", in a
    paragraph of class ``ddpm-runtime``. The notebooks themselves are not changed.

Docstrings
    The package's docstrings are plain text with shapes and formulas (``(*shape, 256)``,
    ``|x - y|^2``, aligned argument lists) and need not be reStructuredText. A docstring
    that does not parse cleanly as reStructuredText (after napoleon) is shown verbatim, as
    a literal block, instead of producing build warnings; the build log names it. Set
    ``ddpm_book_strict_docstrings = True`` (``sphinx: config:`` in ``_config.yml``) to
    get the reStructuredText warnings instead.
"""
from __future__ import annotations

import importlib
import inspect
import io
import os
import pkgutil
import re
from pathlib import Path

from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser as RSTParser
from docutils.statemachine import StringList
from docutils.utils import new_document
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

API_PACKAGE = "ddpm_core"
# Layers of ddpm_core from low to high; the API page lists modules in this order, then any others.
LAYER_ORDER = ("schedules", "diffusion", "losses", "likelihood", "objectives", "samplers", "nn", "train", "data",
               "metrics", "convert", "viz", "exercises", "oracles", "symbolic", "provenance", "cli")

MATHJAX_VERSION = "3.2.2"
MATHJAX_FILE = "tex-svg-full.js"  # TeX input, SVG output (no font files needed), all TeX extensions
MATHJAX_DIR = Path(__file__).resolve().parent.parent / "_mathjax"
MATHJAX_CDN = f"https://cdn.jsdelivr.net/npm/mathjax@{MATHJAX_VERSION}/es5/{MATHJAX_FILE}"
MATHJAX_ENV = "DDPM_BOOK_MATHJAX"
MATHJAX_CHOICES = ("local", "cdn")


# ---- MathJax ------------------------------------------------------------------------------------------


def mathjax_source() -> str:
    """The MathJax source selected by ``$DDPM_BOOK_MATHJAX``: "local" (default) or "cdn"."""
    choice = os.environ.get(MATHJAX_ENV, "local").strip().lower() or "local"
    if choice not in MATHJAX_CHOICES:
        raise ValueError(f"{MATHJAX_ENV}={choice!r}: allowed values are {', '.join(MATHJAX_CHOICES)}")
    return choice


def _configure_mathjax(app: Sphinx, config: Config) -> None:
    if mathjax_source() == "cdn":
        config.mathjax_path = MATHJAX_CDN
        return
    vendored = MATHJAX_DIR / "mathjax" / MATHJAX_FILE
    if not vendored.is_file():
        raise FileNotFoundError(f"{vendored} is missing: run tools/vendor_mathjax.sh or set {MATHJAX_ENV}=cdn")
    # book/_mathjax/ holds a folder `mathjax/`, copied to _build/html/_static/mathjax/.
    # It is kept out of _static/ on purpose: Jupyter Book adds every .js found under a
    # root _static/ folder to every page.
    config.html_static_path = [*config.html_static_path, str(MATHJAX_DIR)]
    config.mathjax_path = f"mathjax/{MATHJAX_FILE}"


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Drop repeated ``<script>`` entries from a page.

    Sphinx 7.4 adds an inline script registered after the builder started (sphinx-thebe's
    ``const THEBE_JS_URL = ...``) twice, once with filename None and once with "", which makes
    the browser raise "Identifier 'THEBE_JS_URL' has already been declared" on every page.
    """
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for js in scripts:
        key = (getattr(js, "filename", js) or "", getattr(js, "priority", 0),
               tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


# ---- API reference ------------------------------------------------------------------------------------


def public_modules(package: str) -> list[str]:
    """The package and its importable submodules whose dotted names have no part starting with ``_``,
    the package first, then its modules in the order of ``LAYER_ORDER`` (others alphabetically)."""
    pkg = importlib.import_module(package)
    names = [package]
    if hasattr(pkg, "__path__"):
        for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)

    def key(name: str) -> tuple:
        parts = name.split(".")[1:]
        top = parts[0] if parts else ""
        rank = LAYER_ORDER.index(top) if top in LAYER_ORDER else len(LAYER_ORDER)
        return (bool(parts), rank, name)

    return sorted(names, key=key)


def canonical_name(package: str, name: str, obj: object) -> str:
    """Where ``package.name`` is documented: ``module.qualname`` for classes and functions,
    ``package.name`` for data (constants re-exported by the package)."""
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", "").startswith(package):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"{package}.{name}"


def _defining_module(package: str, name: str, obj: object) -> str | None:
    for mod_name in public_modules(package)[1:]:
        mod = importlib.import_module(mod_name)
        if name in vars(mod) and vars(mod)[name] is obj:
            return mod_name
    return None


def _rst_text(text: str) -> str:
    """``text`` escaped so that reStructuredText shows it as it is."""
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", text)


def _summary(obj: object, limit: int = 160) -> str:
    """First paragraph of the docstring of ``obj`` on one line, cut at a word after ``limit`` characters."""
    doc = inspect.getdoc(obj) or ""
    first = " ".join(doc.strip().split("\n\n", 1)[0].split())
    if len(first) > limit:
        first = first[:limit].rsplit(" ", 1)[0] + " ..."
    return first


class DdpmApiDirective(SphinxDirective):
    """``.. ddpm-api:: PACKAGE``: table of ``PACKAGE.__all__`` plus one section per public module."""

    required_arguments = 1
    has_content = False

    def _parse(self, lines: list[str], into: nodes.Element) -> None:
        source = f"<ddpm-api {self.arguments[0]}>"
        self.state.nested_parse(StringList(lines, source=source), self.content_offset, into)

    def run(self) -> list[nodes.Node]:
        package = self.arguments[0]
        pkg = importlib.import_module(package)
        exported = list(getattr(pkg, "__all__", []))
        out: list[nodes.Node] = []

        summary = nodes.section(ids=[nodes.make_id(f"api-{package}-public-names")])
        summary += nodes.title(text=f"Names exported by {package}")
        if exported:
            example = next((n for n in exported if not n.startswith("_")), exported[0])
            lines = [f"Each of these can be imported directly, e.g. ``from {package} import {example}``.", "",
                     ".. list-table::", "   :widths: 35 65", ""]
            data = []
            for name in exported:
                obj = getattr(pkg, name)
                if inspect.isclass(obj) or inspect.isfunction(obj):
                    text = _summary(obj)
                    if _rst_problems(self.env.app, [text]):
                        text = _rst_text(text)
                else:
                    data.append(name)
                    where = _defining_module(package, name, obj)
                    text = f"constant ``{obj!r}``" + (f", defined in :py:mod:`{where}`" if where else "")
                lines += [f"   * - :py:obj:`{name} <{canonical_name(package, name, obj)}>`", f"     - {text}"]
            lines.append("")
            for name in data:  # constants get their own entry (and anchor) here
                lines += [f".. py:data:: {package}.{name}", f"   :value: {getattr(pkg, name)!r}", "   :no-index-entry:", ""]
            self._parse(lines, summary)
        out.append(summary)

        for mod_name in public_modules(package):
            section = nodes.section(ids=[nodes.make_id(f"api-{mod_name}")])
            section += nodes.title("", "", nodes.literal(text=mod_name))
            self._parse([f".. automodule:: {mod_name}", "   :members:", "   :ignore-module-all:",
                         "   :show-inheritance:", ""], section)
            out.append(section)
        return out


def _import_dotted(target: str) -> object | None:
    """The object named by a dotted path such as ``ddpm_core.data.infinite_loader``, or None."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def _resolve_reexport(app: Sphinx, env, node: nodes.Element, contnode: nodes.Element):
    """Resolve ``ddpm_core.X`` (a name re-exported by a package) to where X is documented.

    Objects are documented once, in the module that defines them; docstrings and chapters
    may still refer to them by their public path, e.g. ``ddpm_core.data.infinite_loader``
    for ``ddpm_core.data.loader.infinite_loader``.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith(API_PACKAGE + "."):
        return None
    obj = _import_dotted(target)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)):
        return None
    canonical = f"{module}.{qualname}"
    if canonical == target:
        return None
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"], canonical,
                                            node, contnode)


# ---- chapter lists ------------------------------------------------------------------------------------


class chapter_list(nodes.General, nodes.Element):
    """Placeholder for ``ddpm-chapters``, replaced once every chapter's title is known."""


class ChapterListDirective(SphinxDirective):
    """``.. ddpm-chapters:: PART CAPTION``: numbered links to the chapters of that part of ``_toc.yml``.

    Each link shows the chapter's title as the table of contents does, equations included
    (a ``{doc}`` link would show the TeX source of a title with math)."""

    required_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        node = chapter_list()
        node["part"] = self.arguments[0]
        return [node]


def _part_chapters(app: Sphinx, caption: str) -> list[str]:
    import yaml

    toc = yaml.safe_load((Path(app.srcdir) / "_toc.yml").read_text(encoding="utf8"))
    for part in toc.get("parts", []):
        if part.get("caption") == caption:
            return [str(Path(entry["file"]).with_suffix("")) if Path(entry["file"]).suffix in (".md", ".ipynb")
                    else entry["file"] for entry in part.get("chapters", [])]
    raise ValueError(f"ddpm-chapters: no part with caption {caption!r} in _toc.yml")


def _fill_chapter_lists(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for node in list(doctree.findall(chapter_list)):
        chapters = _part_chapters(app, node["part"])
        numbers = [int(m.group(1)) for c in chapters if (m := re.match(r"(\d+)_", Path(c).name))]
        items = nodes.enumerated_list(enumtype="arabic", prefix="", suffix=".")
        if numbers and numbers[0] != 1:
            items["start"] = numbers[0]
        for chapter in chapters:
            title = app.env.titles.get(chapter)
            ref = nodes.reference("", "", internal=True, refuri=app.builder.get_relative_uri(docname, chapter))
            ref += [child.deepcopy() for child in title.children] if title else [nodes.Text(chapter)]
            items += nodes.list_item("", nodes.paragraph("", "", ref))
        node.replace_self(items)


# ---- docstrings that are not reStructuredText ---------------------------------------------------------

_original_docstrings: dict[tuple[str, str], list[str]] = {}


def _keep_original_docstring(app: Sphinx, what: str, name: str, obj, options, lines: list[str]) -> None:
    _original_docstrings[(what, name)] = list(lines)


def _rst_problems(app: Sphinx, lines: list[str]) -> list[str]:
    """Warnings and errors that docutils reports for ``lines`` parsed as reStructuredText.

    Called while Sphinx reads a document, so Sphinx's roles and directives are known."""
    settings = get_default_settings(RSTParser)
    settings.report_level = 2
    settings.halt_level = 5
    settings.warning_stream = io.StringIO()
    settings.env = app.env
    document = new_document("<docstring>", settings)
    try:
        RSTParser().parse("\n".join(lines), document)
    except Exception as err:  # noqa: BLE001 - any failure means "not clean reStructuredText"
        return [f"{type(err).__name__}: {err}"]
    return [line for line in settings.warning_stream.getvalue().splitlines() if line.strip()]


def _verbatim_unless_rst(app: Sphinx, what: str, name: str, obj, options, lines: list[str]) -> None:
    original = _original_docstrings.pop((what, name), list(lines))
    if app.config.ddpm_book_strict_docstrings or not any(line.strip() for line in lines):
        return
    problems = _rst_problems(app, lines)
    if problems:
        logger.info(f"[ddpm_book] docstring of {name} shown verbatim (not reStructuredText: {problems[0]})")
        lines[:] = [".. code-block:: text", ""] + [f"    {line}" if line.strip() else "" for line in original] + [""]


TIMES_FILE = Path(__file__).resolve().parent.parent / "chapter_times.json"


def _chapter_times_module():
    """``tools/chapter_times.py`` (the line's wording lives there, next to the measurement)."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "tools" / "chapter_times.py"
    spec = importlib.util.spec_from_file_location("ddpm_chapter_times", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ddpm_chapter_times", module)
    spec.loader.exec_module(module)
    return module


def _add_runtime_line(app: Sphinx, doctree: nodes.document) -> None:
    """Insert the chapter's run time (from book/chapter_times.json) right under its title."""
    if not TIMES_FILE.is_file():
        return
    app.env.note_dependency(str(TIMES_FILE))
    times = _chapter_times_module()
    entry = times.load_times(TIMES_FILE).get("chapters", {}).get(app.env.docname)
    if not entry:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    title = section.next_node(nodes.title) if section is not None else None
    if title is None:
        return
    line = nodes.paragraph("", "", nodes.Text(times.runtime_line(entry)), classes=["ddpm-runtime"])
    section.insert(section.index(title) + 1, line)


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx.ext.autodoc")
    app.add_config_value("ddpm_book_strict_docstrings", False, "env", [bool])
    app.connect("config-inited", _configure_mathjax)
    app.connect("html-page-context", _dedupe_scripts, priority=100)  # before handlers that end the event
    app.connect("missing-reference", _resolve_reexport)
    app.connect("autodoc-process-docstring", _keep_original_docstring, priority=400)  # before napoleon (500)
    app.connect("autodoc-process-docstring", _verbatim_unless_rst, priority=600)  # after napoleon
    app.add_directive("ddpm-api", DdpmApiDirective)
    app.add_node(chapter_list)
    app.add_directive("ddpm-chapters", ChapterListDirective)
    app.connect("doctree-resolved", _fill_chapter_lists)
    app.connect("doctree-read", _add_runtime_line)
    # MathJax on every page: titles with equations also appear in the navigation of pages without math.
    app.set_html_assets_policy("always")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
