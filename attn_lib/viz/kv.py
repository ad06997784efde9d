"""Chapter 3 figures, tables and the KV-cache explorer (with its static twin for the HTML book)."""
from __future__ import annotations

import numpy as np

from .. import counting, decode_cost, hardware, models
from .._checks import check_bytes, check_type
from ._common import DPI, format_bytes, markdown_table, plain_ticks

#: The GPUs chapter 3 compares, each with the half-precision dtype it runs (T4 has no bf16).
ROOFLINE_GPUS = (("H100 SXM", "fp16"), ("A100 80GB", "fp16"), ("T4", "fp16"))


def _axes(ax, figsize=(5.5, 3.6)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, dpi=DPI)
    return ax


def _log_y_ticks(ax):
    """Major y ticks at 1, 2 and 5 per decade, plain numbers: a log axis spanning one or two
    decades otherwise shows a single label."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


# ----------------------------------------------------------------------------- measured scaling
def plot_decode_scaling(lengths, seconds, fit_lengths=None, slope=None, ax=None, *, dtype=None):
    """Decode-step time against cache length, log-log, with a slope-1 guide through the last point.

    `dtype` (the timing's, e.g. 'bfloat16') goes into the title."""
    ax = _axes(ax)
    lengths, seconds = np.asarray(lengths, float), np.asarray(seconds, float)
    ax.loglog(lengths, seconds * 1e3, "o-", label="measured decode step")
    guide = seconds[-1] * 1e3 * lengths / lengths[-1]
    ax.loglog(lengths, guide, "k--", lw=1, label="slope 1 (linear)")
    if fit_lengths is not None:
        ax.axvspan(min(fit_lengths), max(fit_lengths), color="C1", alpha=0.12,
                   label="fit range" + (f" (slope {slope:.2f})" if slope is not None else ""))
    ax.set(xlabel="tokens in the cache", ylabel="time per decode step (ms)",
           title="One decode step" + (f" ({dtype})" if dtype else ""))
    ax.legend(fontsize=8)
    plain_ticks(ax, lengths)
    _log_y_ticks(ax)
    ax.tick_params(axis="x", labelrotation=45)
    return ax


def plot_prefill_scaling(lengths, seconds, crossover, axes=None, *, dtype=None):
    """Prefill time (log-log) and its local slope, against 1 + N/(N + N×) from FLOP counting.

    `dtype` (the timing's) goes into the first panel's title."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=DPI)
    n, t = np.asarray(lengths, float), np.asarray(seconds, float)
    axes[0].loglog(n, t * 1e3, "o-", label="measured prefill")
    for p, style in ((1, "k:"), (2, "k--")):
        axes[0].loglog(n, t[-1] * 1e3 * (n / n[-1]) ** p, style, lw=1, label=f"slope {p}")
    axes[0].set(xlabel="prompt tokens N", ylabel="prefill time (ms)",
                title="Prefill" + (f" ({dtype})" if dtype else ""))
    mid = np.sqrt(n[1:] * n[:-1])  # geometric midpoints of consecutive sizes
    axes[1].semilogx(mid, np.diff(np.log(t)) / np.diff(np.log(n)), "o-", label="measured local slope")
    grid = np.geomspace(n[0], n[-1], 100)
    axes[1].semilogx(grid, 1 + grid / (grid + crossover), "k--", lw=1, label="FLOP model 1 + N/(N + N×)")
    axes[1].axvline(crossover, color="C3", lw=1, label=f"crossover N× = {crossover:,.0f}")
    axes[1].set(xlabel="prompt tokens N", ylabel="d log t / d log N", ylim=(0, 2.5), title="Local slope")
    for ax in axes:
        ax.legend(fontsize=8)
        plain_ticks(ax, n)
        ax.tick_params(axis="x", labelrotation=45)
    _log_y_ticks(axes[0])
    plt.tight_layout()
    return axes


def plot_generation(steps, cached_s, uncached_s, axes=None, *, dtype=None):
    """Time to generate T tokens with and without the cache, and their ratio (`dtype`: the timing's)."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4), dpi=DPI)
    steps = np.asarray(steps)
    axes[0].loglog(steps, np.asarray(cached_s) * 1e3, "o-", label="with KV cache")
    axes[0].loglog(steps, np.asarray(uncached_s) * 1e3, "s-", label="recompute every step")
    axes[0].set(xlabel="generated tokens T", ylabel="total time (ms)",
                title="Generating T tokens" + (f" ({dtype})" if dtype else ""))
    axes[1].semilogx(steps, np.asarray(uncached_s) / np.asarray(cached_s), "o-", color="C2")
    axes[1].set(xlabel="generated tokens T", ylabel="no-cache time / cached time", title="Speed-up of the cache")
    axes[0].legend(fontsize=8)
    for ax in axes:
        plain_ticks(ax, steps)
    _log_y_ticks(axes[0])
    plt.tight_layout()
    return axes


def matching_kv_runs(runs, config) -> list:
    """The recorded runs (attn_lib.recorded.Run) whose kv-cache section timed `config`'s model.

    A run recorded with another model (the suite's small model before the Llama-sized
    layers, launch-bound on a GPU) is left out rather than drawn beside this chapter's.
    """
    from dataclasses import asdict

    from ..tiny_gpt import TinyGPTConfig

    check_type("config", config, TinyGPTConfig)
    check_type("runs", runs, (list, tuple), "a list of recorded runs")
    want = asdict(config)
    return [r for r in runs if (r.data.get("kv_cache") or {}).get("model") == want
            and r.data["kv_cache"].get("decode")]


def plot_prefill_vs_decode(decode, prefill, *, label: str, runs=(), ax=None):
    """One decode step and a whole prefill against tokens, log-log, on readable ticks.

    decode, prefill: (lengths, seconds, batch). `label` says where and in which dtype they
    ran; `runs` are recorded GPU runs of the same model (:func:`matching_kv_runs`), drawn
    dashed with their device, date and dtype.
    """
    from .. import recorded

    ax = _axes(ax, figsize=(6.4, 3.8))
    (dn, ds, db), (pn, ps, pb) = decode, prefill
    ax.loglog(dn, ds, "o-", label=f"one decode step, batch {db} ({label})")
    ax.loglog(pn, ps, "s-", label=f"prefill, batch {pb} ({label})")
    for run in runs:
        kv = run.data["kv_cache"]
        for what, marker in (("decode", "o"), ("prefill", "s")):
            for xs, ys in recorded.series(run, what).values():
                batch = kv.get(f"{what}_batch", 1)
                ax.loglog(xs, ys, "--", marker=marker, ms=3,
                          label=f"{what}, batch {batch} ({run.label}, {kv.get('dtype')})")
    ticks = sorted(set(dn) | set(pn) | {x for r in runs for w in ("decode", "prefill")
                                        for xs, _ in recorded.series(r, w).values() for x in xs})
    kept = ticks[:1]
    for t in ticks[1:]:  # at most one tick per factor 1.6: labels that do not collide
        if t >= 1.6 * kept[-1]:
            kept.append(t)
    ax.set(xlabel="tokens (cache or prompt length)", ylabel="seconds",
           title="Prefill vs one decode step")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * (40 if runs else 12))  # headroom for the legend (log axis)
    ax.legend(fontsize=8, loc="upper left")
    plain_ticks(ax, kept)
    _log_y_ticks(ax)
    ax.tick_params(axis="x", labelrotation=45)
    return ax


# ----------------------------------------------------------------------------- memory
def kv_memory_rows(names=None, bytes_per_value: int = 2) -> list[dict]:
    """Per preset: attention kind, KV bytes per token and at full context (chapter 3's table)."""
    if isinstance(names, str) or not (names is None or isinstance(names, (list, tuple))):
        raise TypeError(f"names must be a list of preset names or None, got {names!r}")
    bytes_per_value, rows = check_bytes("bytes_per_value", bytes_per_value), []
    for name in names or list(models.PRESETS):
        cfg = models.get(name)
        kind = "MHA" if cfg.n_kv_heads == cfg.n_heads else f"GQA ({cfg.n_heads}/{cfg.n_kv_heads})"
        if cfg.sliding_window:
            kind += f", window {cfg.sliding_window}"
        rows.append({"model": name, "attention": kind, "context": cfg.context,
                     "per_token": counting.kv_cache_bytes(cfg, 1, bytes_per_value),
                     "full_context": counting.kv_cache_bytes(cfg, cfg.context, bytes_per_value)})
    return rows


def kv_table_markdown(names=None, bytes_per_value: int = 2) -> str:
    """Per preset: KV cache per token and for one sequence at full context (all layers),
    each in the unit that fits its row, decimal (KB, MB, GB) then binary (KiB, MiB, GiB)."""
    rows = []
    for r in kv_memory_rows(names, bytes_per_value):
        rows.append([r["model"], r["attention"], f"{r['context']:,}",
                     format_bytes(r["per_token"]), format_bytes(r["full_context"])])
    head = ["model", "attention", "context", "KV per token",
            "KV, one sequence at full context"]
    return markdown_table(head, rows)


def plot_batch_context(model_names, gpus=("H100 SXM", "T4"), contexts=None, axes=None):
    """Largest batch whose fp16 KV caches fit beside the weights, against context length."""
    import matplotlib.pyplot as plt

    contexts = np.asarray(contexts if contexts is not None else 2 ** np.arange(9, 18))
    if axes is None:
        _, axes = plt.subplots(1, len(gpus), figsize=(5 * len(gpus), 3.6), dpi=DPI, squeeze=False)
        axes = axes[0]
    for ax, gpu in zip(axes, gpus):
        g = hardware.get(gpu)
        for name in model_names:
            batch = [decode_cost.max_batch(name, int(c), g) for c in contexts]
            label = name if any(batch) else f"{name} (weights alone do not fit)"
            ax.loglog(contexts, np.maximum(batch, 0.5), "o-", ms=3, label=label)  # 0 drawn at 0.5
        ax.axhline(1, color="k", lw=0.8)
        ax.set(xlabel="context (tokens per sequence)", ylabel="max batch (sequences)",
               title=f"{g.name}, {g.memory / 1e9:.0f} GB, fp16 weights + KV cache")
        ax.legend(fontsize=8)
        plain_ticks(ax)
    plt.tight_layout()
    return axes


# ----------------------------------------------------------------------------- roofline
def plot_roofline(points: dict, gpus=ROOFLINE_GPUS, ax=None):
    """Attainable FLOP/s against arithmetic intensity for each GPU, ridge points marked.

    points: label -> arithmetic intensity (FLOP/byte), drawn as vertical markers.
    """
    ax = _axes(ax, figsize=(7, 4.2))
    x = np.geomspace(0.1, 1e4, 400)
    for i, (name, dtype) in enumerate(gpus):
        g = hardware.get(name)
        ax.loglog(x, np.minimum(g.peak(dtype), g.bandwidth * x) / 1e12, color=f"C{i}",
                  label=f"{g.name} ({dtype}), ridge {g.ridge_point(dtype):.0f} FLOP/B")
        ax.plot([g.ridge_point(dtype)], [g.peak(dtype) / 1e12], "o", color=f"C{i}")
    for j, (label, intensity) in enumerate(points.items()):
        ax.axvline(intensity, color="0.4", ls=":", lw=1)
        ax.text(intensity * 1.08, 0.05 * 2.2 ** (j % 4), label, fontsize=7, rotation=90, va="bottom")
    ax.set(xlabel="arithmetic intensity (FLOP/byte)", ylabel="attainable TFLOP/s", ylim=(0.03, 2e3),
           title="Roofline: decode sits far left of every ridge")
    ax.legend(fontsize=7, loc="lower right")
    plain_ticks(ax)
    return ax


# ----------------------------------------------------------------------------- explorer
def _estimate_row(model: str, context: int, batch: int, gpu: str = "H100 SXM", dtype: str = "fp16") -> list:
    """One row of the explorer's table: cache, weights, fit, roofline step time, tokens/s."""
    e = decode_cost.decode_step_estimate(model, context, batch, gpu, dtype)
    return [model, f"{context:,}", batch, format_bytes(e["kv_bytes"], "GB"),
            format_bytes(e["weight_bytes"], "GB"), "yes" if e["fits"] else "no",
            f"{e['time_s'] * 1e3:.2f}", e["bound"], f"{e['tokens_per_s']:,.0f}"]


_ESTIMATE_HEADERS = ["model", "context", "batch", "KV cache", "weights", "fits",
                    "step (ms)", "bound", "tokens/s"]


def estimate_table_markdown(models_=("llama-2-7b", "llama-3-8b"), contexts=(4096, 8192),
                            batches=(1, 16, 64), gpu: str = "H100 SXM", dtype: str = "fp16") -> str:
    """Static twin of the explorer: a few fixed (model, context, batch) rows."""
    rows = [_estimate_row(m, c, b, gpu, dtype) for m in models_ for c in contexts for b in batches]
    return markdown_table(_ESTIMATE_HEADERS, rows)


def explorer():
    """ipywidgets: preset + context + batch + GPU -> cache size and roofline decode-step time."""
    import ipywidgets as w
    from IPython.display import Markdown, display

    model = w.Dropdown(options=list(models.PRESETS), value="llama-2-7b", description="model")
    context = w.IntSlider(value=4096, min=256, max=131072, step=256, description="context")
    batch = w.IntSlider(value=8, min=1, max=512, description="batch")
    gpu = w.Dropdown(options=[g for g, _ in ROOFLINE_GPUS], value="H100 SXM", description="GPU")
    out = w.Output()

    def update(*_):
        out.clear_output(wait=True)
        with out:
            row = _estimate_row(model.value, context.value, batch.value, gpu.value, "fp16")
            display(Markdown(markdown_table(_ESTIMATE_HEADERS, [row])))
            ridge = decode_cost.compute_bound_batch(gpu.value, "fp16")
            display(Markdown(f"Weight matmuls turn compute-bound near batch {ridge:.0f} on {gpu.value}; "
                             f"the KV-cache reads never do (about 1 FLOP/byte per kv head group)."))

    for widget in (model, context, batch, gpu):
        widget.observe(update, names="value")
    update()
    return w.VBox([w.HBox([model, gpu]), w.HBox([context, batch]), out])
