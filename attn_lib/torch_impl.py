"""Attention in torch, on any device and float dtype: plain, tiled (FlashAttention-2 order), SDPA.

Same contract as :mod:`attn_lib.reference`: q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv);
causal masking bottom-right aligned (query i sees key j iff j <= i + Nk - Nq); rows that
see no key give zeros; output keeps the input dtype; softmax statistics in float32 or wider.
Chapters 1, 2 and 4 time these against each other.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import (check_block, check_bool, check_int, check_nonneg_int, check_positive_int,
                      check_qkv, check_tensor, resolve_scale)

#: Block sizes of the tiled loop. On the 2-core development CPU (1 MiB L2 per core) a 512x512
#: float32 score block was fastest of 128-2048 x 128-1024 (benchmarks/cpu_attention.py), if
#: only by ~10% over 256x512: bigger blocks mean fewer, larger matmuls and fewer Python steps.
DEFAULT_BLOCK_Q = 512
DEFAULT_BLOCK_K = 512

_LOG2_E = math.log2(math.e)  # exp(x) = exp2(x · log2 e)


def _check(q, k, v) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, x)
    check_qkv(q, k, v)
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")


def _stat_dtype(dtype: torch.dtype) -> torch.dtype:
    # Softmax statistics and the output accumulator: float32 at least.
    return torch.float64 if dtype == torch.float64 else torch.float32


def causal_mask(nq: int, nk: int, device=None) -> torch.Tensor:
    """Bool (nq, nk), True where query i may see key j: j <= i + nk - nq (bottom-right)."""
    nq, nk = check_nonneg_int("nq", nq), check_nonneg_int("nk", nk)
    i = torch.arange(nq, device=device)[:, None]
    j = torch.arange(nk, device=device)[None, :]
    return j <= i + (nk - nq)


def attention(q, k, v, *, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """Plain attention: materialise the (..., Nq, Nk) scores, softmax them, multiply by v."""
    _check(q, k, v)
    causal, scale = check_bool("causal", causal), resolve_scale(scale, q.shape[-1])
    # Scores, exponentials and P·V in float32 at least: fp16 scores round to ulps of 16 at
    # |s| ~ 3e4 and overflow past 65504, where torch's fused kernel (fp32 inside) is fine.
    # The scale goes into q (O(Nq·d) work, and the rounding torch's fused kernel has).
    sd = _stat_dtype(q.dtype)
    s = torch.matmul(q.to(sd) * scale, k.to(sd).transpose(-1, -2))  # (..., Nq, Nk)
    if causal:
        s = s.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    m = s.amax(dim=-1, keepdim=True)
    p = torch.exp(s - torch.where(torch.isfinite(m), m, torch.zeros_like(m)))
    l = p.sum(dim=-1, keepdim=True)
    out = torch.matmul(p, v.to(sd)) / torch.where(l > 0, l, torch.ones_like(l))  # (..., Nq, dv)
    return out.to(q.dtype)


def standard_attention(q, k, v, *, causal: bool = False,
                       scale: float | None = None) -> torch.Tensor:
    """Attention as frameworks' eager path runs it: the timings' baseline.

    QKᵀ and P·V run in the input dtype (tensor cores on a GPU for half inputs),
    the softmax in float32, and the (..., Nq, Nk) scores are materialised. For
    accuracy use :func:`attention` (scores and P·V in float32 for half inputs).
    """
    _check(q, k, v)
    causal = check_bool("causal", causal)
    scale = resolve_scale(scale, q.shape[-1])
    nq, nk = q.shape[-2], k.shape[-2]
    s = torch.matmul(q, k.transpose(-1, -2)) * scale  # (..., Nq, Nk)
    if causal:
        s = s.masked_fill(~causal_mask(nq, nk, q.device), float("-inf"))
    p = torch.softmax(s, dim=-1, dtype=_stat_dtype(q.dtype))  # float32
    if causal and nq > nk:
        p = p.nan_to_num(0.0)  # the first Nq - Nk queries see no key: zeros
    return torch.matmul(p.to(v.dtype), v)  # (..., Nq, dv), input dtype


def _block_mask(q0: int, rows: int, k0: int, cols: int, offset: int, device) -> torch.Tensor:
    """Bool (rows, cols) causal mask of one block: key j visible to query i iff j <= i + offset."""
    i = torch.arange(q0, q0 + rows, device=device)[:, None]
    j = torch.arange(k0, k0 + cols, device=device)[None, :]
    return j <= i + offset


def _fold_block(acc, l, m, s, v_blk, causal: bool):
    """Online-softmax step, in place on acc (B, Bq, dv), l (B, Bq, 1) and the scores s (B, Bq, Bk).

    s holds log2-domain logits (the scale and log2(e) are folded into q), so exp2 gives the
    softmax numerators; exp2 is also cheaper than exp on a CPU. Returns the new running max.
    """
    m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
    if causal:  # a row that has seen only masked keys has max -inf: any finite shift works
        m_new.clamp_(min=torch.finfo(m_new.dtype).min)
    alpha = torch.exp2(m - m_new)  # rescales the old state; exp2(-inf) = 0 on the first step
    p = s.sub_(m_new).exp2_()  # reuse the score buffer for the probabilities
    l.mul_(alpha).add_(p.sum(dim=-1, keepdim=True))
    acc.mul_(alpha).baddbmm_(p, v_blk)  # acc += p @ v_blk without a temporary
    return m_new


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
    causal = check_bool("causal", causal)
    bq = check_block("block_q", block_q) or DEFAULT_BLOCK_Q
    bk = check_block("block_k", block_k) or DEFAULT_BLOCK_K
    scale = resolve_scale(scale, q.shape[-1])
    if torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v)):
        return _FlashAttention.apply(q, k, v, causal, scale, bq, bk)  # backward: recompute tiles
    return _flash_forward(q, k, v, causal, scale, bq, bk)[0]


def _flash_forward(q, k, v, causal: bool, scale: float, bq: int, bk: int):
    """The tiled forward loop: (out (..., Nq, dv) in q's dtype, lse (B, Nq) natural log).

    lse, each row's log-sum-exp of its visible logits (-inf for a row that sees none), is
    all the backward pass needs besides q, k, v and out: O(N) instead of the (N, N) P.
    """
    lead, nq, nk, d, dv = q.shape[:-2], q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    sd, offset = _stat_dtype(q.dtype), nk - nq  # query i sees key j iff j <= i + offset
    # Leading dims flattened into one batch dim B, so bmm/baddbmm apply. The softmax scale
    # and log2(e) are folded into q once: O(Nq·d) multiplies instead of O(Nq·Nk). Half
    # inputs are upcast (O(N·d) copies): scores, exponentials and P·V run in float32, so
    # logits past fp16's range (x log2 e) or sums of many large values cannot overflow.
    q3 = (q.to(sd) * (scale * _LOG2_E)).reshape(-1, nq, d)  # (B, Nq, d)
    kt = k.to(sd).reshape(-1, nk, d).transpose(1, 2)  # (B, d, Nk)
    v3 = v.to(sd).reshape(-1, nk, dv)  # (B, Nk, dv)
    out = torch.empty(q3.shape[:-1] + (dv,), dtype=q.dtype, device=q.device)  # (B, Nq, dv)
    lse = torch.empty(q3.shape[:-1], dtype=sd, device=q.device)  # (B, Nq)
    for q0 in range(0, nq, bq):
        q_blk = q3[:, q0 : q0 + bq]  # (B, Bq, d)
        rows = q_blk.shape[1]
        acc = torch.zeros(q_blk.shape[:-1] + (dv,), dtype=sd, device=q.device)  # (B, Bq, dv)
        l = torch.zeros(q_blk.shape[:-1] + (1,), dtype=sd, device=q.device)  # (B, Bq, 1)
        m = torch.full_like(l, float("-inf"))
        k_end = min(nk, q0 + rows + offset) if causal else nk  # later keys are masked for all rows
        for k0 in range(0, max(k_end, 0), bk):
            s = torch.bmm(q_blk, kt[:, :, k0 : k0 + bk])  # (B, Bq, Bk), log2 units
            cols = s.shape[-1]
            if causal and k0 + cols - 1 > q0 + offset:  # block straddles the diagonal
                s.masked_fill_(~_block_mask(q0, rows, k0, cols, offset, q.device), float("-inf"))
            m = _fold_block(acc, l, m, s, v3[:, k0 : k0 + bk], causal)
        out[:, q0 : q0 + rows] = (acc / torch.where(l > 0, l, torch.ones_like(l))).to(q.dtype)
        # log2 -> natural log; a row that saw no key has l = 0, so lse = -inf
        lse[:, q0 : q0 + rows] = ((m + torch.log2(l)) / _LOG2_E)[..., 0]
    return out.reshape(lead + (nq, dv)), lse


class _FlashAttention(torch.autograd.Function):
    """flash_attention with FlashAttention-2's backward: saves q, k, v, out and the O(N)
    log-sum-exp, never S or P, and recomputes each score tile in backward (chapter 4)."""

    @staticmethod
    def forward(ctx, q, k, v, causal, scale, bq, bk):
        out, lse = _flash_forward(q, k, v, causal, scale, bq, bk)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.args = (causal, scale, bq, bk)
        return out

    @staticmethod
    def backward(ctx, d_out):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = _flash_backward(q, k, v, out, lse, d_out, *ctx.args)
        return dq, dk, dv, None, None, None, None


def _flash_backward(q, k, v, out, lse, d_out, causal: bool, scale: float, bq: int, bk: int):
    """Gradients (dq, dk, dv) of the tiled attention, one (Bq, Bk) tile at a time.

    FlashAttention-2 (Dao 2023, Algorithm 2): key blocks outer, so dK_j, dV_j stay local; for
    every query block that sees them, recompute S = scale·Q_i K_jᵀ and P = exp(S - lse_i),
    then dV_j += Pᵀ dO_i, dP = dO_i V_jᵀ, dS = P ∘ (dP - D_i) with D = rowsum(dO ∘ O),
    dQ_i += scale·dS K_j, dK_j += scale·dSᵀ Q_i: five matmuls per tile (recomputing S is
    one), counted by :func:`attn_lib.counting.attention_backward_flops`.
    """
    lead, nq, nk, d, dv = q.shape[:-2], q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    sd, offset = _stat_dtype(q.dtype), nk - nq
    q3, k3 = q.to(sd).reshape(-1, nq, d), k.to(sd).reshape(-1, nk, d)  # (B, Nq, d), (B, Nk, d)
    v3, do3 = v.to(sd).reshape(-1, nk, dv), d_out.to(sd).reshape(-1, nq, dv)  # (B, N, dv)
    delta = (do3 * out.to(sd).reshape(-1, nq, dv)).sum(-1, keepdim=True)  # (B, Nq, 1): D
    lse_safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))[..., None]  # (B,Nq,1)
    dq = torch.zeros_like(q3)
    dk, dvv = torch.zeros_like(k3), torch.zeros_like(v3)
    for k0 in range(0, nk, bk):
        k_blk, v_blk = k3[:, k0 : k0 + bk], v3[:, k0 : k0 + bk]  # (B, Bk, d), (B, Bk, dv)
        cols = k_blk.shape[1]
        q_start = max(0, k0 - offset) // bq * bq if causal else 0  # earlier rows see none of it
        for q0 in range(q_start, nq, bq):
            rows = min(bq, nq - q0)
            s = torch.bmm(q3[:, q0 : q0 + rows] * scale, k_blk.transpose(1, 2))  # (B, Bq, Bk)
            if causal and k0 + cols - 1 > q0 + offset:  # tile straddles the diagonal
                s.masked_fill_(~_block_mask(q0, rows, k0, cols, offset, q.device), float("-inf"))
            p = s.sub_(lse_safe[:, q0 : q0 + rows]).exp_()  # (B, Bq, Bk), the softmax itself
            do_blk = do3[:, q0 : q0 + rows]  # (B, Bq, dv)
            dvv[:, k0 : k0 + bk].baddbmm_(p.transpose(1, 2), do_blk)
            ds = torch.bmm(do_blk, v_blk.transpose(1, 2)).sub_(delta[:, q0 : q0 + rows]).mul_(p)
            dq[:, q0 : q0 + rows].baddbmm_(ds, k_blk, alpha=scale)
            dk[:, k0 : k0 + bk].baddbmm_(ds.transpose(1, 2), q3[:, q0 : q0 + rows], alpha=scale)
    return (dq.reshape(lead + (nq, d)).to(q.dtype), dk.reshape(lead + (nk, d)).to(k.dtype),
            dvv.reshape(lead + (nk, dv)).to(v.dtype))


def attention_lse(q, k, v, *, causal: bool = False, scale: float | None = None,
                  offset: int | None = None):
    """Attention of q against one block of keys, plus each row's log-sum-exp (natural log).

    q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) -> out (..., Nq, dv) in float32 or wider,
    lse (..., Nq). With `causal`, query i sees key j iff j <= i + offset; the default
    offset Nk - Nq is the library's bottom-right rule, and a block cut from a longer sequence
    passes its own (query start + Nk_total - Nq_total - key start), as the tiled loops do. Rows that see no key give out 0 and lse -inf: the identity of
    :func:`merge_partials`, which joins such partial results (chapters 4 and 5).
    """
    _check(q, k, v)
    causal, scale = check_bool("causal", causal), resolve_scale(scale, q.shape[-1])
    offset = None if offset is None else check_int("offset", offset)
    sd = _stat_dtype(q.dtype)
    s = torch.matmul(q.to(sd) * scale, k.to(sd).transpose(-1, -2))  # (..., Nq, Nk)
    if causal:
        nq, nk = q.shape[-2], k.shape[-2]
        offset = nk - nq if offset is None else int(offset)
        s = s.masked_fill(~_block_mask(0, nq, 0, nk, offset, q.device), float("-inf"))
    # Normalise by the row sum, not by exp(-lse): lse ~ |s| carries a rounding of eps·|s|
    # that exp(s - lse) would apply to every weight of the row alike (a scaled output).
    m = s.amax(dim=-1, keepdim=True)  # (..., Nq, 1)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # a row that sees nothing
    p = torch.exp(s - m)
    l = p.sum(dim=-1, keepdim=True)  # (..., Nq, 1); 0 where a row sees nothing
    out = torch.matmul(p, v.to(sd)) / torch.where(l > 0, l, torch.ones_like(l))
    return out, (m + torch.log(l))[..., 0]  # lse; log(0) = -inf


def _check_partials(out_a, lse_a, out_b, lse_b) -> None:
    """out_a, out_b (..., Nq, dv) and lse_a, lse_b (..., Nq): float tensors of one device."""
    args = {"out_a": out_a, "lse_a": lse_a, "out_b": out_b, "lse_b": lse_b}
    for name, x in args.items():
        check_tensor(name, x)
        if not x.dtype.is_floating_point:
            raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    shapes = ", ".join(f"{name} {tuple(x.shape)}" for name, x in args.items())
    if out_a.ndim < 1 or out_a.shape != out_b.shape or not (
            lse_a.shape == lse_b.shape == out_a.shape[:-1]):
        raise ValueError(f"out_a, out_b must share one shape (..., Nq, dv) and lse_a, lse_b "
                         f"be (..., Nq); got {shapes}")
    if len({x.device for x in args.values()}) > 1:
        raise ValueError(f"out_a, lse_a, out_b, lse_b must be on one device; got "
                         f"{', '.join(str(x.device) for x in args.values())}")


def merge_partials(out_a, lse_a, out_b, lse_b):
    """Join two partial attentions over disjoint key sets: the log-sum-exp merge.

    out (..., Nq, dv) is each part's softmax-weighted values, lse (..., Nq) its log-sum-exp.
    The merged output weights each part by exp(lse_part - lse); it is associative and
    commutative, and a part with lse = -inf (no visible key) contributes nothing.
    Chapter 4 derives it from the online softmax; split-KV decode and ring attention use it.
    """
    _check_partials(out_a, lse_a, out_b, lse_b)
    # Weights relative to the larger lse (one of them exactly 1), and divided by their sum:
    # a rounding of lse itself then cannot scale the output.
    m = torch.maximum(lse_a, lse_b)  # (..., Nq)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # both parts empty
    w_a, w_b = torch.exp(lse_a - m), torch.exp(lse_b - m)  # exp(-inf) = 0
    total = w_a + w_b  # in [1, 2], or 0 when both parts are empty
    out = w_a[..., None] * out_a + w_b[..., None] * out_b  # (..., Nq, dv)
    return out / torch.where(total > 0, total, 1.0)[..., None], m + torch.log(total)


def split_kv_attention(q, k, v, *, n_splits: int, causal: bool = False,
                       scale: float | None = None) -> torch.Tensor:
    """Flash-Decoding: attention over the KV cache cut into `n_splits` chunks, then merged.

    q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) -> (..., Nq, dv), same contract as
    :func:`attention`. Built for decode (Nq = 1, often): one query row gives a GPU too little
    parallel work, so the keys are split instead. Each chunk's (out, lse) is independent of
    the others (on a GPU, one program each); :func:`merge_partials` joins them in a pairwise
    tree, log2(n_splits) levels deep, the reduction a GPU would run. Chunks hold
    ceil(Nk / n_splits) keys (fewer chunks when Nk < n_splits). Chapter 3's decode step.
    """
    _check(q, k, v)
    n_splits = check_positive_int("n_splits", n_splits)
    causal, scale = check_bool("causal", causal), resolve_scale(scale, q.shape[-1])
    nq, nk = q.shape[-2], k.shape[-2]
    chunk = -(-nk // n_splits)  # keys per split
    parts = [attention_lse(q, k[..., k0 : k0 + chunk, :], v[..., k0 : k0 + chunk, :],
                           causal=causal, scale=scale, offset=nk - nq - k0)  # chunk's own offset
             for k0 in range(0, nk, chunk)]
    while len(parts) > 1:  # one tree level: merge neighbours pairwise
        pairs = zip(parts[0::2], parts[1::2])
        parts = [merge_partials(*a, *b) for a, b in pairs] + parts[len(parts) // 2 * 2 :]
    return parts[0][0].to(q.dtype)


def _as_4d(x: torch.Tensor) -> torch.Tensor:
    """(..., N, d) as (B, H, N, d): torch's fused kernels take only 4-D inputs."""
    lead = x.shape[:-2]
    heads = lead[-1] if lead else 1
    return x.reshape(-1, heads, *x.shape[-2:])  # (B, H, N, d)


