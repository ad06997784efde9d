"""Recorded benchmark runs (book/data/*.json): the run schema, validated and loaded (chapters 3, 4).

Chapters 3 and 4 run on a CPU in CI, but their claims are about GPUs. ``python -m attn_lib.bench``
on a GPU writes one JSON file per run (schema below); the chapters load those files with
:func:`load_runs`, take {name: (xs, ys)} from :func:`series` and draw them with
:func:`attn_lib.viz.flash.plot_recorded` next to what the reader's own machine measures.
No file, no curves: an empty list, not an error. This module is the schema's one home.

Schema ``attn_lib.bench/2`` (every timing in seconds, memory in bytes, TFLOP/s = 1e12 FLOP/s):

    schema, kind ("attention-suite"), quick (bool), created (ISO 8601 UTC), command, elapsed_s
    device    type ("cuda" | "cpu"), name, slug, capability ([major, minor] | null),
              memory_bytes, spec (attn_lib.hardware name | null), host_cpu, cpu_count, torch_threads
    versions  python, torch, triton, cuda, cudnn, numpy, attn_lib, platform
    config    the suite's Plan (sizes, dtypes, head dims, min_run_time, ...)
    attention [{impl (a key of IMPL_DESCRIPTIONS), n_q, n_k, head_dim, causal, dtype, batch,
               heads, status ("ok" | "oom" | "skipped" | "error"), note, flops, median_s,
               iqr_s, times_s (every timed block, s per call), calls_per_time, tflops,
               peak_bytes, backend (sdpa: the kernel torch picked, torch_impl.sdpa_backend;
               else null)}]   (median_s / tflops are null unless status is "ok")
    naive_oom {impl (the unfused baseline searched), n (first N that ran out of memory | null),
               dtype, head_dim, causal, batch, heads, tried [{n, status, median_s, peak_bytes}], note}
    kv_cache  {status ("ok" | "skipped"), note, model (TinyGPTConfig fields), dtype,
               prefill [{n, median_s}], decode [{n, median_s}]}
    matmul    [{n, dtype, tf32, flops, median_s, iqr_s, times_s, calls_per_time, tflops}]
    triton_configs (GPU only) [{key, BLOCK_M, BLOCK_N, num_warps, num_stages}]

Schema ``attn_lib.bench/1`` (runs recorded before 2026-12-05, e.g. the first H200 run) is
the same without `backend` and `naive_oom.impl`; its unfused rows are impl "naive", timed
with torch_impl.attention in float32 whatever the dtype (see :data:`IMPL_DESCRIPTIONS`).
Version 2 records "standard" instead. Both still load.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ._checks import (check_bool, check_choice, check_optional_bool, check_optional_positive_int,
                      check_str, check_type)

SCHEMA = "attn_lib.bench/2"
#: Every schema this module still loads, oldest first; each with the impls its runs may hold.
SCHEMAS = {"attn_lib.bench/1": ("naive", "torch_tiled", "triton", "sdpa"),
           SCHEMA: ("standard", "torch_tiled", "triton", "sdpa")}
KIND = "attention-suite"
STATUSES = ("ok", "oom", "skipped", "error")

#: What an impl's rows measured: the one place a recorded name is explained.
IMPL_DESCRIPTIONS = {
    "standard": "standard attention as frameworks' eager path runs it "
                "(torch_impl.standard_attention): QK^T and PV in the run's dtype, "
                "softmax in float32, the N x N scores materialised",
    "naive": "the accurate float32 path (torch_impl.attention), not standard attention: "
             "scores and softmax in float32 whatever the run's dtype, so no half-precision "
             "tensor cores (schema attn_lib.bench/1 runs only)",
    "torch_tiled": "the tiled algorithm as separate torch ops (torch_impl.flash_attention): "
                   "never more than one block of scores, one launch per block",
    "triton": "the fused Triton kernel (triton_flash.flash_attention)",
    "sdpa": "torch's fused scaled_dot_product_attention (torch_impl.sdpa); "
            "the record's backend says which kernel ran",
}
#: Every impl name a recorded run may hold (any schema), in table order.
IMPLS = tuple(IMPL_DESCRIPTIONS)
#: What the suite measures today (schema SCHEMA), in table order.
MEASURED = SCHEMAS[SCHEMA]
#: SDPA backends as torch_impl.sdpa_backend names them.
BACKENDS = ("cudnn", "flash", "efficient", "math", "overrideable")


def describe_impl(impl: str) -> str:
    """What the rows of `impl` measured, e.g. describe_impl('naive') -> 'the accurate float32 ...'."""
    return IMPL_DESCRIPTIONS[check_choice("impl", impl, IMPLS)]


_NUM = (int, float)
_TOP = {"schema": str, "kind": str, "quick": bool, "created": str, "device": dict, "versions": dict,
        "config": dict, "attention": list, "naive_oom": dict, "kv_cache": dict, "matmul": list,
        "elapsed_s": _NUM}
_DEVICE = {"type": str, "name": str, "slug": str, "host_cpu": str}
_VERSIONS = {"python": str, "torch": str}
_ATTENTION = {"impl": str, "n_q": int, "n_k": int, "head_dim": int, "causal": bool, "dtype": str,
              "batch": int, "heads": int, "status": str, "flops": int, "times_s": list}
_TIMED = {"median_s": _NUM, "tflops": _NUM}
_KV_ROW = {"n": int, "median_s": _NUM}
_MATMUL = {"n": int, "dtype": str, "median_s": _NUM, "tflops": _NUM}


def data_dir() -> Path:
    """book/data of the checkout this attn_lib was imported from, else the copy that a pip
    install of attn_lib carries as ``attn_lib/_book_data`` (pyproject.toml), as on Colab."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "book" / "data"
    return checkout if checkout.is_dir() else here / "_book_data"


