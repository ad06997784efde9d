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
    from attn_lib.setup import book_repository

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