def sdpa(q, k, v, *, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """torch's fused ``scaled_dot_product_attention`` behind this library's causal convention.

    Inputs of any rank >= 2 are viewed as 4-D (B, H, N, d) for the call: with 3-D inputs torch
    silently falls back to its unfused math backend. torch's ``is_causal`` is top-left
    aligned (query i sees j <= i); it equals ours only when Nq == Nk. Otherwise we pass an
    explicit bottom-right boolean mask, and zero the rows that see no key (torch: NaN).
    """
    _check(q, k, v)
    causal, scale = check_bool("causal", causal), resolve_scale(scale, q.shape[-1])
    nq, nk = q.shape[-2], k.shape[-2]
    out_shape = (*q.shape[:-1], v.shape[-1])  # (..., Nq, dv)
    q4, k4, v4 = _as_4d(q), _as_4d(k), _as_4d(v)
    if not causal or nq == nk:
        out = F.scaled_dot_product_attention(q4, k4, v4, is_causal=causal, scale=scale)
        return out.reshape(out_shape)
    out = F.scaled_dot_product_attention(q4, k4, v4, attn_mask=causal_mask(nq, nk, q.device),
                                         scale=scale)
    if nq > nk:
        out[..., : nq - nk, :] = 0  # these queries precede every key
    return out.reshape(out_shape)


def sdpa_backend(q, k, v, *, causal: bool = False) -> str:
    """Which of torch's SDPA backends :func:`sdpa` runs for these inputs, as torch reports it.

    One of ``"cudnn"``, ``"flash"``, ``"efficient"``, ``"math"`` (the unfused fallback) or
    ``"overrideable"``; honours an enclosing ``torch.nn.attention.sdpa_kernel`` choice.
    """
    from torch.nn.attention import SDPBackend

    _check(q, k, v)
    causal = check_bool("causal", causal)
    nq, nk = q.shape[-2], k.shape[-2]
    q4, k4, v4 = _as_4d(q), _as_4d(k), _as_4d(v)
    mask = causal_mask(nq, nk, q.device) if causal and nq != nk else None
    choice = torch._fused_sdp_choice(q4, k4, v4, mask, 0.0, causal and nq == nk)
    return {SDPBackend.CUDNN_ATTENTION: "cudnn", SDPBackend.FLASH_ATTENTION: "flash",
            SDPBackend.EFFICIENT_ATTENTION: "efficient", SDPBackend.MATH: "math",
            SDPBackend.OVERRIDEABLE: "overrideable"}[SDPBackend(choice)]
