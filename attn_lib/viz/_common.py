"""What every chapter's figures and tables share: markdown tables, byte units, log ticks, sizes.

Tables come back as markdown strings (show them with IPython.display.Markdown).
"""
from __future__ import annotations

import inspect

from .._checks import check_callable, check_nonneg

DPI = 100  # the column is 688 px at 100 dpi: a figure at most 7 in wide keeps its text size
FONT = 9  # pt: the smallest text in a figure drawn at most 7 in wide

#: Bytes per unit: decimal (KB = 1e3 B) and binary (KiB = 2**10 B).
UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
         "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def markdown_table(headers, rows, align: str | None = None) -> str:
    """A GitHub-flavoured markdown table; align: one 'l' or 'r' per column (None: the
    renderer's default)."""
    if (align is not None and len(align) != len(headers)) or any(len(r) != len(headers) for r in rows):
        raise ValueError(f"every row and align need {len(headers)} columns")
    rule = ["---:" if a == "r" else ":---" for a in align] if align else ["---"] * len(headers)
    lines = [headers, *rows]
    body = ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join([body[0], "|" + "".join(r + "|" for r in rule), *body[1:]])


def source_markdown(fn) -> str:
    """The source of function `fn` as a fenced python block, to show the code a chapter
    times or checks beside its result (display it with IPython.display.Markdown)."""
    fn = inspect.unwrap(check_callable("fn", fn))
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
        raise TypeError(f"fn must be a Python function, got {fn!r}")
    return "```python\n" + inspect.getsource(fn).rstrip() + "\n```"


def format_bytes(nbytes: float, unit: str | None = None) -> str:
    """nbytes in `unit` ('819.2 KB'), or with no unit the one that fits, decimal then binary:
    '2.10 GB (1.95 GiB)'."""
    nbytes = check_nonneg("nbytes", nbytes)
    if unit is not None:
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {sorted(UNITS)}, got {unit!r}")
        return f"{nbytes / UNITS[unit]:,.1f} {unit}"
    if nbytes < 1000:
        return f"{int(nbytes)} B"

    def pick(base, names):
        power = 0
        while power < len(names) - 1 and nbytes >= base ** (power + 1):
            power += 1
        return f"{nbytes / base**power:,.{0 if power == 0 else 2}f} {names[power]}"

    return f"{pick(1000, ['B', 'KB', 'MB', 'GB', 'TB', 'PB'])} ({pick(1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'])})"


def plain_ticks(ax, xticks=None):
    """Plain numbers on log axes (no 2×10³ minor labels); major x ticks at the measured sizes."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}")
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_formatter(fmt)
            axis.set_minor_formatter(NullFormatter())
    if xticks is not None:
        ax.set_xticks(list(xticks))
