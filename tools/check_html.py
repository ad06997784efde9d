#!/usr/bin/env python
"""Check the built HTML book in a real browser: `python tools/check_html.py _build/html`.

Serves the build on 127.0.0.1 (stdlib http.server in a thread), loads every page in
headless Chromium (Debian's /usr/bin/chromium driven by Playwright; Playwright's own
browsers are never downloaded; the network beyond 127.0.0.1 is blocked, as on CI) and
fails, with a report, on:

- a JavaScript error (uncaught exception, console error, a local resource that fails to
  load);
- math left as raw TeX after MathJax has typeset, or a page with math and no typeset math;
- unrendered MyST markup ({glue:...} roles, ::: fences) in the text;
- a missing image (naturalWidth 0);
- a Python traceback, error or warning output in a page;
- an internal link (href/src) to a file that does not exist, or to a #fragment missing
  there.

Presentation checks (reading width, at the 1280 px window every page is loaded in). The
switch: `--presentation` / `--no-presentation`; without either, the environment variable
CHECK_HTML_PRESENTATION decides (on unless 0/false/no/off). When off they are still
measured and printed as notes that do not fail the run. They fail on:

- a clipped code cell, output or code block: an element in a code cell's input or output
  area, or any <pre>, whose content is wider than its box (scrollWidth > clientWidth + 1
  px: it scrolls sideways or spills out), measured with hidden cells (hide-cell,
  hide-input) opened; the message names the cell (its position on the page), the first
  line too wide (each line of a <pre> measured in its own font) and how many characters
  fit;
- display math wider than its column: a MathJax CHTML `mjx-container[display="true"]`
  whose typeset width exceeds what the content column leaves it (the message gives the
  TeX);
- the Colab set-up cell in the HTML: a code cell whose source installs attn_lib
  (width_report.is_setup_source) must be tagged remove-input, so its input is not in the
  page (its one-line output may stay);
- figure text too small to read: assuming matplotlib's default 10-pt labels, they would
  show at fewer than MIN_LABEL_PX (9) CSS px, i.e. 10 pt x dpi / 72 x shown / natural
  width < 9, with dpi from the PNG's pHYs chunk (100, matplotlib's default, if absent);
  at 100 dpi that is an image shown at less than 65 % of its natural width (688 px of
  column: a figure wider than ~10.6 in at 100 dpi). An image wider than the column fails
  too.

It also checks that search finds results, that dark mode switches via the theme
switcher, that each chapter offers its .ipynb for download and links to it on Colab (URL
from _config.yml), that every page in _toc.yml was built, and that pages with widgets
show a static fallback. Screenshots: <html>/../screenshots/<page>.png (full page, as a
reader first sees it), plus dark/<page>.png.
"""
from __future__ import annotations

import argparse
import base64
import functools
import http.server
import posixpath
import os
import re
import struct
import sys
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from width_report import is_setup_source  # noqa: E402 - the one home of that rule

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SKIP_PAGES = {"genindex.html"}  # generated index: no content of ours
SEARCH_QUERY = "quadratic"
TRACEBACK_MARKER = "Traceback (most recent call last)"
PRESENTATION_ENV = "CHECK_HTML_PRESENTATION"
MIN_LABEL_PX = 9.0  # CSS px a figure's 10-pt text must keep (body text is 16 px)
LABEL_PT = 10.0  # matplotlib's default font size
DEFAULT_DPI = 100.0  # matplotlib's default savefig dpi, when a PNG does not say


# ============================================================================ pure functions
def classify_href(href: str) -> str:
    """'external' (other host/scheme), 'fragment' (#id on this page), 'skip' (empty) or 'local'."""
    href = href.strip()
    if not href or href == "#":
        return "skip"
    if href.startswith("#"):
        return "fragment"
    parts = urlsplit(href)
    if parts.scheme or href.startswith("//"):
        return "external"
    return "local"


