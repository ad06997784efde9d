"""NumPy reference attention: the plain algorithm and FlashAttention's tiled one.

Shapes: q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) -> out (..., Nq, dv).
Causal masking is bottom-right aligned: query i sees key j iff j <= i + Nk - Nq
(FlashAttention >= 2.1), so one decode query sees the whole cache. A query row that
sees no key returns zeros. Used by every chapter; the tiled path is chapter 4's subject.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._checks import (check_block, check_bool, check_int, check_io, check_nonneg_int, check_numpy,
                      check_positive_int, check_qkv, check_type, resolve_scale)

#: Fast-memory ("SRAM") size in elements used when no block sizes are given.
#: 2**18 float32 elements = 1 MiB, about one CPU core's L2 cache.
DEFAULT_SRAM_ELEMENTS = 2**18


# ----------------------------------------------------------------------------- helpers
def causal_mask(nq: int, nk: int) -> np.ndarray:
    """Boolean (nq, nk) mask, True where query i may see key j (bottom-right aligned)."""
    nq, nk = check_nonneg_int("nq", nq), check_nonneg_int("nk", nk)
    return np.arange(nk)[None, :] <= np.arange(nq)[:, None] + (nk - nq)


def _compute_dtype(dtype) -> np.dtype:
    # Accumulate in at least float32: fp16 in, fp32 math, fp16 out.
    return np.result_type(dtype, np.float32)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax; a slice that is all -inf gives zeros, not NaN."""
    check_numpy("x", x), check_int("axis", axis)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # all-masked rows: exp(-inf) = 0 below
    p = np.exp(x - m)
    s = np.sum(p, axis=axis, keepdims=True)
    return p / np.where(s > 0, s, 1.0)


# ----------------------------------------------------------------------------- online softmax
@dataclass(frozen=True)
class SoftmaxStats:
    """Running statistics of a softmax over part of a row: max m and sum of exp(x - m)."""

    m: np.ndarray
    l: np.ndarray

    def __post_init__(self):
        check_numpy("m", self.m), check_numpy("l", self.l)


def softmax_stats(x: np.ndarray) -> SoftmaxStats:
    """Stats of one chunk x (..., n) in a single pass."""
    check_numpy("x", x)
    m = np.max(x, axis=-1)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    return SoftmaxStats(m, np.sum(np.exp(x - m_safe[..., None]), axis=-1))


def merge_stats(a: SoftmaxStats, b: SoftmaxStats) -> SoftmaxStats:
    """Combine the stats of two disjoint chunks (associative and commutative)."""
    check_type("a", a, SoftmaxStats), check_type("b", b, SoftmaxStats)
    m = np.maximum(a.m, b.m)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    scale_a = np.where(np.isfinite(a.m), np.exp(a.m - m_safe), 0.0)
    scale_b = np.where(np.isfinite(b.m), np.exp(b.m - m_safe), 0.0)
    return SoftmaxStats(m, a.l * scale_a + b.l * scale_b)


def online_softmax_stats(x: np.ndarray, chunk: int = 1) -> SoftmaxStats:
    """Scan the last axis of x (..., n) `chunk` entries at a time, keeping only (m, l)."""
    check_numpy("x", x)
    chunk = check_positive_int("chunk", chunk)
    stats = softmax_stats(x[..., :chunk])
    for start in range(chunk, x.shape[-1], chunk):
        stats = merge_stats(stats, softmax_stats(x[..., start : start + chunk]))
    return stats


def online_softmax(x: np.ndarray, chunk: int = 1) -> np.ndarray:
    """Softmax over the last axis computed from streamed stats; equals `softmax(x)`."""
    check_numpy("x", x)
    stats = online_softmax_stats(x, chunk)
    m_safe = np.where(np.isfinite(stats.m), stats.m, 0.0)[..., None]
    l = np.where(stats.l > 0, stats.l, 1.0)[..., None]
    return np.exp(x - m_safe) / l


# ----------------------------------------------------------------------------- IO accounting
@dataclass
class IOCounter:
    """Counts elements moved between slow memory ("HBM") and fast memory ("SRAM").

    Pass one as ``io=`` to :func:`attention` or :func:`flash_attention`; counts are per
    (batch, head) slice, the unit the FlashAttention paper's Theorem 2 is stated in.
    """

    reads: int = 0
    writes: int = 0
    log: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.reads = check_nonneg_int("reads", self.reads)
        self.writes = check_nonneg_int("writes", self.writes)

    def read(self, n: int, what: str = "") -> None:
        n, _ = check_nonneg_int("n", n), check_type("what", what, str)
        self.reads += int(n)
        self.log.append(("read", what, int(n)))

    def write(self, n: int, what: str = "") -> None:
        n, _ = check_nonneg_int("n", n), check_type("what", what, str)
        self.writes += int(n)
        self.log.append(("write", what, int(n)))

    @property
    def total(self) -> int:
        return self.reads + self.writes


