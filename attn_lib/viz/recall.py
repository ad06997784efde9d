"""Chapter 5 figure: associative recall of softmax attention against fixed-size states.

:func:`recall_figure` draws a :func:`attn_lib.recall.recall_curve` result: left, the
share of stored values each reader returns against N (log scale, N = d marked); right,
the numbers each reader keeps to answer a query (softmax: every key and value, N·(d + dv);
a linear state: d·dv, whatever N). matplotlib is imported inside.
"""
from __future__ import annotations

from .. import recall
from ._common import DPI, FONT, plain_ticks

_STYLE = {"softmax": ("softmax attention", "C0", "o"),
          "linear": ("linear attention (d × d state)", "C3", "s"),
          "best_state": ("best d × d state (least squares)", "C1", "^")}


def recall_figure(curve: dict):
    """Two panels: recall against N, and the state each reader keeps (numbers)."""
    import matplotlib.pyplot as plt

    if not isinstance(curve, dict) or "n" not in curve or "d" not in curve:
        raise TypeError("curve must be a dict from recall.recall_curve")
    ns, d = curve["n"], curve["d"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(7, 3.1), dpi=DPI)
    for name in recall.READERS:
        label, color, marker = _STYLE[name]
        ax.plot(ns, recall.accuracy(curve, name), marker=marker, color=color, label=label)
    ax.axvline(d, color="0.6", lw=1, ls=":")
    ax.text(d * 1.08, 0.55, "N = d", fontsize=FONT, color="0.4")
    ax.set(xscale="log", ylim=(-0.03, 1.05))
    ax.set_xlabel("stored pairs N", fontsize=FONT)
    ax.set_ylabel("values recalled (share)", fontsize=FONT)
    ax.set_title(f"recall, d = dv = {d}", fontsize=FONT + 1)
    ax.legend(fontsize=FONT - 1, loc="lower left")
    bx.plot(ns, [n * 2 * d for n in ns], marker="o", color="C0",
            label="softmax: cache N·(d + dv)")
    bx.plot(ns, [d * d for _ in ns], marker="s", color="C3", label="linear: state d·dv")
    bx.set(xscale="log", yscale="log")
    bx.set_xlabel("stored pairs N", fontsize=FONT)
    bx.set_ylabel("numbers kept", fontsize=FONT)
    bx.set_title("what each reader keeps", fontsize=FONT + 1)
    bx.legend(fontsize=FONT - 1, loc="upper left")
    for a in (ax, bx):
        plain_ticks(a, ns)
        a.tick_params(labelsize=FONT - 1)
    fig.tight_layout()
    return fig