def resolve_link(page: str, href: str) -> tuple[str, str] | None:
    """(target path relative to the site root, fragment) of a link on `page`; None if external.

    `page` is the linking page's path relative to the root ('book/ch1.html'); query strings
    are dropped; a path that climbs out of the root resolves to '../...' (always missing).
    """
    kind = classify_href(href)
    if kind in ("external", "skip"):
        return None
    parts = urlsplit(href.strip())
    if kind == "fragment":
        return page, parts.fragment
    path = unquote(parts.path)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
    if path.endswith("/") or target == ".":
        target = posixpath.join(target, "index.html") if target != "." else "index.html"
    return target, unquote(parts.fragment)


@dataclass
class PageInfo:
    """What the static link check needs from one HTML file."""

    ids: set = field(default_factory=set)
    links: list = field(default_factory=list)  # (tag, attribute, value)
    redirect: str | None = None  # target of a <meta http-equiv="refresh"> page


class _PageParser(HTMLParser):
    LINK_ATTRS = {"a": "href", "img": "src", "script": "src", "link": "href", "iframe": "src", "source": "src"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.info = PageInfo()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.info.ids.add(attrs[key])
        attr = self.LINK_ATTRS.get(tag)
        if attr and attrs.get(attr) is not None:
            self.info.links.append((tag, attr, attrs[attr]))
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            m = re.search(r"url\s*=\s*['\"]?([^'\";]+)", attrs.get("content") or "", re.I)
            if m:
                self.info.redirect = m.group(1).strip()
                self.info.links.append(("meta", "url", self.info.redirect))


def parse_page(html: str) -> PageInfo:
    """Element ids and outgoing links of an HTML document."""
    parser = _PageParser()
    parser.feed(html)
    return parser.info


def broken_links(pages: dict[str, PageInfo], files: set[str]) -> list[str]:
    """Problems with internal links: 'page: href -> missing file' or '... -> missing #fragment'.

    pages: parsed HTML pages by path relative to the root; files: every file path in the site.
    """
    problems = []
    for page, info in sorted(pages.items()):
        for tag, attr, href in info.links:
            resolved = resolve_link(page, href)
            if resolved is None:
                continue
            target, fragment = resolved
            if target not in files:
                problems.append(f"{page}: <{tag} {attr}={href!r}> -> missing file {target}")
            elif fragment and target in pages and fragment not in pages[target].ids:
                problems.append(f"{page}: <{tag} {attr}={href!r}> -> no #{fragment} in {target}")
    return problems


_RAW_TEX = [
    re.compile(r"\\\((.+?)\\\)", re.S),  # \( ... \)
    re.compile(r"\\\[(.+?)\\\]", re.S),  # \[ ... \]
    re.compile(r"\$\$(.+?)\$\$", re.S),  # $$ ... $$
    # $...$ as pandoc reads it: no space inside the delimiters, no digit right after the closing one
    re.compile(r"(?<![\\$\w])\$(?=[^\s$])([^$\n]*?[^\s$\\])\$(?![\d$\w])"),
    re.compile(r"\\begin\{\w+\*?\}"),
]
_RAW_MARKUP = [
    re.compile(r"\{glue(?::\w+)?\}`?"),  # an unrendered glue role
    re.compile(r"^\s*:::+\s*\{[\w-]+\}", re.M),  # an unrendered colon fence
    re.compile(r"\{(admonition|note|warning|figure|code-cell)\}"),
    # a markdown table rule left as text (smart quotes turn --- into an em dash)
    re.compile(r"\|\s*:?(?:-{3,}|[—–][—–-]*):?\s*\|"),
]


def find_raw_tex(text: str) -> list[str]:
    """TeX that MathJax should have typeset but is still text: '$x^2$', '\\(N\\)', '$$..$$'."""
    found = []
    for pattern in _RAW_TEX:
        found += [m.group(0) for m in pattern.finditer(text)]
    return found


def find_raw_markup(text: str) -> list[str]:
    """Markup left in the rendered text: glue roles, ::: fences, {directive} names, table rules."""
    found = []
    for pattern in _RAW_MARKUP:
        found += [m.group(0).strip() for m in pattern.finditer(text)]
    return found


def output_problems(outputs: list[dict], page_text: str) -> list[str]:
    """Error output in a page. outputs: [{'classes': 'output stderr', 'text': ...}] of cell outputs.

    A traceback output or the traceback marker anywhere fails; stderr fails when it reports an
    error, exception or warning (a progress bar on stderr does not).
    """
    problems = []
    for out in outputs:
        classes, text = out["classes"].split(), out["text"].strip()
        snippet = text.splitlines()[0][:120] if text else ""
        if "traceback" in classes or "error" in classes:
            problems.append(f"error output: {snippet}")
        elif "stderr" in classes and re.search(r"(Error|Exception|Traceback|Warning)\b", text):
            problems.append(f"stderr output: {snippet}")
    if TRACEBACK_MARKER in page_text and not any("Traceback" in p for p in problems):
        problems.append(f"text {TRACEBACK_MARKER!r} in the page")
    return problems


def toc_pages(toc_path: Path) -> list[str]:
    """Every page of a Jupyter Book _toc.yml, in reading order (attn_lib.book reads it)."""
    from attn_lib.book import toc_pages as read_toc

    return read_toc(toc_path)


def is_chapter(toc_entry: str) -> bool:
    """Chapters are the book/ch* notebooks (appendices and the intro are not)."""
    return re.fullmatch(r"(.*/)?ch[^/]*", toc_entry) is not None


def expected_colab_url(repo_url: str, branch: str, toc_entry: str) -> str:
    """The Colab link a chapter page must carry (sphinx-book-theme's launch button)."""
    sys.path.insert(0, str(ROOT))
    from attn_lib.colab import colab_url

    return colab_url(repo_url, branch, f"{toc_entry}.ipynb")


def screenshot_path(out_dir: Path, page: str, variant: str = "") -> Path:
    """Where the screenshot of `page` ('book/ch1.html') goes: out_dir[/variant]/book/ch1.png."""
    base = Path(out_dir) / variant if variant else Path(out_dir)
    return base / Path(page).with_suffix(".png")


def luminance(css_color: str) -> float:
    """Relative luminance (0 black .. 1 white) of 'rgb(r, g, b)' / 'rgba(r, g, b, a)'."""
    m = re.fullmatch(r"rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:[,\s/]+[\d.]+)?\s*\)", css_color.strip())
    if m is None:
        raise ValueError(f"css_color must be rgb()/rgba(), got {css_color!r}")

    def channel(c):
        c = float(c) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in m.groups())
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# ======================================================================= presentation
def presentation_default(environ=os.environ) -> bool:
    """Whether presentation checks fail a run: $CHECK_HTML_PRESENTATION, on if unset."""
    value = environ.get(PRESENTATION_ENV, "1").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{PRESENTATION_ENV} must be 1/0 (true/false, yes/no, on/off), "
                     f"got {value!r}")


