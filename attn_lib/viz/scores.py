"""Chapter 1 figures: the N×N score matrix, its causal triangle, an N explorer, scaling plots.

`demo_scores` makes a small score matrix from seeded random queries and keys;
`plot_score_matrix` draws it as a heat map, greying out what a causal mask hides;
`score_explorer` (ipywidgets) and `score_explorer_static` (its twin for the HTML book) show
the matrix, its pair counts and its bytes for a chosen N. `plot_times` draws the measured
log-log scaling figure (the times come from attn_lib.timing.best_of).
"""
from __future__ import annotations

import numpy as np

from .. import counting
from ._common import FONT, format_bytes


def demo_scores(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    """(n, n) scores q_i·k_j/√d of seeded standard-normal queries and keys, each (n, d)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((n, d)), rng.standard_normal((n, d))  # (n, d) each
    return q @ k.T / np.sqrt(d)  # (n, n): row i = query i, column j = key j


def plot_score_matrix(scores: np.ndarray, *, causal: bool = True, ax=None, title: str | None = None):
    """Heat map of an (N, N) score matrix; with causal=True the hidden upper triangle is grey."""
    import matplotlib.pyplot as plt

    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"scores must be a square (N, N) matrix, got shape {scores.shape}")
    n = scores.shape[0]
    ax = ax or plt.subplots(figsize=(3.5, 3.2), dpi=100)[1]
    shown = np.ma.masked_where(np.triu(np.ones((n, n), bool), 1), scores) if causal else scores
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")  # masked (future) keys: light grey
    lim = np.abs(scores).max()
    im = ax.imshow(shown, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    from matplotlib.ticker import MaxNLocator

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    ax.tick_params(labelsize=FONT)
    ax.set_xlabel("key j", fontsize=FONT)
    ax.set_ylabel("query i", fontsize=FONT)
    ax.set_title(title or (f"{n}×{n} scores, causal" if causal else f"{n}×{n} scores"),
                 fontsize=FONT + 1)
    bar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("$q_i\\cdot k_j/\\sqrt{d}$", fontsize=FONT)
    bar.ax.tick_params(labelsize=FONT)
    return ax


def _caption(n: int) -> str:
    pairs, causal = counting.attention_pairs(n), counting.attention_pairs(n, causal=True)
    fp16, fp32 = counting.score_matrix_bytes(n, 2), counting.score_matrix_bytes(n, 4)
    return (f"N = {n}: {pairs:,} scores\n({causal:,} causal), "
            f"{counting.handshakes(n):,} handshakes\n"
            f"fp16 {format_bytes(fp16)}\nfp32 {format_bytes(fp32)}")


def _panel(n: int, causal: bool, ax):
    plot_score_matrix(demo_scores(n), causal=causal, ax=ax, title=_caption(n))
    ax.title.set_fontsize(FONT)


def score_explorer(max_n: int = 64):
    """ipywidgets explorer: a slider for N (and a causal toggle) redraws the matrix and its counts."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def show(n, causal):
        fig, ax = plt.subplots(figsize=(4.6, 4), dpi=100)
        _panel(n, causal, ax)
        plt.show()

    slider = widgets.IntSlider(value=8, min=2, max=max_n, description="N")
    return widgets.interactive(show, n=slider, causal=widgets.Checkbox(value=True, description="causal"))


def score_explorer_static(ns=(4, 12, 32), causal: bool = True):
    """The explorer's twin for the HTML book: one panel per N in `ns`."""
    import matplotlib.pyplot as plt

    # at most 7 in wide (the column is 688 px at 100 dpi), so 9 pt text stays 9 pt
    fig, axes = plt.subplots(1, len(ns), figsize=(7, 3.3), dpi=100)
    for n, ax in zip(ns, np.atleast_1d(axes)):
        _panel(n, causal, ax)
    fig.tight_layout()
    return fig


def plot_times(sizes, times: dict[str, list[float]], *, fit_ranges=(), ax=None,
               title: str | None = None):
    """Log-log plot of seconds vs N per series; each (lo, hi) in fit_ranges adds dashed fits.

    A NaN time marks a size the series was not timed at (it is left out, as are fits over
    fewer than two timed sizes)."""
    import matplotlib.pyplot as plt

    from ..timing import loglog_fit

    ax = ax or plt.subplots(figsize=(6.5, 4), dpi=100)[1]
    sizes = np.asarray(sizes)
    for name, ts in times.items():
        ts = np.asarray(ts, dtype=float)
        timed = np.isfinite(ts)  # NaN: a size this series was not timed at
        line = ax.loglog(sizes[timed], ts[timed], "o-", ms=4)[0]
        slopes = []
        for lo, hi in fit_ranges:
            sel = (sizes >= lo) & (sizes <= hi) & timed
            if sel.sum() < 2:
                continue
            slope, intercept = loglog_fit(sizes[sel], ts[sel])
            slopes.append(f"{slope:.1f}")
            fitted = np.exp(intercept) * sizes[sel].astype(float) ** slope
            ax.loglog(sizes[sel], fitted, "--", color=line.get_color(), lw=1)
        line.set_label(name + (f" (slope {' | '.join(slopes)})" if slopes else ""))
    ax.set_xlabel("sequence length N (tokens)")
    ax.set_ylabel("time per call (s)")
    ax.set_title(title or "measured time per call; dashed: least-squares fits", fontsize=10)
    ax.legend(fontsize=FONT)
    return ax
