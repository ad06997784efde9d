"""GPU attention benchmark, forward and backward: the Triton kernel against torch (chapter 4, issue 20).

    python benchmarks/gpu_attention.py                     # N = 4K, 8K, 16K; d = 64, 128; causal and not
    python benchmarks/gpu_attention.py --n 4096 --d 128 --causal yes --json out.json

Times, in bf16 (fp16 before sm_80), forward and backward (``torch.autograd.grad`` of the
output) of
  * ``triton``      attn_lib.triton_flash.flash_attention (its own backward kernels);
  * ``sdpa``        torch SDPA with torch's default choice of backend (the backend that ran is
                    printed: cuDNN attention on Hopper with torch >= 2.11);
  * ``sdpa_flash``  torch SDPA under ``sdpa_kernel(SDPBackend.FLASH_ATTENTION)``: FlashAttention-2;
  * ``standard``    attn_lib.torch_impl.standard_attention (the eager baseline: scores materialised).
Batch·N = 16K tokens and heads·d = 2048 (FlashAttention-2's benchmark setting). FLOPs from
attn_lib.counting's closed forms (forward 4·N²·d per head, backward 2.5× that, causal counts
the N(N+1)/2 visible pairs); TFLOP/s are divided by the dense peak from attn_lib.hardware.
Warm-up (compilation and autotuning) precedes every timing; medians of
torch.utils.benchmark blocks (attn_lib.timing.measure, CUDA-synchronised).

Prints the issue's targets with PASS/MISS (N >= 4096):
  * forward: geometric mean >= 0.9x SDPA's default backend, every (d, causal) group >= 0.85x,
    >= 1.2x SDPA's FLASH_ATTENTION backend, best case >= 55% of the dense peak;
  * backward: geometric mean >= 0.7x SDPA's default backend.
On a machine without CUDA it says so and exits cleanly.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

IMPLS = ("triton", "sdpa", "sdpa_flash", "standard")
TOKENS, WIDTH = 16384, 2048  # batch·N and heads·d


def _attention_fn(impl: str):
    """impl -> f(q, k, v, causal) on (B, H, N, d) tensors."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from attn_lib import torch_impl
    from attn_lib import triton_flash as tf

    def flash2(q, k, v, causal):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch_impl.sdpa(q, k, v, causal=causal)

    return {"triton": lambda q, k, v, causal: tf.flash_attention(q, k, v, causal=causal),
            "sdpa": lambda q, k, v, causal: torch_impl.sdpa(q, k, v, causal=causal),
            "sdpa_flash": flash2,
            "standard": lambda q, k, v, causal: torch_impl.standard_attention(q, k, v, causal=causal)}[impl]


def time_case(impl: str, n: int, d: int, causal: bool, dtype, min_run_time: float = 0.3) -> dict:
    """Median forward and backward seconds of one implementation on one shape, or its failure."""
    import torch

    from attn_lib import counting, timing

    batch, heads = max(1, TOKENS // n), WIDTH // d
    q, k, v, do = (torch.randn(batch, heads, n, d, device="cuda", dtype=dtype) for _ in range(4))
    q, k, v = (x.requires_grad_() for x in (q, k, v))
    fn = _attention_fn(impl)
    fwd_flops = counting.attention_call_flops(batch, heads, n, n, d, causal=causal)
    rec = {"impl": impl, "n": n, "d": d, "causal": causal, "batch": batch, "heads": heads,
           "fwd_flops": fwd_flops, "bwd_flops": 2.5 * fwd_flops}
    try:
        with torch.no_grad():
            fwd = timing.measure(fn, q, k, v, causal, min_run_time=min_run_time)["median_s"]
        out = fn(q, k, v, causal)
        grad = lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)  # noqa: E731
        bwd = timing.measure(grad, min_run_time=min_run_time)["median_s"]
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {**rec, "status": "oom"}
    except RuntimeError as err:  # e.g. no FlashAttention-2 kernel for this dtype / GPU
        return {**rec, "status": "error: " + " ".join(str(err).split())[:120]}
    finally:
        torch.cuda.empty_cache()
    return {**rec, "status": "ok", "fwd_s": fwd, "bwd_s": bwd,
            "fwd_tflops": fwd_flops / fwd / 1e12, "bwd_tflops": 2.5 * fwd_flops / bwd / 1e12}


def _geomean(xs) -> float:
    xs = list(xs)
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def ratios(records: list[dict], num: str, den: str, phase: str, min_n: int = 4096) -> dict:
    """{(d, causal, n): num TFLOP/s / den TFLOP/s} over the cases both ran, N >= min_n."""
    ok = {(r["impl"], r["d"], r["causal"], r["n"]): r[f"{phase}_tflops"]
          for r in records if r["status"] == "ok" and r["n"] >= min_n}
    return {key[1:]: t / ok[(den, *key[1:])] for key, t in ok.items()
            if key[0] == num and (den, *key[1:]) in ok}


