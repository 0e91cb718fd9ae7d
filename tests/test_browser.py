"""The built book as a reader sees it, in headless Chromium (tools/browser_check.py does the work).

Needs the built book (`_build/html`, from the README's build command) and Chromium (Debian: `apt-get install
chromium`; any Chrome/Chromium on PATH or in $DDPM_BOOK_CHROMIUM). Without them the tests are skipped, unless
DDPM_BOOK_REQUIRE_BROWSER=1, which turns the skip into a failure (for CI). Screenshots of every page, at desktop
and at phone width, are written to _build/screenshots/.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"

pytestmark = pytest.mark.browser




from conftest import load_module  # noqa: E402

browser_check = load_module("browser_check", ROOT / "tools" / "browser_check.py")


def _unavailable(reason: str) -> None:
    if os.environ.get("DDPM_BOOK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (DDPM_BOOK_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _need_chromium() -> str:
    chromium = browser_check.find_chromium()
    if not chromium:
        _unavailable("Chromium is not installed (apt-get install -y chromium)")
    return chromium


@pytest.fixture(scope="module")
def reports():
    if not (HTML / "index.html").is_file():
        _unavailable("the book is not built: run `bash tools/setup.sh && .venv/bin/jupyter-book build . -W -n --keep-going` first")
    chromium = _need_chromium()
    return browser_check.BookChecker(ROOT, chromium=chromium).run()


@pytest.mark.parametrize("check", browser_check.CHECKS)
def test_book_pages(reports, check):
    """One test per kind of check, over every page of the table of contents."""
    failures = [f"{r.docname}: {msg}" for r in reports for msg in r.problems[check]]
    assert not failures, f"{len(failures)} problem(s) in check {check!r}:\n" + "\n".join(failures)


def test_every_page_has_screenshots(reports):
    for report in reports:
        assert len(report.screenshots) == 2, report.docname
        for png in report.screenshots:
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


# ---- the checker itself finds what it should (a small synthetic site, no book build needed) -------------

_GOOD_CHAPTER = """<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chapter</title>{mathjax}</head><body><div class="document"><main>
<p>Math <span class="math notranslate nohighlight">\\(\\bar\\alpha_t = \\prod_{{s=1}}^t \\alpha_s\\)</span>.</p>
<p><a href="intro.html#good">a link</a> <a href="https://example.org/">an external link</a> <a href="#">top</a></p>
<img src="../_static/dot.png" alt="dot">
{extra}
</main></div></body></html>"""

_PNG_1X1 = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                         "0000000d4944415478da63f8cfc0f01f0005000201a1e5a3a70000000049454e44ae426082")


def _site(tmp_path: Path) -> tuple[Path, Path]:
    root, html = tmp_path / "repo", tmp_path / "repo" / "_build" / "html"
    (root / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n- file: book/good\n- file: book/bad\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    for name in ("good", "bad"):
        (root / "book" / f"{name}.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                                                  "nbformat_minor": 5}))
    static = html / "_static"
    shutil.copytree(ROOT / "book" / "_mathjax" / "mathjax", static / "mathjax")
    (static / "dot.png").write_bytes(_PNG_1X1)
    (html / "book").mkdir(parents=True)
    (html / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    (html / "_sources" / "book").mkdir(parents=True)
    (html / "_sources" / "book" / "good.ipynb").write_text("{}")
    mathjax = ('<script>window.MathJax = {tex: {packages: {"[-]": ["noundefined"]}}, options: {processHtmlClass: '
               '"math", ignoreHtmlClass: "document"}}</script>'
               '<script defer src="../_static/mathjax/tex-svg-full.js"></script>')
    (html / "book" / "intro.html").write_text(
        _GOOD_CHAPTER.format(mathjax=mathjax, extra='<p id="good">Intro.</p>'))
    colab = browser_check.colab_url(root / "_config.yml", "book/good.ipynb")
    (root / "book" / "chapter_times.json").write_text(json.dumps({"chapters": {
        "book/good": {"cpu_seconds": 10, "colab_seconds": 75}, "book/bad": {"cpu_seconds": 10, "colab_seconds": 75}}}))
    gif = _animated_gif()
    (html / "book" / "good.html").write_text(_GOOD_CHAPTER.format(mathjax=mathjax, extra=(
        f'<a href="{colab}">Colab</a> <a href="../_sources/book/good.ipynb">.ipynb</a>'
        '<button class="btn-download-pdf-button" onclick="window.print()">PDF</button>'
        '<p class="ddpm-runtime">Runs in about 10 s.</p>'
        '<div class="cell tag_colab-install" style="display: none"><pre>if "google.colab" in sys.modules:</pre></div>'
        '<div class="cell_input"><pre style="white-space: pre-wrap; overflow-wrap: anywhere">' + "y" * 400 + "</pre></div>"
        '<pre style="overflow-x: auto">' + "x" * 400 + "</pre>"
        + f'<img class="ddpm-animation" alt="a" src="data:image/gif;base64,{gif}">' * 2)))
    (html / "book" / "bad.html").write_text(_GOOD_CHAPTER.format(mathjax=mathjax, extra=(
        "<p>Raw $$x^2$$ and \\alpha here.</p>"
        '<p><span class="math notranslate nohighlight">\\(\\alpah_t\\)</span></p>'
        '<img src="missing.png" alt="missing"> <a href="nowhere.html">gone</a> <a href="intro.html#nope">x</a>'
        '<div style="width: 1200px">too wide for a phone</div>'
        '<div class="cell"><pre>if "google.colab" in sys.modules:</pre></div>'
        '<div class="cell_input"><pre style="overflow-x: auto">' + "z" * 400 + "</pre></div>"
        '<pre style="overflow: hidden">' + "w" * 400 + "</pre>")))
    return root, html


def _animated_gif() -> str:
    """A 2-frame, 32x32 animated GIF as base64."""
    import base64
    import io

    from PIL import Image

    frames = [Image.new("P", (32, 32), color) for color in (0, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], loop=0, duration=100)
    return base64.b64encode(buf.getvalue()).decode()


def test_checker_finds_defects(tmp_path):
    chromium = _need_chromium()
    root, html = _site(tmp_path)
    reports = {r.docname: r for r in browser_check.BookChecker(root, html, tmp_path / "shots", chromium,
                                                               animation_pages={"book/good", "book/bad"}).run()}
    good, bad = reports["book/good"].problems, reports["book/bad"].problems
    assert not any(good.values()), good
    assert not any(reports["book/intro"].problems.values()), reports["book/intro"].problems
    assert any("$$" in m for m in bad["math"]) and any("TeX command" in m for m in bad["math"])
    assert any("Undefined control sequence \\alpah" in m for m in bad["math"])
    assert any("missing.png" in m for m in bad["images"])
    assert any("nowhere.html" in m for m in bad["links"]) and any("#nope" in m for m in bad["links"])
    assert bad["colab"] and len(bad["download"]) == 2
    assert bad["phone"] and not good["phone"]
    assert (tmp_path / "shots" / "bad-phone.png").is_file()
    # the page fixes, at both widths: install cell hidden, code wrapped or scrolling, animations, run time
    for check in ("install", "animation", "runtime"):
        assert {m.split(":")[0] for m in bad[check]} == {"desktop", "phone"}, (check, bad[check])
    assert any("not wrapped" in m and "zzz" in m for m in bad["code"]), bad["code"]
    assert any("clipped" in m and "www" in m for m in bad["code"]), bad["code"]


def test_animated_gif_detection():
    assert browser_check._is_animated_gif("data:image/gif;base64," + _animated_gif())
    assert not browser_check._is_animated_gif("data:image/png;base64,iVBORw0KGgo=")
