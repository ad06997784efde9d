"""Attention in torch, on any device and float dtype: plain, tiled (FlashAttention-2 order), SDPA.

Same contract as :mod:`attn_lib.reference`: q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv);
causal masking bottom-right aligned (query i sees key j iff j <= i + Nk - Nq); rows that
see no key give zeros; output keeps the input dtype; softmax statistics in float32 or wider.
Chapters 1, 2 and 4 time these against each other.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import check_block, check_qkv, resolve_scale

#: Block sizes of the tiled loop; measured best on a 2-core CPU (benchmarks/cpu_attention.py).
DEFAULT_BLOCK_Q = 256
DEFAULT_BLOCK_K = 512


def _check(q, k, v) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    check_qkv(q, k, v)
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")


def _stat_dtype(dtype: torch.dtype) -> torch.dtype:
    # Softmax statistics and the output accumulator: float32 at least.
    return torch.float64 if dtype == torch.float64 else torch.float32


def causal_mask(nq: int, nk: int, device=None) -> torch.Tensor:
    """Bool (nq, nk), True where query i may see key j: j <= i + nk - nq (bottom-right)."""
    i = torch.arange(nq, device=device)[:, None]
    j = torch.arange(nk, device=device)[None, :]
    return j <= i + (nk - nq)


def attention(q, k, v, *, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """Plain attention: materialise the (..., Nq, Nk) scores, softmax them, multiply by v."""
    _check(q, k, v)
    scale = resolve_scale(scale, q.shape[-1])
    s = torch.matmul(q, k.transpose(-1, -2)).to(_stat_dtype(q.dtype)) * scale  # (..., Nq, Nk)
    if causal:
        s = s.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    m = s.amax(dim=-1, keepdim=True)
    p = torch.exp(s - torch.where(torch.isfinite(m), m, torch.zeros_like(m)))
    l = p.sum(dim=-1, keepdim=True)
    out = torch.matmul(p.to(v.dtype), v).to(l.dtype) / torch.where(l > 0, l, torch.ones_like(l))
    return out.to(q.dtype)


def _fold_block(acc, l, m, s, v_blk) -> None:
    """Online-softmax update, in place: acc (..., Bq, dv), l and m (..., Bq, 1), s (..., Bq, Bk)."""
    m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
    m_safe = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))
    alpha = torch.exp(m - m_safe)  # exp(-inf) = 0 for rows that had seen nothing yet
    p = s.sub_(m_safe).exp_()  # reuse the score buffer for the probabilities
    l.mul_(alpha).add_(p.sum(dim=-1, keepdim=True))
    acc.mul_(alpha).add_(torch.matmul(p.to(v_blk.dtype), v_blk).to(acc.dtype))
    m.copy_(m_new)


def flash_attention(
    q,
    k,
    v,
    *,
    causal: bool = False,
    scale: float | None = None,
    block_q: int | None = None,
    block_k: int | None = None,
) -> torch.Tensor:
    """Tiled attention with an online softmax; never forms more than (..., Bq, Bk) scores.

    FlashAttention-2 loop order: each query block streams over the key blocks it can see,
    keeping a float32 accumulator and running (max, sum). Separate torch ops, not one kernel:
    on a GPU every block still round-trips through HBM (chapter 4 shows what that costs).
    """
    _check(q, k, v)
    bq = check_block("block_q", block_q) or DEFAULT_BLOCK_Q
    bk = check_block("block_k", block_k) or DEFAULT_BLOCK_K
    scale = resolve_scale(scale, q.shape[-1])
    nq, nk, sd = q.shape[-2], k.shape[-2], _stat_dtype(q.dtype)
    kt = k.transpose(-1, -2)  # (..., d, Nk)
    out = torch.empty(q.shape[:-1] + (v.shape[-1],), dtype=q.dtype, device=q.device)
    for q0 in range(0, nq, bq):
        q_blk = q[..., q0 : q0 + bq, :]  # (..., Bq, d)
        rows = q_blk.shape[-2]
        acc = torch.zeros(q_blk.shape[:-1] + (v.shape[-1],), dtype=sd, device=q.device)
        l = torch.zeros(q_blk.shape[:-1] + (1,), dtype=sd, device=q.device)
        m = torch.full_like(l, float("-inf"))
        k_end = min(nk, q0 + rows + nk - nq) if causal else nk  # keys past this are masked
        for k0 in range(0, max(k_end, 0), bk):
            s = torch.matmul(q_blk, kt[..., k0 : k0 + bk]).to(sd).mul_(scale)  # (..., Bq, Bk)
            if causal and k0 + s.shape[-1] - 1 > q0 + nk - nq:  # block straddles the diagonal
                keep = causal_mask(nq, nk, q.device)[q0 : q0 + rows, k0 : k0 + s.shape[-1]]
                s.masked_fill_(~keep, float("-inf"))
            _fold_block(acc, l, m, s, v[..., k0 : k0 + bk, :])
        out[..., q0 : q0 + rows, :] = (acc / torch.where(l > 0, l, torch.ones_like(l))).to(q.dtype)
    return out


def sdpa(q, k, v, *, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """torch's fused ``scaled_dot_product_attention`` behind this library's causal convention.

    torch's ``is_causal`` is top-left aligned (query i sees j <= i); it equals ours only when
    Nq == Nk. Otherwise we pass an explicit bottom-right boolean mask, and zero the rows
    that see no key (which torch would leave as NaN).
    """
    _check(q, k, v)
    scale = resolve_scale(scale, q.shape[-1])
    nq, nk = q.shape[-2], k.shape[-2]
    if not causal or nq == nk:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(nq, nk, q.device), scale=scale)
    if nq > nk:
        out[..., : nq - nk, :] = 0  # these queries precede every key
    return out
