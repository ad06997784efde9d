"""Figures for chapter 4 (FlashAttention): block visit order, IO, memory and speed plots.

- :func:`block_order_figure` / :func:`draw_block_order`: which (query block, key block) tiles
  of the N×N score matrix Algorithm 1 computes, in which order, and which the causal mask skips.
- :func:`block_order_explorer`: the same picture with sliders (Jupyter/Colab only).
- :func:`loglog_figure` with :class:`Curve` and :func:`power_law`: measured points against
  formula lines on log-log axes (IO traffic, peak memory, cost curves).
- :func:`time_bars`: times of several implementations, with speed-ups against a baseline.
- :func:`note_figure`: a figure that only carries a message (e.g. "no recorded GPU run yet").
- :func:`plot_recorded`: one recorded run (:mod:`attn_lib.recorded`) on given axes, dashed,
  labelled with the device and date (chapters 3, 4).
- :func:`recorded_figure` / :func:`recorded_summary`: GPU runs recorded in book/data,
  drawn and summarised for the HTML book, which has no GPU.
- :func:`dataflow_frames` / :func:`draw_dataflow_step` / :func:`dataflow_explorer`: what moves
  between HBM and one SM's SRAM at each step of FlashAttention-2's inner loop, with the
  running m, ℓ, O (:func:`dataflow_states`); static frames for the HTML, a slider for Jupyter.
- :func:`reported_figure`: throughput reported elsewhere (:mod:`attn_lib.reported`) beside
  the book's own newest recorded run, never in the same series.

matplotlib and ipywidgets are imported inside the functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .._checks import check_type
from ..reference import visited_blocks
from ._common import DPI, FONT


def _plt():
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------- block order
def draw_block_order(ax, nq: int, nk: int, block_q: int, block_k: int, *, causal: bool = False,
                     numbers: bool = True):
    """Draw the (nq, nk) score matrix as tiles, each visited one numbered by its step.

    Order is reference.visited_blocks's (Algorithm 1: outer loop over key blocks j, inner over
    query blocks i); tiles the causal mask skips are grey and hatched. Returns the visit list.
    """
    from matplotlib.patches import Rectangle

    for name, val in (("nq", nq), ("nk", nk), ("block_q", block_q), ("block_k", block_k)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val <= 0:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    order = visited_blocks(nq, nk, block_q, block_k, causal)
    cmap = _plt().get_cmap("viridis")
    n_i, n_j = -(-nq // block_q), -(-nk // block_k)

    def tile(i, j, **style):  # (x, y, w, h) of tile (i, j); edge tiles may be ragged
        x0, y0 = j * block_k, i * block_q
        w, h = min(block_k, nk - x0), min(block_q, nq - y0)
        ax.add_patch(Rectangle((x0, y0), w, h, edgecolor="white", lw=1.5, **style))
        return x0 + w / 2, y0 + h / 2

    for step, (i, j) in enumerate(order):  # visited tiles, coloured by step
        cx, cy = tile(i, j, facecolor=cmap(step / max(len(order) - 1, 1)))
        if numbers:
            shade = "white" if step < 0.6 * len(order) else "black"
            ax.text(cx, cy, str(step + 1), ha="center", va="center", fontsize=8, color=shade)
    skipped = {(i, j) for i in range(n_i) for j in range(n_j)} - set(order)
    for i, j in sorted(skipped):  # tiles the causal mask removes entirely
        tile(i, j, facecolor="0.92", hatch="//")
    if causal:  # the mask's edge: key j = query i + nk - nq
        ax.plot([0, nk], [-(nk - nq), nq - (nk - nq)], color="crimson", lw=1.2, label="causal edge")
    ax.set_xlim(0, nk), ax.set_ylim(nq, 0), ax.set_aspect("equal")
    ax.set_xlabel("key position (block column j: outer loop)")
    ax.set_ylabel("query position (block row i: inner loop)")
    kind = "causal" if causal else "full"
    ax.set_title(f"{kind}: {len(order)} of {n_i * n_j} tiles computed", fontsize=10)
    return order


def block_order_figure(nq: int, nk: int, block_q: int, block_k: int):
    """Two panels side by side: the visit order without a mask and with the causal mask."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), dpi=DPI)
    for ax, causal in zip(axes, (False, True)):
        draw_block_order(ax, nq, nk, block_q, block_k, causal=causal)
    fig.suptitle(f"Algorithm 1 on a {nq}×{nk} score matrix, tiles of {block_q}×{block_k} "
                 "(numbers: order of computation)", fontsize=10)
    fig.tight_layout()
    return fig


