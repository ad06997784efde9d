"""The GPU primer's figures (appendix): one SM and the memory below it; the roofline.

- :func:`chip_figure`: left, a sketch of one streaming multiprocessor running thread
  blocks made of warps, above the L2 cache and HBM that all SMs share; right, each
  memory level's capacity on a log scale, with the bandwidths the library records.
- :func:`roofline_figure`: attainable FLOP/s against arithmetic intensity for chosen
  GPUs and dtypes, with their ridge points and a few kernels placed on it.

Every number comes from :mod:`attn_lib.hardware` (sizes, peaks, sources). matplotlib is
imported inside the functions.
"""
from __future__ import annotations

from .. import hardware
from ._common import DPI, FONT, format_bytes


def memory_levels(gpu: str = "H100 SXM") -> list[dict]:
    """The levels of one GPU's memory, fastest first: name, bytes (whole chip), bandwidth.

    Registers and shared memory are per SM × the SM count. Bandwidth is None where the
    library records no datasheet figure (on-chip levels: see FLASH_PAPER_A100).
    """
    g = hardware.get(gpu)
    if g.sm_count is None or g.smem_per_sm is None or g.l2_bytes is None:
        raise ValueError(f"gpu: {g.name} has no on-chip sizes recorded in attn_lib.hardware")
    regs = hardware.cuda_fact("registers_per_sm") * 4 * g.sm_count  # 32-bit registers
    return [
        {"name": "registers", "bytes": regs, "bandwidth": None},
        {"name": "shared memory (SRAM)", "bytes": g.smem_per_sm * g.sm_count,
         "bandwidth": None},
        {"name": "L2 cache", "bytes": g.l2_bytes, "bandwidth": None},
        {"name": "HBM", "bytes": g.memory, "bandwidth": g.bandwidth},
    ]


def _box(ax, x, y, w, h, text, color, *, size=FONT, weight="normal", va="center"):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=color, ec="0.3", lw=0.8))
    ty = y + h / 2 if va == "center" else y + h - 0.22
    ax.text(x + w / 2, ty, text, ha="center", va="center", fontsize=size, weight=weight)


def _draw_chip(ax, g) -> None:
    """One SM (blocks of warps, tensor cores, registers, shared memory) over L2 and HBM."""
    warp = hardware.cuda_fact("warp_size")
    tc = hardware.cuda_fact("tensor_cores_per_sm")
    small = FONT - 1
    _box(ax, 0, 2.2, 10, 5.6, f"one SM (of {g.sm_count})", "#e8f0fa", weight="bold",
         va="top")
    for i, x in enumerate((0.3, 3.45)):  # two resident thread blocks
        _box(ax, x, 4.65, 2.95, 2.45, f"block {i}", "#cfe0f3", size=small, va="top")
        for j in range(3):
            _box(ax, x + 0.2, 4.8 + j * 0.55, 2.55, 0.45, f"{warp}-thread warp",
                 "#ffffff", size=small - 1)
    _box(ax, 6.6, 4.65, 3.1, 2.45, f"{tc} tensor\ncores", "#fde2c8", size=small)
    _box(ax, 0.3, 3.55, 9.4, 0.9, "registers: each thread's own", "#ffffff", size=small)
    _box(ax, 0.3, 2.45, 9.4, 0.9,
         f"shared memory (SRAM): {format_bytes(g.smem_per_sm, 'KiB').replace('.0 ', ' ')}",
         "#ffffff", size=small)
    _box(ax, 0, 1.15, 10, 0.85, "L2 cache: shared by all SMs", "#eeeeee", size=small)
    _box(ax, 0, 0, 10, 0.95, "HBM: the GPU's main memory", "#dddddd", size=small)
    ax.set(xlim=(-0.1, 10.1), ylim=(-0.1, 7.9))
    ax.axis("off")


def chip_figure(gpu: str = "H100 SXM"):
    """Left: one SM over the shared memory levels; right: each level's size, log scale."""
    import matplotlib.pyplot as plt

    g = hardware.get(gpu)
    levels = memory_levels(g)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(7, 3.8), dpi=DPI,
                                 gridspec_kw={"width_ratios": [1.5, 1]})
    _draw_chip(ax, g)
    names = [lv["name"] for lv in levels]
    sizes = [lv["bytes"] for lv in levels]
    bx.barh(range(len(levels)), sizes, color=["#ffffff", "#cfe0f3", "#eeeeee", "#dddddd"],
            ec="0.3")
    for i, lv in enumerate(levels):
        label = format_bytes(lv["bytes"]).split(" (")[0].replace(".00 ", " ")
        if lv["bandwidth"]:
            label += f", {lv['bandwidth'] / 1e12:.3g} TB/s"
        bx.text(lv["bytes"] * 1.3, i, label, va="center", fontsize=FONT - 1)
    bx.set_xscale("log")
    bx.set_xlim(min(sizes) / 3, max(sizes) * 1e4)
    bx.set_yticks(range(len(levels)), names, fontsize=FONT - 1)
    bx.invert_yaxis()
    bx.set_xlabel("bytes on the whole chip", fontsize=FONT)
    bx.tick_params(labelsize=FONT - 1)
    bx.set_title(f"{g.name}: whole-chip sizes", fontsize=FONT)
    fig.tight_layout()
    return fig


def roofline_figure(lines=(("H100 SXM", "bf16"), ("H100 SXM", "fp32"), ("T4", "fp16")),
                    points=()):
    """Attainable FLOP/s = min(peak, intensity × bandwidth) for each (gpu, dtype) line.

    points: (label, FLOP per byte) pairs marked on the first line's roof.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=DPI)
    x = np.logspace(-1, 4, 200)  # FLOP per byte
    for i, (name, dtype) in enumerate(lines):
        g = hardware.get(name)
        peak, ridge = g.peak(dtype), g.ridge_point(dtype)
        ax.plot(x, np.minimum(peak, x * g.bandwidth) / 1e12, color=f"C{i}",
                label=f"{g.name}, {dtype}: ridge {ridge:,.0f} FLOP/B")
        ax.plot([ridge], [peak / 1e12], "o", color=f"C{i}", ms=4)
    if points:
        g, dtype = hardware.get(lines[0][0]), lines[0][1]
        for label, ai in points:
            y = min(g.peak(dtype), ai * g.bandwidth) / 1e12
            ax.plot([ai], [y], "kx", ms=6)
            ax.annotate(label, (ai, y), textcoords="offset points", xytext=(4, -12),
                        fontsize=FONT - 1)
    ax.set(xscale="log", yscale="log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte of memory traffic)", fontsize=FONT)
    ax.set_ylabel("attainable TFLOP/s", fontsize=FONT)
    ax.tick_params(labelsize=FONT - 1)
    ax.legend(fontsize=FONT - 1, loc="lower right")
    ax.grid(True, which="major", lw=0.3)
    fig.tight_layout()
    return fig
