"""Chapter 5 figures: who holds which K/V block at each ring step, and a planner.

- :func:`ring_schedule_figure`: ranks × steps; each cell names the K/V chunks a rank
  holds at that step and is shaded by the share of that block's pairs the causal mask
  leaves visible (the work done in the step).
- :func:`plan`: (P, N, model, link, GPU) → memory per device, one ring step's compute
  and transfer time at peak rates, and whether the transfer hides behind the compute.
- :func:`plan_table` (static, for the HTML book), :func:`plan_tables` (the same as two
  tables that fit the page: memory, then time) and :func:`plan_explorer` (ipywidgets).
- The chapter's other tables: :func:`rank_table` (what each world size measured),
  :func:`scheme_table` (ring against Ulysses), :func:`overlap_table` (the overlap
  threshold per link), :func:`training_table` (forward and backward traffic) and
  :func:`usp_table` (ring, Ulysses and their hybrid on a multi-server grid).

matplotlib and ipywidgets are imported inside the functions.
"""
from __future__ import annotations

from .. import counting, hardware, models
from ..ring import chunk_starts, chunks_per_rank
from ._common import DPI, FONT, markdown_table


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
            dark = grid[r, t] > 0.6  # white text on the darkest shades
            ax.text(t, r, label, ha="center", va="center", fontsize=FONT,
                    color="white" if dark else "black")
    totals = grid.sum(axis=1)
    share = totals / totals.max()  # each rank's work against the busiest rank's
    ax.set_yticks(range(world_size),
                  [f"rank {r} ({share[r]:.0%})" for r in range(world_size)])
    ax.set_xticks(range(world_size), [f"step {t}" for t in range(world_size)])
    ax.tick_params(labelsize=FONT)
    ax.set_title(f"{layout}: rank r starts with chunk"
                 + (" r" if layout == "contiguous" else "s r and 2P−1−r"), fontsize=FONT + 1)