def block_order_explorer():
    """Sliders for N, the two block sizes and the mask; redraws :func:`draw_block_order`."""
    import ipywidgets as widgets

    plt = _plt()

    def show(n=32, block_q=8, block_k=8, causal=True):
        fig, ax = plt.subplots(figsize=(4.6, 4.6), dpi=DPI)
        draw_block_order(ax, n, n, block_q, block_k, causal=causal, numbers=n // block_q <= 12)
        plt.show()

    return widgets.interactive(show, n=(8, 96, 8), block_q=(2, 32, 2), block_k=(2, 32, 2), causal=True)


# ----------------------------------------------------------------------------- log-log plots
@dataclass
class Curve:
    """One series of a log-log panel: `measured` points get markers, formulas get lines."""

    x: Sequence[float]
    y: Sequence[float]
    label: str
    measured: bool = True
    color: str | None = None
    dashed: bool = False
    linestyle: str | None = None  # a formula line's style ("--", ":", "-."); overrides dashed

    def __post_init__(self):
        self.x, self.y = np.asarray(self.x, float), np.asarray(self.y, float)
        if self.x.shape != self.y.shape or self.x.ndim != 1:
            raise ValueError(f"Curve {self.label!r}: x and y must be 1-D of equal length, "
                             f"got {self.x.shape} and {self.y.shape}")


def power_law(x, anchor_x: float, anchor_y: float, slope: float, label: str, *,
              linestyle: str = "--", color: str = "0.5") -> Curve:
    """A guide line y = anchor_y·(x/anchor_x)^slope, e.g. "∝ N²" through a measured point
    (dashed grey unless told; give two guides on one panel different styles)."""
    x = np.asarray(x, float)
    return Curve(x, anchor_y * (x / anchor_x) ** slope, label, measured=False, color=color,
                 dashed=True, linestyle=linestyle)


def _draw_loglog(ax, curves: Sequence[Curve], *, xlabel: str, ylabel: str, title: str = "",
                span: tuple[float, float] | None = None, base: int = 2, legend: dict | None = None):
    """Draw curves on log-log axes (base-2 x by default); `span` shades a range of x;
    `legend` holds keyword arguments for ``ax.legend`` (e.g. a location)."""
    for c in curves:
        style = dict(color=c.color, label=c.label)
        if c.measured:
            ax.plot(c.x, c.y, "o", ms=5, **style)
        else:
            ls = c.linestyle or ("--" if c.dashed else "-")
            ax.plot(c.x, c.y, ls, lw=1.4, alpha=0.9, **style)
    if span is not None:
        ax.axvspan(*span, color="gold", alpha=0.15, lw=0)
    ax.set_xscale("log", base=base), ax.set_yscale("log")
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(**{"fontsize": 8, **(legend or {})})


def loglog_figure(panels: Sequence[dict], *, width: float = 4.6, height: float = 3.6):
    """One row of log-log panels; each panel is keyword arguments of :func:`_draw_loglog`."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), height), dpi=DPI,
                             squeeze=False)
    for ax, panel in zip(axes[0], panels):
        _draw_loglog(ax, **panel)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- bars, notes
def time_bars(times: dict[str, float], *, baseline: str | None = None, title: str = "",
              unit: str = "ms", ax=None):
    """Horizontal bars of seconds per call, each labelled with its speed-up over `baseline`."""
    if not times:
        raise ValueError("times must name at least one implementation")
    baseline = baseline or next(iter(times))
    if baseline not in times:
        raise ValueError(f"baseline {baseline!r} is not one of {list(times)}")
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(times)), dpi=DPI)
    names = list(times)
    vals = [times[n] * scale for n in names]
    ax.barh(names, vals, color=["0.6" if n == baseline else "tab:blue" for n in names])
    for y, (n, v) in enumerate(zip(names, vals)):
        ax.text(v, y, f"  {times[baseline] / times[n]:.2f}× vs {baseline}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"time per call ({unit}, lower is better)")
    ax.set_xlim(0, max(vals) * 1.6)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def note_figure(text: str, *, title: str = ""):
    """A small empty figure carrying only `text` (stands in for a plot whose data is absent)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 1.6), dpi=DPI)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return fig


# ----------------------------------------------------------------------------- recorded GPU runs
IMPL_LABELS = {"naive": "naive torch", "torch_tiled": "tiled torch (unfused)", "triton": "Triton fused",
               "sdpa": "torch SDPA", "standard": "standard torch"}


def plot_recorded(ax, run, what: str = "tflops", *, impl: str | None = None, head_dim: int | None = None,
                  causal: bool | None = None, dtype: str | None = None, **line_kw) -> list:
    """Draw a recorded run on matplotlib axes `ax`, dashed, each line labelled with the device and date.

    Same `what` and filters as :func:`attn_lib.recorded.series`. Returns the Line2D objects
    (empty if nothing matched).
    """
    from .. import recorded

    check_type("run", run, recorded.Run, "a recorded.Run")
    if not hasattr(ax, "plot"):
        raise TypeError(f"ax must be matplotlib axes, got {type(ax).__name__}")
    style = {"linestyle": "--", "marker": "o", "markersize": 3, **line_kw}
    lines = []
    for name, (xs, ys) in recorded.series(run, what, impl=impl, head_dim=head_dim, causal=causal,
                                          dtype=dtype).items():
        lines += ax.plot(xs, ys, label=f"{IMPL_LABELS.get(name, name)} ({run.label})", **style)
    return lines


