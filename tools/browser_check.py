"""Check the built book in headless Chromium, the way a reader sees it.

For every page of ``_toc.yml`` (as built in ``_build/html``) this opens the page in
Chromium through the DevTools protocol and checks that

- the page loads, with no script error and no resource that fails to load;
- MathJax has typeset every formula: no raw TeX is left in the text, every math element
  holds a MathJax rendering, and MathJax reported no TeX error;
- every image has loaded (``naturalWidth > 0``);
- every local link points to an existing file and, if it has a ``#fragment``, to an
  existing anchor of that file;
- chapter pages (built from ``.ipynb``) offer a Colab link to that notebook in the
  repository of ``_config.yml``, the ``.ipynb`` download and the PDF (print) button;
- at a phone-width viewport (390 px) the page does not scroll sideways (code cells and
  equations may scroll inside their own boxes);
- at both widths: the Colab install cell is not shown (it stays first in the notebook, but
  the page starts with the title); no code is clipped (a code cell's lines wrap, an output
  that is wider than its box scrolls, nothing is cut off by ``overflow: hidden``); the pages
  of ``ANIMATION_PAGES`` show their reverse-process animations (animated GIFs embedded in
  the page, loaded); every chapter with an entry in ``book/chapter_times.json`` shows its
  run time under the title.

It saves a screenshot of each page at desktop and phone width to ``_build/screenshots/``.
Only the Python standard library is used (a minimal WebSocket client for the DevTools
protocol), plus ``tools/install_cell.py`` for the table of contents and the Colab address.

Usage (from the repository root, after building the book)::

    python tools/browser_check.py            # exit status 1 if any check fails
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from install_cell import colab_url, toc_sources  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ENV = "DDPM_BOOK_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--hide-scrollbars", "--mute-audio", "--no-default-browser-check", "--remote-debugging-port=0")
DESKTOP = dict(width=1280, height=900, screenWidth=1280, screenHeight=900, deviceScaleFactor=1, mobile=False)
PHONE = dict(width=390, height=844, screenWidth=390, screenHeight=844, deviceScaleFactor=1, mobile=True)
PHONE_TOLERANCE_PX = 2
CHECKS = ("load", "math", "images", "links", "colab", "download", "phone", "install", "code", "animation", "runtime")
# pages that embed the reverse process as an animation (<img class="ddpm-animation" src="data:image/gif;...">)
ANIMATION_PAGES = frozenset({"book/ddpm_on_one_page"})
MIN_ANIMATIONS = 2   # the 2-D one and the digits one
INSTALL_CELL_TEXT = 'if "google.colab" in sys.modules'
TIMES_FILE = ROOT / "book" / "chapter_times.json"


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable: ``$DDPM_BOOK_CHROMIUM`` or the first of CHROMIUM_NAMES on PATH."""
    if os.environ.get(CHROMIUM_ENV):
        return os.environ[CHROMIUM_ENV]
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


# ---- a minimal WebSocket client (RFC 6455), enough for the DevTools protocol ------------------------