# ----------------------------------------------------------------------------- validation
def _require(obj: dict, fields: dict, where: str, source: str) -> None:
    for name, typ in fields.items():
        if name not in obj:
            raise ValueError(f"{source}: missing field '{where}{name}'")
        value = obj[name]
        ok = isinstance(value, typ) and not (typ in (int, _NUM) and isinstance(value, bool))
        if not ok:
            want = typ.__name__ if isinstance(typ, type) else "number"
            raise ValueError(f"{source}: field '{where}{name}' must be {want}, got {value!r}")


def validate_run(run, source: str = "run") -> dict:
    """Check a run against schema attn_lib.bench/1; raise ValueError naming the file and field."""
    check_str("source", source)
    if not isinstance(run, dict):
        raise ValueError(f"{source}: a run must be a JSON object, got {type(run).__name__}")
    _require(run, _TOP, "", source)
    if run["schema"] not in SCHEMAS:
        raise ValueError(f"{source}: field 'schema' must be one of {list(SCHEMAS)}, got {run['schema']!r}")
    impls = SCHEMAS[run["schema"]]
    if run["kind"] != KIND:
        raise ValueError(f"{source}: field 'kind' must be {KIND!r}, got {run['kind']!r}")
    _require(run["device"], _DEVICE, "device.", source)
    if run["device"]["type"] not in ("cuda", "cpu"):
        raise ValueError(f"{source}: field 'device.type' must be 'cuda' or 'cpu', got {run['device']['type']!r}")
    _require(run["versions"], _VERSIONS, "versions.", source)
    for i, rec in enumerate(run["attention"]):
        where = f"attention[{i}]."
        if not isinstance(rec, dict):
            raise ValueError(f"{source}: field '{where[:-1]}' must be an object")
        _require(rec, _ATTENTION, where, source)
        if rec["impl"] not in impls:
            raise ValueError(f"{source}: field '{where}impl' must be one of {impls} in schema "
                             f"{run['schema']}, got {rec['impl']!r}")
        if rec["status"] not in STATUSES:
            raise ValueError(f"{source}: field '{where}status' must be one of {STATUSES}, got {rec['status']!r}")
        if rec["status"] == "ok":
            _require(rec, _TIMED, where, source)
            if rec["median_s"] <= 0:
                raise ValueError(f"{source}: field '{where}median_s' must be > 0, got {rec['median_s']}")
        if run["schema"] != SCHEMA:
            continue
        backend = rec.get("backend", "missing")
        if rec["impl"] == "sdpa" and rec["status"] == "ok" and backend not in BACKENDS:
            raise ValueError(f"{source}: field '{where}backend' must be one of {BACKENDS} "
                             f"for an sdpa timing, got {backend!r}")
    _require(run["naive_oom"], {"tried": list} if run["schema"] != SCHEMA else {"tried": list, "impl": str},
             "naive_oom.", source)
    kv = run["kv_cache"]
    _require(kv, {"status": str, "prefill": list, "decode": list}, "kv_cache.", source)
    for part in ("prefill", "decode"):
        for i, row in enumerate(kv[part]):
            _require(row, _KV_ROW, f"kv_cache.{part}[{i}].", source)
    for i, row in enumerate(run["matmul"]):
        _require(row, _MATMUL, f"matmul[{i}].", source)
    return run


