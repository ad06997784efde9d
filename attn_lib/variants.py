"""Attention variants that change the model to escape the N² (chapter 4, last section).

Sliding-window attention: each query sees only the `window` most recent keys, itself
included. Same conventions as :mod:`attn_lib.reference`: q (..., Nq, d), k (..., Nk, d),
v (..., Nk, dv); positions are bottom-right aligned, so query i sits at position
p = i + Nk - Nq and sees key j iff p - window < j <= p. Rows that see no key give zeros.

The blocked implementation only ever forms (..., block_q, block_q + window - 1) scores,
so its work and memory grow linearly in N for a fixed window. It takes NumPy arrays or torch
tensors (torch lets FlopCounterMode count its work). Its pair and FLOP counts and the
receptive field of stacked windows are closed forms: :mod:`attn_lib.counting`
(``attention_pairs(n, window=w)``, ``attention_flops(n, d, window=w)``, ``receptive_field``).
"""
from __future__ import annotations

import numpy as np

from ._checks import check_block, check_nonneg_int, check_positive_int, check_qkv, resolve_scale
from .reference import softmax

#: Query rows per block of the sliding-window loop (a cache-sized slab of scores).
_DEFAULT_BLOCK_Q = 128


def sliding_window_mask(nq: int, nk: int, window: int) -> np.ndarray:
    """Boolean (nq, nk), True where query i may see key j: p - window < j <= p, p = i + nk - nq."""
    nq, nk = check_nonneg_int("nq", nq), check_nonneg_int("nk", nk)
    return _local_mask(0, nq, 0, nk, nk - nq, check_positive_int("window", window))


def sliding_window_attention(q, k, v, *, window: int, scale: float | None = None,
                             block_q: int | None = None) -> np.ndarray:
    """Causal sliding-window attention in NumPy, one query block at a time: O(N·window·d) work.

    Equals softmax attention with :func:`sliding_window_mask` applied to the scores.
    """
    check_qkv(q, k, v)
    window = check_positive_int("window", window)
    bq = check_block("block_q", block_q) or _DEFAULT_BLOCK_Q
    scale = resolve_scale(scale, q.shape[-1])
    if type(q).__module__.startswith("torch"):
        return _sliding_window_torch(q, k, v, window, scale, bq)
    nq, nk = q.shape[-2], k.shape[-2]
    ct = np.result_type(q.dtype, np.float32)  # accumulate in float32 at least
    out = np.zeros(q.shape[:-1] + (v.shape[-1],), ct)  # (..., Nq, dv)
    for q0 in range(0, nq, bq):
        q1 = min(q0 + bq, nq)
        k0 = max(0, q0 + nk - nq - window + 1)  # first key the first row can see
        k1 = min(nk, q1 + nk - nq)  # one past the last key the last row can see
        if k1 <= k0:
            continue  # these rows see no key: zeros
        s = np.matmul(q[..., q0:q1, :].astype(ct), np.swapaxes(k[..., k0:k1, :].astype(ct), -1, -2))
        s = s * ct.type(scale)  # (..., q1 - q0, k1 - k0): at most bq × (bq + window - 1)
        s = np.where(_local_mask(q0, q1, k0, k1, nk - nq, window), s, -np.inf)
        out[..., q0:q1, :] = np.matmul(softmax(s), v[..., k0:k1, :].astype(ct))
    return out.astype(q.dtype, copy=False)


def _sliding_window_torch(q, k, v, window: int, scale: float, bq: int):
    """The same loop in torch (any device): q (..., Nq, d) -> (..., Nq, dv)."""
    import torch

    nq, nk = q.shape[-2], k.shape[-2]
    ct = torch.float64 if q.dtype == torch.float64 else torch.float32
    out = torch.zeros(q.shape[:-1] + (v.shape[-1],), dtype=ct, device=q.device)  # (..., Nq, dv)
    for q0 in range(0, nq, bq):
        q1 = min(q0 + bq, nq)
        k0, k1 = max(0, q0 + nk - nq - window + 1), min(nk, q1 + nk - nq)
        if k1 <= k0:
            continue  # these rows see no key: zeros
        # Scores, softmax and P·V in float32 at least: fp16 scores overflow past 65504.
        kt = k[..., k0:k1, :].to(ct).transpose(-1, -2)  # (..., d, cols)
        s = torch.matmul(q[..., q0:q1, :].to(ct), kt) * scale
        keep = torch.from_numpy(_local_mask(q0, q1, k0, k1, nk - nq, window)).to(q.device)
        s = s.masked_fill(~keep, float("-inf"))  # (..., rows, cols)
        p = torch.softmax(s, dim=-1).nan_to_num(0.0)  # all-masked rows: 0, not NaN
        out[..., q0:q1, :] = torch.matmul(p, v[..., k0:k1, :].to(ct))
    return out.to(q.dtype)


def _local_mask(q0: int, q1: int, k0: int, k1: int, offset: int, window: int) -> np.ndarray:
    """The [q0:q1, k0:k1] slice of the sliding-window mask, without building the full one."""
    pos = np.arange(q0, q1)[:, None] + offset  # query positions, (rows, 1)
    j = np.arange(k0, k1)[None, :]  # key positions, (1, cols)
    return (j <= pos) & (j > pos - window)