def ring_schedule_figure(world_size: int = 4, *, causal: bool = True):
    """Contiguous above zigzag; a rank's % is its work vs the busiest's.

    7 in wide at the book's DPI, so the labels print at FONT points, the page's size.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(7, 2 * (0.42 * world_size + 0.9)), dpi=DPI)
    for ax, layout in zip(axes, ("contiguous", "zigzag")):
        _draw_ring_schedule(ax, world_size, layout, causal=causal)
    fig.suptitle(f"P = {world_size}: the K/V chunks each rank holds at each step "
                 f"(shade: visible {'causal ' if causal else ''}pairs)", fontsize=FONT + 1)
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
            "attention_layer_s": step["step"] * world_size,  # P steps, one layer
            "attention_s": step["step"] * world_size * layers, "layers": layers,
            "tokens_per_device": n_tokens / world_size, "min_tokens": need,
            "hidden": world_size == 1 or n_tokens / world_size >= need}


_HEADERS = ("P", "tokens/device", "KV GB", "activations GB", "fits (+ weights)",
            "step compute µs, one layer", "step transfer µs, one layer",
            "attention s, one layer", "attention s, all layers", "transfer hidden")
_MEMORY_COLUMNS, _TIME_COLUMNS = (0, 1, 2, 3, 4), (0, 5, 6, 7, 8, 9)


def num3(x: float) -> str:
    """Three significant digits, without exponents: 137, 17.2, 9,100,000."""
    return f"{float(f'{x:.3g}'):,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _plan_row(p: dict) -> list[str]:
    yes = lambda b: "yes" if b else "no"
    return [str(p["P"]), f"{p['tokens_per_device']:,.0f}", num3(p["kv_gb"]),
            num3(p["act_gb"]), yes(p["fits"]), num3(p["compute_us"]),
            num3(p["transfer_us"]), num3(p["attention_layer_s"]), num3(p["attention_s"]),
            yes(p["hidden"])]


def plan_table(plans: list[dict]) -> str:
    """A markdown table of :func:`plan` results (the static twin of the explorer)."""
    return markdown_table(_HEADERS, [_plan_row(p) for p in plans], "r" * len(_HEADERS))


def plan_tables(plans: list[dict]) -> tuple[str, str]:
    """:func:`plan_table` as two tables that fit the page: memory, then time."""
    rows = [_plan_row(p) for p in plans]
    return tuple(markdown_table([_HEADERS[i] for i in cols], [[r[i] for i in cols]
                                                             for r in rows], "r" * len(cols))
                 for cols in (_MEMORY_COLUMNS, _TIME_COLUMNS))


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


# ------------------------------------------------------------------ the chapter's tables
def rank_table(runs: dict) -> str:
    """What each world size measured: {P: [RankStats]} -> one row per P (busiest rank).

    Bytes and pairs are exact counts; peak memory is counted; the times are this
    machine's wall clock (noisy, and shared cores stretch them).
    """
    rows = []
    for p, stats in runs.items():
        s = max(stats, key=lambda s: s.peak_bytes)
        rows.append([p, f"{s.bytes_sent / 1024:,.1f}", f"{s.peak_bytes / 1024:,.0f}",
                     f"{max(x.pairs for x in stats):,}",
                     f"{sum(s.compute_s) * 1e3:.1f}", f"{sum(s.comm_s) * 1e3:.1f}"])
    head = ("P", "KiB sent per rank", "peak KiB per rank", "pairs per rank",
            "compute ms", "waiting on the link ms")
    return markdown_table(head, rows, "r" * len(head))


def scheme_table(names, n_tokens: int, world_size: int) -> tuple[str, dict]:
    """Ring against Ulysses, per rank per layer, for each model: (table, {name: row}).

    A row holds the ring's and Ulysses' GB and Ulysses' largest P (the KV heads).
    """
    rows, out = [], {}
    for name in names:
        cfg = models.get(name)
        ring_gb = counting.ring_bytes_total(n_tokens, world_size, 2 * cfg.d_kv) / 1e9
        width = 2 * cfg.d_attn + 2 * cfg.d_kv  # q, k, v in, output back
        uly_gb = counting.ulysses_bytes_total(n_tokens, world_size, width) / 1e9
        cap = counting.ulysses_max_world_size(cfg)
        out[name] = {"ring_gb": ring_gb, "ulysses_gb": uly_gb, "ulysses_cap": cap}
        rows.append([name, f"{cfg.n_heads} / {cfg.n_kv_heads}", num3(ring_gb),
                     num3(uly_gb), cap])
    head = (f"{n_tokens:,} tokens, P = {world_size}", "heads / KV heads",
            "ring GB per rank per layer", "Ulysses GB", "Ulysses max P")
    return markdown_table(head, rows, "lrrrr"), out


def overlap_table(model: str = "llama-3-8b", gpu: str = "H100 SXM", dtype: str = "bf16",
                  n_tokens: int = 1_000_000) -> tuple[str, dict]:
    """Per link: the fewest tokens per device that hide a causal ring step's transfer."""
    f = hardware.get(gpu).peak(dtype)
    rows, need = [], {}
    for name, link in hardware.LINKS.items():
        n_min = counting.overlap_min_tokens(model, f, link.bandwidth, causal=True)
        need[name] = n_min
        rows.append([name, num3(link.bandwidth / 1e9), f"{n_min:,.0f}",
                     int(n_tokens // n_min)])
    head = (f"link ({gpu.split()[0]}, {dtype}, causal)", "GB/s each way",
            "min tokens per device", f"max P at {n_tokens:,} tokens")
    return markdown_table(head, rows, "lrrr"), need


def training_table(model: str, n_tokens: int, world_sizes, gpu: str = "H100 SXM",
                   link: str = "NVLink 4 (H100)") -> tuple[str, list]:
    """The ring in training, per rank per layer: forward GB, backward GB, their ratio, and
    the fewest tokens per device that hide a causal step, forward and backward."""
    cfg, g, l = models.get(model), hardware.get(gpu), hardware.link(link)
    f, kvw = g.peak("bf16"), 2 * cfg.d_kv
    fwd_min = counting.overlap_min_tokens(cfg, f, l.bandwidth, causal=True)
    bwd_min = counting.ring_backward_min_tokens(cfg, f, l.bandwidth, causal=True)
    rows, out = [], []
    for p in world_sizes:
        fwd = counting.ring_bytes_total(n_tokens, p, kvw) / 1e9
        bwd = counting.ring_backward_bytes_total(n_tokens, p, kvw) / 1e9
        out.append({"P": p, "fwd_gb": fwd, "bwd_gb": bwd, "ratio": bwd / fwd,
                    "fwd_min": fwd_min, "bwd_min": bwd_min})
        rows.append([p, num3(fwd), num3(bwd), f"{bwd / fwd:.2f}",
                     "yes" if n_tokens / p >= bwd_min else "no"])
    head = (f"P ({model}, {n_tokens:,} tokens)", "forward GB per rank",
            "backward GB per rank", "backward / forward",
            f"backward hidden on {link.split(' (')[0]}")
    return markdown_table(head, rows, "r" * len(head)), out


def usp_table(model: str, n_tokens: int, per_server: int, servers: int,
              inside: str = "NVLink 4 (H100)", between: str = "InfiniBand NDR"):
    """Ring, Ulysses and USP on servers × per_server GPUs: GB per rank per layer on each
    link and the transfer time at its bandwidth (what must hide behind the compute).

    Ulysses over all ranks needs P ≤ KV heads; USP puts its all-to-all inside a server
    (P_u = per_server) and the ring between servers (P_r = servers).
    """
    cfg = models.get(model)
    p, kvw = per_server * servers, 2 * cfg.d_kv
    width = 2 * cfg.d_attn + 2 * cfg.d_kv
    fast, slow = hardware.link(inside).bandwidth, hardware.link(between).bandwidth
    cap = counting.ulysses_max_world_size(cfg)
    plans = {"ring": (1, p), "USP": (per_server, servers)}
    if p <= cap:
        plans["Ulysses"] = (p, 1)
    rows, out = [], {}
    for name, (pu, pr) in plans.items():
        b = counting.usp_bytes_total(n_tokens, pu, pr, kvw, width)
        # the ring's hop that leaves a server sets its pace: every step waits for it
        ring_bw = slow if servers > 1 else fast
        secs = b["all_to_all"] / fast + b["ring"] / ring_bw
        out[name] = {**b, "seconds": secs, "ulysses_size": pu, "ring_size": pr}
        rows.append([name, f"{pu} × {pr}", num3(b["all_to_all"] / 1e9),
                     num3(b["ring"] / 1e9), f"{secs * 1e3:,.1f}"])
    head = (f"P = {p} ({servers} servers × {per_server})", "all-to-all × ring ranks",
            "all-to-all GB (in a server)", "ring GB", "transfer ms per layer")
    return markdown_table(head, rows, "lrrrr"), out