class _WebSocket:
    def __init__(self, host: str, port: int, path: str, timeout: float = 60.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self._buf = bytearray()
        while b"\r\n\r\n" not in self._buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the browser closed the connection during the WebSocket handshake")
            self._buf += chunk
        end = self._buf.index(b"\r\n\r\n")
        status = bytes(self._buf[:end]).split(b"\r\n", 1)[0]
        del self._buf[:end + 4]
        if b" 101 " not in status + b" ":
            raise ConnectionError(f"WebSocket handshake refused: {status!r}")

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(bytes(header) + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(max(1 << 16, n - len(self._buf)))
            if not chunk:
                raise ConnectionError("the browser closed the DevTools connection")
            self._buf += chunk
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def recv(self) -> str:
        message = bytearray()
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("the browser closed the DevTools connection")
            if opcode == 0x9:
                self._send_frame(0xA, data)
                continue
            if opcode == 0xA:
                continue
            message += data
            if b0 & 0x80:
                return message.decode()

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


# ---- Chromium through the DevTools protocol ----------------------------------------------------------


class Chromium:
    """A headless Chromium with one page, driven through the DevTools protocol."""

    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="ddpm-book-chromium-")
        profile = Path(self._tmp.name) / "profile"
        self._log = open(Path(self._tmp.name) / "chromium.log", "w+b")
        self.proc = subprocess.Popen([executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        try:
            port, path = self._wait_for_port(profile / "DevToolsActivePort")
            self.ws = _WebSocket("127.0.0.1", port, path, timeout=timeout)
            self._next_id = 0
            self.events: list[dict] = []
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Network"):
                self.call(f"{domain}.enable", session=self.session)
        except BaseException:
            self.close()
            raise

    def _wait_for_port(self, port_file: Path) -> tuple[int, str]:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if port_file.is_file():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return int(lines[0]), lines[1]
            time.sleep(0.1)
        self._log.seek(0)
        raise RuntimeError(f"Chromium did not start (exit code {self.proc.poll()}):\n"
                           f"{self._log.read()[-3000:].decode(errors='replace')}")

    def call(self, method: str, session: str | None = None, **params) -> dict:
        """Send one DevTools command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def evaluate(self, expression: str):
        """Value of a JavaScript expression in the page (promises are awaited)."""
        result = self.page("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                           timeout=int(self.timeout * 1000))
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, viewport: dict) -> None:
        """Load ``url`` at ``viewport`` and wait until it, its images and MathJax are done."""
        self.page("Emulation.setDeviceMetricsOverride", **viewport)
        self.evaluate("window.__ddpmStale = true")  # marks the old document, so we wait for the new one
        self.events.clear()
        self.page("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout
        ready = f"!window.__ddpmStale && document.readyState === 'complete' && location.href === {json.dumps(url)}"
        while not self.evaluate(ready):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading in {self.timeout} s")
            time.sleep(0.05)
        self.evaluate(_JS_SETTLE)

    def resize(self, viewport: dict) -> None:
        """Change the viewport of the loaded page (no reload) and wait until it is laid out again."""
        self.page("Emulation.setDeviceMetricsOverride", **viewport)
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 50))))")

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                self.call("Browser.close")
            except (OSError, RuntimeError, ConnectionError):
                pass
            ws.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()
        self._tmp.cleanup()

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Wait for MathJax (where the page loads it) and for every image, then return.
_JS_SETTLE = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const hasMathJax = !!document.querySelector('script[src*="mathjax" i]');
  const t0 = Date.now();
  while (hasMathJax && !(window.MathJax && MathJax.startup && MathJax.startup.promise) && Date.now() - t0 < 20000)
    await sleep(50);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 10000); })));
  await sleep(100);
  return true;
})()
"""

# Everything the checks need from one loaded page, as JSON.
_JS_INSPECT = r"""
(() => {
  const main = document.querySelector('main') || document.body;
  // the text a reader sees: visible text outside code and outside MathJax's output
  const skip = 'pre, code, kbd, samp, script, style, textarea, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);  // navigation included
  const visible = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (el && !el.closest(skip) && el.checkVisibility({visibilityProperty: true})) visible.push(n.data);
  }
  const describe = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                        (e.classList.length ? '.' + [...e.classList].join('.') : '');
  return {
    title: document.title,
    hasArticle: !!document.querySelector('article, main'),
    text: visible.join(''),
    mathElements: document.querySelectorAll('.math').length,
    mathUnrendered: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container'))
                      .slice(0, 5).map(e => e.textContent.slice(0, 80)),
    mathjaxElements: document.querySelectorAll('mjx-container').length,
    mathjaxErrors: [...document.querySelectorAll('[data-mjx-error], mjx-merror')]
                      .map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5),
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
    links: [...document.querySelectorAll('a[href]')].map(a => ({raw: a.getAttribute('href'), href: a.href})),
    printButton: !!document.querySelector('.btn-download-pdf-button, [onclick*="print"]'),
    // the Colab install cell of a notebook, where it is visible at all (a page may still quote it as text)
    installShown: [...document.querySelectorAll('div.cell')]
      .filter(e => e.textContent.includes('if "google.colab" in sys.modules') && e.checkVisibility()).length,
    // code boxes whose content is wider than the box: a code cell's input must wrap; any box may scroll, none clip
    clippedCode: [...document.querySelectorAll('pre')].filter(e => e.checkVisibility() && e.scrollWidth > e.clientWidth + 1)
      .filter(e => e.closest('.cell_input') || !['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
      .map(e => (e.closest('.cell_input') ? 'code cell line not wrapped: ' : 'clipped: ')
                + JSON.stringify(e.textContent.split('\n').sort((a, b) => b.length - a.length)[0].slice(0, 60)))
      .slice(0, 5),
    animations: [...document.querySelectorAll('img.ddpm-animation')].map(i => ({
      src: (i.currentSrc || i.src).slice(0, 200000), ok: i.complete && i.naturalWidth > 0,
      visible: i.checkVisibility() && i.getBoundingClientRect().width > 20})),
    runtime: [...document.querySelectorAll('p.ddpm-runtime')].map(e => e.textContent),
    scrollWidth: document.scrollingElement.scrollWidth,
    innerWidth: window.innerWidth,
    // elements and text that reach past the screen's right edge outside any box that scrolls or clips
    wide: (() => {
      const free = el => {
        for (let a = el; a && a !== document.body; a = a.parentElement) {
          const cs = getComputedStyle(a);
          if (cs.position === 'fixed' || (a !== el && cs.overflowX !== 'visible')) return false;
        }
        return true;
      };
      const out = [...document.body.querySelectorAll('*')]
        .filter(e => e.getBoundingClientRect().right > screen.width + 2 && free(e)).map(describe);
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const range = document.createRange();
        range.selectNodeContents(n);
        if (range.getBoundingClientRect().right > screen.width + 2 && n.parentElement && free(n.parentElement))
          out.push('text ' + JSON.stringify(n.data.trim().slice(0, 40)) + ' in ' + describe(n.parentElement));
      }
      return out.slice(0, 5);
    })(),
  };
})()
"""

_RAW_TEX = [
    (re.compile(r"\$\$"), "$$"),
    (re.compile(r"\\[()\[\]]"), "\\( \\) \\[ \\]"),
    (re.compile(r"\\begin\{"), "\\begin{"),
    (re.compile(r"\\[A-Za-z]{2,}"), "a TeX command"),
    (re.compile(r"\$[^$\n]*[\\_^][^$\n]*\$"), "$...$"),
]


def raw_tex(text: str) -> list[str]:
    """Fragments of ``text`` that look like TeX that was not typeset."""
    found = []
    for pattern, label in _RAW_TEX:
        for m in pattern.finditer(text):
            found.append(f"{label}: ...{text[max(0, m.start() - 30):m.end() + 30]!r}...")
            break
    return found


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.ids.add(value or "")


@dataclass
class PageReport:
    docname: str
    path: Path
    is_chapter: bool
    problems: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CHECKS})
    screenshots: list[Path] = field(default_factory=list)


class BookChecker:
    """Runs every check over the pages of ``_toc.yml`` as built in ``html_dir``."""

    def __init__(self, root: Path = ROOT, html_dir: Path | None = None, screenshot_dir: Path | None = None,
                 chromium: str | None = None, animation_pages: frozenset[str] | set[str] = ANIMATION_PAGES) -> None:
        self.root = Path(root)
        self.animation_pages = set(animation_pages)
        times = self.root / "book" / "chapter_times.json"
        self.timed_pages = set(json.loads(times.read_text()).get("chapters", {})) if times.is_file() else set()
        self.html_dir = Path(html_dir or self.root / "_build" / "html").resolve()
        self.screenshot_dir = Path(screenshot_dir or self.root / "_build" / "screenshots")
        self.chromium = chromium or find_chromium()
        self._anchors: dict[Path, set[str]] = {}

    def pages(self) -> list[PageReport]:
        return [PageReport(name, self.html_dir / f"{name}.html", src is not None and src.suffix == ".ipynb")
                for name, src in toc_sources(self.root).items()]

    def anchors(self, path: Path) -> set[str]:
        if path not in self._anchors:
            parser = _Anchors()
            parser.feed(path.read_text(encoding="utf8", errors="replace"))
            self._anchors[path] = parser.ids
        return self._anchors[path]

    def check_link(self, raw: str, href: str) -> str | None:
        url = urlsplit(href)
        if url.scheme != "file":
            return None
        target = Path(unquote(url.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            return f"{raw} -> missing file {target}"
        if url.fragment and target.suffix == ".html" and unquote(url.fragment) not in self.anchors(target):
            return f"{raw} -> no anchor #{unquote(url.fragment)} in {target.name}"
        return None

    def run(self) -> list[PageReport]:
        if not self.chromium:
            raise FileNotFoundError(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)} and ${CHROMIUM_ENV})")
        reports = self.pages()
        with Chromium(self.chromium) as browser:
            for report in reports:
                self._check_page(browser, report)
        return reports

    def _lay_out(self, browser: Chromium, report: PageReport, lay_out, suffix: str, problems: list[str]) -> dict | None:
        """Lay the page out (``lay_out()``: open it, or resize the window), inspect it and save a screenshot named
        ``<page><suffix>.png``; None, with the error added to ``problems``, when the browser fails."""
        try:
            lay_out()
            info = browser.evaluate(_JS_INSPECT)
        except (RuntimeError, TimeoutError) as err:
            problems.append(str(err))
            return None
        report.screenshots.append(self.screenshot_dir / f"{Path(report.docname).name}{suffix}.png")
        browser.screenshot(report.screenshots[-1])
        return info

    def _check_page(self, browser: Chromium, report: PageReport) -> None:
        p = report.problems
        if not report.path.is_file():
            p["load"].append(f"{report.path} was not built")
            return
        url = report.path.as_uri()
        info = self._lay_out(browser, report, lambda: browser.open(url, DESKTOP), "", p["load"])
        if info is None:
            return
        if not info["hasArticle"] or not info["title"]:
            p["load"].append("the page has no title or no main content")
        for event in browser.events:
            if event["method"] == "Runtime.exceptionThrown":
                details = event["params"]["exceptionDetails"]
                p["load"].append(f"script error: {details.get('exception', {}).get('description', details['text'])}")
            elif event["method"] == "Network.loadingFailed" and not event["params"].get("canceled"):
                p["load"].append(f"failed to load a resource: {event['params'].get('errorText')}")
        # math
        p["math"] += [f"raw TeX in the text: {frag}" for frag in raw_tex(info["text"])]
        p["math"] += [f"math not typeset by MathJax: {t!r}" for t in info["mathUnrendered"]]
        p["math"] += [f"MathJax error: {e}" for e in dict.fromkeys(info["mathjaxErrors"])]
        if info["mathElements"] and not info["mathjaxElements"]:
            p["math"].append(f"{info['mathElements']} math elements but no MathJax output")
        # images and links
        p["images"] += [f"image did not load: {img['src']}" for img in info["images"] if not img["ok"]]
        for link in info["links"]:
            problem = self.check_link(link["raw"], link["href"])
            if problem and problem not in p["links"]:
                p["links"].append(problem)
        # chapter pages: Colab, .ipynb download, print to PDF
        if report.is_chapter:
            expected = colab_url(self.root / "_config.yml", f"{report.docname}.ipynb")
            if not any(link["href"] == expected for link in info["links"]):
                p["colab"].append(f"no link to {expected}")
            ipynb = [link["href"] for link in info["links"]
                     if link["href"].endswith(f"_sources/{report.docname}.ipynb")]
            if not ipynb:
                p["download"].append(f"no download link to _sources/{report.docname}.ipynb")
            elif self.check_link(ipynb[0], ipynb[0]):
                p["download"].append(self.check_link(ipynb[0], ipynb[0]))
            if not info["printButton"]:
                p["download"].append("no PDF (print) button")
        self._check_reading(report, info, "desktop")
        # phone width: the same page, laid out again for a phone screen
        phone = self._lay_out(browser, report, lambda: browser.resize(PHONE), "-phone", p["phone"])
        if phone is None:
            return
        self._check_reading(report, phone, "phone")
        # Compare with the device width: a mobile browser widens its layout viewport (innerWidth) to the content.
        width = max(phone["scrollWidth"], phone["innerWidth"])
        if width > PHONE["width"] + PHONE_TOLERANCE_PX:
            p["phone"].append(f"page is {width} px wide on a {PHONE['width']} px wide phone; "
                              f"elements sticking out: {', '.join(phone['wide']) or 'none found'}")


    def _check_reading(self, report: PageReport, info: dict, width: str) -> None:
        """The page fixes, at one width: no install cell shown, no clipped code, animations, run time."""
        p = report.problems
        if info.get("installShown"):
            p["install"].append(f"{width}: the Colab install cell is shown (it belongs to Colab, not the page)")
        p["code"] += [f"{width}: {msg}" for msg in info.get("clippedCode", [])]
        if report.docname in self.animation_pages:
            anims = info.get("animations", [])
            good = [a for a in anims if a["ok"] and a["visible"] and _is_animated_gif(a["src"])]
            if len(good) < MIN_ANIMATIONS:
                p["animation"].append(f"{width}: {len(good)} playing animation(s) of the reverse process, expected "
                                      f">= {MIN_ANIMATIONS} ({len(anims)} img.ddpm-animation found)")
        if report.docname in self.timed_pages and not info.get("runtime"):
            p["runtime"].append(f"{width}: no run time under the title (p.ddpm-runtime)")


def _is_animated_gif(src: str) -> bool:
    """True for a data: URL of a GIF with more than one frame (the NETSCAPE2.0 looping extension)."""
    head = "data:image/gif;base64,"
    if not src.startswith(head):
        return False
    try:
        data = base64.b64decode(src[len(head):] + "=" * (-len(src[len(head):]) % 4), validate=False)
    except ValueError:
        return False
    return data[:4] == b"GIF8" and b"NETSCAPE2.0" in data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (holds _config.yml, _toc.yml)")
    parser.add_argument("--html", type=Path, help="built HTML (default: ROOT/_build/html)")
    parser.add_argument("--screenshots", type=Path, help="screenshot folder (default: ROOT/_build/screenshots)")
    args = parser.parse_args(argv)
    checker = BookChecker(args.root, args.html, args.screenshots)
    t0 = time.monotonic()
    reports = checker.run()
    failures = 0
    for report in reports:
        bad = {check: msgs for check, msgs in report.problems.items() if msgs}
        failures += bool(bad)
        print(f"{'FAIL' if bad else 'ok  '} {report.docname}")
        for check, msgs in bad.items():
            for msg in msgs:
                print(f"     [{check}] {msg}")
    print(f"{len(reports)} pages checked in {time.monotonic() - t0:.1f} s, {failures} with problems; "
          f"screenshots in {checker.screenshot_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