def targets(records: list[dict], peak: float | None) -> list[tuple[str, float, float, bool]]:
    """(target, measured, bound, met) for every target of issue 20."""
    fwd, flash2 = ratios(records, "triton", "sdpa", "fwd"), ratios(records, "triton", "sdpa_flash", "fwd")
    bwd = ratios(records, "triton", "sdpa", "bwd")
    rows = [("forward geomean / SDPA default", _geomean(fwd.values()), 0.9)]
    for d, causal in sorted({(d, c) for d, c, _ in fwd}):
        group = [r for (dd, cc, _), r in fwd.items() if (dd, cc) == (d, causal)]
        rows.append((f"forward d={d} causal={causal} / SDPA default", _geomean(group), 0.85))
    rows.append(("forward geomean / SDPA FLASH_ATTENTION", _geomean(flash2.values()), 1.2))
    best = max((r["fwd_tflops"] for r in records if r["impl"] == "triton" and r["status"] == "ok"),
               default=float("nan"))
    if peak:
        rows.append(("best forward / dense peak", best * 1e12 / peak, 0.55))
    rows.append(("backward geomean / SDPA default", _geomean(bwd.values()), 0.7))
    return [(name, got, bound, got >= bound) for name, got, bound in rows]


def table(records: list[dict], peak: float | None) -> str:
    lines = [f"{'impl':10s} {'d':>4s} {'causal':6s} {'N':>6s} {'fwd ms':>8s} {'TFLOP/s':>8s} "
             f"{'%peak':>6s} {'bwd ms':>8s} {'TFLOP/s':>8s}"]
    for r in records:
        head = f"{r['impl']:10s} {r['d']:4d} {r['causal']!s:6s} {r['n']:6d}"
        if r["status"] != "ok":
            lines.append(f"{head} {r['status']}")
            continue
        pct = f"{100 * r['fwd_tflops'] * 1e12 / peak:5.1f}%" if peak else "     -"
        lines.append(f"{head} {1e3 * r['fwd_s']:8.3f} {r['fwd_tflops']:8.1f} {pct} "
                     f"{1e3 * r['bwd_s']:8.3f} {r['bwd_tflops']:8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[4096, 8192, 16384], help="sequence lengths")
    parser.add_argument("--d", type=int, nargs="+", default=[64, 128], help="head dims")
    parser.add_argument("--causal", choices=["both", "yes", "no"], default="both")
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--json", help="also write the records and targets as JSON")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("No CUDA device: this benchmark needs a GPU. "
              "On a CPU run the small suite instead: python -m attn_lib.bench --quick")
        return 0

    from attn_lib import colab, hardware, torch_impl

    dtype = getattr(torch, colab.dtype_for("cuda", torch.cuda.get_device_capability()))
    name = torch.cuda.get_device_name()
    gpu = hardware.lookup(name)
    short = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    peak = gpu.peak(short) if gpu else None
    print(f"{name}, {dtype}, torch {torch.__version__}, dense peak "
          + (f"{peak / 1e12:.0f} TFLOP/s ({gpu.name})" if peak else "unknown (not in attn_lib.hardware)"))
    causals = {"both": [False, True], "yes": [True], "no": [False]}[args.causal]
    records = []
    for d in args.d:
        for causal in causals:
            x = torch.zeros(1, WIDTH // d, args.n[0], d, device="cuda", dtype=dtype)
            print(f"d={d} causal={causal}: SDPA's default backend is "
                  f"{torch_impl.sdpa_backend(x, x, x, causal=causal)}", flush=True)
            for n in args.n:
                for impl in args.impl:
                    records.append(time_case(impl, n, d, causal, dtype))
    print(table(records, peak))
    from attn_lib import triton_flash as tf

    tuned = [{"key": [str(x) for x in key], **cfg} for key, cfg in tf.tuned_configs()]
    print("\nTriton forward, autotuned (key: NQ_BUCKET, NK_BUCKET, d, dv, causal, precision, TMA, dtypes):")
    for t in tuned:
        print(f"  {', '.join(t['key'])}: " + ", ".join(f"{k}={v}" for k, v in t.items() if k != "key"))
    print("\nTargets (N >= 4096):")
    rows = targets(records, peak)
    for target, got, bound, met in rows:
        print(f"  {'PASS' if met else 'MISS'}  {target}: {got:.3f} (target >= {bound})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "dtype": str(dtype), "torch": torch.__version__, "records": records,
                       "triton_tuned": tuned,
                       "targets": [dict(zip(("target", "measured", "bound", "met"), r)) for r in rows]},
                      f, indent=1)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