def recorded_figure(runs, *, causal: bool = False, max_runs: int = 1):
    """TFLOP/s and peak memory against N from recorded runs (attn_lib.recorded.Run), newest first."""
    if not runs:
        raise ValueError("runs must hold at least one recorded run")
    plt = _plt()
    fig, (tput, mem) = plt.subplots(1, 2, figsize=(10, 3.9), dpi=DPI)
    for run in runs[:max_runs]:
        plot_recorded(tput, run, "tflops", causal=causal)
        plot_recorded(mem, run, "peak_bytes", causal=causal)
    for ax, ylabel in ((tput, "TFLOP/s (higher is better)"), (mem, "peak CUDA bytes above the inputs")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length N"), ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    if mem.lines and all(min(line.get_ydata()) > 0 for line in mem.lines):
        mem.set_yscale("log")
    mask = "causal" if causal else "no mask"
    fig.suptitle(f"Recorded GPU run ({mask}): {runs[0].label}", fontsize=10)
    fig.tight_layout()
    return fig


def recorded_summary(runs, *, causal: bool = False) -> str:
    """One sentence on the newest run: TFLOP/s per implementation at the largest N they share."""
    from .. import recorded

    if not runs:
        return "No GPU run has been recorded in book/data yet."
    run = runs[0]
    tflops = recorded.series(run, "tflops", causal=causal)
    if not tflops:
        return f"The run recorded on {run.label} has no successful attention timings."
    shared = set.intersection(*(set(xs) for xs, _ in tflops.values()))
    n = max(shared) if shared else max(max(xs) for xs, _ in tflops.values())
    parts = [f"{IMPL_LABELS.get(impl, impl)} {ys[xs.index(n)]:.3g} TFLOP/s"
             for impl, (xs, ys) in tflops.items() if n in xs]
    oom = run.data.get("naive_oom", {}).get("n")
    tail = f"; naive attention ran out of memory at N = {oom:,}" if oom else ""
    return f"On {run.label}, at N = {n:,}: " + ", ".join(parts) + tail + "."


# ----------------------------------------------------------------------------- data flow (HBM ↔ SRAM)
# Chapter 4: one thread block of FlashAttention-2, query block i, streaming key blocks j.


def dataflow_states(n_keys: int = 16, block_q: int = 4, block_k: int = 4, d: int = 8, *,
                    seed: int = 0) -> list[dict]:
    """The running state of one query block after each key block: [{j, m, l, o}, ...].

    m (Br,) running row maxima, l (Br,) running sums, o (Br, d) the output normalised by
    what has been seen so far (the update of Algorithm 1, as in ``reference._update_block``).
    After the last step o equals softmax(Q_i Kᵀ/√d) V. Random Q_i, K, V (seeded).
    """
    from .. import reference

    for name, val in (("n_keys", n_keys), ("block_q", block_q), ("block_k", block_k), ("d", d)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val <= 0:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((block_q, d))  # Q_i
    k, v = rng.standard_normal((n_keys, d)), rng.standard_normal((n_keys, d))
    o, l, m = np.zeros((block_q, d)), np.zeros(block_q), np.full(block_q, -np.inf)
    states = []
    for j, k0 in enumerate(range(0, n_keys, block_k)):
        s = q @ k[k0:k0 + block_k].T / np.sqrt(d)  # S_ij, (Br, Bc): lives in SRAM only
        reference._update_block(o, l, m, s, v[k0:k0 + block_k])
        states.append({"j": j, "m": m.copy(), "l": l.copy(), "o": o.copy()})
    states[-1]["exact"] = reference.attention(q, k, v)  # what the last state must equal
    return states


def _cell(ax, x, y, w, h, text, color, *, hatch=None, fc_alpha=1.0):
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="0.25", lw=0.8,
                           hatch=hatch, alpha=fc_alpha))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=FONT)


def _arrow(ax, start, end, color, rad=0.0):
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, lw=1.4,
                                 color=color, shrinkA=1, shrinkB=1,
                                 connectionstyle=f"arc3,rad={rad}"))


def _box(ax, x0, x1, title, color):
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x0, 0.3), x1 - x0, 6.0, facecolor=color, edgecolor="0.4"))
    ax.text((x0 + x1) / 2, 6.55, title, ha="center", fontsize=FONT, weight="bold")


