"""The standard benchmark suite behind ``python -m attn_lib.bench`` (GPU evidence for chapters 3-4).

One run measures, on the current device:
  attention   naive torch, torch_impl.flash_attention (tiled, separate ops), the fused Triton
              kernel (GPU only) and torch SDPA: seconds, TFLOP/s, peak memory (CUDA)
  naive_oom   the sequence length at which naive attention runs out of GPU memory
  kv_cache    prefill time vs prompt length and decode-step time vs cache length (tiny_gpt)
  matmul      a square matmul's TFLOP/s: the device's practical peak
and writes it all, with device, versions and date, to one JSON file (schema: attn_lib.recorded).

Sizes follow the device (:func:`plan`). On a GPU the attention sweep is FlashAttention-2's
benchmark setting: batch × N = 16K tokens, heads × d = 2048.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA = "attn_lib.bench/1"
KIND = "attention-suite"
IMPLS = ("naive", "torch_tiled", "triton", "sdpa")


@dataclass
class Plan:
    """What one suite run measures; every field is recorded in the JSON as `config`."""

    device: str
    quick: bool = False
    dtypes: list = field(default_factory=lambda: ["float32"])
    head_dims: list = field(default_factory=lambda: [64])
    causal: list = field(default_factory=lambda: [False, True])
    seq_lens: list = field(default_factory=lambda: [256, 512, 1024])
    tokens: int = 1024  # batch = max(1, tokens // N)
    model_dim: int = 256  # heads = model_dim // d
    impls: list = field(default_factory=lambda: list(IMPLS))
    min_run_time: float = 0.1
    oom_search_max: int = 0  # double N for naive until it OOMs, up to this (0: no search)
    prefill_lens: list = field(default_factory=lambda: [128, 256, 512])
    decode_lens: list = field(default_factory=lambda: [256, 1024, 4096])
    matmul_sizes: list = field(default_factory=lambda: [256, 512])
    matmul_dtypes: list = field(default_factory=lambda: ["float32"])
    threads: int | None = None  # torch CPU threads (None: torch's default); 1 on a busy shared machine


def plan(device: str | None = None, quick: bool = False) -> Plan:
    """The standard suite sized to `device` ('cuda' or 'cpu'); quick = the small CPU smoke run."""
    import torch

    from .. import device as default_device

    dev = device or default_device()
    if dev == "cuda":
        half = ["bfloat16", "float16"] if torch.cuda.is_bf16_supported() else ["float16"]
        if quick:
            return Plan(device=dev, quick=True, dtypes=half[:1], head_dims=[64], seq_lens=[1024, 4096],
                        tokens=16384, model_dim=2048, min_run_time=0.05, prefill_lens=[1024, 4096],
                        decode_lens=[1024, 16384], matmul_sizes=[4096], matmul_dtypes=half[:1])
        return Plan(device=dev, quick=quick, dtypes=half, head_dims=[64, 128], causal=[False, True],
                    seq_lens=[1024, 2048, 4096, 8192, 16384], tokens=16384, model_dim=2048,
                    min_run_time=0.2, oom_search_max=262144,
                    prefill_lens=[1024, 2048, 4096, 8192, 16384],
                    decode_lens=[1024, 2048, 4096, 8192, 16384, 32767, 65535],
                    matmul_sizes=[4096, 8192], matmul_dtypes=half + ["float32"])
    if quick:
        return Plan(device="cpu", quick=True, seq_lens=[128, 256, 512], tokens=512, model_dim=128,
                    min_run_time=0.05, prefill_lens=[64, 128, 256], decode_lens=[256, 1024, 4096],
                    matmul_sizes=[256, 512])
    return Plan(device="cpu", seq_lens=[512, 1024, 2048, 4096], tokens=4096, model_dim=256,
                min_run_time=0.2, prefill_lens=[128, 256, 512, 1024, 2048],
                decode_lens=[512, 1024, 2048, 4096, 8191], matmul_sizes=[512, 1024, 2048])


# ----------------------------------------------------------------------------- provenance
def host_cpu() -> str:
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
    """Name, compute capability, memory and the matching published spec of `device`."""
    import torch

    from .. import hardware

    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        spec = hardware.lookup(props.name)
        return {"type": "cuda", "name": props.name, "slug": slug(props.name),
                "capability": list(torch.cuda.get_device_capability(0)), "memory_bytes": int(props.total_memory),
                "spec": spec.name if spec else None, "host_cpu": host_cpu(), "cpu_count": os.cpu_count()}
    return {"type": "cpu", "name": f"CPU ({host_cpu()})", "slug": "cpu", "capability": None,
            "memory_bytes": None, "spec": None, "host_cpu": host_cpu(), "cpu_count": os.cpu_count()}


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
def _dtype(name: str):
    import torch

    return getattr(torch, name)


def _impl_fn(name: str):
    from .. import torch_impl

    if name == "triton":
        from .. import triton_flash

        return triton_flash.flash_attention
    return {"naive": torch_impl.attention, "torch_tiled": torch_impl.flash_attention, "sdpa": torch_impl.sdpa}[name]


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
    from ..triton_flash import flops

    return {"impl": impl, "n_q": n, "n_k": n, "head_dim": head_dim, "causal": causal, "dtype": dtype,
            "batch": batch, "heads": heads, "status": "ok", "note": None,
            "flops": flops(batch, heads, n, n, head_dim, causal),
            "median_s": None, "iqr_s": None, "times_s": [], "calls_per_time": None,
            "tflops": None, "peak_bytes": None}


def measure_attention(impl: str, n: int, head_dim: int, causal: bool, dtype: str, *, batch: int, heads: int,
                      device: str, min_run_time: float) -> dict:
    """Time one implementation on (batch, heads, n, head_dim) inputs; one record of the JSON.

    status: 'ok', 'oom' (CUDA out of memory), 'skipped' (not run on this device, see note) or
    'error' (note holds the message). TFLOP/s counts only the visible (query, key) pairs.
    """
    import torch

    from .. import bench

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
        q, k, v = (torch.randn(batch, heads, n, head_dim, generator=gen).to(device, _dtype(dtype)) for _ in range(3))
        timing = bench.measure(fn, q, k, v, causal=causal, min_run_time=min_run_time)
        if device == "cuda":
            record["peak_bytes"] = int(bench.peak_cuda_bytes(fn, q, k, v, causal=causal))
        record.update(timing, tflops=record["flops"] / timing["median_s"] / 1e12)
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
    """The attention sweep; once naive runs out of memory at some N, larger N are not tried."""
    records, oom_from = [], {}
    for case in attention_cases(p):
        key = (case["impl"], case["head_dim"], case["causal"], case["dtype"])
        if key in oom_from and case["n"] > oom_from[key]:
            rec = _skipped_after_oom(case, oom_from[key])
        else:
            rec = measure_attention(**case, device=p.device, min_run_time=p.min_run_time)
            if rec["status"] == "oom":
                oom_from[key] = case["n"]
        records.append(rec)
        if progress is not None:
            progress.update(1)
    return records


def _skipped_after_oom(case: dict, n_oom: int) -> dict:
    return {**_record(**case), "status": "skipped", "note": f"out of memory already at N={n_oom}"}


def find_naive_oom(p: Plan, records: list[dict], progress=None) -> dict:
    """Smallest N (doubling) at which naive attention runs out of GPU memory, batch 1, d = max(head_dims)."""
    d = max(p.head_dims)
    base = {"dtype": p.dtypes[0], "head_dim": d, "causal": False, "batch": 1, "heads": max(1, p.model_dim // d)}
    if p.device != "cuda" or not p.oom_search_max:
        return {**base, "n": None, "tried": [], "note": "only searched on a GPU"}
    in_sweep = [r["n_q"] for r in records if r["impl"] == "naive" and r["status"] == "oom"
                and r["head_dim"] == d and r["dtype"] == base["dtype"] and not r["causal"] and r["batch"] == 1]
    if in_sweep:
        return {**base, "n": min(in_sweep), "tried": [], "note": "found in the attention sweep"}
    tried, n = [], max(p.seq_lens) * 2
    while n <= p.oom_search_max:
        rec = measure_attention("naive", n, d, False, base["dtype"], batch=1, heads=base["heads"],
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
    """Prefill seconds vs prompt length and decode-step seconds vs cache length (chapter 3's model)."""
    try:
        tiny_gpt = importlib.import_module("..tiny_gpt", __package__)
    except ImportError as err:
        return {"status": "skipped", "note": f"attn_lib.tiny_gpt unavailable: {err}", "model": None,
                "dtype": None, "prefill": [], "decode": []}
    import torch

    from ..setup import preferred_dtype

    bf16 = p.device == "cuda" and torch.cuda.is_bf16_supported()
    dtype = preferred_dtype(p.device, bf16)
    cfg = tiny_gpt.bench_config(p.device)
    model = tiny_gpt.TinyGPT(cfg, device=p.device, dtype=dtype)
    too_long = [n for n in p.prefill_lens if n > cfg.context] + [n for n in p.decode_lens if n >= cfg.context]
    note = f"lengths {too_long} exceed the model's context {cfg.context}: skipped" if too_long else None
    out = {"status": "ok", "note": note, "model": asdict(cfg), "dtype": dtype, "prefill": [], "decode": []}
    for n in p.prefill_lens:
        if n <= cfg.context:
            out["prefill"].append({"n": n, "median_s": tiny_gpt.time_prefill(model, n, min_run_time=p.min_run_time)})
        if progress is not None:
            progress.update(1)
    for n in p.decode_lens:
        if n < cfg.context:
            out["decode"].append({"n": n, "median_s": tiny_gpt.time_decode_step(model, n, min_run_time=p.min_run_time)})
        if progress is not None:
            progress.update(1)
    del model
    _free(p.device)
    return out


def run_matmul(p: Plan, progress=None) -> list[dict]:
    """n×n @ n×n matmul TFLOP/s per dtype: the practical peak the attention numbers compare to."""
    import torch

    from .. import bench

    out = []
    for dtype in p.matmul_dtypes:
        for n in p.matmul_sizes:
            a, b = (torch.randn(n, n, device=p.device, dtype=_dtype(dtype)) for _ in range(2))
            timing = bench.measure(torch.mm, a, b, min_run_time=p.min_run_time)
            tf32 = dtype == "float32" and p.device == "cuda" and torch.backends.cuda.matmul.allow_tf32
            out.append({"n": n, "dtype": dtype, "tf32": tf32, "flops": 2 * n**3, **timing,
                        "tflops": 2 * n**3 / timing["median_s"] / 1e12})
            if progress is not None:
                progress.update(1)
    return out


# ----------------------------------------------------------------------------- the whole run
def run_suite(p: Plan | None = None, *, progress: bool = True, command: str | None = None) -> dict:
    """Run everything in `p` (default: :func:`plan` for this device); return the JSON-ready dict.

    `command` is recorded as given (the CLI passes its flags, so the run can be repeated).
    """
    from .. import recorded

    import torch

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
        bar.set_description("naive OOM search")
        naive_oom = find_naive_oom(p, attention)
        bar.set_description("prefill / decode")
        kv = run_kv_cache(p, bar)
        bar.set_description("matmul peak")
        matmul = run_matmul(p, bar)
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
    recorded.validate_run(result)
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


# ----------------------------------------------------------------------------- reporting
def format_table(records: list[dict]) -> str:
    """Plain-text table: one row per (dtype, d, causal, N), one TFLOP/s (peak GiB) column per impl."""
    impls = [i for i in IMPLS if any(r["impl"] == i for r in records)]
    rows, header = {}, ["dtype", "d", "causal", "N"] + impls
    for r in records:
        key = (r["dtype"], r["head_dim"], r["causal"], r["n_q"])
        cell = r["status"] if r["status"] != "ok" else f"{r['tflops']:.3g}"
        if r["status"] == "ok" and r["peak_bytes"] is not None:
            cell += f" ({r['peak_bytes'] / 2**30:.2g} GiB)"
        rows.setdefault(key, {})[r["impl"]] = cell
    lines = [header] + [[k[0], str(k[1]), str(k[2]), str(k[3])] + [rows[k].get(i, "-") for i in impls]
                        for k in rows]
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    text = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines]
    return "\n".join([text[0], "-" * len(text[0])] + text[1:] + ["(TFLOP/s; peak memory above the inputs)"])


