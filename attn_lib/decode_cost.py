"""Decode-time cost for chapter 3: what one generated token costs, and how many fit.

- :func:`generation_attention_pairs`: (query, key) pairs scored while generating, with and
  without a cache (Σi versus Σi²).
- :func:`decode_attention_cost`, :func:`weight_matmul_cost`, :func:`compute_bound_batch`:
  FLOPs, bytes and arithmetic intensity of a decode step (why decode is memory-bound).
- :func:`max_batch`, :func:`decode_step_estimate`: caches beside the weights in a GPU's
  memory, and a roofline estimate of one decode step.
- :func:`common_prefix_len`, :func:`prefix_cache_flops`: prompt caching.

The KV cache itself is :class:`attn_lib.tiny_gpt.KVCache`; its sizes are
:func:`attn_lib.counting.kv_cache_bytes`. Models are preset names,
:class:`attn_lib.models.ModelConfig` or a :class:`attn_lib.tiny_gpt.TinyGPTConfig`, resolved
once by :func:`attn_lib.models.get`. Bytes are decimal unless a name says KiB/MiB/GiB.
"""
from __future__ import annotations

import numpy as np

from . import counting, hardware, models
from ._checks import check_bool, check_bytes, check_nonneg_int, check_positive_int


# ----------------------------------------------------------------------------- work while generating
def generation_attention_pairs(prompt_len: int, n_new: int, *, cached: bool) -> int:
    """(query, key) pairs scored (per head, per layer) to generate n_new tokens after a prompt.

    Token t (1-based) is predicted from the P + t - 1 tokens before it. Without a cache every
    step reruns causal attention over all of them: (P+t-1)(P+t)/2 pairs, Σ ~ T³/6. With a
    cache the first step is the prefill, P(P+1)/2, and each later step scores one new query
    against P + t - 1 keys, Σ ~ T²/2.
    """
    p, n = check_positive_int("prompt_len", prompt_len), check_nonneg_int("n_new", n_new)
    cached = check_bool("cached", cached)
    if n == 0:
        return 0
    if not cached:
        return sum(counting.attention_pairs(p + t - 1, causal=True) for t in range(1, n + 1))
    return counting.attention_pairs(p, causal=True) + sum(p + t - 1 for t in range(2, n + 1))


# ----------------------------------------------------------------------------- FLOPs and bytes
def decode_attention_cost(model, cache_len: int, *, batch: int = 1, bytes_per_value: int = 2) -> dict:
    """FLOPs and bytes of the attention core of one decode step, all layers, `batch` sequences.

    The new token attends to `cache_len` keys (itself included; a sliding window caps them).
    flops: QKᵀ and PV (2·keys·head_dim each per head) + scale and softmax per score.
    bytes: read K and V (2·keys·d_kv values), read q and write the output (d_attn each).
    MHA in fp16 gives (4·d + 6·H)/(4·d + 4·d/keys) FLOP/byte → 1 + 1.5/head_dim for long caches;
    GQA multiplies it by the group size, since each key/value row serves that many heads.
    """
    cfg = models.get(model)
    keys = check_positive_int("cache_len", cache_len)
    if cfg.sliding_window:
        keys = min(keys, cfg.sliding_window)
    b, bpv = check_positive_int("batch", batch), check_bytes("bytes_per_value", bytes_per_value)
    scores = keys * cfg.n_heads
    flops = scores * (4 * cfg.head_dim + 1 + counting.SOFTMAX_FLOPS_PER_SCORE)
    values = 2 * keys * cfg.d_kv + 2 * cfg.d_attn
    total_flops, total_bytes = b * cfg.n_layers * flops, b * cfg.n_layers * values * bpv
    return {"flops": total_flops, "bytes": total_bytes, "intensity": total_flops / total_bytes}


def weight_matmul_cost(model, batch: int = 1, *, bytes_per_value: int = 2, unembedding: bool = True) -> dict:
    """FLOPs and bytes of one decode step's weight matmuls for `batch` sequences.

    Each (m, n) weight is read once per step whatever the batch (m·n values) and used in
    batch·m·n multiply-adds (2 FLOPs each); the activations in and out add batch·(m + n)
    values. Intensity = 2·batch·m·n / (bpv·(m·n + batch·(m + n))) ≈ batch for fp16.
    """
    cfg = models.get(model)
    b, bpv = check_positive_int("batch", batch), check_bytes("bytes_per_value", bytes_per_value)
    unembedding = check_bool("unembedding", unembedding)
    shapes = counting.weight_shapes(cfg, unembedding=unembedding)
    flops = sum(2 * b * m * n for m, n in shapes)
    total_bytes = sum(bpv * (m * n + b * (m + n)) for m, n in shapes)
    return {"flops": flops, "bytes": total_bytes, "intensity": flops / total_bytes}