def _where(item: dict) -> str:
    return item["kind"] + (f" {item['cell']}" if item.get("cell") else "")


def clipped_problems(items: list[dict]) -> list[str]:
    """Messages for code/output boxes whose content is wider than the box.

    items (from the browser): {kind: 'code cell'|'output'|'code block', cell: n (1-based
    on the page, 0 if none), tag, scrollWidth, clientWidth, avail (content px),
    charWidth (px of one character, 0 if unknown), lines: [{text, width}] for a <pre>
    else [], text}.
    """
    problems = []
    for item in items:
        lines = item.get("lines") or []
        wide = [line for line in lines if line["width"] > item["avail"] + 0.5]
        where = f"clipped {_where(item)}"
        if wide:
            char = item.get("charWidth")
            if char:
                fits = f"{int(item['avail'] // char)} characters fit"
            else:
                fits = f"{item['avail']:.0f} px"
            count = f"{len(wide)} line{'s' if len(wide) > 1 else ''}"
            first = wide[0]["text"][:60]
            problems.append(f"{where}: {count} too wide ({fits}): {first!r}")
        else:
            longest = max(lines, key=lambda ln: ln["width"])["text"] if lines else ""
            text = (longest or item.get("text", "")).strip()
            problems.append(f"{where}: <{item['tag']}> content "
                            f"{item['scrollWidth']:.0f} px in a "
                            f"{item['clientWidth']:.0f} px box: {text[:60]!r}")
    return problems


