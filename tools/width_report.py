#!/usr/bin/env python
"""What does not fit the page column, per notebook and cell.

    python tools/width_report.py [--summary] [--check] [NOTEBOOK ...]

A to-do list for the reading-width rule (code and printed lines fit the page column), read from the
stored notebooks (no build, no browser). It lists

- every code line wider than MAX_WIDTH (80) characters, in every code cell;
- every printed line wider than MAX_WIDTH: stream output (stdout/stderr) and the
  text/plain of execute_result / display_data outputs (what nbval compares); glue
  outputs (shown inside the prose) and widget outputs (the widget shows, not its
  text/plain repr) are skipped;
- every display equation whose estimated rendered width exceeds MAX_TEX_EM em
  (:func:`tex_width_em`, a heuristic: a to-do hint; the browser check is the judge);
- a set-up cell (the notebook's first code cell, which installs attn_lib on Colab)
  that is not tagged `remove-input`.

Width is counted as a terminal counts it: ANSI colour codes dropped, tabs to 8
columns, East Asian wide characters as 2, and for a `\\r` progress line only what is
left after the last carriage return. The notebooks default to every .ipynb in
_toc.yml. The summary also counts lines over COLUMN_CHARS, what the HTML column holds.
Exit status 0, or 1 with `--check` when anything is listed.
tests/test_notebook_width.py applies the same rules.
"""
from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_WIDTH = 80  # what fits the HTML column at the book's 13 px code font (_assets/book.css)
#: Characters of the book's code font (13 px DejaVu Sans Mono, _assets/book.css) that the
#: content column holds at a 1280 px window: about 82 in a code cell, 80 in a hidden
#: solution (at the theme's 14 px: 77 and 75, as tools/check_html.py measured).
COLUMN_CHARS = 80
#: A display equation estimated wider than this (em) likely overflows the 688 px column
#: at 1280 px (MathJax sets about 18-23 px per estimated em). Calibrated on the book's
#: display equations as Chromium measured them: the three wider than the column
#: (718-930 px) score 32.3-44.4, the widest that fits (681 px) 34.8 (listed: no room
#: left), the rest <= 31.4.
MAX_TEX_EM = 32.0
SETUP_TAG = "remove-input"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# ====================================================================== line widths
def display_width(line: str) -> int:
    """Columns `line` takes in a terminal or a <pre>: ANSI 0, tab to 8, wide chars 2."""
    line = _ANSI.sub("", line).rsplit("\r", 1)[-1]
    width = 0
    for ch in line:
        if ch == "\t":
            width += 8 - width % 8
        elif unicodedata.combining(ch) or unicodedata.category(ch) in ("Cf", "Cc"):
            continue
        else:
            width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def wide_lines(text: str, max_width: int = MAX_WIDTH) -> list[tuple[int, int, str]]:
    """(line number from 1, width, line) of every line of `text` over max_width."""
    return [(n, w, line) for n, line in enumerate(text.splitlines(), 1)
            if (w := display_width(line)) > max_width]


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


def printed_texts(cell) -> list[str]:
    """The printed text of a code cell's outputs: streams and text/plain."""
    texts = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            texts.append(_text(out.get("text")))
        elif kind in ("execute_result", "display_data"):
            if "scrapbook" in out.get("metadata", {}):  # a glue() value: in the prose
                continue
            if WIDGET_MIME in out.get("data", {}):  # a widget shows, not its repr
                continue
            if "text/plain" in out.get("data", {}):
                texts.append(_text(out["data"]["text/plain"]))
    return texts


# =================================================================== the set-up cell
_INSTALLS_ATTN_LIB = [
    re.compile(r"find_spec\(\s*['\"]attn_lib['\"]\s*\)"),
    re.compile(r"pip['\"]?\s*,?\s*['\"]?install\b.*attn", re.S),
]


def is_setup_source(source: str) -> bool:
    """True for the Colab set-up cell: code that installs attn_lib when missing."""
    return any(p.search(source) for p in _INSTALLS_ATTN_LIB)


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def setup_cell_problems(nb) -> list[str]:
    """The first code cell must be the set-up cell, tagged remove-input."""
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code:
        return []
    first = code[0]
    if not is_setup_source(_text(first.get("source"))):
        return ["the first code cell is not the set-up cell "
                "(it must install attn_lib on Colab)"]
    if SETUP_TAG not in _tags(first):
        return [f"the set-up cell (first code cell) is not tagged {SETUP_TAG}"]
    return []