def compute_bound_batch(gpu, dtype: str = "bf16", bytes_per_value: int = 2) -> float:
    """Batch above which decode's weight matmuls are compute-bound: ridge · bytes / 2.

    A weight costs bytes_per_value bytes to read and gives 2 FLOPs (a multiply-add) per
    sequence, so a batch of B has intensity 2·B / bytes_per_value FLOP/byte; setting that
    equal to the ridge point (peak FLOP/s / bandwidth) gives B. For fp16/bf16, B = ridge.
    """
    g = hardware.get(gpu)
    return g.ridge_point(dtype) * check_bytes("bytes_per_value", bytes_per_value) / 2


# ----------------------------------------------------------------------------- memory
def max_batch(model, context: int, gpu, bytes_per_value: int = 2) -> int:
    """Most sequences of `context` tokens whose KV caches fit beside the weights (0: none)."""
    cfg, g = models.get(model), hardware.get(gpu)
    context = check_positive_int("context", context)
    per_seq = counting.kv_cache_bytes(cfg, context, bytes_per_value)
    free = g.memory - counting.weight_bytes(cfg, bytes_per_value)
    return max(0, int(free // per_seq))


def decode_step_estimate(model, context: int, batch: int, gpu="H100 SXM", dtype: str = "bf16",
                         bytes_per_value: int = 2) -> dict:
    """Roofline estimate of one decode step with `batch` sequences of `context` cached tokens.

    Returns kv_bytes, weight_bytes, fits (both within the GPU's memory), flops, bytes (read
    per step), time_s (the slower of math and memory, a lower bound), bound ('memory' or
    'compute') and tokens_per_s (batch / time_s).
    """
    cfg, g = models.get(model), hardware.get(gpu)
    context, batch = check_positive_int("context", context), check_positive_int("batch", batch)
    att = decode_attention_cost(cfg, context, batch=batch, bytes_per_value=bytes_per_value)
    mm = weight_matmul_cost(cfg, batch, bytes_per_value=bytes_per_value)
    flops, moved = att["flops"] + mm["flops"], att["bytes"] + mm["bytes"]
    kv = counting.kv_cache_bytes(cfg, context, bytes_per_value, batch=batch)
    w = counting.weight_bytes(cfg, bytes_per_value)
    t = hardware.roofline_time(flops, moved, g, dtype)
    bound = "compute" if flops / g.peak(dtype) >= moved / g.bandwidth else "memory"
    return {"kv_bytes": kv, "weight_bytes": w, "fits": kv + w <= g.memory, "flops": flops,
            "bytes": moved, "time_s": t, "bound": bound, "tokens_per_s": batch / t}


# ----------------------------------------------------------------------------- prompt caching
def _token_ids(name: str, seq) -> np.ndarray:
    """A 1-D sequence of integer token ids (list, array or tensor) as a NumPy array."""
    ids = np.asarray(seq)
    if ids.ndim != 1 or not (ids.size == 0 or np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D sequence of integer token ids, got shape "
                         f"{ids.shape}, dtype {ids.dtype}")
    return ids


def common_prefix_len(a, b) -> int:
    """Length of the longest shared prefix of two token sequences: what a prompt cache can reuse."""
    a, b = _token_ids("a", a), _token_ids("b", b)
    n = min(a.size, b.size)
    diff = np.nonzero(a[:n] != b[:n])[0]
    return int(diff[0]) if diff.size else n


def prefix_cache_flops(model, prefix_len: int, suffix_len: int) -> dict:
    """Forward FLOPs of a (prefix + suffix) prompt, computed whole vs with the prefix cached.

    The suffix's own work is its dense FLOPs plus S·P + S(S+1)/2 causal score pairs, which is
    exactly forward(P + S) − forward(P): prompt caching saves precisely the prefix's prefill,
    all of it: `saved_dense` (projections and MLP, linear in P) and `saved_attention`
    (scores, scale, softmax and PV, quadratic in P); `saved_attention_share` is their ratio
    to `saved`.
    """
    cfg = models.get(model)
    p, s = check_nonneg_int("prefix_len", prefix_len), check_nonneg_int("suffix_len", suffix_len)

    def total(n):
        return sum(counting.forward_flops(cfg, n, causal=True).values())

    full, prefix = total(p + s), total(p)
    parts = counting.forward_flops(cfg, p, causal=True)
    attention = parts["scores"] + parts["scale"] + parts["softmax"] + parts["av"]
    return {"full": full, "with_cache": full - prefix, "saved": prefix,
            "saved_fraction": prefix / full if full else 0.0,
            "saved_dense": prefix - attention, "saved_attention": attention,
            "saved_attention_share": attention / prefix if prefix else 0.0}