def draw_dataflow_step(ax, step: int, states: list[dict]):
    """One panel: what moves between HBM and one SM's SRAM at inner-loop step `step`.

    Steps 0..T-1 load K_j, V_j (Q_i only at step 0) and fold S_ij into the running m, ℓ, O_i,
    which stay in SRAM; step T writes O_i (and the log-sum-exp) to HBM once.
    """
    t = len(states)
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step <= t:
        raise ValueError(f"step must be an int in [0, {t}], got {step!r}")
    load, out, done = "tab:blue", "tab:green", "0.85"
    ax.set_xlim(0, 10), ax.set_ylim(0, 7.0), ax.set_axis_off()
    _box(ax, 0.1, 3.4, "HBM", "#dbe8f5")
    w = 2.5 / t
    for name, y in (("$K$", 4.8), ("$V$", 3.6)):  # all T key blocks; streamed ones hatched
        ax.text(0.3, y + 0.35, name, fontsize=FONT, va="center")
        for j in range(t):
            color = load if j == step else (done if j < step else "white")
            _cell(ax, 0.75 + j * w, y, w, 0.7, "", color, hatch="//" if j < step else None)
    _cell(ax, 0.75, 2.2, 1.6, 0.7, "$Q_i$", "#9ec5ea" if step == 0 else "white")
    _cell(ax, 0.75, 0.9, 1.6, 0.7, "$O_i$", "#a9dba9" if step == t else "white")
    _box(ax, 4.2, 9.9, "SRAM (one SM)", "#fde9c8")
    _cell(ax, 4.4, 4.8, 1.6, 0.7, "$Q_i$", "white")
    if step < t:
        _cell(ax, 6.2, 4.8, 1.6, 0.7, f"$K_{step}$", "white")
        _cell(ax, 8.0, 4.8, 1.6, 0.7, f"$V_{step}$", "white")
        _cell(ax, 4.4, 3.7, 5.2, 0.75, f"$S_{{i{step}}}$ (on chip only)", "white")
    state = states[min(step, t - 1)]
    _cell(ax, 4.4, 0.5, 5.2, 2.9, "", "white")
    rows = [f"state after j = {state['j']}" if step < t else "final state",
            "m: " + " ".join(f"{x:.1f}" for x in state["m"][:4]),
            "ℓ: " + " ".join(f"{x:.1f}" for x in state["l"][:4]),
            "$O_i$: rescale, add $P V_j$" if step < t else "$O_i$ = softmax · V"]
    for r, text in enumerate(rows):
        ax.text(4.55, 3.0 - 0.68 * r, text, fontsize=FONT, va="center")
    if step == 0:
        _arrow(ax, (2.35, 2.55), (4.4, 5.15), load)
    if step < t:
        x_kv = 0.75 + (step + 0.5) * w
        _arrow(ax, (x_kv, 5.5), (7.9, 5.5), load, rad=-0.25)
        ax.set_title(f"j = {step}: load " + ("$Q_i$, " if step == 0 else "") + f"$K_{step}$, $V_{step}$",
                     fontsize=FONT)
    else:
        _arrow(ax, (4.4, 1.25), (2.35, 1.25), out)
        ax.set_title("after the loop: write $O_i$ once", fontsize=FONT)


def dataflow_frames(n_keys: int = 16, block_q: int = 4, block_k: int = 4, *, ncols: int = 2,
                    width: float = 7.0, seed: int = 0):
    """Static frames for the HTML book: one panel per step j = 0..T-1 and one for the write.

    T = ceil(n_keys / block_k); the figure is `width` inches wide (text at 9 pt).
    """
    plt = _plt()
    states = dataflow_states(n_keys, block_q, block_k, seed=seed)
    panels = len(states) + 1
    nrows = -(-panels // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, width / ncols * 0.78 * nrows), dpi=DPI,
                             squeeze=False)
    for step, ax in enumerate(axes.flat):
        if step < panels:
            draw_dataflow_step(ax, step, states)
        else:
            ax.set_axis_off()
    fig.suptitle("FlashAttention-2, one query block: K/V stream through SRAM, "
                 "m, ℓ, O stay on chip", fontsize=FONT + 1)
    fig.tight_layout()
    return fig


def dataflow_explorer(n_keys: int = 16, block_k: int = 4):
    """A slider over the steps of :func:`dataflow_frames` (Jupyter/Colab only)."""
    import ipywidgets as widgets

    plt = _plt()
    states = dataflow_states(n_keys, 4, block_k)

    def show(step=0):
        fig, ax = plt.subplots(figsize=(4.2, 3.2), dpi=DPI)
        draw_dataflow_step(ax, step, states)
        plt.show()

    return widgets.interactive(show, step=(0, len(states), 1))


# ----------------------------------------------------------------------------- reported elsewhere
def reported_figure(data=None, runs=(), *, causal: bool = False, head_dim: int | None = None):
    """Forward TFLOP/s against N: figures reported elsewhere for a named GPU (open markers,
    dotted maxima) and, when book/data holds one, the Triton kernel and SDPA of the book's
    newest recorded GPU run beside them (dashed). Rows for another pass (FlashAttention-2's
    forward+backward maximum) or with no GPU named (Triton's documentation) are left out:
    the chapter states them in words (:func:`reported_left_out`)."""
    from .. import reported

    data = reported.load() if data is None else data
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=DPI)
    filters = {} if head_dim is None else {"head_dim": head_dim}
    reported.plot_reported(ax, data, named_gpu=True, **filters)
    for run in list(runs)[:1]:
        for impl in ("triton", "sdpa"):
            plot_recorded(ax, run, "tflops", impl=impl, causal=causal,
                          head_dim=head_dim or 128)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length N", fontsize=FONT)
    ax.set_ylabel("forward TFLOP/s", fontsize=FONT)
    ax.set_ylim(0, None)
    ax.tick_params(labelsize=FONT)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=FONT, loc="upper left", bbox_to_anchor=(0, -0.16), frameon=False)
    own = (f"this book's recorded run dashed (d = {head_dim or 128}, "
           f"{'causal' if causal else 'no mask'})" if runs else "no recorded run of this book yet")
    ax.set_title(f"Forward pass on named GPUs: reported elsewhere (open markers, dotted\n"
                 f"maxima); {own}", fontsize=FONT)
    fig.tight_layout()
    return fig