def math_problems(items: list[dict]) -> list[str]:
    """Messages for display equations wider than their column.

    items: {tex, width (of the typeset mjx-math), scrollWidth, clientWidth (of its
    mjx-container), column (px the content column leaves it)}.
    """
    problems = []
    for item in items:
        scrolls = item["scrollWidth"] > item["clientWidth"] + 1
        width = max(item["width"], item["scrollWidth"] if scrolls else 0)
        if width > item["column"] + 1:
            tex = " ".join(item["tex"].split())
            problems.append(f"display math too wide: {width:.0f} px in a "
                            f"{item['column']:.0f} px column: {tex[:60]!r}")
    return problems


def setup_cell_problems(inputs: list[dict]) -> list[str]:
    """A set-up cell left in the page. inputs: [{cell, text}] of code cell inputs."""
    return [f"set-up cell {item['cell']} in the HTML (tag it remove-input): "
            f"{item['text'].strip().splitlines()[0][:60]!r}"
            for item in inputs if is_setup_source(item["text"])]


def png_dpi(data: bytes) -> float | None:
    """The resolution a PNG records (pHYs chunk, pixels per metre) in dpi, or None."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    i = 8
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        if kind == b"pHYs" and length >= 9:
            x, _, unit = struct.unpack(">IIB", data[i + 8:i + 17])
            return round(x * 0.0254, 1) if unit == 1 and x else None
        if kind in (b"IDAT", b"IEND"):  # pHYs must come before the image data
            return None
        i += 12 + length
    return None


def label_px(natural: float, shown: float, dpi: float | None) -> float:
    """CSS px that a figure's 10-pt text takes with the image shown at `shown` px."""
    return LABEL_PT * (dpi or DEFAULT_DPI) / 72 * shown / natural


def image_problems(items: list[dict]) -> list[str]:
    """Messages for figures too scaled down to read, or wider than the column.

    items: {src, kind, cell, natural, shown, column (px left to it), dpi (or None)}.
    """
    problems = []
    for item in items:
        src = item["src"] if not item["src"].startswith("data:") else "an inline image"
        name = src.rsplit("/", 1)[-1][:60]
        where = f"figure in {_where(item)}" if item.get("kind") else "figure"
        shown, dpi = item["shown"], item.get("dpi") or DEFAULT_DPI
        if shown > item["column"] + 1:
            problems.append(f"{where} wider than the column: {shown:.0f} px in "
                            f"{item['column']:.0f} px: {name}")
        px = label_px(item["natural"], shown, dpi)
        if px < MIN_LABEL_PX:
            problems.append(f"{where} text too small: {item['natural']} px image at "
                            f"{dpi:g} dpi shown {shown:.0f} px wide, 10-pt labels at "
                            f"{px:.1f} px (< {MIN_LABEL_PX:g}): {name}")
    return problems


def image_dpi(html_dir: Path, page: str, src: str) -> float | None:
    """The dpi of the image `src` on `page` (a file of the site or a data: URI)."""
    if src.startswith("data:image/png;base64,"):
        return png_dpi(base64.b64decode(src.split(",", 1)[1][:1 << 16]))
    resolved = resolve_link(page, src)
    path = html_dir / resolved[0] if resolved else None
    if path is None or not path.is_file() or path.suffix.lower() != ".png":
        return None
    with open(path, "rb") as f:
        return png_dpi(f.read(1 << 16))


