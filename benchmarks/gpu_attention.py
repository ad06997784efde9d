"""GPU attention benchmark: naive torch vs tiled torch vs the fused Triton kernel vs SDPA (chapter 4).

    python benchmarks/gpu_attention.py                # N = 1K..16K, d = 64/128, causal and not, bf16/fp16
    python benchmarks/gpu_attention.py --n 4096 8192 --d 128 --dtype bfloat16 --json out.json

Prints TFLOP/s (and peak CUDA memory above the inputs) per case, the N at which naive attention
runs out of memory, the measured matmul peak, and the targets with PASS/MISS:
  * the Triton kernel at >= 1.0x SDPA's TFLOP/s for N >= 4K, in every (dtype, d, causal) group;
  * the best Triton TFLOP/s at >= 50% of the GPU's dense peak (989 TFLOP/s bf16 on an H100).
Batch x N = 16K tokens and heads x d = 2048, FlashAttention-2's benchmark setting. The
measurements are attn_lib.bench.measure's, so `--json` writes a file attn_lib.recorded can load.
On a machine without CUDA it says so and exits (the CPU version: python -m attn_lib.bench --quick).
"""
from __future__ import annotations

import argparse
import sys


def ratio_table(records: list[dict]) -> str:
    """Triton / SDPA TFLOP/s for every case both ran."""
    ok = {(r["impl"], r["dtype"], r["head_dim"], r["causal"], r["n_q"]): r["tflops"]
          for r in records if r["status"] == "ok"}
    lines = ["dtype      d  causal      N  Triton/SDPA"]
    for (impl, dtype, d, causal, n), tflops in ok.items():
        if impl == "triton" and ("sdpa", dtype, d, causal, n) in ok:
            lines.append(f"{dtype:9s} {d:3d}  {causal!s:6s} {n:6d}  {tflops / ok[('sdpa', dtype, d, causal, n)]:11.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", help="sequence lengths (default 1024 ... 16384)")
    parser.add_argument("--d", type=int, nargs="+", help="head dims (default 64 128)")
    parser.add_argument("--dtype", nargs="+", help="dtypes (default bfloat16 float16, or float16 on a T4)")
    parser.add_argument("--causal", choices=["both", "yes", "no"], default="both")
    parser.add_argument("--no-oom-search", action="store_true", help="skip the naive out-of-memory search")
    parser.add_argument("--json", help="also write the run as JSON (schema: attn_lib.recorded)")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("No CUDA device: this benchmark needs a GPU. "
              "On a CPU run the small suite instead: python -m attn_lib.bench --quick")
        return 0

    from attn_lib.bench import measure, report
    from attn_lib.bench.plan import plan as suite_plan

    plan = suite_plan("cuda")
    plan.seq_lens = args.n or plan.seq_lens
    plan.head_dims = args.d or plan.head_dims
    plan.dtypes = args.dtype or plan.dtypes
    plan.causal = {"both": [False, True], "yes": [True], "no": [False]}[args.causal]
    plan.oom_search_max = 0 if args.no_oom_search else plan.oom_search_max
    plan.prefill_lens, plan.decode_lens = [], []  # attention only: the suite times prefill/decode
    result = measure.run_suite(plan, command="python benchmarks/gpu_attention.py " + " ".join(argv or sys.argv[1:]))

    print(report.summary(result))
    print("\n" + ratio_table(result["attention"]))
    if args.json:
        print(f"\nwrote {measure.write_json(result, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
