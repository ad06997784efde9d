"""Oracles the tests compare the library against (they live here, not in attn_lib).

- :func:`decode_attention_step`: one attention layer's decode step against a KV cache, in
  NumPy; the torch model in :mod:`attn_lib.tiny_gpt` is tested against it
  (tests/test_decode_cost.py).
"""
from __future__ import annotations

import math

import numpy as np

from attn_lib._checks import check_positive_int
from attn_lib.reference import softmax


def decode_attention_step(x, k_cache, v_cache, wq, wk, wv, wo, *, n_heads: int):
    """One decode step of one attention layer, in NumPy. Returns (out, k_cache, v_cache).

    x (B, d_model): the new token's (normalised) hidden state. k_cache, v_cache
    (B, n_kv_heads, L, head_dim): the past. wq (d_model, n_heads·hd), wk and wv
    (d_model, n_kv_heads·hd), wo (n_heads·hd, d_model), applied as x @ W.
    out (B, d_model); the returned caches have L + 1 rows. Query head h reads kv head
    h // (n_heads // n_kv_heads). The work is matrix-vector products: O(L·d).
    """
    arrays = {"x": x, "k_cache": k_cache, "v_cache": v_cache, "wq": wq, "wk": wk, "wv": wv, "wo": wo}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if x.ndim != 2 or k_cache.ndim != 4 or k_cache.shape != v_cache.shape:
        raise ValueError(f"need x (B, d_model) and equal k_cache, v_cache (B, Hkv, L, hd); got x "
                         f"{x.shape}, k_cache {k_cache.shape}, v_cache {v_cache.shape}")
    B, d_model = x.shape
    _, n_kv, _, hd = k_cache.shape
    n_heads = check_positive_int("n_heads", n_heads)
    if n_heads % n_kv or wq.shape[1] != n_heads * hd or wk.shape[1] != n_kv * hd:
        raise ValueError(f"n_heads={n_heads} must be a multiple of n_kv_heads={n_kv}, and wq {wq.shape}, "
                         f"wk {wk.shape} must produce n_heads·hd and n_kv_heads·hd columns (hd={hd})")
    want = {"wq": (d_model, n_heads * hd), "wk": (d_model, n_kv * hd), "wv": (d_model, n_kv * hd),
            "wo": (n_heads * hd, d_model)}
    for name, shape in want.items():
        if arrays[name].shape != shape:
            raise ValueError(f"{name} must have shape {shape} for x {x.shape}, k_cache "
                             f"{k_cache.shape}, n_heads={n_heads}; got {arrays[name].shape}")
    if k_cache.shape[0] != B:
        raise ValueError(f"x {x.shape} and k_cache {k_cache.shape} must share the batch B")
    q = (x @ wq).reshape(B, n_kv, n_heads // n_kv, hd)  # (B, Hkv, G, hd): query heads by shared kv head
    k_new = (x @ wk).reshape(B, n_kv, 1, hd)
    v_new = (x @ wv).reshape(B, n_kv, 1, hd)
    k = np.concatenate([k_cache, k_new], axis=2)  # (B, Hkv, L+1, hd)
    v = np.concatenate([v_cache, v_new], axis=2)
    p = softmax(q @ k.swapaxes(-1, -2) / math.sqrt(hd))  # (B, Hkv, G, L+1): one row per head
    out = (p @ v).reshape(B, n_heads * hd)  # (B, H·hd)
    return out @ wo, k, v
