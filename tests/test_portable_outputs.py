"""The stored notebooks compare meaning, not noise: no float carries more digits than its rule.

nbval compares every stored text output of a cell not tagged ``nbval-ignore-output``, glue
records included. A float printed or glued with all its digits (``2.0000000000000004``)
depends on the BLAS kernel, the CPU and library patch versions, and turns the suite red on
another machine. The rules checked here:

- glued floats (every glue record, ignored cells too): at most ``book.MAX_SIG`` significant
  digits; attn_lib.book.glue rounds to 3 unless the caller asks for more;
- printed floats in compared outputs: at most ``MAX_SIG`` significant digits, or a
  fixed-point format with at most ``MAX_DECIMALS`` decimals (tables such as 2,649.525 s);
- prose: ``{glue:text}`name:spec``` shows no more significant digits than were glued
  (at least the default 3), so rounding in glue never prints as spurious zeros.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from attn_lib.book import DEFAULT_SIG, MAX_SIG

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
MAX_DECIMALS = 3
GLUE_PREFIX = "application/papermill.record/"
NOT_COMPARED = ("image/", "application/vnd.jupyter.widget-view+json")

# a decimal literal with a point or an exponent: 1.5, 1,024.25, 2e-07, -0.001, 6.02E+23
FLOAT = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+(?:[eE][-+]?\d+)?|[eE][-+]?\d+)"
                   r"(?![\w.]*\d)")
GLUE_REF = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")


def sig_digits(literal: str) -> int:
    """Significant digits a float literal shows: '2.50' -> 3, '1000000.0' -> 1, '0.0012' -> 2."""
    mantissa = re.split(r"[eE]", literal.lstrip("-+"))[0].replace(",", "")
    whole, _, frac = mantissa.partition(".")
    if frac in ("", "0"):  # an integer, or Python's repr of an integral float
        return len(whole.strip("0")) or 1
    return len((whole + frac).lstrip("0")) or 1


def decimals(literal: str) -> int | None:
    """Decimals of a fixed-point literal ('2,649.525' -> 3); None for exponent notation."""
    if re.search(r"[eE]", literal):
        return None
    return len(literal.partition(".")[2])


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _outputs(nb: dict):
    """(cell index, compared?, is glue?, mime/stream, text) for every text output."""
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        compared = "nbval-ignore-output" not in cell.get("metadata", {}).get("tags", [])
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                yield i, compared, False, out["name"], _text(out["text"])
            for mime, value in out.get("data", {}).items():
                if not mime.startswith(NOT_COMPARED):
                    yield i, compared, mime.startswith(GLUE_PREFIX), mime, _text(value)


def glued_values(nb: dict) -> dict:
    """Every glue record of the notebook: {name: the stored text/plain repr}."""
    found = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            scrap = out.get("metadata", {}).get("scrapbook")
            text = out.get("data", {}).get(GLUE_PREFIX + "text/plain")
            if scrap and text is not None:
                found[scrap["name"]] = _text(text)
    return found


def violations(nb: dict) -> list[str]:
    """Every float that breaks a rule, as 'cell N: ...' lines (empty when portable)."""
    bad = []
    for i, compared, is_glue, mime, text in _outputs(nb):
        for m in FLOAT.finditer(text):
            lit = m.group(0)
            if is_glue and sig_digits(lit) > MAX_SIG:
                bad.append(f"cell {i}: glued float {lit} has more than {MAX_SIG} significant digits")
            elif (compared and not is_glue and sig_digits(lit) > MAX_SIG
                  and (decimals(lit) is None or decimals(lit) > MAX_DECIMALS)):
                bad.append(f"cell {i}: printed float {lit} ({mime}) has more than {MAX_SIG} significant "
                           f"digits and more than {MAX_DECIMALS} decimals")
    bad += prose_violations(nb)
    return bad


def prose_violations(nb: dict) -> list[str]:
    """Glue references whose format shows more digits than the glued float kept."""
    glued, bad = glued_values(nb), []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for name, spec in GLUE_REF.findall(_text(cell["source"])):
            if not spec or name not in glued:
                continue
            try:
                value = ast.literal_eval(glued[name])
            except (ValueError, SyntaxError):
                continue
            if not isinstance(value, float):
                continue
            shown = FLOAT.search(format(value, spec).replace("%", ""))
            kept = max(sig_digits(repr(value)), DEFAULT_SIG)
            if shown and "." in shown.group(0) and sig_digits(shown.group(0)) > kept:
                bad.append(f"cell {i}: prose shows {name} as {format(value, spec)}, more digits than "
                           f"glued ({value!r}); pass sig= to glue")
    return bad


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_stored_notebook_floats_follow_the_digits_rule(path):
    assert violations(json.loads(path.read_text())) == []


@pytest.mark.parametrize("literal, sig", [("2.0", 1), ("2.50", 3), ("1000000.0", 1), ("0.0012", 2),
                                          ("2,649.525", 7), ("2.0000000000000004", 17), ("1e-07", 1),
                                          ("-3.14", 3), ("4.000", 4), ("6.02e+23", 3)])
def test_sig_digits(literal, sig):
    assert sig_digits(literal) == sig


def _synthetic(outputs, tags=(), prose=""):
    code = {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": "", "outputs": outputs}
    return {"cells": [code, {"cell_type": "markdown", "metadata": {}, "source": prose}]}


def _glue_out(name, text):
    return {"output_type": "display_data", "data": {GLUE_PREFIX + "text/plain": text},
            "metadata": {"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}}}


def test_the_check_fails_on_raw_floats():
    """Negative test: the regressions the rule exists for are caught."""
    nb = _synthetic([_glue_out("s_flops", "2.0000000000000004"),
                     _glue_out("times", "[0.00021491400002560113, 3]"),
                     {"output_type": "stream", "name": "stdout", "text": "slope 1.9514259712866509\n"},
                     {"output_type": "execute_result", "data": {"text/plain": "0.30000000000000004"}}])
    found = violations(nb)
    assert len(found) == 4, found
    assert "2.0000000000000004" in found[0] and "printed float 1.9514259712866509" in found[2]


def test_the_check_passes_rounded_and_ignored_outputs():
    ok = _synthetic([_glue_out("slope", "2.01"), _glue_out("n", "4096"), _glue_out("s", "'0.82'"),
                     {"output_type": "stream", "name": "stdout",
                      "text": "max error < 1e-06: True; 2,649.525 s; ratio 3.99951; v2.13.0\n"}],
                    prose="slope {glue:text}`slope:.2f`, n {glue:text}`n:,`")
    assert violations(ok) == []
    ignored = _synthetic([{"output_type": "stream", "name": "stdout", "text": "t = 0.00021491400002560113\n"}],
                         tags=["nbval-ignore-output"])
    assert violations(ignored) == []


def test_the_check_fails_on_prose_showing_digits_glue_dropped():
    nb = _synthetic([_glue_out("ratio", "4.0")], prose="ratio {glue:text}`ratio:.3f`")
    assert len(prose_violations(nb)) == 1
    fine = _synthetic([_glue_out("ratio", "4.002")], prose="ratio {glue:text}`ratio:.3f`")
    assert prose_violations(fine) == []


def test_no_lapack_fits_and_no_glue_around_the_rule():
    """Fits that feed outputs use timing.loglog_fit (closed form); glue goes through attn_lib.book."""
    root = BOOK.parent
    sources = {p: p.read_text() for p in (root / "attn_lib").rglob("*.py")}
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        sources[path] = "\n".join(_text(c["source"]) for c in cells if c["cell_type"] == "code")
    bad = [f"{p.relative_to(root)}: {word}" for p, text in sources.items()
           for word in ("polyfit", "lstsq", "from myst_nb import glue")
           if word in text and p.name != "book.py"]
    assert bad == []