# ===================================================================== display math
_DISPLAY_MATH = [
    re.compile(r"\$\$(.+?)\$\$", re.S),
    re.compile(r"^(?:```|:::)\{math\}[^\n]*\n(.+?)^(?:```|:::)\s*$", re.S | re.M),
    re.compile(r"(\\begin\{(equation|align|gather|multline|eqnarray)\*?\}"
               r".+?\\end\{\2\*?\})", re.S),
]


def display_equations(markdown: str) -> list[str]:
    """The TeX of every display equation of a markdown cell: $$..$$, {math}, align."""
    found, taken = [], []
    for pattern in _DISPLAY_MATH:
        for m in pattern.finditer(markdown):
            if any(a <= m.start() < b for a, b in taken):  # e.g. align inside $$..$$
                continue
            taken.append(m.span())
            found.append(m.group(1).strip())
    return found


# em widths of what TeX sets (Computer Modern, display style), roughly
_EM = {"letter": 0.55, "digit": 0.5, "punct": 0.3, "delim": 0.4, "rel": 1.35,
       "bin": 1.2, "bigop": 1.45, "command": 0.6, "text": 0.45}
_ARROWS = {"iff": 2.8, "implies": 2.5, "impliedby": 2.5, "longrightarrow": 2.2,
           "Longrightarrow": 2.2, "longleftarrow": 2.2, "longmapsto": 2.2,
           "Longleftrightarrow": 2.3, "longleftrightarrow": 2.3}
_SCRIPT = 0.7  # sub- and superscripts
_SPACES = {",": 0.17, ":": 0.22, ">": 0.22, ";": 0.28, "!": -0.17, " ": 0.33,
           "quad": 1.0, "qquad": 2.0, "enspace": 0.5, "thinspace": 0.17,
           "medspace": 0.22, "thickspace": 0.28}
_INVISIBLE = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl",
              "Bigr", "biggl", "biggr", "displaystyle", "textstyle", "scriptstyle",
              "limits", "nolimits", "nonumber", "notag", "middle", "phantom", "label",
              "tag", "begin", "end", "mathstrut", "strut", "hline"}
_TEXTUAL = {"text", "textrm", "textbf", "textit", "mbox", "mathrm", "operatorname",
            "mathbf", "mathit", "mathsf", "mathtt", "mathcal", "mathbb", "boldsymbol",
            "mathfrak", "bm"}
_RELATIONS = {"le", "ge", "leq", "geq", "approx", "sim", "simeq", "ne", "neq", "to",
              "in", "notin", "rightarrow", "Rightarrow", "equiv", "propto", "ll", "gg",
              "mapsto", "subset", "subseteq", "gets", "leftarrow", "coloneqq",
              "approxeq", "lesssim", "gtrsim"}
_BINARY = {"times", "cdot", "pm", "mp", "cup", "cap", "circ", "ast", "star", "oplus",
           "otimes", "setminus", "wedge", "vee", "div"}
_BIG_OPERATORS = {"sum", "prod", "int", "bigcup", "bigcap", "max", "min", "sup", "inf",
                  "lim", "argmax", "argmin", "log", "exp", "ln", "det"}
_FRACTIONS = {"frac": 1.0, "dfrac": 1.0, "tfrac": _SCRIPT, "binom": 1.0, "cfrac": 1.0}
_UNDER_OVER = {"underbrace", "overbrace", "underset", "overset", "stackrel"}


def _group(tex: str, i: int) -> tuple[str, int]:
    """The argument starting at tex[i] ({...} or one token) and the index after it."""
    while i < len(tex) and tex[i] == " ":
        i += 1
    if i >= len(tex):
        return "", i
    if tex[i] == "{":
        depth, j = 0, i
        while j < len(tex):
            depth += {"{": 1, "}": -1}.get(tex[j], 0)
            if depth == 0:
                return tex[i + 1:j], j + 1
            j += 1 + (tex[j] == "\\")
        return tex[i + 1:], len(tex)
    if tex[i] == "\\":
        m = re.match(r"\\([A-Za-z]+|.)", tex[i:])
        return m.group(0), i + len(m.group(0))
    return tex[i], i + 1