def check_targets(result: dict, *, min_n: int = 4096, ratio: float = 1.0, peak_fraction: float = 0.5) -> list[dict]:
    """The GPU targets: Triton ≥ `ratio`× SDPA's TFLOP/s for N ≥ min_n, and ≥ `peak_fraction` of dense peak.

    One entry per (dtype, d, causal) group plus one for the peak; each says passed or not.
    """
    from .. import hardware

    recs = [r for r in result["attention"] if r["status"] == "ok"]
    by_key = {(r["impl"], r["dtype"], r["head_dim"], r["causal"], r["n_q"]): r for r in recs}
    checks = []
    for dtype, d, causal in sorted({(r["dtype"], r["head_dim"], r["causal"]) for r in recs}):
        ratios = [by_key[("triton", dtype, d, causal, n)]["tflops"] / by_key[("sdpa", dtype, d, causal, n)]["tflops"]
                  for (impl, dt, hd, c, n) in by_key
                  if impl == "triton" and (dt, hd, c) == (dtype, d, causal) and n >= min_n
                  and ("sdpa", dtype, d, causal, n) in by_key]
        if ratios:
            checks.append({"target": f"Triton/SDPA TFLOP/s, {dtype} d={d} causal={causal}, N>={min_n}",
                           "value": min(ratios), "threshold": ratio, "passed": min(ratios) >= ratio})
    triton_recs = [r for r in recs if r["impl"] == "triton"]
    spec = hardware.lookup(result["device"]["name"])
    if triton_recs and spec is not None:
        best = max(triton_recs, key=lambda r: r["tflops"])
        key = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}[best["dtype"]]
        peak = spec.peak(key) / 1e12
        checks.append({"target": f"best Triton TFLOP/s vs {spec.name} dense {key} peak {peak:.0f} "
                                 f"({best['dtype']} d={best['head_dim']} causal={best['causal']} N={best['n_q']})",
                       "value": best["tflops"] / peak, "threshold": peak_fraction,
                       "passed": best["tflops"] / peak >= peak_fraction})
    return checks


