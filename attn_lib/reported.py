"""GPU figures published elsewhere (papers, tutorials), cited, apart from our runs.

Chapter 4.

This book's CI has no GPU, so chapter 4 shows what others measured: throughput reported
by the FlashAttention-2 and -3 papers and by Triton's fused-attention tutorial, each row
with its GPU, dtype, head dim, mask, length and the figure or table it comes from. They
live in ``attn_lib/data/flash_reported.json`` (schema below), installed with the package
so a notebook finds them on Colab, apart from the book's own recorded runs
(:mod:`attn_lib.recorded`, ``book/data/*.json``). :func:`plot_reported` labels every
line "reported elsewhere"; the book's runs, when book/data holds one, are drawn beside
them by :mod:`attn_lib.recorded`, never merged into the same series.

Schema ``attn_lib.reported/1``: schema, note, sources {key: {short, title, authors,
year, id}}, rows [{source, where, impl, gpu (attn_lib.hardware name | null: not stated),
dtype, pass ("forward" | "backward" | "forward+backward"), head_dim, causal, seq_len,
batch, heads, tflops, time_ms, up_to (a maximum over a sweep: configuration fields may
be null), quote}], and optionally hardware {key: {source, where, gpu, value, unit, quote}}:
single figures a source reports about a GPU (FlashAttention-3's matmul and exponential
throughput on an H100), read with :func:`hardware_figure`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._checks import check_choice, check_str, check_type

SCHEMA = "attn_lib.reported/1"
_PASSES = ("forward", "backward", "forward+backward")
_ROW = {
    "source": str,
    "where": str,
    "impl": str,
    "pass": str,
    "tflops": (int, float),
    "up_to": bool,
}
_CONFIG = ("dtype", "head_dim", "causal", "seq_len")  # required unless up_to
_OPTIONAL = {
    "gpu": str,
    "dtype": str,
    "head_dim": int,
    "causal": bool,
    "seq_len": int,
    "batch": int,
    "heads": int,
    "time_ms": (int, float),
    "quote": str,
}


def data_path() -> Path:
    """The cited file, shipped inside the package (package data, see pyproject.toml)."""
    return Path(__file__).resolve().parent / "data" / "flash_reported.json"


def _fail(source: str, field: str, why: str):
    raise ValueError(f"{source}: field '{field}' {why}")


def _typed(value, typ) -> bool:
    return isinstance(value, typ) and not (typ is not bool and isinstance(value, bool))


def reported_flops(row: dict) -> float:
    """FLOPs of one call under the sources' convention: 4·N²·d·heads·batch, /2 causal,
    ×2.5 for the backward (×3.5 forward + backward)."""
    check_type("row", row, dict, "a dict (one row of the reported file)")
    check_choice("row['pass']", row.get("pass"), _PASSES)
    fwd = 4 * row["seq_len"] ** 2 * row["head_dim"] * row["heads"] * row["batch"]
    fwd /= 2 if row["causal"] else 1
    return fwd * {"forward": 1.0, "backward": 2.5, "forward+backward": 3.5}[row["pass"]]


def validate_row(row, where: str, sources: dict, source: str = "reported") -> dict:
    """Check one row; raise ValueError naming the file and field."""
    from . import hardware

    check_str("where", where), check_str("source", source)
    check_type("sources", sources, dict, "a dict {key: source}")
    if not isinstance(row, dict):
        _fail(source, where, "must be an object")
    for name, typ in _ROW.items():
        if name not in row or not _typed(row[name], typ):
            _fail(
                source,
                f"{where}.{name}",
                f"must be given as {getattr(typ, '__name__', 'number')}",
            )
    for name, typ in _OPTIONAL.items():
        if row.get(name) is not None and not _typed(row[name], typ):
            _fail(
                source,
                f"{where}.{name}",
                f"must be {getattr(typ, '__name__', 'number')} or null",
            )
    if row["source"] not in sources:
        _fail(
            source,
            f"{where}.source",
            f"must name one of {sorted(sources)}, got {row['source']!r}",
        )
    if row["pass"] not in _PASSES:
        _fail(source, f"{where}.pass", f"must be one of {_PASSES}, got {row['pass']!r}")
    if not row["up_to"]:
        for name in _CONFIG:
            if row.get(name) is None:
                _fail(source, f"{where}.{name}", "must be given unless up_to is true")
    gpu = row.get("gpu")
    if gpu is not None:
        if gpu not in hardware.GPUS:
            _fail(
                source,
                f"{where}.gpu",
                f"must be an attn_lib.hardware name or null, got {gpu!r}",
            )
        dense = hardware.GPUS[gpu].peak_flops.get(row.get("dtype") or "", float("inf"))
        if not 0 < row["tflops"] * 1e12 <= dense:
            _fail(
                source, f"{where}.tflops", f"{row['tflops']} exceeds {gpu}'s dense peak"
            )
    if (
        row.get("time_ms") is not None
    ):  # a time and a rate must agree with the FLOP convention
        if any(
            row.get(k) is None
            for k in ("seq_len", "head_dim", "heads", "batch", "causal")
        ):
            _fail(
                source,
                f"{where}.time_ms",
                "needs seq_len, head_dim, heads, batch and causal",
            )
        implied = reported_flops(row) / (row["time_ms"] * 1e-3) / 1e12
        if abs(implied / row["tflops"] - 1) > 0.01:
            _fail(
                source,
                f"{where}.tflops",
                f"{row['tflops']} disagrees with FLOPs/time = {implied:.1f}",
            )
    return row


def validate(data, source: str = "reported") -> dict:
    """Check a reported-figures file against schema attn_lib.reported/1."""
    check_str("source", source)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: must be a JSON object")
    if data.get("schema") != SCHEMA:
        _fail(source, "schema", f"must be {SCHEMA!r}, got {data.get('schema')!r}")
    sources = data.get("sources")
    if not isinstance(sources, dict) or not sources:
        _fail(source, "sources", "must be a non-empty object")
    for key, s in sources.items():
        for name in ("title", "id"):
            if (
                not isinstance(s, dict)
                or not isinstance(s.get(name), str)
                or not s[name]
            ):
                _fail(source, f"sources.{key}.{name}", "must be a non-empty string")
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        _fail(source, "rows", "must be a non-empty list")
    for i, row in enumerate(rows):
        validate_row(row, f"rows[{i}]", sources, source)
    for key, h in data.get("hardware", {}).items():
        where = f"hardware.{key}"
        if not isinstance(h, dict) or h.get("source") not in sources:
            _fail(source, f"{where}.source", f"must name one of {sorted(sources)}")
        if not _typed(h.get("value"), (int, float)) or h["value"] <= 0:
            _fail(source, f"{where}.value", "must be a positive number")
        for name in ("where", "unit", "quote"):
            if not isinstance(h.get(name), str) or not h[name]:
                _fail(source, f"{where}.{name}", "must be a non-empty string")
    return data


def load(path: str | os.PathLike | None = None) -> dict:
    """The validated reported-figures file (default: :func:`data_path`)."""
    if path is not None:
        check_type("path", path, (str, os.PathLike), "a str, a path or None")
    path = Path(path) if path is not None else data_path()
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    return validate(data, str(path))


def rows(data: dict | None = None, **filters) -> list[dict]:
    """Rows matching every filter (e.g. gpu="H100 SXM", up_to=False), by impl and N."""
    data = load() if data is None else check_type("data", data, dict, "a dict")
    found = [r for r in data["rows"] if all(r.get(k) == v for k, v in filters.items())]
    return sorted(found, key=lambda r: (r["impl"], r["source"], r.get("seq_len") or 0))


def citation(data: dict, key: str) -> str:
    """'Shah et al. ... (2024), arXiv:2407.08608v1' for a source key."""
    check_type("data", data, dict, "a dict from load()")
    s = data["sources"][check_choice("key", key, tuple(data["sources"]))]
    year = f" ({s['year']})" if s.get("year") else ""
    return f"{s.get('authors', '')}{year}, '{s['title']}', {s['id']}"


def label(row: dict, data: dict) -> str:
    """Legend text: what, where from, and that it was reported elsewhere."""
    check_type("row", row, dict, "a dict (one row)")
    check_type("data", data, dict, "a dict from load()")
    gpu = row.get("gpu") or "GPU not stated"
    cfg = f"d={row['head_dim']}" if row.get("head_dim") else "best case"
    mask = {True: ", causal", False: "", None: ""}[row.get("causal")]
    short = data["sources"][row["source"]].get("short", row["source"])
    return f"{row['impl']}, {gpu}, {cfg}{mask} ({short}; reported elsewhere)"


def plot_reported(
    ax, data: dict | None = None, *, pass_: str = "forward", named_gpu: bool = False, **filters
) -> list:
    """Draw reported TFLOP/s against N on `ax`: open markers for swept rows (a line per
    impl, GPU, head dim and mask), a dotted horizontal line for each 'up to' maximum.
    Every label says "reported elsewhere". named_gpu: leave out rows whose source names no
    GPU. Returns the Line2D objects."""
    check_choice("pass_", pass_, _PASSES)
    check_type("named_gpu", named_gpu, bool, "a bool")
    if not hasattr(ax, "plot"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    data = load() if data is None else check_type("data", data, dict, "a dict")
    lines, groups = [], {}
    for r in rows(data, **filters):
        if r["pass"] != pass_ or (named_gpu and r.get("gpu") is None):
            continue
        if r["up_to"]:
            lines.append(
                ax.axhline(
                    r["tflops"],
                    ls=":",
                    lw=1.2,
                    color="0.35",
                    label=f"up to {r['tflops']:.0f}: " + label(r, data),
                )
            )
            continue
        key = (r["impl"], r.get("gpu"), r["head_dim"], r["causal"], r["source"])
        groups.setdefault(key, []).append(r)
    for group in groups.values():
        xs, ys = [r["seq_len"] for r in group], [r["tflops"] for r in group]
        lines += ax.plot(
            xs,
            ys,
            marker="o",
            mfc="none",
            ls="-" if len(xs) > 1 else "none",
            lw=1,
            label=label(group[0], data),
        )
    return lines


def max_reported_tflops(
    gpu: str = "H100 SXM", impl: str | None = None, pass_: str = "forward"
) -> float:
    """Largest reported TFLOP/s for a GPU (and impl): a plain float for the prose."""
    check_choice("pass_", pass_, _PASSES)
    found = [
        r["tflops"]
        for r in rows(gpu=gpu)
        if r["pass"] == pass_ and impl in (None, r["impl"])
    ]
    if not found:
        raise ValueError(f"no reported {pass_} figure for gpu={gpu!r}, impl={impl!r}")
    return float(max(found))


def hardware_figure(key: str, data: dict | None = None) -> float:
    """A reported hardware figure (the file's ``hardware`` section), e.g.
    ``"h100_exp_tflops"``: FlashAttention-3's 3.9 TFLOP/s of exponentials on an H100."""
    data = load() if data is None else check_type("data", data, dict, "a dict from load()")
    known = tuple(data.get("hardware", {}))
    return float(data["hardware"][check_choice("key", key, known)]["value"])


def hardware_citation(key: str, data: dict | None = None) -> str:
    """Where a reported hardware figure comes from: 'FA3 paper, Section 3.2: "..."'."""
    data = load() if data is None else check_type("data", data, dict, "a dict from load()")
    known = tuple(data.get("hardware", {}))
    h = data["hardware"][check_choice("key", key, known)]
    short = data["sources"][h["source"]].get("short", h["source"])
    return f"{short}, {h['where']}: \"{h['quote']}\""