def algorithm1_blocks(sram_elements: int, d: int) -> tuple[int, int]:
    """Block sizes (block_q, block_k) = (Br, Bc) of FlashAttention Algorithm 1 for fast memory M.

    Bc = ceil(M / 4d), Br = min(ceil(M / 4d), d)  (Dao et al. 2022, Algorithm 1, line 1).
    """
    sram_elements = check_positive_int("sram_elements", sram_elements)
    d = check_positive_int("d", d)
    bc = math.ceil(sram_elements / (4 * d))
    return min(bc, d), bc


def naive_io_elements(nq: int, nk: int, d: int, dv: int | None = None) -> int:
    """Closed form of standard attention's slow-memory traffic (paper Algorithm 0).

    Read Q, K, write S; read S, write P; read P, V, write O:
    (Nq + Nk)·d + 4·Nq·Nk + Nk·dv + Nq·dv  =  Θ(Nd + N²).
    """
    nq, nk, d = check_nonneg_int("nq", nq), check_nonneg_int("nk", nk), check_positive_int("d", d)
    dv = d if dv is None else check_positive_int("dv", dv)
    return (nq + nk) * d + 4 * nq * nk + nk * dv + nq * dv


def flash_io_elements(nq: int, nk: int, d: int, dv: int | None = None, *, block_q: int, block_k: int) -> int:
    """Closed form of Algorithm 1's traffic (no causal skipping), for given blocks.

    Initialise O, l, m: Nq·(dv+2) writes. Each of the Tc = ceil(Nk/Bc) outer steps loads
    K_j, V_j once and, for every row block, reads Q_i, O_i, l_i, m_i and writes O_i, l_i, m_i:
    Nq·(dv+2) + Nk·(d+dv) + Tc·Nq·(d + 2·dv + 4)  =  Θ(N²d²/M) with Bc = Θ(M/d).
    """
    nq, nk, d = check_nonneg_int("nq", nq), check_nonneg_int("nk", nk), check_positive_int("d", d)
    dv = d if dv is None else check_positive_int("dv", dv)
    block_q = check_positive_int("block_q", block_q)
    block_k = check_positive_int("block_k", block_k)
    tc = math.ceil(nk / block_k)
    return nq * (dv + 2) + nk * (d + dv) + tc * nq * (d + 2 * dv + 4)


# ----------------------------------------------------------------------------- attention
def _check_numpy_qkv(q, k, v) -> None:
    """q, k, v are NumPy arrays (torch tensors go to attn_lib.torch_impl) of matching shapes."""
    check_numpy("q", q), check_numpy("k", k), check_numpy("v", v)
    check_qkv(q, k, v)


def attention(q, k, v, *, causal: bool = False, scale: float | None = None, io: IOCounter | None = None):
    """Standard attention softmax(q kᵀ · scale) v, materialising the (..., Nq, Nk) scores."""
    _check_numpy_qkv(q, k, v)
    causal, scale = check_bool("causal", causal), resolve_scale(scale, q.shape[-1])
    check_io(io, IOCounter)
    ct = _compute_dtype(q.dtype)
    nq, nk = q.shape[-2], k.shape[-2]
    q_scaled = q.astype(ct, copy=False) * ct.type(scale)  # fold the scale into q: O(Nq·d), not O(Nq·Nk)
    s = np.matmul(q_scaled, np.swapaxes(k.astype(ct, copy=False), -1, -2))  # (..., Nq, Nk)
    if causal:
        s = np.where(causal_mask(nq, nk), s, -np.inf)
    out = np.matmul(softmax(s), v.astype(ct))  # (..., Nq, dv)
    if io is not None:
        d, dv = q.shape[-1], v.shape[-1]
        io.read((nq + nk) * d, "Q, K"), io.write(nq * nk, "S")
        io.read(nq * nk, "S"), io.write(nq * nk, "P")
        io.read(nq * nk + nk * dv, "P, V"), io.write(nq * dv, "O")
    return out.astype(q.dtype, copy=False)


def iter_blocks(nq: int, nk: int, block_q: int, block_k: int, causal: bool):
    """Yield the (i, j) block pairs Algorithm 1 computes, in its order: outer j over keys, inner i
    over queries. Under the causal mask a block whose every query precedes its first key is skipped.

    A generator, so the tiled algorithm's memory stays linear in N (the list has (N/B)² pairs).
    """
    nq, nk = check_nonneg_int("nq", nq), check_nonneg_int("nk", nk)
    block_q = check_positive_int("block_q", block_q)
    block_k = check_positive_int("block_k", block_k)
    causal = check_bool("causal", causal)
    for j, k0 in enumerate(range(0, nk, block_k)):
        for i, q0 in enumerate(range(0, nq, block_q)):
            last_q = min(q0 + block_q, nq) - 1
            if causal and k0 > last_q + nk - nq:
                continue  # the whole block is masked
            yield i, j


