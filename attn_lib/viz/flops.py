"""Chapter 2 figures and tables: FLOP breakdowns, attention's share vs N, computed tables.

Tables come back as markdown strings (display them with IPython.display.Markdown), so every
figure in the chapter's tables is computed; their contexts and model are essay B's
(attn_lib.claims.essays), and the memory table can stand beside the essay's own figures
(the claims ledger). `flop_explorer` (ipywidgets: preset + context)
has a static twin, `flop_explorer_static`, for the HTML book.
"""
from __future__ import annotations

import numpy as np

from .. import counting, hardware, models
from ..claims.essays import TABLE_D_MODEL, TABLE_LAYERS, TABLE_N
from ..claims.tables import unit_reading
from ._common import DPI, format_bytes, markdown_table

#: Order and colours of the per-layer parts of counting.layer_flops.
_PARTS = ("projections", "scores", "scale", "softmax", "av", "mlp")
_COLOURS = {"projections": "#4c72b0", "scores": "#dd8452", "scale": "#f2c14e", "softmax": "#c44e52",
            "av": "#937860", "mlp": "#55a868"}


def attention_flop_rows(contexts=TABLE_N, d_model: int = TABLE_D_MODEL,
                        n_layers: int = TABLE_LAYERS,
                        peak_flops_per_s: float | None = None) -> list[dict]:
    """Per context: attention FLOPs (4·N²·d·L), TFLOP, seconds at the peak (default: the
    H100 SXM's dense fp16 peak, attn_lib.hardware, as essay B), ratio to the first."""
    peak = peak_flops_per_s or hardware.get("H100 SXM").peak("fp16")
    rows, base = [], None
    for n in contexts:
        flops = counting.attention_flops(n, d_model, n_layers)
        base = base or flops
        rows.append({"n": n, "flops": flops, "tflop": flops / 1e12,
                     "seconds": flops / peak, "ratio": flops / base})
    return rows


def attention_flop_table(rows: list[dict], quoted=None) -> str:
    """Markdown for attention_flop_rows: context, TFLOP, seconds at peak, ratio to the first.

    With `quoted` (essay B's (TFLOP, seconds, relative) per row, attn_lib.claims.essays):
    ours beside the essay's, as two tables (the work, then its growth) that each fit the
    page column.
    """
    if quoted is None:
        body = [[f"{r['n']:,}", f"{r['tflop']:,.1f}", f"{r['seconds']:,.3f}",
                 f"{r['ratio']:,.0f}×"] for r in rows]
        return markdown_table(["context N (tokens)", "attention TFLOP", "seconds at peak",
                               "× first row"], body, "rrrr")
    if len(quoted) != len(rows):
        raise ValueError(f"quoted needs one entry per row ({len(rows)}), got {len(quoted)}")
    work = [[f"{r['n']:,}", f"{r['tflop']:,.1f}", f"{tq:,.1f}", f"{r['seconds']:,.3f}",
             f"{sq:,.3f}"] for r, (tq, sq, _) in zip(rows, quoted)]
    growth = [[f"{r['n']:,}", f"{r['ratio']:,.0f}×", f"{rq:,}×"]
              for r, (_, _, rq) in zip(rows, quoted)]
    return "\n\n".join([
        markdown_table(["tokens", "TFLOP, ours", "essay", "H100 s, ours", "essay"], work,
                       "rrrrr"),
        markdown_table(["tokens", "relative to 1K, ours", "essay"], growth, "rrr")])


def score_memory_table(contexts=TABLE_N, quoted=None) -> str:
    """Bytes of one N×N score matrix (one head, one layer) in fp16 and fp32, GB and GiB.

    `quoted`: a figure per context, (value, unit) as essays.MEMORY_QUOTED prints them;
    adds the figure and which reading of its unit it matches (decimal or binary).
    """
    if quoted is not None and len(quoted) != len(contexts):
        raise ValueError(f"quoted needs one (value, unit) per context, got {len(quoted)} "
                         f"for {len(contexts)}")
    headers = ["context N (tokens)", "fp16 (2 B/score)", "fp32 (4 B/score)"]
    body = [[f"{n:,}", format_bytes(counting.score_matrix_bytes(n, 2)),
             format_bytes(counting.score_matrix_bytes(n, 4))] for n in contexts]
    if quoted is not None:
        headers += ["essay", "essay's unit"]
        for row, n, (value, unit) in zip(body, contexts, quoted):
            fp16 = counting.score_matrix_bytes(n, 2)
            row += [f"{value:,} {unit}", unit_reading(fp16, value, unit)]
    return markdown_table(headers, body, "r" * (len(headers) - 1) + ("l" if quoted else "r"))


#: What each part of counting.layer_flops computes, as chapter 2's table writes it.
_FORMULAS = {"projections": "2·N·d·(2·d_attn + 2·d_kv)", "scores": "2·N²·d",
             "scale": "N²·H", "softmax": "5·N²·H", "av": "2·N²·d",
             "mlp": "2·N·d·d_ff·(matrices)"}


