"""Chapter 3b figures: block tables, memory waste, decode throughput, simulated batching."""
from __future__ import annotations

import numpy as np

from ._common import DPI, FONT, plain_ticks


def _fig(ncols: int = 1, figsize=(6.5, 3.4)):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=figsize, dpi=DPI)
    return fig, axes


def plot_block_tables(cache, seq_ids, ax=None):
    """The pool as a row of blocks: each sequence's blocks in its colour, shared ones
    hatched and labelled with their reference count, free blocks white."""
    if ax is None:
        _, ax = _fig(figsize=(6.5, 0.5 + 0.45 * (len(seq_ids) + 1)))
    n = cache.allocator.num_blocks
    for row, sid in enumerate(seq_ids):
        table, length = cache.block_table(sid), cache.length(sid)
        for i, b in enumerate(table):
            fill = min(cache.block_size, length - i * cache.block_size) / cache.block_size
            shared = cache.allocator.refcount(b) > 1
            ax.barh(row, fill, left=b, height=0.7, color=f"C{row}",
                    hatch="//" if shared else None, edgecolor="k", lw=0.5)
            ax.text(b + 0.5, row, str(i), ha="center", va="center", fontsize=FONT - 1)
    for b in range(n):
        if cache.allocator.refcount(b) == 0:
            ax.barh(len(seq_ids), 1, left=b, height=0.7, color="white", edgecolor="0.6", lw=0.5)
    ax.set_yticks(range(len(seq_ids) + 1), [f"seq {s}" for s in seq_ids] + ["free"])
    ax.set_xlim(0, n)
    ax.set_xlabel("block id in the pool (number: position in the sequence's table; "
                  "hatched: shared; bar length: slots filled)", fontsize=FONT)
    ax.invert_yaxis()
    return ax


def plot_waste(block_sizes, measured, expected, contiguous, ax=None):
    """Share of reserved KV memory holding no token: paged (measured, closed form) by block
    size, and contiguous preallocation as a line."""
    if ax is None:
        _, ax = _fig()
    bs = np.asarray(block_sizes, float)
    ax.semilogx(bs, 100 * np.asarray(measured), "o", label="paged, measured on the trace")
    ax.semilogx(bs, 100 * np.asarray(expected), "k--", lw=1,
                label="paged, closed form (B-1)/2 per sequence")
    ax.axhline(100 * contiguous, color="C3", label="contiguous, preallocated to max length")
    ax.set(xlabel="block size B (tokens)", ylabel="reserved but empty (%)",
           title="KV memory that holds no token")
    plain_ticks(ax, block_sizes)
    ax.legend(fontsize=FONT - 1)
    return ax


def plot_throughput(curves, gpu_name: str, ax=None):
    """Decode tokens/s against batch (roofline estimate), one line per context; filled
    markers where the step is compute-bound."""
    if ax is None:
        _, ax = _fig()
    for i, (ctx, rows) in enumerate(curves.items()):
        b = [r["batch"] for r in rows]
        tps = [r["tokens_per_s"] for r in rows]
        ax.loglog(b, tps, "-", color=f"C{i}", label=f"{ctx:,} cached tokens")
        for r in rows:
            ax.loglog(r["batch"], r["tokens_per_s"], "o", color=f"C{i}",
                      mfc=f"C{i}" if r["bound"] == "compute" else "white")
    ax.set(xlabel="batch (sequences per decode step)", ylabel="tokens/s (estimate)",
           title=f"Decode throughput, roofline on {gpu_name}\n(filled: compute-bound)")
    plain_ticks(ax, b)
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(fontsize=FONT - 1)
    return ax


def plot_batching(results: dict, axes=None):
    """Simulated static vs continuous batching: tokens/s, and each request's time to first
    token (sorted)."""
    if axes is None:
        _, axes = _fig(2, figsize=(7, 3.2))
    names = list(results)
    axes[0].bar(names, [results[n]["tokens_per_s"] for n in names], color=["C0", "C1"])
    axes[0].set(ylabel="tokens/s (simulated)", title="Throughput")
    for i, n in enumerate(names):
        ttft = np.sort(results[n]["ttft_s"])
        axes[1].plot(np.arange(1, ttft.size + 1) / ttft.size * 100, ttft, color=f"C{i}", label=n)
    axes[1].set(xlabel="requests (%), sorted", ylabel="time to first token (s)",
                title="Time to first token (simulated)")
    axes[1].legend(fontsize=FONT - 1)
    axes[0].figure.tight_layout()
    return axes
