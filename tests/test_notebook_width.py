"""Reading width: no code line and no printed line in any book notebook
wider than width_report.MAX_WIDTH (80) characters, and the set-up cell (first code cell) tagged remove-input.

The rule lives in tools/width_report.py (`python tools/width_report.py` lists what
breaks it) and is tested here on synthetic notebooks, then applied to every book notebook.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from attn_lib import book, colab

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "width_report", ROOT / "tools" / "width_report.py")
width_report = importlib.util.module_from_spec(_spec)
sys.modules["width_report"] = width_report  # dataclasses look their module up there
_spec.loader.exec_module(width_report)

MAX = width_report.MAX_WIDTH
SETUP_SOURCE = colab.colab_cell("https://github.com/org/repo")
# A set-up cell whose lines fit (the generated one has a 150-character pip line today).
SHORT_SETUP = ("import importlib.util, subprocess, sys\n"
               "if importlib.util.find_spec('attn_lib') is None:\n"
               "    subprocess.run([sys.executable, '-m', 'pip', 'install', URL])\n"
               "import attn_lib")


def notebook(*cells, setup_tags=("nbval-ignore-output", "remove-input")):
    """A notebook: title, the set-up cell (tagged setup_tags), then `cells`."""
    first = new_code_cell(SHORT_SETUP, metadata={"tags": list(setup_tags)},
                          outputs=[stream("cpu CPU float32\n")])
    return new_notebook(cells=[new_markdown_cell("# Title"), first, *cells])


def stream(text):
    return new_output("stream", name="stdout", text=text)


def result(text, **extra):
    data = {"text/plain": text, **extra}
    return new_output("execute_result", data=data, execution_count=1)


def kinds(nb):
    return [(f.kind, f.cell, f.line) for f in width_report.notebook_findings(nb, "nb")]


# ------------------------------------------------------------------ widths
@pytest.mark.parametrize("line, width", [
    ("abc", 3), ("", 0), ("\tx", 9), ("ab\tc", 9), ("日本", 4), ("10%\r100%", 4),
    ("\x1b[31mred\x1b[0m", 3), ("e\u0301", 1), ("QKᵀ ·", 5), ("█" * 3, 3)])
def test_display_width(line, width):
    assert width_report.display_width(line) == width


@given(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200))
def test_display_width_of_printable_ascii_is_its_length(line):
    assert width_report.display_width(line) == len(line)


@given(st.lists(st.integers(0, 2 * MAX), max_size=20))
def test_wide_lines_reports_exactly_the_lines_over_the_limit(lengths):
    found = width_report.wide_lines("\n".join("x" * n for n in lengths))
    expected = [(i, n) for i, n in enumerate(lengths, 1) if n > MAX]
    assert [(n, w) for n, w, _ in found] == expected


# ------------------------------------------------------------ the rule, on notebooks
def test_a_notebook_that_fits_passes():
    code = new_code_cell("x = 1\n" + "y" * (MAX - 4) + " = 2",
                         outputs=[stream("z" * MAX + "\n")])
    nb = notebook(code, new_markdown_cell("a " * 200 + "$$a = b$$"))
    assert width_report.notebook_findings(nb, "nb") == []


def test_a_long_code_line_fails_with_cell_and_line():
    nb = notebook(new_code_cell("short = 1\nlong = " + "1 + " * 30 + "1"))
    (finding,) = width_report.notebook_findings(nb, "nb")
    assert (finding.kind, finding.cell, finding.line) == ("code", 2, 2)
    assert finding.width == len("long = " + "1 + " * 30 + "1") > MAX
    assert str(finding).startswith("cell 2 line 2 [code 128 chars]: long = 1 + 1")


def test_long_printed_lines_fail():
    shown = new_output("display_data", data={"text/plain": "d" * 100})
    nb = notebook(new_code_cell("print(x)", outputs=[stream("ok\n" + "s" * (MAX + 1))]),
                  new_code_cell("x", outputs=[result("r" * (MAX + 5))]),
                  new_code_cell("display(x)", outputs=[shown]))
    assert kinds(nb) == [("output", 2, 2), ("output", 3, 1), ("output", 4, 1)]


def test_glue_and_widget_outputs_are_not_printed_lines():
    glued = new_output("display_data", data={"text/plain": "'" + "g" * 100 + "'"},
                       metadata={"scrapbook": {"name": "x", "mime_prefix": ""}})
    view = {"model_id": "abc", "version_major": 2}
    widget = result("interactive(children=(" + "w" * 100 + "))",
                    **{width_report.WIDGET_MIME: view})
    assert kinds(notebook(new_code_cell("glue('x', v)", outputs=[glued]),
                          new_code_cell("interact(f)", outputs=[widget]))) == []


def test_the_set_up_cell_must_be_tagged_remove_input():
    assert kinds(notebook(setup_tags=("nbval-ignore-output",))) == [("setup", 1, 0)]
    (finding,) = width_report.notebook_findings(notebook(setup_tags=()), "nb")
    assert "not tagged remove-input" in str(finding)


def test_the_first_code_cell_must_be_the_set_up_cell():
    setup_cell = new_code_cell(SHORT_SETUP, metadata={"tags": ["remove-input"]})
    nb = new_notebook(cells=[new_markdown_cell("# T"), new_code_cell("import attn_lib"),
                             setup_cell])
    (finding,) = width_report.notebook_findings(nb, "nb")
    assert finding.kind == "setup" and "not the set-up cell" in finding.text


@pytest.mark.parametrize("source, is_setup", [
    (SETUP_SOURCE, True),
    (SHORT_SETUP, True),
    ("import importlib.util\nif importlib.util.find_spec('attn_lib') is None: 0", True),
    ("!pip install -q git+https://github.com/org/attn-book.git", True),
    ("import attn_lib.colab\nENV = attn_lib.colab.environment()", False),
    ("subprocess.run([sys.executable, '-m', 'pip', 'install', 'numpy'])", False),
])
def test_is_setup_source(source, is_setup):
    assert width_report.is_setup_source(source) is is_setup


def test_the_rule_reads_notebooks_from_disk(tmp_path):
    path = tmp_path / "x.ipynb"
    nbformat.write(notebook(new_code_cell("a" * 100)), path)
    assert width_report.main([str(path), "--check"]) == 1
    nbformat.write(notebook(new_code_cell("a")), path)
    assert width_report.main([str(path), "--check", "--summary"]) == 0


# ----------------------------------------------------------- display math (heuristic)
F_LAYER = (r"F_{\text{layer}}(N) = \underbrace{8Nd^2}_{\text{projections}} + "
           r"\underbrace{16Nd^2}_{\text{MLP}} + \underbrace{4N^2d}_{QK^\top,\;PV} + "
           r"\underbrace{6N^2H}_{\text{scale, softmax}}, \qquad "
           r"F_{\text{model}} = L\,F_{\text{layer}} "
           r"\;(+\,2NdV \text{ for the output logits}).")


def test_display_equations_finds_every_display_form():
    md = ("inline $x^2$ stays out\n$$\na = b\n$$\n```{math}\nc = d\n```\n"
          "\\begin{align}\ne &= f\n\\end{align}\n"
          "$$\\begin{aligned} g &= h \\end{aligned}$$")
    assert width_report.display_equations(md) == [
        "a = b", r"\begin{aligned} g &= h \end{aligned}", "c = d",
        "\\begin{align}\ne &= f\n\\end{align}"]


def test_a_long_equation_is_flagged_and_a_short_one_is_not():
    short = r"h(n) = (n-1) + (n-2) + \dots + 1 + 0 = \frac{n(n-1)}{2}."
    width = width_report.tex_width_em
    assert width(short) < width_report.MAX_TEX_EM < width(F_LAYER)
    nb = notebook(new_markdown_cell(f"$$\n{short}\n$$\n\n$$\n{F_LAYER}\n$$"))
    assert kinds(nb) == [("math", 2, 0)]


def test_breaking_an_equation_with_aligned_makes_it_fit():
    broken = (F_LAYER.replace(r", \qquad F_{\text{model}}", r", \\ F_{\text{model}}")
              .replace(r" + \underbrace{4N^2d}", r" \\ &+ \underbrace{4N^2d}"))
    broken = r"\begin{aligned}" + broken + r"\end{aligned}"
    assert len(width_report.tex_rows(broken)) == 3
    assert width_report.tex_width_em(broken) < width_report.MAX_TEX_EM


def test_tex_width_counts_what_is_set_not_the_source():
    width = width_report.tex_width_em
    assert width(r"\underbrace{x}_{\text{a long label under it}}") > 5 * width("x")
    assert width(r"\left(\displaystyle x\right)") == pytest.approx(width("(x)"))
    assert width(r"\frac{a}{bbbb}") == pytest.approx(width("bbbb") + 0.2)
    assert width(r"x \qquad y") == pytest.approx(width("xy") + 2)


# --------------------------------------------------------------- the book's notebooks
NOTEBOOKS = width_report.book_notebooks(ROOT)
IDS = [p.stem for p in NOTEBOOKS]


def test_every_notebook_of_the_toc_is_checked():
    toc = book.toc_pages(ROOT / "_toc.yml")
    expected = [f"{e}.ipynb" for e in toc if (ROOT / f"{e}.ipynb").is_file()]
    assert NOTEBOOKS
    assert [p.relative_to(ROOT).as_posix() for p in NOTEBOOKS] == expected


def _findings(path, kind):
    nb = nbformat.read(path, as_version=4)
    found = width_report.notebook_findings(nb, path.name)
    return [str(f) for f in found if f.kind == kind]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_book_code_lines_fit(path):
    too_wide = _findings(path, "code")
    assert not too_wide, (f"{path.name}: {len(too_wide)} code lines over {MAX} chars:\n"
                          + "\n".join(too_wide))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_book_printed_lines_fit(path):
    too_wide = _findings(path, "output")
    assert not too_wide, (f"{path.name}: {len(too_wide)} printed lines over {MAX}:\n"
                          + "\n".join(too_wide))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_book_set_up_cell_is_removed_from_the_html(path):
    assert not _findings(path, "setup"), _findings(path, "setup")
