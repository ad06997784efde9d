"""tools/check_html.py: the pure checks, on small HTML snippets (no browser, no build)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_html", ROOT / "tools" / "check_html.py")
check_html = importlib.util.module_from_spec(_spec)
sys.modules["check_html"] = check_html  # dataclasses look their module up there
_spec.loader.exec_module(check_html)


# ------------------------------------------------------------------ links
@pytest.mark.parametrize("href, kind", [
    ("https://colab.research.google.com/x", "external"), ("//cdn.example.org/a.js", "external"),
    ("mailto:a@b.c", "external"), ("#sec", "fragment"), ("#", "skip"), ("", "skip"),
    ("../_static/a.css?v=1", "local"), ("ch2.html#x", "local")])
def test_classify_href(href, kind):
    assert check_html.classify_href(href) == kind


@pytest.mark.parametrize("page, href, resolved", [
    ("book/ch1.html", "ch2.html", ("book/ch2.html", "")),
    ("book/ch1.html", "../_static/theme.css?digest=abc", ("_static/theme.css", "")),
    ("book/ch1.html", "../_sources/book/ch1.ipynb", ("_sources/book/ch1.ipynb", "")),
    ("book/ch1.html", "#claim-3", ("book/ch1.html", "claim-3")),
    ("book/ch1.html", "ch2.html#the%20end", ("book/ch2.html", "the end")),
    ("index.html", "book/", ("book/index.html", "")),
    ("index.html", "./", ("index.html", "")),
    ("book/ch1.html", "../../outside.html", ("../outside.html", "")),
    ("book/ch1.html", "https://example.org/", None),
])
def test_resolve_link(page, href, resolved):
    assert check_html.resolve_link(page, href) == resolved


def test_parse_page_collects_ids_links_and_redirects():
    info = check_html.parse_page(
        '<h2 id="a">A</h2><a name="old"></a><a href="b.html#c">x</a><img src="i.png">'
        '<script src="s.js"></script><link rel="stylesheet" href="t.css"><p id="d">')
    assert info.ids == {"a", "old", "d"}
    assert [v for _, _, v in info.links] == ["b.html#c", "i.png", "s.js", "t.css"]
    redirect = check_html.parse_page('<meta http-equiv="Refresh" content="0; url=intro.html" />')
    assert redirect.redirect == "intro.html" and redirect.links == [("meta", "url", "intro.html")]


def test_broken_links_reports_missing_files_and_fragments():
    pages = {
        "index.html": check_html.parse_page('<a href="book/ch1.html#ok">1</a><a href="book/ch1.html#gone">2</a>'
                                            '<a href="#top">top</a><img src="_images/missing.png">'),
        "book/ch1.html": check_html.parse_page('<h1 id="ok">Ch 1</h1><a href="../index.html">home</a>'
                                               '<a href="https://example.org/#x">ext</a>'),
    }
    files = {"index.html", "book/ch1.html"}
    problems = check_html.broken_links(pages, files)
    assert len(problems) == 3
    assert any("#gone" in p and "no #gone in book/ch1.html" in p for p in problems)
    assert any("no #top in index.html" in p for p in problems)
    assert any("missing file _images/missing.png" in p for p in problems)


def test_broken_links_accepts_a_sound_site():
    pages = {"a.html": check_html.parse_page('<p id="x"></p><a href="#x">x</a><a href="b.html">b</a>'),
             "b.html": check_html.parse_page('<a href="a.html#x">a</a><a href="data.csv">d</a>')}
    assert check_html.broken_links(pages, {"a.html", "b.html", "data.csv"}) == []


# ------------------------------------------------------------------ raw TeX and markup
@pytest.mark.parametrize("text, found", [
    (r"the cost is \(N^2 d\) here", [r"\(N^2 d\)"]),
    ("the cost is $N^2 d$ here", ["$N^2 d$"]),
    ("display $$\\sum_i x_i$$ math", ["$$\\sum_i x_i$$"]),
    (r"\[ a = b \]", [r"\[ a = b \]"]),
    (r"\begin{align} x \end{align}", [r"\begin{align}"]),
])
def test_find_raw_tex_flags_untypeset_math(text, found):
    assert check_html.find_raw_tex(text) == found


@pytest.mark.parametrize("text", [
    "prices from $5 to $10", "it costs $5, or $ 6", "plain text with no math", "a lone $ sign",
    "path C:\\temp\\(copy)", "USD$",
])
def test_find_raw_tex_ignores_ordinary_text(text):
    assert check_html.find_raw_tex(text) == []


@pytest.mark.parametrize("text, found", [
    ("the ratio is {glue:text}`c3_ratio`", ["{glue:text}`"]),
    ("value {glue}`x`", ["{glue}`"]),
    (":::{admonition} Exercise 1\nbody\n:::", [":::{admonition}", "{admonition}"]),
    ("nothing to see", []),
    ("| # | claim | |---:|---| | 1 | x |", ["|---:|"]),
    ("| # | claim | |—:|—|:—:| | 1 | x |", ["|—:|", "|:—:|"]),
    ("a | b and -- c |", []),
])
def test_find_raw_markup(text, found):
    assert check_html.find_raw_markup(text) == found


# ------------------------------------------------------------------ outputs
def test_output_problems():
    outputs = [
        {"classes": "output stream highlight-myst-ansi", "text": "claim 1: holds"},
        {"classes": "output traceback highlight-ipythontb", "text": "ValueError: bad\n..."},
        {"classes": "output stderr", "text": "UserWarning: slow path\n"},
        {"classes": "output stderr", "text": " 40%|████      | 4/10 [00:01<00:01]"},
    ]
    problems = check_html.output_problems(outputs, "page text")
    assert problems == ["error output: ValueError: bad", "stderr output: UserWarning: slow path"]


def test_output_problems_finds_traceback_text_anywhere():
    assert check_html.output_problems([], "x\nTraceback (most recent call last):\n  File") == [
        "text 'Traceback (most recent call last)' in the page"]
    assert check_html.output_problems([], "all fine") == []


# ------------------------------------------------------------------ book structure
def test_toc_pages_and_chapters(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n    chapters:\n"
                   "      - file: book/ch1_a\n        sections:\n          - file: book/ch1_b\n"
                   "  - caption: A\n    chapters:\n      - file: book/appendix_x\n")
    assert check_html.toc_pages(toc) == ["book/intro", "book/ch1_a", "book/ch1_b", "book/appendix_x"]
    assert [check_html.is_chapter(e) for e in ("book/ch1_a", "book/appendix_x", "book/intro", "ch2")] == \
        [True, False, False, True]


def test_expected_colab_url_follows_config():
    url = check_html.expected_colab_url("https://github.com/org/repo", "main", "book/ch1_handshakes")
    assert url == "https://colab.research.google.com/github/org/repo/blob/main/book/ch1_handshakes.ipynb"


def test_expected_colab_url_for_this_book_points_at_an_existing_notebook():
    from attn_lib.book import book_repository

    url = check_html.expected_colab_url(*book_repository(ROOT / "_config.yml"), "book/appendix_claims")
    assert url.endswith("/blob/main/book/appendix_claims.ipynb")
    assert (ROOT / "book" / "appendix_claims.ipynb").is_file()


def test_screenshot_path(tmp_path):
    assert check_html.screenshot_path(tmp_path, "book/ch1.html") == tmp_path / "book" / "ch1.png"
    assert check_html.screenshot_path(tmp_path, "index.html", "dark") == tmp_path / "dark" / "index.png"


def test_content_pages_skip_assets_and_genindex():
    files = {"index.html", "genindex.html", "search.html", "book/ch1.html", "_static/x.html", "_sources/a.html",
             "_images/a.png"}
    assert check_html.content_pages(files) == ["book/ch1.html", "index.html", "search.html"]


@pytest.mark.parametrize("color, low, high", [
    ("rgb(0, 0, 0)", 0, 0.001), ("rgb(255, 255, 255)", 0.999, 1.0), ("rgba(18, 18, 18, 1)", 0, 0.02),
    ("rgb(206 206 206)", 0.5, 0.7)])
def test_luminance(color, low, high):
    assert low <= check_html.luminance(color) <= high


def test_luminance_rejects_other_formats():
    with pytest.raises(ValueError, match="css_color"):
        check_html.luminance("#ffffff")


def test_main_rejects_an_empty_directory(tmp_path, capsys):
    with pytest.raises(SystemExit):
        check_html.main([str(tmp_path)])
    assert "holds no built pages" in capsys.readouterr().err


def test_report_fails_on_every_javascript_error():
    # The duplicated thebe script is removed at build time (tools/sphinx_dedupe_scripts.py),
    # so no JavaScript error is tolerated.
    report = check_html.Report()
    report.add("a.html", "JavaScript error: Identifier 'THEBE_JS_URL' has already been declared")
    report.add("a.html", "JavaScript error: x is not defined")
    assert len(report.problems["a.html"]) == 2


# ------------------------------------------------------------------ presentation (issue 13)
@pytest.mark.parametrize("value, on", [
    (None, True), ("1", True), ("true", True), ("ON", True),
    ("0", False), ("no", False), ("off", False), ("", False)])
def test_presentation_switch(value, on):
    environ = {} if value is None else {check_html.PRESENTATION_ENV: value}
    assert check_html.presentation_default(environ) is on


def test_presentation_switch_rejects_other_values():
    with pytest.raises(ValueError, match="CHECK_HTML_PRESENTATION"):
        check_html.presentation_default({"CHECK_HTML_PRESENTATION": "maybe"})


def _pre(kind, cell, widths, avail=652.0, char=8.43):
    """A <pre> as the browser reports it: one line per width (px)."""
    lines = [{"text": f"line {i} " + "x" * int(w // char), "width": w}
             for i, w in enumerate(widths)]
    return {"kind": kind, "cell": cell, "tag": "pre", "scrollWidth": max(widths) + 32,
            "clientWidth": avail + 32, "avail": avail, "charWidth": char, "text": "",
            "lines": lines}


def test_clipped_problems_name_the_first_line_too_wide():
    pre = _pre("code cell", 3, [100.0, 700.0, 800.0])
    (problem,) = check_html.clipped_problems([pre])
    assert problem.startswith(
        "clipped code cell 3: 2 lines too wide (77 characters fit): 'line 1 xxx")
    assert len(problem.split(": ", 2)[2]) == 62  # the line's first 60 chars, quoted


def test_clipped_problems_for_a_box_without_lines():
    table = {"kind": "output", "cell": 27, "tag": "div", "scrollWidth": 700,
             "clientWidth": 688, "avail": 688, "charWidth": 0, "lines": [],
             "text": "model  weights  KV cache"}
    assert check_html.clipped_problems([table]) == [
        "clipped output 27: <div> content 700 px in a 688 px box: "
        "'model  weights  KV cache'"]
    # a <pre> that scrolls though no line measures wider (a trailing tab) still fails
    assert check_html.clipped_problems([_pre("code block", 0, [600.0])])[0].startswith(
        "clipped code block: <pre> content")


def test_clipped_problems_accept_nothing_clipped():
    assert check_html.clipped_problems([]) == []


def test_math_problems():
    box = {"scrollWidth": 688, "clientWidth": 688, "column": 688}
    fits = dict(box, tex="a = b", width=300)
    tex = "F_{\\text{layer}}(N) =\n \\underbrace{8Nd^2}_{\\text{projections}} + x"
    wide = dict(box, tex=tex, width=930, scrollWidth=930)
    scrolls = dict(box, tex="c = d", width=0, scrollWidth=700)
    problems = check_html.math_problems([fits, wide, scrolls])
    assert problems[0] == (
        "display math too wide: 930 px in a 688 px column: "
        "'F_{\\\\text{layer}}(N) = \\\\underbrace{8Nd^2}_{\\\\text{projections}'")
    assert len(problems) == 2
    assert problems[1].startswith("display math too wide: 700 px")


def test_setup_cell_problems():
    from attn_lib import colab

    cell = colab.colab_cell("https://github.com/org/repo")
    inputs = [{"cell": 1, "text": cell},
              {"cell": 2, "text": "import attn_lib\nfrom attn_lib import glue"}]
    assert check_html.setup_cell_problems(inputs) == [
        "set-up cell 1 in the HTML (tag it remove-input): "
        f"'{cell.splitlines()[0][:60]}'"]


def _png(width=10, height=10, dpi=None):
    import struct
    import zlib

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    if dpi:
        ppm = round(dpi / 0.0254)
        body += chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    pixels = chunk(b"IDAT", zlib.compress(raw))
    return b"\x89PNG\r\n\x1a\n" + body + pixels + chunk(b"IEND", b"")


def test_png_dpi():
    assert check_html.png_dpi(_png(dpi=100)) == pytest.approx(100, abs=0.1)
    assert check_html.png_dpi(_png(dpi=200)) == pytest.approx(200, abs=0.1)
    assert check_html.png_dpi(_png()) is None
    assert check_html.png_dpi(b"GIF89a...") is None


def test_image_dpi_reads_site_files_and_data_uris(tmp_path):
    import base64

    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(_png(dpi=150))
    page = "book/ch1.html"
    dpi = check_html.image_dpi(tmp_path, page, "../_images/a.png")
    assert dpi == pytest.approx(150, 0.01)
    uri = "data:image/png;base64," + base64.b64encode(_png(dpi=72)).decode()
    assert check_html.image_dpi(tmp_path, page, uri) == pytest.approx(72, 0.01)
    assert check_html.image_dpi(tmp_path, page, "../_images/none.png") is None


def test_label_px_follows_dpi_and_scale():
    assert check_html.label_px(640, 640, 72) == pytest.approx(10)
    assert check_html.label_px(1280, 640, 144) == pytest.approx(10)  # retina, half size
    expected = 10 * 100 / 72 * 688 / 1250  # no pHYs: matplotlib's 100 dpi
    assert check_html.label_px(1250, 688, None) == pytest.approx(expected)


def test_image_problems():
    base = {"kind": "output", "cell": 13, "column": 688, "dpi": 100.0}
    readable = dict(base, src="../_images/ok.png", natural=990, shown=688)  # 9.7 px
    small = dict(base, src="../_images/wide.png", natural=1250, shown=688)  # 7.6 px
    retina = dict(base, src="../_images/hi.png", natural=1250, shown=688, dpi=200.0)
    overflow = dict(base, src="../_images/big.png", natural=800, shown=800)
    problems = check_html.image_problems([readable, small, retina, overflow])
    assert problems == [
        "figure in output 13 text too small: 1250 px image at 100 dpi shown 688 px "
        "wide, 10-pt labels at 7.6 px (< 9): wide.png",
        "figure in output 13 wider than the column: 800 px in 688 px: big.png"]


def test_presentation_problems_fail_only_when_enforced():
    setup_input = {"cell": 1, "text": "if importlib.util.find_spec('attn_lib'): 0"}
    layout = {"clipped": [_pre("output", 1, [800.0])], "math": [], "images": [],
              "inputs": [setup_input]}
    enforced, notes = check_html.Report(), check_html.Report(enforce_presentation=False)
    check_html.presentation_checks("book/ch1.html", layout, enforced, None)
    check_html.presentation_checks("book/ch1.html", layout, notes, None)
    assert len(enforced.problems["book/ch1.html"]) == 2 and not enforced.notes
    assert not notes.problems and len(notes.notes["book/ch1.html"]) == 2
    notes.add("book/ch1.html", "JavaScript error: x")  # other checks always fail
    assert notes.problems == {"book/ch1.html": ["JavaScript error: x"]}


_PAGE = """<!doctype html><html><body>
<article class="bd-article" style="width: 400px; font: 16px sans-serif">
<div class="cell"><div class="cell_input">
<pre style="overflow-x: auto; padding: 8px; font: 14px monospace">short = 1
{long}</pre></div>
<div class="cell_output"><pre style="overflow-x: auto">fits</pre></div></div>
<div class="cell"><div class="cell_input">
<pre style="overflow-x: auto">import importlib.util as u
if u.find_spec("attn_lib") is None: 0</pre></div></div>
<details><summary>solution</summary><div class="cell"><div class="cell_input">
<pre style="overflow-x: auto">hidden = "{long}"</pre></div></div></details>
<img src="wide.png" style="max-width: 100%">
</article></body></html>"""


@pytest.mark.skipif(not Path(check_html.CHROMIUM).exists(), reason="no Chromium here")
def test_presentation_checks_in_a_browser(tmp_path):
    """JS_PRESENTATION on a page: clipped cell, hidden one, set-up cell, a figure."""
    sync_api = pytest.importorskip("playwright.sync_api")
    (tmp_path / "index.html").write_text(_PAGE.replace("{long}", "x" * 100))
    (tmp_path / "wide.png").write_bytes(_png(width=1000, height=10, dpi=100))
    server, base_url = check_html.serve(tmp_path)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = check_html.Browser(playwright, base_url)
            page, _ = browser.open("index.html")
            layout = page.evaluate(check_html.JS_PRESENTATION)
            page.context.close()
            browser.close()
    finally:
        server.shutdown()
    report = check_html.Report()
    check_html.presentation_checks("index.html", layout, report, tmp_path)
    problems = report.problems["index.html"]
    assert len(problems) == 4, "\n".join(problems)
    assert problems[0].startswith("clipped code cell 1: 1 line too wide (")
    assert problems[0].endswith(f"{'x' * 60!r}")
    assert problems[1].startswith("clipped code cell 3: 1 line too wide")
    assert "hidden" in problems[1]  # measured with <details> opened
    assert problems[2].startswith("set-up cell 2 in the HTML (tag it remove-input)")
    assert problems[3].startswith(
        "figure text too small: 1000 px image at 100 dpi shown 400")
