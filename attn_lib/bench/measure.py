"""Measure one suite run on the current device (GPU evidence for chapters 3-4).

One run measures:
  attention   standard attention (torch_impl.standard_attention, in the plan's dtype),
              torch_impl.flash_attention (tiled, separate ops), the fused Triton kernel (GPU
              only) and torch SDPA (with the backend torch picked): seconds, TFLOP/s, peak
              memory (CUDA), each record with its dtype
  naive_oom   the sequence length at which standard attention runs out of GPU memory
  kv_cache    prefill time vs prompt length and decode-step time vs cache length (tiny_gpt)
  matmul      a square matmul's TFLOP/s: the device's practical peak
and returns it all, with device, versions and date, as one JSON-ready dict (schema and
validation: attn_lib.recorded). Timings go through attn_lib.timing.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

from .. import timing
from ..colab import torch_dtype
from ..recorded import KIND, SCHEMA
from .plan import Plan, plan


# ----------------------------------------------------------------------------- provenance
def _host_cpu() -> str:
    """The CPU model name (Linux /proc/cpuinfo, else platform)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def slug(text: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3' (for file names)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def device_info(device: str) -> dict:
    """Name, compute capability, memory and the matching published spec of `device` ('cpu', 'cuda')."""
    import torch

    from .. import hardware
    from .._checks import check_choice

    check_choice("device", device, ("cpu", "cuda"))

    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        spec = hardware.lookup(props.name)
        return {"type": "cuda", "name": props.name, "slug": slug(props.name),
                "capability": list(torch.cuda.get_device_capability(0)), "memory_bytes": int(props.total_memory),
                "spec": spec.name if spec else None, "host_cpu": _host_cpu(), "cpu_count": os.cpu_count()}
    return {"type": "cpu", "name": f"CPU ({_host_cpu()})", "slug": "cpu", "capability": None,
            "memory_bytes": None, "spec": None, "host_cpu": _host_cpu(), "cpu_count": os.cpu_count()}


def versions() -> dict:
    import numpy
    import torch

    from .. import __version__

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    return {"python": platform.python_version(), "torch": torch.__version__, "triton": triton_version,
            "cuda": torch.version.cuda, "cudnn": cudnn, "numpy": numpy.__version__,
            "attn_lib": __version__, "platform": platform.platform()}


# ----------------------------------------------------------------------------- attention
#: The unfused baseline: its rows, and the out-of-memory search (the run's `naive_oom` section).
BASELINE = "standard"


def _impl_fn(name: str):
    from .. import torch_impl

    if name == "triton":
        from .. import triton_flash

        return triton_flash.flash_attention
    return {"standard": torch_impl.standard_attention, "torch_tiled": torch_impl.flash_attention,
            "sdpa": torch_impl.sdpa}[name]


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def _free(device: str) -> None:
    """Return cached GPU memory between sizes (so OOM and peak figures are per case)."""
    if device == "cuda":
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()


def _record(impl: str, n: int, head_dim: int, causal: bool, dtype: str, batch: int, heads: int) -> dict:
    """An attention record with nothing measured yet (schema: attn_lib.recorded)."""
    from ..counting import attention_call_flops

    return {"impl": impl, "n_q": n, "n_k": n, "head_dim": head_dim, "causal": causal, "dtype": dtype,
            "batch": batch, "heads": heads, "status": "ok", "note": None,
            "flops": attention_call_flops(batch, heads, n, n, head_dim, causal),
            "median_s": None, "iqr_s": None, "times_s": [], "calls_per_time": None,
            "tflops": None, "peak_bytes": None, "backend": None}


def _measure_attention(impl: str, n: int, head_dim: int, causal: bool, dtype: str, *, batch: int, heads: int,
                      device: str, min_run_time: float) -> dict:
    """Time one implementation on (batch, heads, n, head_dim) inputs; one record of the JSON.

    status: 'ok', 'oom' (CUDA out of memory), 'skipped' (not run on this device, see note) or
    'error' (note holds the message). TFLOP/s counts only the visible (query, key) pairs.
    """
    import torch

    record = _record(impl, n, head_dim, causal, dtype, batch, heads)
    if impl == "triton" and device != "cuda":
        return {**record, "status": "skipped", "note": "no GPU: the Triton kernel would run in the interpreter"}
    if impl == "triton":
        from .. import triton_flash

        if not triton_flash.AVAILABLE:
            return {**record, "status": "skipped", "note": "triton is not installed"}
    fn = _impl_fn(impl)
    gen = torch.Generator(device="cpu").manual_seed(0)
    q = k = v = None
    try:
        q, k, v = (torch.randn(batch, heads, n, head_dim, generator=gen).to(device, torch_dtype(dtype))
                   for _ in range(3))
        if impl == "sdpa":
            from .. import torch_impl

            record["backend"] = torch_impl.sdpa_backend(q, k, v, causal=causal)
        stats = timing.measure(fn, q, k, v, causal=causal, min_run_time=min_run_time)
        if device == "cuda":
            record["peak_bytes"] = int(timing.peak_cuda_bytes(fn, q, k, v, causal=causal))
        record.update(stats, tflops=record["flops"] / stats["median_s"] / 1e12)
    except Exception as err:  # noqa: BLE001 - a benchmark records failures and moves on
        oom = _is_oom(err)
        record.update(status="oom" if oom else "error", peak_bytes=None,
                      note="out of memory" if oom else f"{type(err).__name__}: {str(err)[:300]}")
    finally:
        q = k = v = None  # noqa: F841 - release the inputs before the next size
        _free(device)
    return record


def attention_cases(p: Plan) -> list[dict]:
    """Every (impl, N, d, causal, dtype) the attention sweep measures, with its batch and heads."""
    cases = []
    for dtype in p.dtypes:
        for d in p.head_dims:
            for causal in p.causal:
                for n in p.seq_lens:
                    for impl in p.impls:
                        cases.append({"impl": impl, "n": n, "head_dim": d, "causal": causal, "dtype": dtype,
                                      "batch": max(1, p.tokens // n), "heads": max(1, p.model_dim // d)})
    return cases


def run_attention(p: Plan, progress=None) -> list[dict]:
    """The attention sweep; once an impl runs out of memory at some N, larger N are not tried."""
    records, oom_from = [], {}
    for case in attention_cases(p):
        key = (case["impl"], case["head_dim"], case["causal"], case["dtype"])
        if key in oom_from and case["n"] > oom_from[key]:
            rec = _skipped_after_oom(case, oom_from[key])
        else:
            rec = _measure_attention(**case, device=p.device, min_run_time=p.min_run_time)
            if rec["status"] == "oom":
                oom_from[key] = case["n"]
        records.append(rec)
        if progress is not None:
            progress.update(1)
    return records


def _skipped_after_oom(case: dict, n_oom: int) -> dict:
    return {**_record(**case), "status": "skipped", "note": f"out of memory already at N={n_oom}"}


def find_naive_oom(p: Plan, records: list[dict], progress=None) -> dict:
    """Smallest N (doubling) at which standard attention runs out of GPU memory, batch 1, d = max(head_dims)."""
    d = max(p.head_dims)
    base = {"impl": BASELINE, "dtype": p.dtypes[0], "head_dim": d, "causal": False, "batch": 1,
            "heads": max(1, p.model_dim // d)}
    if p.device != "cuda" or not p.oom_search_max:
        return {**base, "n": None, "tried": [], "note": "only searched on a GPU"}
    in_sweep = [r["n_q"] for r in records if r["impl"] == BASELINE and r["status"] == "oom"
                and r["head_dim"] == d and r["dtype"] == base["dtype"] and not r["causal"] and r["batch"] == 1]
    if in_sweep:
        return {**base, "n": min(in_sweep), "tried": [], "note": "found in the attention sweep"}
    tried, n = [], max(p.seq_lens) * 2
    while n <= p.oom_search_max:
        rec = _measure_attention(BASELINE, n, d, False, base["dtype"], batch=1, heads=base["heads"],
                                device=p.device, min_run_time=min(p.min_run_time, 0.05))
        tried.append({"n": n, "status": rec["status"], "median_s": rec["median_s"], "peak_bytes": rec["peak_bytes"]})
        if progress is not None:
            progress.update(1)
        if rec["status"] == "oom":
            return {**base, "n": n, "tried": tried, "note": None}
        n *= 2
    return {**base, "n": None, "tried": tried, "note": f"no OOM up to N={p.oom_search_max}"}


# ----------------------------------------------------------------------------- KV cache, matmul
def run_kv_cache(p: Plan, progress=None) -> dict:
    """Prefill seconds vs prompt length and decode-step seconds vs cache length (chapter 3's model).

    The model is ``tiny_gpt.bench_config``: on a GPU two Llama-2-7B-sized layers, in the
    chapters' dtype (``colab.dtype_for``); decode steps batch ``tiny_gpt.bench_batch``
    sequences, as chapter 3 does, so that reading the cache outweighs reading the weights.
    """
    try:
        tiny_gpt = importlib.import_module("..tiny_gpt", __package__)
    except ImportError as err:
        return {"status": "skipped", "note": f"attn_lib.tiny_gpt unavailable: {err}", "model": None,
                "dtype": None, "prefill": [], "decode": []}
    import torch

    from ..colab import dtype_for

    capability = torch.cuda.get_device_capability() if p.device == "cuda" else None
    dtype = dtype_for(p.device, capability)
    cfg = tiny_gpt.bench_config(p.device)
    model = tiny_gpt.TinyGPT(cfg, device=p.device, dtype=dtype)
    batch = tiny_gpt.bench_batch(cfg, p.device, dtype)
    too_long = [n for n in p.prefill_lens if n > cfg.context] + [n for n in p.decode_lens if n >= cfg.context]
    note = f"lengths {too_long} exceed the model's context {cfg.context}: skipped" if too_long else None
    out = {"status": "ok", "note": note, "model": asdict(cfg), "dtype": dtype, "prefill_batch": 1,
           "decode_batch": batch, "prefill": [], "decode": []}
    for n in p.prefill_lens:
        if n <= cfg.context:
            out["prefill"].append({"n": n, "median_s": _prefill_seconds(tiny_gpt, model, n, p.min_run_time)})
        if progress is not None:
            progress.update(1)
    cache = None
    decode = [n for n in p.decode_lens if n < cfg.context]
    if decode:  # one random cache, filled once to the longest length and rewound for each
        cache = tiny_gpt.KVCache.random(cfg, batch, max(decode), device=model.device, dtype=model.dtype)
    for n in p.decode_lens:
        if n < cfg.context:
            out["decode"].append({"n": n, "median_s": _decode_step_seconds(model, cache, n, p.min_run_time)})
        if progress is not None:
            progress.update(1)
    del model, cache
    _free(p.device)
    return out


def _prefill_seconds(tiny_gpt, model, n: int, min_run_time: float) -> float:
    """Median seconds to prefill n random tokens into one reused cache (the compute, not the allocation)."""
    import torch

    tokens = torch.randint(0, model.config.vocab, (1, n), generator=torch.Generator().manual_seed(0))
    tokens = tokens.to(model.device)
    cache = tiny_gpt.KVCache.empty(model.config, 1, device=model.device, dtype=model.dtype)

    def prefill():
        cache.length = 0
        model.prefill(tokens, cache)

    seconds = timing.time_fn(prefill, min_run_time=min_run_time, clock=timing.clock_for(model.device))
    del cache
    return seconds


def _decode_step_seconds(model, cache, n: int, min_run_time: float) -> float:
    """Median seconds of one decode step of the cache's batch against n of its random rows."""
    import torch

    token = torch.zeros(cache.batch, dtype=torch.long, device=model.device)

    def step():
        cache.length = n  # every call appends at the same position
        model.decode_step(token, cache)

    return timing.time_fn(step, min_run_time=min_run_time, clock=timing.clock_for(model.device))


def _run_matmul(p: Plan, progress=None) -> list[dict]:
    """n×n @ n×n matmul TFLOP/s per dtype: the practical peak the attention numbers compare to."""
    import torch

    out = []
    for dtype in p.matmul_dtypes:
        for n in p.matmul_sizes:
            a, b = (torch.randn(n, n, device=p.device, dtype=torch_dtype(dtype)) for _ in range(2))
            stats = timing.measure(torch.mm, a, b, min_run_time=p.min_run_time)
            tf32 = dtype == "float32" and p.device == "cuda" and torch.backends.cuda.matmul.allow_tf32
            out.append({"n": n, "dtype": dtype, "tf32": tf32, "flops": 2 * n**3, **stats,
                        "tflops": 2 * n**3 / stats["median_s"] / 1e12})
            if progress is not None:
                progress.update(1)
    return out


# ----------------------------------------------------------------------------- the whole run
def run_suite(p: Plan | None = None, *, progress: bool = True, command: str | None = None) -> dict:
    """Run everything in `p` (default: :func:`plan` for this device); return the JSON-ready dict.

    `command` is recorded as given (the CLI passes its flags, so the run can be repeated).
    """
    import torch

    from ..recorded import validate_run

    p = p or plan()
    start = time.perf_counter()
    default_threads = torch.get_num_threads()
    if p.threads:
        torch.set_num_threads(p.threads)
    n_steps = (len(attention_cases(p)) + len(p.prefill_lens) + len(p.decode_lens)
               + len(p.matmul_sizes) * len(p.matmul_dtypes))
    bar = _progress_bar(n_steps, progress)
    try:
        bar.set_description("attention")
        attention = run_attention(p, bar)
        bar.set_description("OOM search")
        naive_oom = find_naive_oom(p, attention)
        bar.set_description("prefill / decode")
        kv = run_kv_cache(p, bar)
        bar.set_description("matmul peak")
        matmul = _run_matmul(p, bar)
    finally:
        bar.close()
        threads = torch.get_num_threads()
        torch.set_num_threads(default_threads)
    now = _dt.datetime.now(_dt.timezone.utc)
    result = {"schema": SCHEMA, "kind": KIND, "quick": p.quick,
              "created": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
              "device": {**device_info(p.device), "torch_threads": threads}, "versions": versions(), "command": command,
              "config": asdict(p), "attention": attention, "naive_oom": naive_oom, "kv_cache": kv,
              "matmul": matmul, "elapsed_s": round(time.perf_counter() - start, 3)}
    if p.device == "cuda" and "triton" in p.impls:
        from .. import triton_flash

        result["triton_configs"] = _triton_configs(triton_flash)
    validate_run(result)
    return result


def _triton_configs(triton_flash) -> list[dict]:
    """The autotuner's choices, for the record (which block shapes won on this GPU)."""
    return [{"key": [str(k) for k in key], **cfg} for key, cfg in triton_flash.tuned_configs()]


class _NoBar:
    def update(self, n=1):
        pass

    def set_description(self, text):
        pass

    def close(self):
        pass


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="run", file=sys.stderr)


def default_path(result: dict, root: str | os.PathLike | None = None) -> Path:
    """book/data/bench-<device-slug>-<date>.json under the repository root (or `root`)."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    return root / "book" / "data" / f"bench-{result['device']['slug']}-{result['created'][:10]}.json"


def write_json(result: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path