def format_targets(checks: list[dict]) -> str:
    return "\n".join(f"{'PASS' if c['passed'] else 'MISS'}  {c['target']}: {c['value']:.3f} "
                     f"(target >= {c['threshold']})" for c in checks) or "(no GPU targets: no Triton/SDPA GPU runs)"


def summary(result: dict) -> str:
    """Human-readable report of a run: provenance, attention table, OOM, prefill/decode, matmul, targets."""
    dev, ver = result["device"], result["versions"]
    lines = [f"{dev['name']} | torch {ver['torch']} | triton {ver['triton']} | CUDA {ver['cuda']} | "
             f"{result['created']} | {result['elapsed_s']:.0f} s", "", format_table(result["attention"]), ""]
    oom = result["naive_oom"]
    lines.append(f"naive attention out of memory at N = {oom['n']}" if oom["n"] else
                 f"naive attention OOM: none ({oom['note']})")
    kv = result["kv_cache"]
    if kv["status"] == "ok":
        lines.append("prefill (s): " + ", ".join(f"N={r['n']}: {r['median_s']:.3g}" for r in kv["prefill"]))
        lines.append("decode step (s): " + ", ".join(f"cache={r['n']}: {r['median_s']:.3g}" for r in kv["decode"]))
    else:
        lines.append(f"prefill/decode skipped: {kv['note']}")
    lines.append("matmul TFLOP/s: " + ", ".join(f"{r['dtype']} n={r['n']}: {r['tflops']:.3g}"
                                                for r in result["matmul"]))
    if dev["type"] == "cuda":
        lines += ["", format_targets(check_targets(result))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m attn_lib.bench [--quick] [--out PATH] [--device cpu|cuda] [--no-progress]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m attn_lib.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke run, under a minute)")
    parser.add_argument("--out", help="JSON path (default: book/data/bench-<device>-<date>.json)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    from .. import device as default_device

    if args.device == "cuda" and default_device() != "cuda":
        parser.error("--device cuda: no CUDA device is available")
    flags = (["--quick"] * args.quick + ([f"--device {args.device}"] if args.device else [])
             + ([f"--threads {args.threads}"] if args.threads else []))
    p = plan(args.device, quick=args.quick)
    p.threads = args.threads or p.threads
    result = run_suite(p, progress=not args.no_progress, command=" ".join(["python -m attn_lib.bench"] + flags))
    path = write_json(result, args.out or default_path(result))
    print(summary(result))
    print(f"\nwrote {path}")
    return 0
