"""Claims 15-16, the ledger's "Decode and prefill": a step against a KV cache
is linear, a prefill quadratic, counted and measured (chapter 3)."""
from __future__ import annotations

from functools import partial

from .. import counting, timing
from ..flop_check import counted_flops
from ._registry import claim, prose_list, randn, verdict

#: what "linear" and "quadratic" mean for claim 16's slopes: the book's one
#: definition (attn_lib.timing); the cache lengths start where the work, not a
#: fixed per-call cost or a CPU cache, sets a step's time
DECODE_LINEAR = timing.LINEAR_SLOPE
PREFILL_QUADRATIC = timing.QUADRATIC_SLOPE_FROM


@claim("decode linear per step, prefill quadratic (counting)", "A",
       "With a KV cache one decoding step costs work linear in the cached "
       "length; generating N tokens one by one sums to the quadratic cost of a "
       "causal prefill of N tokens.")
def decode_vs_prefill_counting(n: int = 256, d: int = 32):
    import torch

    from .. import torch_impl

    torch.manual_seed(0)
    step = [counted_flops(torch_impl.attention, torch.randn(1, 1, d),
                          torch.randn(1, m, d), torch.randn(1, m, d))
            for m in (n, 2 * n)]  # (1, 1, d) query against (1, m, d) keys
    # query t sees t cached keys
    steps_sum = sum(4 * m * d for m in range(1, n + 1))
    values = {"step_flops": step, "step_flops_text": prose_list(step),
              "step_ratio_2x_cache": step[1] / step[0],
              "sum_of_steps": steps_sum,
              "causal_prefill": counting.attention_flops(n, d, causal=True)}
    ok = (step == [4 * n * d, 8 * n * d]
          and steps_sum == values["causal_prefill"])
    note = ("A step is 4·N·d FLOPs (linear); the N steps sum to 2·N(N+1)·d, "
            "the causal prefill count exactly.")
    return verdict(ok), note, values, {}


def _sizes_for_device():
    from .. import device

    if device() == "cuda":  # past launch overhead: 0.5 GB of cache at the
        # shortest step, 1/4 GB of scores at the shortest prompt; caches 3.5 GB,
        # a prefill at most ~6 GB more (fits a T4)
        return {"heads": 16, "decode": (262_144, 524_288, 1_048_576),
                "prefill_heads": 16, "prefill": (2048, 4096, 8192),
                "min_run_time": 0.02}  # s per round: calls of ms, little noise
    # caches of 32 MB (128K tokens) and more, past a CPU's L3: from 16K tokens
    # the slope bent up to 1.31, from 64K to 1.26, from 128K it was 0.96-1.00
    # (benchmarks/results/timing_spread_ch1_claims_2026-12-04.txt)
    return {"heads": 1, "decode": (131_072, 524_288, 2_097_152),
            "prefill_heads": 1, "prefill": (256, 512, 1024, 2048),
            "min_run_time": 0.05}


@claim("decode linear per step, prefill quadratic (measured)", "A",
       "Measured on this device: the time of one decoding step grows linearly "
       "with the cache, the time of a prefill quadratically with the prompt.")
def decode_vs_prefill_measured(d: int = 64):
    from .. import torch_impl

    sz = _sizes_for_device()
    h, hp = sz["heads"], sz["prefill_heads"]  # (H, N, d) inputs
    caches = {m: randn(h, m, d) for m in sz["decode"]}  # (H, N, d)
    prompts = {n: randn(hp, n, d) for n in sz["prefill"]}
    q = randn(h, 1, d)
    attend = torch_impl.standard_attention  # the book's timing baseline
    calls = {("decode", m): partial(attend, q, kv, kv)
             for m, kv in caches.items()}
    calls |= {("prefill", n): partial(attend, x, x, x, causal=True)
              for n, x in prompts.items()}
    with timing.limit_threads(1):  # CPU time on one CPU thread: load-proof
        best = timing.best_of(calls, rounds=5,  # min over rounds of medians
                              min_run_time=sz["min_run_time"])
    decode = [best[("decode", m)] for m in sz["decode"]]
    prefill = [best[("prefill", n)] for n in sz["prefill"]]
    slopes = {"decode_slope": timing.loglog_slope(sz["decode"], decode),
              "prefill_slope": timing.loglog_slope(sz["prefill"], prefill)}
    lo, hi = DECODE_LINEAR
    ok = (timing.is_linear(slopes["decode_slope"])
          and slopes["prefill_slope"] >= PREFILL_QUADRATIC)
    note = (f"Log-log slopes of time against length. Linear means a decode "
            f"slope in [{lo}, {hi}] (measured 0.94-1.02 on a CPU, alone and "
            f"under load, benchmarks/timing_spread.py); quadratic a prefill "
            f"slope >= {PREFILL_QUADRATIC} (measured 2.05-2.22).")
    measured = slopes | {"decode_s": decode, "prefill_s": prefill,
                         "decode_n": list(sz["decode"]),
                         "prefill_n": list(sz["prefill"]),
                         "dtype": str(q.dtype).removeprefix("torch.")}
    values = {"decode_linear_range": f"[{lo}, {hi}]",
              "prefill_quadratic_from": PREFILL_QUADRATIC}
    return verdict(ok), note, values, measured