def _width(tex: str) -> float:
    """Estimated rendered width (em) of one row of display TeX."""
    total, i = 0.0, 0
    while i < len(tex):
        ch = tex[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", tex[i:])
            name, i = m.group(1), i + len(m.group(0))
            if name in _SPACES:
                total += _SPACES[name]
            elif name in _INVISIBLE:
                if name in ("phantom", "label", "tag", "begin", "end"):
                    arg, i = _group(tex, i)
                    if name == "tag":
                        total += 1.0 + _EM["text"] * len(arg)
                    elif name == "begin":  # skip the column spec of aligned/array
                        if tex[i:i + 1] == "{":
                            _, i = _group(tex, i)
            elif name in _TEXTUAL:
                arg, i = _group(tex, i)
                if name.startswith(("text", "mbox")):  # text mode: spaces count too
                    total += _EM["text"] * len(re.sub(r"\\.|[{}$]", "", arg))
                else:
                    total += _width(arg)
            elif name in _FRACTIONS:
                num, i = _group(tex, i)
                den, i = _group(tex, i)
                total += _FRACTIONS[name] * max(_width(num), _width(den)) + 0.2
            elif name in _UNDER_OVER:
                body, i = _group(tex, i)
                if name in ("underset", "overset", "stackrel"):  # {label}{body}
                    label, (body, i) = body, _group(tex, i)
                    total += max(_SCRIPT * _width(label), _width(body))
                    continue
                label = ""
                while i < len(tex) and tex[i] in "_^ ":
                    if tex[i] == " ":
                        i += 1
                        continue
                    label, i = _group(tex, i + 1)
                total += max(_width(body), _SCRIPT * _width(label))
            elif name == "sqrt":
                arg, i = _group(tex, i)
                total += _width(arg) + 0.85
            elif name in _ARROWS:
                total += _ARROWS[name]
            elif name in _RELATIONS:
                total += _EM["rel"]
            elif name in _BINARY:
                total += _EM["bin"]
            elif name in _BIG_OPERATORS:
                big = name in ("sum", "prod", "int")
                total += _EM["bigop"] if big else 0.5 * len(name)
            elif name == "\\":
                pass
            else:  # a symbol: \alpha, \dots, \top, \ell ...
                total += 1.2 if name in ("dots", "ldots", "cdots") else _EM["command"]
        elif ch in "_^":
            arg, i = _group(tex, i + 1)
            total += _SCRIPT * _width(arg)
        elif ch == "{":
            arg, i = _group(tex, i)
            total += _width(arg)
        elif ch in "}& \n\t":
            i += 1
        elif ch == "~":
            total, i = total + _SPACES[" "], i + 1
        elif ch in "=<>":
            total, i = total + _EM["rel"], i + 1
        elif ch in "+-*":
            total, i = total + _EM["bin"], i + 1
        else:
            kind = ("digit" if ch.isdigit() else "punct" if ch in ".,;:!'"
                    else "delim" if ch in "()[]|/" else "letter")
            total, i = total + _EM[kind], i + 1
    return total


def tex_rows(tex: str) -> list[str]:
    """The rows of a display equation: one, or its \\\\-separated lines (aligned)."""
    tex = re.sub(r"(?<!\\)%.*", "", tex)
    return [r for r in re.split(r"\\\\(?:\[[^\]]*\])?", tex) if r.strip()] or [tex]


def tex_width_em(tex: str) -> float:
    """Estimated width (em) of the widest row of a display equation: a heuristic.

    Counts what TeX sets, not the source: \\text{...} by its letters, \\frac by the
    wider of numerator and denominator, \\underbrace by the wider of its body and its
    script-size label, sub/superscripts at 70 %, relations and binary operators with
    their surrounding space, \\quad/\\qquad as 1/2 em; \\left, \\right,
    \\displaystyle and other commands that set nothing as 0. Calibrated so that the
    equations the browser measured as too wide score above MAX_TEX_EM (see there).
    """
    return max(_width(row) for row in tex_rows(tex))


# ========================================================================= findings
@dataclass(frozen=True)
class Finding:
    notebook: str
    cell: int  # index in nb.cells
    kind: str  # 'code', 'output', 'math', 'setup'
    line: int  # line number within the cell source / output (0 when not a line)
    width: float  # characters, or em for math
    text: str

    def __str__(self) -> str:
        unit = "em" if self.kind == "math" else "chars"
        where = f"cell {self.cell}" + (f" line {self.line}" if self.line else "")
        if self.kind == "setup":
            return f"{where}: {self.text}"
        return f"{where} [{self.kind} {self.width:g} {unit}]: {self.text[:60]}"


def notebook_findings(nb, name: str, max_width: int = MAX_WIDTH,
                      max_tex_em: float = MAX_TEX_EM) -> list[Finding]:
    """Every code line, printed line and display equation of `nb` that is too wide, and
    the set-up cell rule. nb: a notebook as nbformat reads it (or the same as dicts)."""
    first = _first_code_index(nb)
    findings = [Finding(name, first, "setup", 0, 0, p) for p in setup_cell_problems(nb)]
    for index, cell in enumerate(nb.get("cells", [])):
        source = _text(cell.get("source"))
        if cell.get("cell_type") == "code":
            findings += [Finding(name, index, "code", n, w, line)
                         for n, w, line in wide_lines(source, max_width)]
            line_base = 0
            for text in printed_texts(cell):
                findings += [Finding(name, index, "output", line_base + n, w, line)
                             for n, w, line in wide_lines(text, max_width)]
                line_base += len(text.splitlines())
        elif cell.get("cell_type") == "markdown":
            for tex in display_equations(source):
                if (em := tex_width_em(tex)) > max_tex_em:
                    flat = " ".join(tex.split())
                    findings.append(Finding(name, index, "math", 0, round(em, 1), flat))
    return findings


def _first_code_index(nb) -> int:
    cells = enumerate(nb.get("cells", []))
    return next((i for i, c in cells if c.get("cell_type") == "code"), 0)


def book_notebooks(root: Path = ROOT) -> list[Path]:
    """Every notebook listed in the book's _toc.yml, in reading order."""
    sys.path.insert(0, str(root))
    from attn_lib.book import toc_pages

    return [root / f"{entry}.ipynb" for entry in toc_pages(root / "_toc.yml")
            if (root / f"{entry}.ipynb").is_file()]


def summary_table(per_notebook: dict[str, list[Finding]], max_width: int = MAX_WIDTH,
                  column_chars: int = COLUMN_CHARS) -> str:
    """Counts per notebook: code and output lines over max_width, the cells they are in,
    display equations and set-up problems, and code/output lines over column_chars
    (findings must have been collected with a limit no larger than either)."""
    head = ["code", "output", "cells", "math", "setup",
            f"code>{column_chars}", f"out>{column_chars}"]
    rows = [f"{'notebook':<32}" + "".join(f"{k:>9}" for k in head)]
    total = Counter()
    for name, findings in per_notebook.items():
        lines = [f for f in findings if f.kind in ("code", "output")]
        over = [f for f in lines if f.width > max_width]
        counts = Counter(f.kind for f in over)
        counts.update(f.kind for f in findings if f.kind in ("math", "setup"))
        counts["cells"] = len({f.cell for f in over})
        for key, kind in ((head[5], "code"), (head[6], "output")):
            counts[key] = sum(f.kind == kind and f.width > column_chars for f in lines)
        total.update(counts)
        rows.append(f"{name:<32}" + "".join(f"{counts[k]:>9}" for k in head))
    rows.append(f"{'total':<32}" + "".join(f"{total[k]:>9}" for k in head))
    return "\n".join(rows)


def main(argv=None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="default: every notebook in _toc.yml")
    parser.add_argument("--max-width", type=int, default=MAX_WIDTH,
                        help=f"characters (default {MAX_WIDTH})")
    parser.add_argument("--column-chars", type=int, default=COLUMN_CHARS,
                        help=f"the summary also counts lines over this (default "
                             f"{COLUMN_CHARS}: what the HTML column holds)")
    parser.add_argument("--max-tex-em", type=float, default=MAX_TEX_EM,
                        help=f"em (default {MAX_TEX_EM:g})")
    parser.add_argument("--summary", action="store_true",
                        help="only the counts per notebook")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when anything is listed")
    args = parser.parse_args(argv)
    paths = args.notebooks or book_notebooks()
    per_notebook = {}
    for path in paths:
        full = path.resolve()
        inside = full.is_relative_to(ROOT)
        name = full.relative_to(ROOT).as_posix() if inside else str(path)
        nb = nbformat.read(path, as_version=4)
        limit = min(args.max_width, args.column_chars)
        per_notebook[name] = notebook_findings(nb, name, limit, args.max_tex_em)
    listed = {name: [f for f in findings
                     if f.kind in ("math", "setup") or f.width > args.max_width]
              for name, findings in per_notebook.items()}
    if not args.summary:
        for name, findings in listed.items():
            print(f"{name}: {len(findings)} to fix")
            for f in findings:
                print(f"  {f}")
            print()
    print(summary_table(per_notebook, args.max_width, args.column_chars))
    return 1 if args.check and any(listed.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