def reported_left_out(data=None) -> list[str]:
    """One line per reported row :func:`reported_figure` does not draw, and why."""
    from .. import reported

    data = reported.load() if data is None else data
    out = []
    for r in data["rows"]:
        if r["pass"] != "forward":
            out.append(f"{r['impl']}: {r['tflops']:g} TFLOP/s, {r['pass']} "
                       f"({reported.label(r, data)}): not a forward figure")
    no_gpu = [r for r in data["rows"] if r.get("gpu") is None and r["pass"] == "forward"]
    if no_gpu:
        lo, hi = min(r["tflops"] for r in no_gpu), max(r["tflops"] for r in no_gpu)
        impls = sorted({r["impl"] for r in no_gpu})
        out.append(f"{', '.join(impls)}: {lo:g}–{hi:g} TFLOP/s on a GPU the source "
                   "does not name: not comparable")
    return out


# ----------------------------------------------------------------------------- the recorded GPU run
#: What each recorded implementation is, for the chapter's recorded-run figure. The suite's
#: early "naive" rows timed torch_impl.attention: float32 scores and products even for bf16
#: inputs (the accurate path), so they are not standard attention as frameworks run it.
_RECORDED_LABELS = {"triton": "Triton kernel (this book)", "sdpa": "torch SDPA (torch's default backend)",
                   "standard": "standard attention (torch_impl.standard_attention)",
                   "naive": "float32, accurate path (not standard attention)",
                   "torch_tiled": "tiled torch loop (unfused)"}
_RECORDED_STYLE = {"triton": ("tab:blue", "o"), "sdpa": ("tab:green", "s"),
                   "standard": ("tab:red", "^"), "naive": ("tab:red", "v"),
                   "torch_tiled": ("0.5", "x")}


def run_caption(run) -> str:
    """'NVIDIA H200, torch 2.11.0+cu130, Triton 3.6.0, cuDNN 9.19, recorded 2026-12-04':
    the device, versions and date a recorded run's figure is labelled with."""
    from .. import recorded

    check_type("run", run, recorded.Run, "a recorded.Run")
    v = run.data["versions"]
    parts = [run.device_name, f"torch {v['torch']}"]
    if v.get("triton"):
        parts.append(f"Triton {v['triton']}")
    cudnn = v.get("cudnn")
    if isinstance(cudnn, int) and cudnn > 0:  # torch reports 91900 for 9.19.0
        parts.append(f"cuDNN {cudnn // 10000}.{cudnn // 100 % 100}")
    return ", ".join(parts) + f", recorded {run.created[:10]}"


def _run_gpu(run):
    from .. import hardware

    spec = run.data["device"].get("spec")
    return hardware.lookup(spec) if spec else hardware.lookup(run.device_name)