def layer_flops_table(model, n: int) -> str:
    """Markdown: one layer of `model` at N = `n` tokens, part by part: formula, GFLOP, share."""
    parts = counting.layer_flops(model, n)
    total = sum(parts.values())
    rows = [[p, _FORMULAS[p], f"{v / 1e9:,.1f}", f"{v / total:.1%}"]
            for p, v in parts.items()]
    return markdown_table(["part", "formula", "GFLOP per layer", "share of the layer"],
                          rows, "llrr")


def crossover_table(model_names=("gpt2-small", "llama-2-7b", "gpt3-175b")) -> str:
    """Markdown: per model, the context N at which QKᵀ + PV cost as much as the projections,
    the MLP, all dense layers, and all dense layers with a causal mask (counting.crossover_length)."""
    rows = []
    for m in model_names:
        cfg = models.get(m)
        x = [counting.crossover_length(m, a) for a in ("projections", "mlp", "dense")]
        x.append(counting.crossover_length(m, "dense", causal=True))
        rows.append([m, f"{cfg.d_model:,}", f"{cfg.d_ff:,} ×{cfg.mlp_matrices}",
                     *[f"{v:,.0f}" for v in x]])
    return markdown_table(
        ["model", "d", "d_ff × MLP matrices", "N where QKᵀ+PV = projections", "= MLP",
         "= all dense layers", "= all dense, causal"], rows, "lrrrrrr")


def _bars(model, n: int, causal: bool, ax):
    parts = counting.forward_flops(model, n, causal=causal)
    total = sum(parts.values())
    values = [parts[p] / 1e12 for p in _PARTS]
    ax.barh(_PARTS, values, color=[_COLOURS[p] for p in _PARTS])
    for y, (p, v) in enumerate(zip(_PARTS, values)):
        ax.text(v, y, f" {parts[p] / total:.1%}", va="center", fontsize=9)
    ax.invert_yaxis()
    ax.tick_params(labelsize=9)
    ax.set_xlabel("forward TFLOP (all layers)", fontsize=9)
    ax.set_xlim(0, max(values) * 1.3)
    name = models.get(model).name
    ax.set_title(f"{name}, N = {n:,}{' causal' if causal else ''}: {total / 1e12:,.1f} TFLOP", fontsize=9)
    return ax


def flop_explorer(contexts=(256, 1024, 4096, 16384, 65536, 262144, 1_000_000)):
    """ipywidgets explorer: pick a preset, a context and causal/not; see the FLOP breakdown."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def show(model, n_tokens, causal):
        fig, ax = plt.subplots(figsize=(5.5, 2.8), dpi=DPI)
        _bars(model, n_tokens, causal, ax)
        plt.show()

    return widgets.interactive(
        show,
        model=widgets.Dropdown(options=list(models.PRESETS), value="llama-2-7b", description="model"),
        n_tokens=widgets.SelectionSlider(options=list(contexts), value=4096, description="context N"),
        causal=widgets.Checkbox(value=False, description="causal"),
    )


def flop_explorer_static(model="llama-2-7b", contexts=(4096, 32768, 262144), *, causal: bool = False):
    """The explorer's twin for the HTML book: the same bars for a few fixed contexts."""
    import matplotlib.pyplot as plt

    # stacked, 7 in wide: side by side the panels would have to shrink below 9 pt text
    fig, axes = plt.subplots(len(contexts), 1, figsize=(7, 2.1 * len(contexts)), dpi=DPI)
    for n, ax in zip(contexts, np.atleast_1d(axes)):
        _bars(model, n, causal, ax)
    fig.tight_layout()
    return fig


def plot_attention_share(model_names=("gpt2-small", "llama-2-7b", "gpt3-175b"), ns=None, *,
                         causal: bool = False, ax=None):
    """Share of forward FLOPs in the N² terms vs N, one line per model; dots at N = crossover('dense')."""
    import matplotlib.pyplot as plt

    ns = np.unique(np.logspace(7, 20, 80, base=2).astype(int)) if ns is None else np.asarray(ns)
    ax = ax or plt.subplots(figsize=(6.5, 3.8), dpi=DPI)[1]
    for name in model_names:
        (line,) = ax.semilogx(ns, [counting.attention_share(name, int(n), causal=causal) for n in ns], label=name)
        n_star = counting.crossover_length(name, "dense", causal=causal)
        ax.plot(n_star, counting.attention_share(name, int(round(n_star)), causal=causal), "o", color=line.get_color())
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("sequence length N (tokens)")
    ax.set_ylabel("share of forward FLOPs")
    count = "causal" if causal else "non-causal"
    ax.set_title(f"FLOPs in the N² part (scores, scale, softmax, AV), {count} count\n"
                 "dot: score FLOPs = dense FLOPs", fontsize=9)
    ax.tick_params(labelsize=9)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=9)
    return ax