# ============================================================================ static checks
def site_files(html_dir: Path) -> set[str]:
    return {p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*") if p.is_file()}


def content_pages(files: set[str]) -> list[str]:
    """The HTML pages to load: everything but the theme's assets and the generated index."""
    return sorted(f for f in files if f.endswith(".html") and not f.startswith(("_static/", "_sources/"))
                  and f not in SKIP_PAGES)


# ============================================================================ the browser
def serve(html_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve html_dir on 127.0.0.1 (a free port) in a daemon thread; return (server, base URL)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


JS_WAIT_MATH = """async () => {
  const hasMath = document.querySelector('.math, span.math, div.math') !== null;
  const mj = window.MathJax;
  if (!(mj && mj.startup && mj.startup.promise)) return {hasMath, loaded: false};
  await mj.startup.promise;
  return {hasMath, loaded: true, typeset: document.querySelectorAll('mjx-container').length};
}"""

JS_WAIT_IMAGES = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return imgs.filter(i => i.naturalWidth === 0).map(i => i.getAttribute('src'));
}"""

JS_TEXTS = """() => {
  const skip = new Set(['PRE', 'CODE', 'SCRIPT', 'STYLE', 'TEXTAREA', 'NOSCRIPT', 'MJX-CONTAINER']);
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    let skipped = false;
    for (let e = n.parentElement; e; e = e.parentElement) {
      if (skip.has(e.tagName) || e.classList.contains('highlight')) { skipped = true; break; }
    }
    if (!skipped && n.textContent.trim()) out.push(n.textContent);
  }
  return out;
}"""

JS_PAGE_FACTS = """() => {
  const outputs = Array.from(document.querySelectorAll('.output')).map(e => ({
    classes: e.className, text: e.textContent}));
  const article = document.querySelector('article') || document.body;
  const figures = Array.from(article.querySelectorAll('img')).filter(
    i => i.naturalWidth > 0 && i.getBoundingClientRect().height > 0).length;
  const widgets = document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"], .jupyter-widgets').length;
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
  const downloads = Array.from(document.querySelectorAll('.dropdown-download-buttons a[href]'))
    .map(a => a.getAttribute('href'));
  return {outputs, text: document.body.textContent, figures, widgets, links, downloads,
          tables: article.querySelectorAll('table').length};
}"""


# Facts for the presentation checks; run after the screenshot (it opens hidden cells).
JS_PRESENTATION = r"""() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const article = document.querySelector('article.bd-article')
    || document.querySelector('article') || document.body;
  const column = article.getBoundingClientRect();
  const cells = Array.from(article.querySelectorAll('div.cell'));
  const where = e => ({
    kind: e.closest('.cell_input') ? 'code cell'
      : e.closest('.cell_output') ? 'output' : 'code block',
    cell: e.closest('div.cell') ? cells.indexOf(e.closest('div.cell')) + 1 : 0});
  const px = (style, name) => parseFloat(style[name]) || 0;

  // 1. boxes in code cells, outputs and <pre> blocks whose content is wider
  const candidates = [], seen = new Set();
  for (const area of article.querySelectorAll('.cell_input, .cell_output, pre')) {
    for (const e of [area, ...area.querySelectorAll('*')]) {
      if (seen.has(e)) continue;
      seen.add(e);
      if (e.closest('mjx-container') || e.tagName === 'IMG') continue;
      if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) candidates.push(e);
    }
  }
  const innermost = candidates.filter(
    e => !candidates.some(o => o !== e && e.contains(o)));
  const inner = (e, style) => e.clientWidth - px(style, 'paddingLeft')
    - px(style, 'paddingRight');
  const clipped = innermost.map(e => {
    const item = {...where(e), tag: e.tagName.toLowerCase(), scrollWidth: e.scrollWidth,
                  clientWidth: e.clientWidth, lines: [], charWidth: 0, text: '',
                  avail: inner(e, getComputedStyle(e))};
    const pre = e.tagName === 'PRE' ? e : e.querySelector('pre');
    if (pre) {
      const texts = pre.innerText.replace(/\n$/, '').split('\n');
      const probe = document.createElement('span');
      probe.style.cssText = 'position:absolute;visibility:hidden;white-space:pre';
      pre.appendChild(probe);
      item.lines = texts.map(text => {
        probe.textContent = text;
        return {text, width: probe.getBoundingClientRect().width};
      });
      probe.textContent = '0'.repeat(100);
      item.charWidth = probe.getBoundingClientRect().width / 100;
      probe.remove();
      if (pre !== e) {  // the <pre>'s own padding, not its wrapper's, bounds a line
        item.avail = Math.min(item.avail, inner(e, getComputedStyle(pre)));
      }
    } else {
      item.text = (e.innerText || e.textContent || '').trim().split('\n')[0];
    }
    return item;
  });

  // 2. display math wider than what the column leaves it
  const texOf = new Map();
  const doc = window.MathJax && MathJax.startup && MathJax.startup.document;
  if (doc && doc.math) {
    for (const m of doc.math) if (m.typesetRoot) texOf.set(m.typesetRoot, m.math);
  }
  const displays = article.querySelectorAll('mjx-container[display="true"]');
  const math = Array.from(displays).map(c => {
    const box = c.getBoundingClientRect(), typeset = c.querySelector('mjx-math');
    return {tex: texOf.get(c) || c.textContent,
            width: typeset ? typeset.getBoundingClientRect().width : 0,
            scrollWidth: c.scrollWidth, clientWidth: c.clientWidth,
            column: Math.min(c.clientWidth || box.width, column.right - box.left)};
  });

  // 3. code cell inputs that mention attn_lib (Python decides which install it)
  const inputs = Array.from(article.querySelectorAll('.cell_input'))
    .filter(e => (e.textContent || '').includes('attn_lib'))
    .map(e => ({cell: where(e).cell, text: e.innerText || e.textContent}));

  // 4. figures: natural and shown width
  const images = Array.from(article.querySelectorAll('img'))
    .filter(i => i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)
    .map(i => {
      const box = i.getBoundingClientRect();
      return {...where(i), src: i.getAttribute('src') || '', natural: i.naturalWidth,
              shown: box.width, column: column.right - box.left};
    });
  images.forEach(i => { if (i.kind === 'code block') { i.kind = ''; i.cell = 0; } });
  return {clipped, math, inputs, images, column: column.width};
}"""


@dataclass
class Report:
    problems: dict = field(default_factory=dict)  # page -> [problem]
    notes: dict = field(default_factory=dict)  # page -> [problem] not enforced
    enforce_presentation: bool = True

    def add(self, page: str, problem: str, *, presentation: bool = False) -> None:
        """Record a problem; a presentation problem only fails the run when enforced."""
        noted = presentation and not self.enforce_presentation
        (self.notes if noted else self.problems).setdefault(page, []).append(problem)


class Browser:
    """One headless Chromium; every page gets a fresh context that may reach only 127.0.0.1."""

    def __init__(self, playwright, base_url: str, executable: str = CHROMIUM):
        self.base_url = base_url
        self.browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)

    def open(self, path: str, *, color_scheme: str = "light"):
        """Load base_url + path; return (page, errors) where errors collects JS/resource failures."""
        context = self.browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=color_scheme)
        errors, blocked = [], []

        def route(r):
            if r.request.url.startswith(self.base_url):
                return r.continue_()
            blocked.append(r.request.url)
            return r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"JavaScript error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and not _from_blocked(msg, blocked)
                and errors.append(f"console error: {msg.text}"))
        page.on("response", lambda resp: resp.status >= 400 and not resp.url.endswith("/favicon.ico")
                and errors.append(f"HTTP {resp.status} for {resp.url}"))
        page.on("requestfailed", lambda req: req.url.startswith(self.base_url)
                and errors.append(f"failed to load {req.url}: {req.failure}"))
        page.goto(self.base_url + path, wait_until="load", timeout=60_000)
        page.blocked = blocked
        return page, errors

    def close(self):
        self.browser.close()


def _from_blocked(msg, blocked: list) -> bool:
    """A console error caused by our own blocking of a non-local URL (offline, like CI)."""
    url = (msg.location or {}).get("url", "")
    return bool(url) and not url.startswith("http://127.0.0.1") or any(u in msg.text for u in blocked)


def check_page(browser: Browser, page_path: str, shots: Path, report: Report,
               chapter: dict | None, html_dir: Path | None = None) -> dict:
    """Load one page, run the in-browser checks, save its screenshot; return a few facts."""
    page, errors = browser.open(page_path)
    try:
        math = page.evaluate(JS_WAIT_MATH)
        missing_images = page.evaluate(JS_WAIT_IMAGES)
        texts = page.evaluate(JS_TEXTS)
        facts = page.evaluate(JS_PAGE_FACTS)
        target = screenshot_path(shots, page_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
        layout = page.evaluate(JS_PRESENTATION)  # after the screenshot: opens hidden
        page.wait_for_timeout(100)  # late console errors
    finally:
        page.context.close()
    presentation_checks(page_path, layout, report, html_dir)
    for e in errors:
        report.add(page_path, e)
    if math["hasMath"] and not math["loaded"]:
        report.add(page_path, "page has math but MathJax did not load")
    elif math["hasMath"] and not math.get("typeset"):
        report.add(page_path, "page has math but no mjx-container after typesetting")
    joined = "\n".join(texts)
    for tex in sorted(set(find_raw_tex(joined))):
        report.add(page_path, f"raw TeX: {tex[:80]!r}")
    for markup in sorted(set(find_raw_markup(joined))):
        report.add(page_path, f"unrendered markup: {markup[:80]!r}")
    for src in missing_images:
        report.add(page_path, f"missing image: {src}")
    for problem in output_problems(facts["outputs"], facts["text"]):
        report.add(page_path, problem)
    if facts["widgets"] and not (facts["figures"] or facts["tables"]):
        report.add(page_path, "widgets without a visible static fallback (no figure or table)")
    if chapter is not None:
        if not any(d.endswith(chapter["ipynb"]) for d in facts["downloads"]):
            report.add(page_path, f"no {chapter['ipynb']} in the download menu (found {facts['downloads']})")
        if chapter["colab"] not in facts["links"]:
            colab = [link for link in facts["links"] if "colab.research.google.com" in link]
            report.add(page_path, f"no Colab link {chapter['colab']} (found {colab})")
    return {"math": math.get("typeset", 0), "figures": facts["figures"], "widgets": facts["widgets"]}


def presentation_checks(page_path: str, layout: dict, report: Report,
                        html_dir: Path | None) -> None:
    """Clipped code and output, too-wide math, a visible set-up cell, small figure text.

    layout: what JS_PRESENTATION returns for the page; html_dir: the site (image dpi).
    """
    for image in layout["images"]:
        dpi = image_dpi(html_dir, page_path, image["src"]) if html_dir else None
        image["dpi"] = dpi
    problems = (clipped_problems(layout["clipped"]) + math_problems(layout["math"])
                + setup_cell_problems(layout["inputs"])
                + image_problems(layout["images"]))
    for problem in problems:
        report.add(page_path, problem, presentation=True)


def check_search(browser: Browser, report: Report) -> int:
    """search.html?q=quadratic must list at least one result."""
    page, errors = browser.open(f"search.html?q={SEARCH_QUERY}")
    try:
        try:
            page.wait_for_selector("#search-results ul.search li", timeout=20_000)
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError; reported below
            pass
        hits = page.locator("#search-results ul.search li").count()
    finally:
        page.context.close()
    for e in errors:
        report.add("search.html", e)
    if hits == 0:
        report.add("search.html", f"searching for {SEARCH_QUERY!r} found nothing")
    return hits


def check_dark_mode(browser: Browser, page_path: str, shots: Path, report: Report) -> None:
    """Switch to dark with the theme switcher; the background must turn dark; screenshot it."""
    page, errors = browser.open(page_path)
    try:
        page.evaluate(JS_WAIT_MATH)
        button = page.locator(".theme-switch-button:visible").first
        for _ in range(3):  # the switcher cycles light -> dark -> auto
            if page.evaluate("document.documentElement.dataset.theme") == "dark":
                break
            button.click()
            page.wait_for_timeout(200)
        theme = page.evaluate("document.documentElement.dataset.theme")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        text = page.evaluate("getComputedStyle(document.querySelector('article') || document.body).color")
        target = screenshot_path(shots, page_path, "dark")
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
    finally:
        page.context.close()
    for e in errors:
        report.add(f"{page_path} (dark)", e)
    if theme != "dark":
        report.add(f"{page_path} (dark)", f"theme switcher did not reach dark mode (data-theme={theme!r})")
    elif not (luminance(background) < 0.2 < luminance(text)):
        report.add(f"{page_path} (dark)", f"dark mode colours wrong: background {background}, text {text}")


# ============================================================================ main
def run(html_dir: Path, shots: Path, book_root: Path, executable: str,
        presentation: bool = True) -> Report:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(book_root))
    from attn_lib.book import book_repository

    report = Report(enforce_presentation=presentation)
    files = site_files(html_dir)
    pages = content_pages(files)
    parsed = {p: parse_page((html_dir / p).read_text(encoding="utf-8")) for p in pages}
    for problem in broken_links(parsed, files):
        report.add(problem.split(":", 1)[0], "broken link" + problem.split(":", 1)[1])

    repo_url, branch = book_repository(book_root / "_config.yml")
    chapters = {}
    toc = toc_pages(book_root / "_toc.yml")
    if not any(f"{entry}.html" in files for entry in toc):  # e.g. a single-page build
        print(f"note: no page of {book_root / '_toc.yml'} is built here; toc and chapter checks skipped")
    for entry in toc if any(f"{entry}.html" in files for entry in toc) else []:
        if f"{entry}.html" not in files:
            report.add(f"{entry}.html", "listed in _toc.yml but not built")
        elif is_chapter(entry):
            chapters[f"{entry}.html"] = {"ipynb": f"{entry.rsplit('/', 1)[-1]}.ipynb",
                                         "colab": expected_colab_url(repo_url, branch, entry)}

    server, base_url = serve(html_dir)
    try:
        with sync_playwright() as playwright:
            browser = Browser(playwright, base_url, executable)
            for page_path in pages:
                if parsed[page_path].redirect is not None:  # e.g. index.html -> the root page
                    print(f"ok   {page_path}: redirects to {parsed[page_path].redirect}", flush=True)
                    continue
                facts = check_page(browser, page_path, shots, report,
                                   chapters.get(page_path), html_dir)
                status = ("FAIL" if page_path in report.problems
                          else "note" if page_path in report.notes else "ok  ")
                print(f"{status} {page_path}: {facts['math']} typeset math, {facts['figures']} figures"
                      + (f", {facts['widgets']} widgets" if facts["widgets"] else ""), flush=True)
            if "search.html" in files:
                hits = check_search(browser, report)
                print(f"{'ok  ' if hits else 'FAIL'} search for {SEARCH_QUERY!r}: {hits} results", flush=True)
            loadable = [p for p in pages if parsed[p].redirect is None]
            dark_page = next(iter(chapters), loadable[0])
            check_dark_mode(browser, dark_page, shots, report)
            print(f"{'FAIL' if f'{dark_page} (dark)' in report.problems else 'ok  '} dark mode on {dark_page}")
            browser.close()
    finally:
        server.shutdown()
    return report


def print_notes(report: Report) -> None:
    """The presentation problems of a run that does not enforce them."""
    if not report.notes:
        return
    count = sum(map(len, report.notes.values()))
    print(f"\nnot enforced ({PRESENTATION_ENV}=0 / --no-presentation): {count} "
          f"presentation problems on {len(report.notes)} pages")
    for page, notes in sorted(report.notes.items()):
        print(f"\n{page}")
        for note in notes:
            print(f"  - note: {note}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, help="default: <html_dir>/../screenshots")
    parser.add_argument("--book-root", type=Path, default=ROOT, help="where _config.yml and _toc.yml are")
    parser.add_argument("--chromium", default=CHROMIUM, help="the Chromium binary Playwright drives")
    parser.add_argument("--presentation", action=argparse.BooleanOptionalAction,
                        default=None,
                        help="fail on clipped code/output, too-wide math, a visible "
                             "set-up cell and unreadable figures (default: "
                             f"${PRESENTATION_ENV}, on when unset); "
                             "--no-presentation lists them as notes")
    args = parser.parse_args(argv)
    try:
        presentation = (presentation_default() if args.presentation is None
                        else args.presentation)
    except ValueError as exc:
        parser.error(str(exc))
    html_dir = args.html_dir.resolve()
    if not (html_dir / "index.html").is_file() and not any(html_dir.glob("*.html")):
        parser.error(f"html_dir {args.html_dir} holds no built pages")
    if not Path(args.chromium).exists():
        parser.error(f"no Chromium at {args.chromium}: apt-get install -y chromium")
    shots = (args.screenshots or html_dir.parent / "screenshots").resolve()
    report = run(html_dir, shots, args.book_root.resolve(), args.chromium, presentation)
    print(f"\nscreenshots: {shots}")
    print_notes(report)
    if not report.problems:
        print("check-html: all pages passed")
        return 0
    print(f"check-html: {sum(map(len, report.problems.values()))} problems on {len(report.problems)} pages")
    for page, problems in sorted(report.problems.items()):
        print(f"\n{page}")
        for p in problems:
            print(f"  - {p}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