def recorded_gpu_figure(run, *, head_dim: int = 128, causal: bool = False,
                        impls=("triton", "sdpa", "standard", "naive"), memory_head_dim: int = 64):
    """Chapter 4's recorded GPU run: TFLOP/s against N (right axis: share of the device's
    dense peak from attn_lib.hardware) and the peak memory above the inputs against N,
    with the length at which materialised attention ran out of memory. Titled with the
    device, versions, date and dtype, all read from the run."""
    from .. import recorded

    check_type("run", run, recorded.Run, "a recorded.Run")
    plt = _plt()
    fig, (tput, mem) = plt.subplots(1, 2, figsize=(10.4, 5.0), dpi=DPI)
    dtype = None
    for ax, what, d in ((tput, "tflops", head_dim), (mem, "peak_bytes", memory_head_dim)):
        for impl in [i for i in impls if i in recorded.IMPLS]:  # impls this schema knows
            recs = [r for r in run.attention(impl, head_dim=d, causal=causal)
                    if r["tflops" if what == "tflops" else "peak_bytes"] is not None]
            if not recs:
                continue
            dtype = dtype or recs[0]["dtype"]
            color, marker = _RECORDED_STYLE.get(impl, ("0.3", "o"))
            ys = [r["tflops"] if what == "tflops" else r["peak_bytes"] / 2**30 for r in recs]
            ax.plot([r["n_q"] for r in recs], ys, marker=marker, color=color, lw=1.3, ms=5,
                    label=_RECORDED_LABELS.get(impl, impl))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length N", fontsize=FONT)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=FONT)
    gpu = _run_gpu(run)
    tput.set_ylabel("TFLOP/s (higher is better)", fontsize=FONT)
    tput.set_ylim(0, None)
    if gpu is not None and dtype is not None:
        peak = gpu.peak(dtype) / 1e12
        tput.axhline(peak, color="0.4", ls=":", lw=1.2, label=f"dense {dtype} peak ({gpu.name} datasheet)")
        tput.set_ylim(0, peak * 1.08)
        share = tput.secondary_yaxis("right", functions=(lambda t: t / peak, lambda s: s * peak))
        share.set_ylabel("share of the dense peak", fontsize=FONT)
        share.yaxis.set_major_formatter(_plt().matplotlib.ticker.PercentFormatter(1.0))
        share.tick_params(labelsize=FONT)
    mask = "causal" if causal else "no mask"
    tput.set_title(f"forward throughput, d = {head_dim}, {mask}", fontsize=FONT)
    tput.legend(fontsize=FONT - 1, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1,
                frameon=False)
    mem.set_yscale("log")
    mem.set_ylabel("peak GPU memory above the inputs (GiB)", fontsize=FONT)
    mem.set_title(f"memory, d = {memory_head_dim}, {mask}", fontsize=FONT)
    oom = run.data.get("naive_oom", {})
    if oom.get("n"):
        mem.axvline(oom["n"], color="tab:red", ls="--", lw=1.0,
                    label=f"float32 path out of memory at N = {oom['n']:,} "
                          f"(d = {oom.get('head_dim')}, {oom.get('heads')} heads, batch {oom.get('batch')})")
    mem.legend(fontsize=FONT - 1, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1,
               frameon=False)
    fig.suptitle(f"Recorded: {run_caption(run)}, {dtype}, batch·N = "
                 f"{run.data['config'].get('tokens', 0):,} tokens", fontsize=FONT)
    fig.tight_layout()
    return fig


def recorded_highlights(run, *, n: int | None = None) -> dict:
    """Numbers the chapter quotes from a recorded GPU run, all read from the file.

    At the largest N recorded: the best TFLOP/s of the Triton kernel and of SDPA (any head
    dim, no mask) and their shares of the device's dense peak; Triton / SDPA for N >= 4096
    (min, max over head dims and masks); the peak memory of the float32 accurate path and
    of the Triton kernel at N (d = 64); the first N that ran out of memory.
    """
    from .. import recorded

    check_type("run", run, recorded.Run, "a recorded.Run")
    recs = run.attention()
    n = max(r["n_q"] for r in recs) if n is None else n
    gpu, dtype = _run_gpu(run), recs[0]["dtype"]
    peak = gpu.peak(dtype) / 1e12 if gpu is not None else float("nan")
    best = {impl: max(r["tflops"] for r in run.attention(impl, causal=False)) for impl in ("triton", "sdpa")}
    ratios = []
    for r in run.attention("triton"):
        same = [s for s in run.attention("sdpa", head_dim=r["head_dim"], causal=r["causal"])
                if s["n_q"] == r["n_q"]]
        if same and r["n_q"] >= 4096:
            ratios.append(r["tflops"] / same[0]["tflops"])

    def peak_gib(impl):
        got = [r["peak_bytes"] for r in run.attention(impl, head_dim=64, causal=False) if r["n_q"] == n]
        return got[0] / 2**30 if got and got[0] is not None else None

    return {"device": run.device_name, "date": run.created[:10], "dtype": dtype,
            "peak_tflops": peak, "n": n,
            "triton_best": best["triton"], "sdpa_best": best["sdpa"],
            "triton_share": best["triton"] / peak, "sdpa_share": best["sdpa"] / peak,
            "ratio_lo": min(ratios), "ratio_hi": max(ratios),
            "naive_gib": peak_gib("naive"), "triton_gib": peak_gib("triton"),
            "oom_n": run.data.get("naive_oom", {}).get("n")}


# ----------------------------------------------------------------------------- tables (Markdown)
def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table from a header and rows of already formatted cells."""
    if not header or any(len(r) != len(header) for r in rows):
        raise ValueError("every row must have one cell per header column")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def memory_levels_table(paper: dict, hbm_datasheet: float) -> str:
    """The FlashAttention paper's Figure 1 (A100): SRAM and HBM bandwidth and capacity, the
    ratio row from :func:`attn_lib.hardware.sram_over_hbm_bandwidth`; the datasheet HBM
    bandwidth the chapter's times use in the last column."""
    from .. import hardware

    ratio = hardware.sram_over_hbm_bandwidth()
    return markdown_table(
        ("memory", "bandwidth (paper's Figure 1)", "capacity", "bandwidth used for times"),
        [("SRAM (on chip, all SMs)", f"{paper['sram_bandwidth'] / 1e12:.0f} TB/s",
          f"{paper['sram_bytes'] / 1e6:.0f} MB", "–"),
         ("HBM", f"{paper['hbm_bandwidth'] / 1e12:.1f} TB/s", f"{paper['hbm_bytes'] / 1e9:.0f} GB",
          f"{hbm_datasheet / 1e12:.3f} TB/s (datasheet)"),
         ("ratio", f"SRAM {ratio:.0f}× faster",
          f"HBM {paper['hbm_bytes'] / paper['sram_bytes']:,.0f}× larger", "")])


