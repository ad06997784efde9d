"""Chapter 5 figures: who holds which K/V block at each ring step, and a planner.

- :func:`ring_schedule_figure`: ranks × steps; each cell names the K/V chunks a rank
  holds at that step and is shaded by the share of that block's pairs the causal mask
  leaves visible (the work done in the step).
- :func:`plan`: (P, N, model, link, GPU) → memory per device, one ring step's compute
  and transfer time at peak rates, and whether the transfer hides behind the compute.
- :func:`plan_table` (static, for the HTML book) and :func:`plan_explorer` (ipywidgets).

matplotlib and ipywidgets are imported inside the functions.
"""
from __future__ import annotations

from .. import counting, hardware, models
from ..ring import chunk_starts, chunks_per_rank
from ._common import DPI, markdown_table


def holder_schedule(world_size: int, layout: str = "contiguous") -> list:
    """[step][rank] → the chunk numbers of the K/V shard that rank holds at that step.

    At step t rank r holds the shard rank (r − t) mod P started with (it moved one hop
    per step). Chunk numbers count chunks of N / (P · chunks per rank) from 0.
    """
    per = world_size * chunks_per_rank(layout)
    starts = chunk_starts(per, world_size, layout)  # with N = per, a start is its chunk
    return [[starts[(r - t) % world_size] for r in range(world_size)]
            for t in range(world_size)]


def step_work(world_size: int, layout: str = "contiguous", *, causal: bool = True):
    """[step][rank] → visible share of the (query shard × held K/V shard) pairs."""
    per = world_size * chunks_per_rank(layout)
    c = 64  # any chunk length; shares barely depend on it
    starts = chunk_starts(per * c, world_size, layout)
    full = (len(starts[0]) * c) ** 2
    grid = []
    for t in range(world_size):
        row = []
        for r in range(world_size):
            held = starts[(r - t) % world_size]
            pairs = sum(counting.block_pairs(c, c, qs - ks) if causal else c * c
                        for qs in starts[r] for ks in held)
            row.append(pairs / full)
        grid.append(row)
    return grid


def _draw_ring_schedule(ax, world_size: int, layout: str = "contiguous", *,
                       causal: bool = True) -> None:
    """Ranks down, steps across; text = K/V chunks held, shade = visible work."""
    import numpy as np

    held, work = holder_schedule(world_size, layout), step_work(world_size, layout,
                                                                causal=causal)
    grid = np.array(work).T  # (rank, step)
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=1.25, aspect="auto")
    for t in range(world_size):
        for r in range(world_size):
            label = "K/V " + ",".join(str(c) for c in held[t][r])
            ax.text(t, r, label, ha="center", va="center", fontsize=8)
    totals = grid.sum(axis=1)
    share = totals / totals.max()  # each rank's work against the busiest rank's
    ax.set_yticks(range(world_size),
                  [f"rank {r}  ({share[r]:.0%})" for r in range(world_size)])
    ax.set_xticks(range(world_size), [f"step {t}" for t in range(world_size)])
    ax.set_title(f"{layout}: rank r starts with chunk"
                 + (" r" if layout == "contiguous" else "s r, 2P−1−r"), fontsize=10)


def ring_schedule_figure(world_size: int = 4, *, causal: bool = True):
    """Contiguous and zigzag side by side; a rank's % is its work vs the busiest's."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.2, 0.55 * world_size + 1.6), dpi=DPI)
    for ax, layout in zip(axes, ("contiguous", "zigzag")):
        _draw_ring_schedule(ax, world_size, layout, causal=causal)
    fig.suptitle(f"P = {world_size}: the K/V chunks each rank holds at each step "
                 f"(shade: visible {'causal ' if causal else ''}pairs)", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------ the planner
def plan(world_size: int, n_tokens: int, model: str = "llama-3-8b",
         link: str = "NVLink 4 (H100)", gpu: str = "H100 SXM", dtype: str = "bf16", *,
         causal: bool = True, bytes_per_value: int = 2) -> dict:
    """Per device: memory, one ring step (one layer) at peak rates, the overlap verdict.

    Memory is an inference prefill's: the weights (replicated), this device's share of
    the KV cache of every layer, and one layer's activations for its N/P tokens.
    """
    g, l = hardware.get(gpu), hardware.link(link)
    f = g.peak(dtype)
    step = counting.ring_step_seconds(model, n_tokens, world_size, f, l.bandwidth,
                                      bytes_per_value, causal=causal)
    kv = counting.kv_bytes_per_device(model, n_tokens, world_size, bytes_per_value)
    act = counting.activation_bytes_per_device(  # inference: one layer live at a time
        model, n_tokens, world_size, bytes_per_value, n_layers=1)
    weights = counting.weight_bytes(model, bytes_per_value)  # replicated on each device
    layers = models.get(model).n_layers
    need = counting.overlap_min_tokens(model, f, l.bandwidth, bytes_per_value,
                                       causal=causal)
    return {"P": world_size, "N": n_tokens, "model": model, "link": l.name,
            "kv_gb": kv / 1e9, "act_gb": act / 1e9, "weights_gb": weights / 1e9,
            "fits": weights + kv + act <= g.memory,
            "compute_us": step["compute"] * 1e6, "transfer_us": step["transfer"] * 1e6,
            "step_us": step["step"] * 1e6,
            "attention_s": step["step"] * world_size * layers,
            "tokens_per_device": n_tokens / world_size, "min_tokens": need,
            "hidden": world_size == 1 or n_tokens / world_size >= need}


_HEADERS = ("P", "tokens/device", "KV GB", "activations GB", "fits (+ weights)",
           "step compute µs", "step transfer µs", "attention s", "transfer hidden")


def num3(x: float) -> str:
    """Three significant digits, without exponents: 137, 17.2, 9,100,000."""
    return f"{float(f'{x:.3g}'):,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _plan_row(p: dict) -> list[str]:
    yes = lambda b: "yes" if b else "no"
    return [str(p["P"]), f"{p['tokens_per_device']:,.0f}", num3(p["kv_gb"]),
            num3(p["act_gb"]), yes(p["fits"]), num3(p["compute_us"]),
            num3(p["transfer_us"]), num3(p["attention_s"]), yes(p["hidden"])]


def plan_table(plans: list[dict]) -> str:
    """A markdown table of :func:`plan` results (the static twin of the explorer)."""
    return markdown_table(_HEADERS, [_plan_row(p) for p in plans], "r" * len(_HEADERS))


def plan_explorer():
    """ipywidgets: pick P, N, model and link; see the plan as a one-row table."""
    import ipywidgets as widgets
    from IPython.display import Markdown, display

    def show(world_size, n_tokens, model, link):
        p = plan(world_size, n_tokens, model, link)
        display(Markdown(plan_table([p]) + f"\n\nminimum tokens per device to hide the "
                         f"transfer on {link}: {p['min_tokens']:,.0f}"))

    return widgets.interactive(
        show,
        world_size=widgets.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64], value=8,
                                           description="P"),
        n_tokens=widgets.SelectionSlider(
            options=[2**k * 1024 for k in range(3, 13)], value=1024 * 1024,
            description="N"),
        model=widgets.Dropdown(options=list(models.PRESETS), value="llama-3-8b"),
        link=widgets.Dropdown(options=list(hardware.LINKS), value="NVLink 4 (H100)"))
