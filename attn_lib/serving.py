"""Serving-level experiments for chapter 3b: traces, waste, prefix sharing, chunked prefill,
batching.

- :func:`request_trace`: a seeded trace; prompt and output lengths uniform on integer
  ranges, Poisson arrivals.
- :func:`measure_waste`: the trace's final lengths allocated for real in a
  :class:`attn_lib.paged_kv.PagedKVCache`, against contiguous preallocation at max_len.
- :func:`system_prompt_trace`, :func:`prefix_sharing`: shared system prompts run through
  the cache's prefix table; bytes and prefill FLOPs saved.
- :func:`chunked_prefill`, :func:`activation_bytes_per_chunk`: a prompt prefilled in
  chunks against the growing cache of :class:`attn_lib.tiny_gpt.TinyGPT`.
- :func:`decode_step_seconds`, :func:`prefill_seconds`, :func:`simulate_batching`: the
  roofline step of :mod:`attn_lib.decode_cost` driving a *simulated* server, static
  against continuous batching (no GPU runs here: every time is a model estimate).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import counting, decode_cost, hardware, models
from ._checks import (check_choice, check_int, check_nonneg, check_positive, check_positive_int,
                      check_type)


# ----------------------------------------------------------------------------- traces
@dataclass(frozen=True)
class Request:
    """One request: when it arrives (s), its prompt and output lengths (tokens)."""

    rid: int
    arrival: float
    prompt_len: int
    output_len: int

    def __post_init__(self):
        object.__setattr__(self, "rid", check_int("rid", self.rid))
        object.__setattr__(self, "arrival", check_nonneg("arrival", self.arrival))
        for f in ("prompt_len", "output_len"):
            object.__setattr__(self, f, check_positive_int(f, getattr(self, f)))

    @property
    def total_len(self) -> int:
        return self.prompt_len + self.output_len


def _range(name: str, r) -> tuple[int, int]:
    if not isinstance(r, (tuple, list)) or len(r) != 2:
        raise TypeError(f"{name} must be a (low, high) pair of ints, got {r!r}")
    lo, hi = check_positive_int(name, r[0]), check_positive_int(name, r[1])
    if lo > hi:
        raise ValueError(f"{name} must have low <= high, got {r!r}")
    return lo, hi


def request_trace(n: int, *, seed: int = 0, prompt_range=(1, 512), output_range=(1, 512),
                  rate: float | None = None) -> list[Request]:
    """n requests; prompt and output lengths uniform on the inclusive integer ranges.

    Arrivals: a Poisson process of `rate` requests per second (exponential gaps), or all
    at t = 0 when rate is None. NumPy's PCG64 with `seed`: the same trace on every machine.
    """
    n, seed = check_positive_int("n", n), check_int("seed", seed)
    (plo, phi), (olo, ohi) = _range("prompt_range", prompt_range), _range("output_range", output_range)
    rng = np.random.default_rng(seed)
    prompts = rng.integers(plo, phi + 1, size=n)
    outputs = rng.integers(olo, ohi + 1, size=n)
    if rate is None:
        arrivals = np.zeros(n)
    else:
        arrivals = np.cumsum(rng.exponential(1 / check_positive("rate", rate), size=n))
    return [Request(i, float(a), int(p), int(o))
            for i, (a, p, o) in enumerate(zip(arrivals, prompts, outputs))]


def _requests(requests) -> list[Request]:
    reqs = list(requests) if isinstance(requests, (list, tuple)) else None
    if not reqs or not all(isinstance(r, Request) for r in reqs):
        raise TypeError(f"requests must be a non-empty list of Request, got {type(requests).__name__}")
    return reqs


# ----------------------------------------------------------------------------- waste
def measure_waste(lengths, block_size: int, max_len: int) -> dict:
    """Allocate every length in a paged cache and count slots reserved but empty.

    Returns tokens, paged_reserved, paged_waste, paged_share (of reserved) and the same
    for contiguous preallocation of max_len tokens per sequence.
    """
    from .paged_kv import PagedKVCache
    import torch

    lens = [check_positive_int("lengths", n) for n in lengths]
    bs, m = check_positive_int("block_size", block_size), check_positive_int("max_len", max_len)
    if not lens:
        raise ValueError("lengths must not be empty")
    if max(lens) > m:
        raise ValueError(f"lengths: {max(lens)} tokens exceed max_len={m}")
    cache = PagedKVCache(sum(counting.blocks_for(n, bs) for n in lens), bs, 1, 1)
    for i, n in enumerate(lens):  # one kv head of one dim: only the bookkeeping matters
        cache.add_sequence(i)
        rows = torch.zeros(n, 1, 1)
        cache.append(i, rows, rows)
    tokens, reserved = cache.stored_tokens(), cache.reserved_tokens()
    contiguous = m * len(lens)
    return {"tokens": tokens, "paged_reserved": reserved, "paged_waste": reserved - tokens,
            "paged_share": (reserved - tokens) / reserved, "contiguous_reserved": contiguous,
            "contiguous_waste": contiguous - tokens,
            "contiguous_share": (contiguous - tokens) / contiguous}


# ----------------------------------------------------------------------------- prefix sharing
def system_prompt_trace(n: int, *, n_prompts: int = 4, system_len: int = 512,
                        question_range=(16, 256), vocab: int = 32000, seed: int = 0) -> list[list[int]]:
    """n prompts: one of n_prompts system prompts (system_len tokens, drawn uniformly among
    them) followed by a question of uniform length in question_range. Token ids are random."""
    n, k = check_positive_int("n", n), check_positive_int("n_prompts", n_prompts)
    sl, vocab = check_positive_int("system_len", system_len), check_positive_int("vocab", vocab)
    lo, hi = _range("question_range", question_range)
    rng = np.random.default_rng(check_int("seed", seed))
    systems = rng.integers(0, vocab, size=(k, sl))
    which = rng.integers(0, k, size=n)
    qlens = rng.integers(lo, hi + 1, size=n)
    return [systems[w].tolist() + rng.integers(0, vocab, size=q).tolist()
            for w, q in zip(which, qlens)]


def prefix_sharing(prompts, block_size: int) -> dict:
    """Run every prompt through one paged cache with prefix caching; all stay resident.

    Returns tokens, cached (tokens per prompt found in the prefix table, not recomputed),
    blocks_shared (allocated with sharing), blocks_private (Σ ceil(L/B) without it) and
    the cache itself (for its invariants).
    """
    from .paged_kv import PagedKVCache
    import torch

    seqs = [list(p) for p in prompts] if isinstance(prompts, (list, tuple)) else None
    if not seqs or any(len(p) == 0 for p in seqs):
        raise TypeError("prompts must be a non-empty list of non-empty token-id lists")
    bs = check_positive_int("block_size", block_size)
    private = sum(counting.blocks_for(len(p), bs) for p in seqs)
    cache = PagedKVCache(private, bs, 1, 1)
    cached = []
    for i, p in enumerate(seqs):
        hit = cache.add_sequence(i, p)
        rest = torch.zeros(len(p) - hit, 1, 1)
        cache.append(i, rest, rest, tokens=p[hit:])
        cached.append(hit)
    shared = cache.allocator.num_blocks - cache.allocator.num_free
    return {"tokens": sum(map(len, seqs)), "cached": cached, "blocks_shared": shared,
            "blocks_private": private, "cache": cache}


def prefix_savings(model, prompts, block_size: int, bytes_per_value: int = 2) -> dict:
    """KV bytes and prefill FLOPs that prefix sharing saves on `prompts` for `model`.

    Bytes: blocks not allocated × a block's bytes (counting.kv_cache_bytes of block_size
    tokens, all layers). FLOPs: for each prompt, decode_cost.prefix_cache_flops of its
    cached prefix (exactly the prefix's prefill).
    """
    cfg = models.get(model)
    run = prefix_sharing(prompts, block_size)
    block_bytes = counting.kv_cache_bytes(cfg, block_size, bytes_per_value)
    flops = [decode_cost.prefix_cache_flops(cfg, c, len(p) - c)
             for c, p in zip(run["cached"], prompts)]
    full, saved = sum(f["full"] for f in flops), sum(f["saved"] for f in flops)
    return {"bytes_private": run["blocks_private"] * block_bytes,
            "bytes_shared": run["blocks_shared"] * block_bytes,
            "flops_full": full, "flops_saved": saved, "flops_saved_share": saved / full,
            "cached_tokens": sum(run["cached"]), "tokens": run["tokens"]}


# ----------------------------------------------------------------------------- chunked prefill
def chunked_prefill(model, tokens, chunk: int):
    """Prefill `tokens` (B, T) in pieces of `chunk` tokens, each against the growing cache.

    Returns (logits (B, T, vocab), cache): the same as ``model.prefill(tokens)`` up to
    rounding, with each forward pass over at most `chunk` tokens.
    """
    from .tiny_gpt import TinyGPT
    import torch

    check_type("model", model, TinyGPT)
    c = check_positive_int("chunk", chunk)
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(f"tokens must be a non-empty (B, T) tensor of ids, got "
                         f"{getattr(tokens, 'shape', type(tokens).__name__)}")
    logits, cache = model.prefill(tokens[:, :c])
    parts = [logits]
    for start in range(c, tokens.shape[1], c):
        logits, cache = model.prefill(tokens[:, start:start + c], cache)
        parts.append(logits)
    return torch.cat(parts, dim=1), cache


def activation_bytes_per_chunk(model, tokens, chunk: int) -> list[int]:
    """Bytes of the tensors the first block's modules output, per chunk of a chunked prefill.

    What one layer holds live for a chunk (projections, attention output, MLP hidden,
    norms), read with forward hooks; the score tile inside attention is not a module
    output (a fused kernel never stores it).
    """
    from .tiny_gpt import TinyGPT

    check_type("model", model, TinyGPT)
    seen = [0]

    def hook(_module, _inputs, out):
        seen[0] += out.numel() * out.element_size()

    handles = [m.register_forward_hook(hook) for m in model.blocks[0].modules()
               if not list(m.children())]  # leaves only: no tensor counted twice
    per_chunk = []
    try:
        cache = None
        c = check_positive_int("chunk", chunk)
        for start in range(0, tokens.shape[1], c):
            seen[0] = 0
            _, cache = model.prefill(tokens[:, start:start + c], cache)
            per_chunk.append(seen[0])
    finally:
        for h in handles:
            h.remove()
    return per_chunk


# ----------------------------------------------------------------------------- step model
@functools.lru_cache(maxsize=65536)
def _attention_cost(cfg: models.ModelConfig, keys: int, bpv: float) -> tuple[float, float]:
    c = decode_cost.decode_attention_cost(cfg, keys, bytes_per_value=bpv)
    return c["flops"], c["bytes"]


def decode_step_seconds(model, contexts, gpu="H100 SXM", dtype: str = "bf16",
                        bytes_per_value: int = 2) -> tuple[float, str]:
    """Roofline time of one decode step for sequences with the given cache lengths.

    decode_cost's step (weight matmuls for the batch + each sequence's attention over its
    own cache), allowing mixed lengths. Returns (seconds, 'memory' or 'compute').
    """
    cfg, g = models.get(model), hardware.get(gpu)
    ctx = [check_positive_int("contexts", c) for c in contexts]
    if not ctx:
        raise ValueError("contexts must not be empty")
    mm = decode_cost.weight_matmul_cost(cfg, len(ctx), bytes_per_value=bytes_per_value)
    flops, moved = mm["flops"], mm["bytes"]
    for c in ctx:
        f, b = _attention_cost(cfg, c, bytes_per_value)
        flops, moved = flops + f, moved + b
    t = hardware.roofline_time(flops, moved, g, dtype)
    return t, ("compute" if flops / g.peak(dtype) >= moved / g.bandwidth else "memory")


def prefill_seconds(model, prompt_lens, gpu="H100 SXM", dtype: str = "bf16",
                    bytes_per_value: int = 2) -> float:
    """Roofline time of prefilling several prompts in one step (causal forward FLOPs; the
    weights read once, the prompts' KV written)."""
    cfg, g = models.get(model), hardware.get(gpu)
    lens = [check_positive_int("prompt_lens", n) for n in prompt_lens]
    if not lens:
        raise ValueError("prompt_lens must not be empty")
    flops = sum(sum(counting.forward_flops(cfg, n, causal=True).values()) for n in lens)
    moved = counting.weight_bytes(cfg, bytes_per_value) + sum(
        counting.kv_cache_bytes(cfg, n, bytes_per_value) for n in lens)
    return hardware.roofline_time(flops, moved, g, dtype)


def throughput_curve(model, context: int, batches, gpu="H100 SXM", dtype: str = "bf16") -> list[dict]:
    """decode_cost.decode_step_estimate for each batch: batch, tokens_per_s, time_s, bound."""
    rows = []
    for b in batches:
        e = decode_cost.decode_step_estimate(model, context, check_positive_int("batches", b),
                                             gpu, dtype)
        rows.append({"batch": b, "tokens_per_s": e["tokens_per_s"], "time_s": e["time_s"],
                     "bound": e["bound"]})
    return rows


# ----------------------------------------------------------------------------- batching
def simulate_batching(requests, model, *, policy: str, max_batch: int, gpu="H100 SXM",
                      dtype: str = "bf16") -> dict:
    """A simulated server: every step's time is the roofline model, nothing runs on a GPU.

    static: wait for the running batch to finish entirely, then take up to max_batch
    waiting requests, prefill them together and decode until the longest is done (finished
    sequences keep their slot, as padding). continuous (iteration-level scheduling, as in
    Orca and vLLM): after every step, finished sequences leave and waiting ones join (their
    prefill is one step of its own). Each request's first token comes out of its prefill.
    Returns tokens_per_s, makespan_s, ttft_s (list, per request), ttft_mean_s,
    ttft_median_s, steps.
    """
    reqs = sorted(_requests(requests), key=lambda r: (r.arrival, r.rid))
    policy = check_choice("policy", policy, ("static", "continuous"))
    cap = check_positive_int("max_batch", max_batch)
    run = _run_static if policy == "static" else _run_continuous
    first, end, steps = run(reqs, models.get(model), cap, gpu, dtype)
    ttft = [first[r.rid] - r.arrival for r in reqs]
    span = end - reqs[0].arrival
    return {"tokens_per_s": sum(r.output_len for r in reqs) / span, "makespan_s": span,
            "ttft_s": ttft, "ttft_mean_s": float(np.mean(ttft)),
            "ttft_median_s": float(np.median(ttft)), "steps": steps}


def _run_static(reqs, cfg, cap, gpu, dtype):
    t, i, steps, first = 0.0, 0, 0, {}
    while i < len(reqs):
        t = max(t, reqs[i].arrival)
        batch = [r for r in reqs[i:i + cap] if r.arrival <= t]
        i += len(batch)
        t += prefill_seconds(cfg, [r.prompt_len for r in batch], gpu, dtype)
        steps += 1
        first.update({r.rid: t for r in batch})
        for step in range(1, max(r.output_len for r in batch)):
            # every slot computes until the longest is done: finished ones are padding
            ctx = [r.prompt_len + min(step, r.output_len) for r in batch]
            t += decode_step_seconds(cfg, ctx, gpu, dtype)[0]
            steps += 1
    return first, t, steps


def _run_continuous(reqs, cfg, cap, gpu, dtype):
    t, i, steps, first = 0.0, 0, 0, {}
    running: dict[int, list] = {}  # rid -> [request, tokens generated so far]
    while i < len(reqs) or running:
        if not running:
            t = max(t, reqs[i].arrival)
        joining = []
        while i < len(reqs) and reqs[i].arrival <= t and len(running) + len(joining) < cap:
            joining.append(reqs[i])
            i += 1
        if joining:
            t += prefill_seconds(cfg, [r.prompt_len for r in joining], gpu, dtype)
            steps += 1
            for r in joining:
                first[r.rid] = t
                if r.output_len > 1:
                    running[r.rid] = [r, 1]
        if running:
            ctx = [r.prompt_len + done for r, done in running.values()]
            t += decode_step_seconds(cfg, ctx, gpu, dtype)[0]
            steps += 1
            for rid in list(running):
                running[rid][1] += 1
                if running[rid][1] == running[rid][0].output_len:
                    del running[rid]
    return first, t, steps