def traffic_time_table(traffic: dict, bandwidth: float, t_math: float) -> str:
    """Bytes moved to/from HBM by each algorithm, the time to move them at `bandwidth`
    (bytes/s) and the time of the arithmetic at peak (`t_math` seconds)."""
    return markdown_table(
        ("algorithm", "HBM traffic", f"time to move it at {bandwidth / 1e12:.3f} TB/s",
         "time for the FLOPs at peak"),
        [(name, f"{b / 1e6:.1f} MB", f"{b / bandwidth * 1e6:.1f} µs", f"{t_math * 1e6:.1f} µs")
         for name, b in traffic.items()])


def figure2_table(reported_fig2: dict, counted_gflops: dict, comparison: dict) -> str:
    """The FlashAttention paper's Figure 2 (left) beside the book's counts."""
    std, fl = reported_fig2["standard"], reported_fig2["flash"]
    return markdown_table(
        ("", "GFLOPs reported", "GFLOPs counted", "HBM GB reported", "HBM GB counted",
         "runtime reported"),
        [("standard", std["gflops"], f"{counted_gflops['standard']:.0f}", std["hbm_gb"],
          f"{comparison['standard_hbm_gb']:.1f}", f"{std['runtime_ms']} ms"),
         ("FlashAttention", fl["gflops"], f"{counted_gflops['flash']:.0f}", fl["hbm_gb"],
          f"{comparison['flash_forward_hbm_gb']:.1f} (forward)", f"{fl['runtime_ms']} ms")])


def three_level_table(cases: Sequence[dict]) -> str:
    """Chapter 4's two- and three-level traffic rows (attn_lib.memory_model.chapter_cases),
    with headers that say what each column is."""
    header = ("d", "Algorithm 1: traffic cut vs standard (M ≈ 100 KB)",
              "FlashAttention-2 tile (B_r × B_c)", "three-level model: HBM traffic cut vs standard",
              "HBM traffic / compulsory (Q, K, V, O once)", "bytes L2 ↔ SRAM per byte HBM ↔ L2",
              "longest N whose K and V fit in L2 (one head)")
    return markdown_table(header, [
        (c["d"], f"{c['algorithm1_ratio']:.2f}×", f"{c['block_q']}×{c['block_k']}",
         f"{c['three_level_ratio']:.0f}×", f"{c['hbm_over_compulsory']:.3f}",
         f"{c['l2_over_hbm']:.1f}", f"{c['l2_fit_length']:,}") for c in cases])


# ----------------------------------------------------------------------------- source excerpts
def _wrap_code_line(line: str, width: int) -> list[str]:
    """Break a long code line after a ", " (or before " + ", " & ") at the shallowest
    bracket depth that fits, right of any assignment's " = ", continuing aligned with the
    open bracket (or 8 spaces in)."""
    out, cont = [], None  # cont: the column continuation lines align to
    while len(line) > width:
        eq = line.find(" = ")
        depth, opens, best = 0, [], None  # best: (depth, cut, keep_sep_left, align)
        for i, ch in enumerate(line[:width]):
            cand = None
            if ch in "([{":
                depth, opens = depth + 1, opens + [i]
            elif ch in ")]}":
                depth, opens = depth - 1, opens[:-1]
            elif line.startswith(", ", i) and i + 1 < width - (0 if depth else 2):
                cand = (depth, i + 1, opens[-1] + 1 if opens else None)
            elif line.startswith((" + ", " & ", " * "), i) and (depth or i < width - 2):
                cand = (depth, i, opens[-1] + 1 if opens else None)
            if cand is not None and cand[1] > eq and (best is None or cand[0] <= best[0]):
                best = cand
        if best is None:
            break
        depth0, cut, align = best
        lead = len(line) - len(line.lstrip())
        if align is None or align > width // 2:
            align = cont if cont is not None else lead + 8
        out.append(line[:cut].rstrip() + (" \\" if depth0 == 0 else ""))  # valid Python
        line, cont = " " * align + line[cut:].lstrip(), align
    return out + [line]


def _logical_lines(lines: list[str]) -> list[str]:
    """Join the physical lines of each bracketed statement into one (comments inside
    the brackets are dropped), so it can be re-wrapped to a new width."""
    out, buf, depth = [], None, 0
    for ln in lines:
        if ln.lstrip().startswith("#"):
            if buf is None:
                out.append(ln)
            continue
        code = ln.split("  # ")[0]
        delta = sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if buf is None and delta <= 0:  # a one-line statement keeps its comment
            out.append(ln)
            continue
        buf = code.rstrip() if buf is None else buf + " " + code.strip()
        depth += delta
        if depth <= 0:
            out.append(buf.replace("( ", "("))
            buf, depth = None, 0
    if buf is not None:
        out.append(buf)
    return out