def visited_blocks(nq: int, nk: int, block_q: int, block_k: int, causal: bool) -> list[tuple[int, int]]:
    """The pairs of :func:`iter_blocks` as a list (for pictures and counting)."""
    return list(iter_blocks(nq, nk, block_q, block_k, causal))


def _update_block(o, l, m, s, v_j) -> None:
    """Algorithm 1 lines 9-13, in place: fold scores s (..., Br, Bc) and V_j into O_i, l_i, m_i.

    s is overwritten with the unnormalised probabilities (no (Br, Bc) temporaries), and
    O_i = (alpha·l·O_i + P V_j) / l_new is updated where it lies.
    """
    m_new = np.maximum(m, np.max(s, axis=-1))  # (..., Br)
    m_safe = np.where(np.isfinite(m_new), m_new, 0.0)  # rows with no visible key yet
    p = np.exp(np.subtract(s, m_safe[..., None], out=s), out=s)  # (..., Br, Bc), unnormalised
    alpha = np.exp(np.where(np.isfinite(m), m - m_safe, -np.inf))  # rescales the old state
    l_new = alpha * l + np.sum(p, axis=-1)
    o *= (alpha * l)[..., None]
    o += np.matmul(p, v_j)
    o /= np.where(l_new > 0, l_new, 1.0)[..., None]
    l[...], m[...] = l_new, m_new


def flash_attention(
    q,
    k,
    v,
    *,
    causal: bool = False,
    scale: float | None = None,
    block_q: int | None = None,
    block_k: int | None = None,
    io: IOCounter | None = None,
    sram_elements: int = DEFAULT_SRAM_ELEMENTS,
):
    """FlashAttention forward (Dao et al. 2022, Algorithm 1) in NumPy; never forms (Nq, Nk).

    O, l, m live in "HBM" and are updated block by block; the running max m and denominator
    l make the result equal exact softmax attention. Blocks default to Algorithm 1's sizes
    for a fast memory of `sram_elements` elements; ragged edge blocks are fine.
    """
    _check_numpy_qkv(q, k, v)
    block_q, block_k = check_block("block_q", block_q), check_block("block_k", block_k)
    causal, _ = check_bool("causal", causal), check_io(io, IOCounter)
    d, dv, nq, nk = q.shape[-1], v.shape[-1], q.shape[-2], k.shape[-2]
    br, bc = algorithm1_blocks(sram_elements, d)
    block_q, block_k = block_q or br, block_k or bc
    scale = resolve_scale(scale, d)
    out_dtype, ct = q.dtype, _compute_dtype(q.dtype)
    # Fold the softmax scale into q once (O(Nq·d) multiplies instead of O(Nq·Nk)); it also
    # rounds like torch's fused kernel, which matters when logits are huge.
    q = q.astype(ct, copy=False) * ct.type(scale)
    k, v = k.astype(ct, copy=False), v.astype(ct, copy=False)

    lead = q.shape[:-2]
    o = np.zeros(lead + (nq, dv), ct)  # (..., Nq, dv) in slow memory
    l = np.zeros(lead + (nq,), ct)  # running softmax denominators
    m = np.full(lead + (nq,), -np.inf, ct)  # running row maxima
    if io is not None:
        io.write(nq * (dv + 2), "init O, l, m")
    last_j = None
    for i, j in iter_blocks(nq, nk, block_q, block_k, causal):
        rows, cols = slice(i * block_q, (i + 1) * block_q), slice(j * block_k, (j + 1) * block_k)
        n_rows, n_cols = len(range(nq)[rows]), len(range(nk)[cols])
        if io is not None:
            if j != last_j:  # outer loop: K_j, V_j enter fast memory once
                io.read(n_cols * (d + dv), "K_j, V_j")
            io.read(n_rows * (d + dv + 2), "Q_i, O_i, l_i, m_i")
            io.write(n_rows * (dv + 2), "O_i, l_i, m_i")
        last_j = j
        s = np.matmul(q[..., rows, :], np.swapaxes(k[..., cols, :], -1, -2))  # (..., Br, Bc), scaled
        if causal:  # this block's part of the mask only: never an (Nq, Nk) array
            keep = np.arange(nk)[cols][None, :] <= np.arange(nq)[rows][:, None] + (nk - nq)
            s = np.where(keep, s, -np.inf)
        _update_block(o[..., rows, :], l[..., rows], m[..., rows], s, v[..., cols, :])
    return o.astype(out_dtype, copy=False)