# ----------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class Run:
    """One recorded suite run: the file it came from and its validated contents."""

    path: Path | None
    data: dict

    def __post_init__(self):
        check_type("path", self.path, (Path, type(None)), "a Path or None")
        check_type("data", self.data, dict, "a dict (a validated run)")

    @property
    def device_type(self) -> str:
        return self.data["device"]["type"]

    @property
    def device_name(self) -> str:
        return self.data["device"]["name"]

    @property
    def created(self) -> str:
        return self.data["created"]

    @property
    def label(self) -> str:
        """'NVIDIA H100 80GB HBM3, recorded 2026-01-31': what a legend says about this run."""
        return f"{self.device_name}, recorded {self.created[:10]}"

    def attention(self, impl: str | None = None, *, head_dim: int | None = None, causal: bool | None = None,
                  dtype: str | None = None, status: str | None = "ok") -> list[dict]:
        """Attention records matching the filters (None = any), sorted by N."""
        _check_filters(impl, head_dim, causal)
        if status is not None:
            check_choice("status", status, STATUSES)
        want = {"impl": impl, "head_dim": head_dim, "causal": causal, "dtype": dtype, "status": status}
        recs = [r for r in self.data["attention"] if all(v is None or r[k] == v for k, v in want.items())]
        return sorted(recs, key=lambda r: (r["impl"], r["n_q"]))


def load_run(path: str | os.PathLike) -> Run:
    """Read and validate one JSON file."""
    path = Path(check_type("path", path, (str, os.PathLike), "a str or os.PathLike"))
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    return Run(path, validate_run(data, str(path)))


def load_runs(kind: str | None = None, *, directory: str | os.PathLike | None = None,
              include_quick: bool = True) -> list[Run]:
    """Every recorded run (bench-*.json) in `directory` (default book/data), newest first.

    Other JSON files there (``make check-gpu``'s notebooks-*.json) are not suite runs.
    kind: None (all), 'gpu' / 'cuda' (GPU runs) or 'cpu'. A missing directory or no files
    gives []. A file that breaks the schema raises ValueError naming the file and field.
    """
    if kind not in (None, "gpu", "cuda", "cpu"):
        raise ValueError(f"kind must be None, 'gpu', 'cuda' or 'cpu', got {kind!r}")
    if directory is not None:
        check_type("directory", directory, (str, os.PathLike), "a str, os.PathLike or None")
    check_bool("include_quick", include_quick)
    directory = Path(directory) if directory is not None else data_dir()
    if not directory.is_dir():
        return []
    runs = [load_run(p) for p in sorted(directory.glob("bench-*.json"))]
    if kind is not None:
        runs = [r for r in runs if r.device_type == ("cpu" if kind == "cpu" else "cuda")]
    if not include_quick:
        runs = [r for r in runs if not r.data["quick"]]
    return sorted(runs, key=lambda r: r.created, reverse=True)


# ----------------------------------------------------------------------------- series
_ATTN_WHAT = {"tflops": "tflops", "seconds": "median_s", "peak_bytes": "peak_bytes"}


def _check_filters(impl, head_dim, causal) -> None:
    if impl is not None:
        check_choice("impl", impl, IMPLS)
    check_optional_positive_int("head_dim", head_dim), check_optional_bool("causal", causal)


def _default_filters(run: Run, head_dim, causal, dtype):
    recs = run.attention()
    if dtype is None and recs:
        dtype = recs[0]["dtype"] if "bfloat16" not in {r["dtype"] for r in recs} else "bfloat16"
    if head_dim is None and recs:
        head_dim = max(r["head_dim"] for r in recs)
    return head_dim, (False if causal is None else causal), dtype


def series(run: Run, what: str = "tflops", *, impl: str | None = None, head_dim: int | None = None,
           causal: bool | None = None, dtype: str | None = None) -> dict[str, tuple[list, list]]:
    """{name: (xs, ys)} ready to plot.

    what: 'tflops' | 'seconds' | 'peak_bytes' (attention vs N, one entry per impl; filters
    default to bf16 if recorded, the largest head dim, not causal), 'prefill' | 'decode'
    (seconds vs tokens), 'matmul' (TFLOP/s vs n, one entry per dtype).
    """
    check_type("run", run, Run, "a recorded.Run"), _check_filters(impl, head_dim, causal)
    if what in _ATTN_WHAT:
        head_dim, causal, dtype = _default_filters(run, head_dim, causal, dtype)
        out = {}
        for name in IMPLS if impl is None else (impl,):
            recs = [r for r in run.attention(name, head_dim=head_dim, causal=causal, dtype=dtype)
                    if r[_ATTN_WHAT[what]] is not None]
            if recs:
                out[name] = ([r["n_q"] for r in recs], [r[_ATTN_WHAT[what]] for r in recs])
        return out
    if what in ("prefill", "decode"):
        rows = run.data["kv_cache"][what]
        return {what: ([r["n"] for r in rows], [r["median_s"] for r in rows])} if rows else {}
    if what == "matmul":
        out = {}
        for r in sorted(run.data["matmul"], key=lambda r: r["n"]):
            xs, ys = out.setdefault(r["dtype"], ([], []))
            xs.append(r["n"])
            ys.append(r["tflops"])
        return out
    raise ValueError(f"what must be one of {sorted(_ATTN_WHAT) + ['prefill', 'decode', 'matmul']}, got {what!r}")