def source_excerpt(obj, start: str | None = None, stop: str | None = None, *, width: int = 80,
                   docstring: bool = False) -> str:
    """The source of a function (a Triton kernel too), from the first line containing `start`
    to the first later line containing `stop` (both kept), docstring dropped, each line at
    most `width` characters (a long trailing comment is cut, then the line is broken)."""
    import ast
    import inspect
    import textwrap

    fn = getattr(obj, "fn", obj)  # a triton JITFunction wraps the Python function
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as err:
        raise TypeError(f"obj must be a function whose source is available, got {obj!r}") from err
    lines = src.splitlines()
    if not docstring:
        node = ast.parse(src).body[0]
        body = getattr(node, "body", [])
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None),
                                                                   ast.Constant):
            doc = body[0]
            lines = lines[:doc.lineno - 1] + lines[doc.end_lineno:]
    first = 0 if start is None else next((i for i, ln in enumerate(lines) if start in ln), None)
    if first is None:
        raise ValueError(f"start {start!r} is not in the source of {getattr(fn, '__name__', fn)}")
    last = len(lines) - 1 if stop is None else next(
        (i for i, ln in enumerate(lines) if i >= first and stop in ln), None)
    if last is None:
        raise ValueError(f"stop {stop!r} is not in the source after {start!r}")
    out, comment = [], None  # comment: (indent, words) of a run of comment lines
    body = textwrap.dedent("\n".join(lines[first:last + 1])).splitlines()
    for ln in _logical_lines(body) + [""]:
        indent = len(ln) - len(ln.lstrip())
        if ln.lstrip().startswith("#") and (comment is None or comment[0] == indent):
            comment = (indent, (comment[1] if comment else []) + ln.lstrip()[1:].split())
            continue
        if comment is not None:  # a run of comment lines: one paragraph, rewrapped
            pad = " " * comment[0] + "# "
            out += textwrap.wrap(" ".join(comment[1]), width, initial_indent=pad,
                                 subsequent_indent=pad)
            comment = None
            if ln.lstrip().startswith("#"):  # a new run at another indent
                comment = (indent, ln.lstrip()[1:].split())
                continue
        if len(ln) > width and "  # " in ln:
            ln = ln.split("  # ")[0].rstrip()
        out += _wrap_code_line(ln, width)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


# ----------------------------------------------------------------------------- torch.compile's fusion
def compile_fusion_path(device_type: str, date: str):
    """Where benchmarks/compile_fusion.py writes its run: book/data/compile_fusion/<device>-<date>.json
    (a sub-folder: book/data/*.json are the suite's runs, attn_lib.recorded's schema)."""
    from .. import recorded

    folder = recorded.data_dir() / "compile_fusion"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{device_type}-{date}.json"


def load_compile_fusion() -> list[dict]:
    """The recorded torch.compile runs (newest first); [] when none is stored."""
    import json

    from .. import recorded

    folder = recorded.data_dir() / "compile_fusion"
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(runs, key=lambda r: r["created"], reverse=True)


def compile_fusion_figure(run: dict, *, title: str = ""):
    """Seconds per call against N for the eager tiled loop, the compiled loop, SDPA and
    standard attention, from one compile-fusion run (live or recorded)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=DPI)
    ns = [r["n"] for r in run["rows"]]
    styles = {"eager tiled loop": ("tab:orange", "o"), "compiled tiled loop": ("tab:purple", "D"),
              "SDPA": ("tab:green", "s"), "standard attention": ("tab:red", "^")}
    for name, (color, marker) in styles.items():
        label = f"SDPA ({run.get('sdpa_backend', '?')} backend)" if name == "SDPA" else name
        ax.plot(ns, [r["seconds"][name] * 1e3 for r in run["rows"]], marker=marker, color=color,
                label=label)
    ax.set_xscale("log", base=2), ax.set_yscale("log")
    ax.set_xlabel("sequence length N", fontsize=FONT)
    ax.set_ylabel("ms per call (lower is better)", fontsize=FONT)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=FONT - 1)
    dev = run["device"]
    where = f"{dev['name']}, {dev['threads']} thread(s)" if dev["type"] == "cpu" else dev["name"]
    ax.set_title(title or f"{where}, {run['dtype']}, torch {run['versions']['torch']}, "
                 f"{run['created'][:10]}", fontsize=FONT)
    fig.tight_layout()
    return fig


def peak_or_none(fn, *args) -> int | None:
    """Peak CUDA bytes of fn(*args, *args, *args) above the inputs (one tensor given as q, k
    and v), or None where the GPU runs out of memory (chapter 4's GPU memory panel)."""
    import torch

    from ..timing import peak_cuda_bytes

    try:
        return peak_cuda_bytes(fn, *(args * 3 if len(args) == 1 else args))
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return None
