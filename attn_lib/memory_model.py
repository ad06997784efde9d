"""A three-level memory model of FlashAttention-2: SRAM per SM, L2, HBM (ch. 4).

Theorem 2 of the FlashAttention paper counts traffic between two levels: a fast memory
of M elements and HBM. With the paper's M ≈ 100 KB, Algorithm 1's count gives only 1.01×
less traffic than standard attention at d = 128 (:func:`algorithm1_ratio`), yet d = 128
kernels are the fast ones. The missing level is L2. FlashAttention-2 runs query blocks
in the outer loop: a thread block loads Q_i once, streams every K_j, V_j past it, and
writes O_i once. All query blocks of a head read the same K and V, so when a head's K/V
fits in L2 the re-reads are served there, and HBM sees each of Q, K, V, O once: the
compulsory Θ(N·d). Theorem 2's Θ(N²d²/M) traffic still happens, between L2 and SRAM
(:attr:`Traffic.l2_bytes`).

Counts are per (batch, head) slice, in bytes. Figures (shared memory per SM, L2 size, SM
count, bandwidth) come from :mod:`attn_lib.hardware`, each with its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import hardware, reference
from ._checks import (check_bool, check_bytes, check_nonneg_int,
                      check_optional_positive_int, check_positive, check_positive_int)

_LSE_BYTES = 4  # FlashAttention-2 writes one float32 log-sum-exp per query row
PAPER_M_BYTES = 100e3  # "M (around 100KB)", Dao et al. 2022, Section 3.2


_positive_int = check_positive_int  # the one rule (attn_lib._checks)


def _gpu(gpu) -> hardware.GPU:
    g = hardware.get(gpu)
    if g.smem_per_sm is None or g.l2_bytes is None or g.sm_count is None:
        raise ValueError(
            f"gpu {g.name!r} has no on-chip memory figures in attn_lib.hardware"
        )
    return g


def fa2_blocks(
    smem_bytes: int,
    d: int,
    dv: int | None = None,
    *,
    bytes_per_value: int = 2,
    stages: int = 2,
) -> tuple[int, int]:
    """(block_q, block_k): the largest power-of-two tiles (≤ 128) whose Q_i and `stages`
    buffers of K_j, V_j fit in one SM's shared memory, block_q ≥ block_k
    (FlashAttention-2 uses {64, 128} × {64, 128}, Section 3.3 of its paper)."""
    smem_bytes = check_positive("smem_bytes", smem_bytes)
    d, stages = check_positive_int("d", d), check_positive_int("stages", stages)
    dv = d if dv is None else check_positive_int("dv", dv)
    bytes_per_value = check_bytes("bytes_per_value", bytes_per_value)
    for bq, bk in (
        (128, 128),
        (128, 64),
        (64, 64),
        (64, 32),
        (32, 32),
        (32, 16),
        (16, 16),
    ):
        if (bq * d + stages * bk * (d + dv)) * bytes_per_value <= smem_bytes:
            return bq, bk
    raise ValueError(
        f"d={d} does not fit a 16×16 tile in {smem_bytes} bytes of shared memory"
    )


def _keys_seen(
    nq: int, nk: int, block_q: int, block_k: int, causal: bool
) -> np.ndarray:
    """Keys each query block loads (whole visible key blocks, ragged last one too)."""
    last_q = np.minimum(np.arange(1, -(-nq // block_q) + 1) * block_q, nq) - 1  # (Tr,)
    if not causal:
        return np.full(last_q.shape, nk, dtype=np.int64)
    # bottom-right aligned: the last key the block's last row sees
    last_key = last_q + nk - nq
    blocks = np.where(last_key >= 0, last_key // block_k + 1, 0)
    return np.minimum(blocks * block_k, nk).astype(np.int64)


@dataclass(frozen=True)
class Traffic:
    """Bytes one (batch, head) slice moves at each boundary (FlashAttention-2 loop)."""

    hbm_bytes: int  # HBM ↔ L2
    l2_bytes: int  # L2 ↔ SRAM: every tile load and store (what Theorem 2 counts)
    compulsory_bytes: int  # read Q, K, V once, write O once: no algorithm moves less
    kv_resident: bool  # whether the K/V re-reads were served by L2
    block_q: int
    block_k: int

    def __post_init__(self):
        for name in ("hbm_bytes", "l2_bytes", "compulsory_bytes"):
            check_nonneg_int(name, getattr(self, name))
        check_bool("kv_resident", self.kv_resident)
        check_positive_int("block_q", self.block_q)
        check_positive_int("block_k", self.block_k)

    @property
    def over_compulsory(self) -> float:
        return self.hbm_bytes / self.compulsory_bytes


def kv_bytes(nk: int, d: int, dv: int | None = None, bytes_per_value: int = 2) -> int:
    """One head's K and V: the data every query block of that head re-reads."""
    nk, d = check_positive_int("nk", nk), check_positive_int("d", d)
    dv = d if dv is None else check_positive_int("dv", dv)
    return nk * (d + dv) * check_bytes("bytes_per_value", bytes_per_value)


def heads_in_flight(nq: int, block_q: int, gpu="H100 SXM", slices: int = 1) -> int:
    """How many heads' query blocks run at once: one thread block per SM, query blocks
    of a head scheduled together (FlashAttention-2's grid), so ⌈SMs / T_r⌉ heads, at
    most `slices`.
    """
    nq, block_q = check_positive_int("nq", nq), check_positive_int("block_q", block_q)
    slices = check_positive_int("slices", slices)
    tr = -(-nq // block_q)
    return max(1, min(slices, -(-_gpu(gpu).sm_count // tr)))


def fa2_traffic(
    n: int,
    d: int,
    *,
    gpu="H100 SXM",
    nk: int | None = None,
    dv: int | None = None,
    bytes_per_value: int = 2,
    causal: bool = False,
    slices: int = 1,
    block_q: int | None = None,
    block_k: int | None = None,
    l2_bytes: int | None = None,
) -> Traffic:
    """Traffic of FlashAttention-2's forward for one slice of n queries, nk keys
    (default n).

    L2 ↔ SRAM: Q_i once, every visible K_j, V_j once per query block, O_i and the
    log-sum-exp written once. HBM: the compulsory bytes when the K/V of every head in
    flight (:func:`heads_in_flight` of `slices` = batch × heads) fits in L2 together,
    otherwise every re-read too (the two-level count, L2 playing no part).
    """
    n, d = _positive_int("n", n), _positive_int("d", d)
    nk = n if nk is None else _positive_int("nk", nk)
    dv = d if dv is None else _positive_int("dv", dv)
    g = _gpu(gpu)
    bytes_per_value = check_bytes("bytes_per_value", bytes_per_value)
    causal, slices = check_bool("causal", causal), check_positive_int("slices", slices)
    l2_bytes = check_optional_positive_int("l2_bytes", l2_bytes)
    if block_q is None or block_k is None:
        bq, bk = fa2_blocks(g.smem_per_sm, d, dv, bytes_per_value=bytes_per_value)
        block_q, block_k = block_q or bq, block_k or bk
    block_q, block_k = _positive_int("block_q", block_q), _positive_int(
        "block_k", block_k
    )
    b = bytes_per_value
    q_o = n * (d + dv) * b + n * _LSE_BYTES  # read Q, write O and the log-sum-exp
    kv_loads = int(_keys_seen(n, nk, block_q, block_k, causal).sum()) * (d + dv) * b
    compulsory = n * (d + dv) * b + kv_bytes(nk, d, dv, b)
    working_set = heads_in_flight(n, block_q, g, slices) * kv_bytes(nk, d, dv, b)
    resident = working_set <= (g.l2_bytes if l2_bytes is None else l2_bytes)
    hbm = q_o + (kv_bytes(nk, d, dv, b) if resident else kv_loads)
    return Traffic(hbm, q_o + kv_loads, compulsory, resident, block_q, block_k)


def _kv_fits_l2(
    n: int, d: int, gpu="H100 SXM", *, bytes_per_value: int = 2, slices: int = 1
) -> bool:
    """Whether FlashAttention-2's K/V re-reads at length n are served from L2."""
    return fa2_traffic(
        n, d, gpu=gpu, bytes_per_value=bytes_per_value, slices=slices
    ).kv_resident


def l2_fit_length(
    d: int, gpu="H100 SXM", *, bytes_per_value: int = 2, dv: int | None = None
) -> int:
    """Longest sequence whose single head's K and V fit in L2 (one head in flight)."""
    g = _gpu(gpu)
    return int(g.l2_bytes // kv_bytes(1, d, dv, bytes_per_value))


def regime(
    n: int, d: int, gpu="H100 SXM", *, bytes_per_value: int = 2, slices: int = 1
) -> str:
    """Which count predicts HBM traffic: 'L2-resident' (≈ compulsory Θ(N·d)) or 'Theorem
    2' (Θ(N²d²/M), K/V re-read from HBM because the heads in flight overflow L2)."""
    return (
        "L2-resident"
        if _kv_fits_l2(n, d, gpu, bytes_per_value=bytes_per_value, slices=slices)
        else "Theorem 2"
    )


# ----------------------------------------------------------------------------- the chap
def algorithm1_ratio(
    n: int = 4096,
    d: int = 64,
    *,
    sram_bytes: float = PAPER_M_BYTES,
    bytes_per_value: int = 2,
) -> float:
    """Standard over Algorithm 1 traffic (two levels, fast memory `sram_bytes`): 3.9 at
    d = 64, 1.01 at d = 128 for N = 4096 and the paper's M ≈ 100 KB."""
    sram_bytes = check_positive("sram_bytes", sram_bytes)
    bytes_per_value = check_bytes("bytes_per_value", bytes_per_value)
    br, bc = reference.algorithm1_blocks(int(sram_bytes // bytes_per_value), d)
    tiled = reference.flash_io_elements(n, n, d, block_q=br, block_k=bc)
    return float(reference.naive_io_elements(n, n, d) / tiled)


def three_level_ratio(n: int = 4096, d: int = 128, gpu="H100 SXM", *, bytes_per_value: int = 2,
                      slices: int = 1) -> float:
    """Standard attention's HBM bytes (Algorithm 0, nothing cached) over
    FlashAttention-2's HBM bytes in the three-level model."""
    t = fa2_traffic(n, d, gpu=gpu, bytes_per_value=bytes_per_value, slices=slices)
    return float(reference.naive_io_elements(n, n, d) * bytes_per_value / t.hbm_bytes)


def hbm_over_compulsory(n: int = 4096, d: int = 128, gpu="H100 SXM", *, bytes_per_value: int = 2,
                        slices: int = 1, causal: bool = False) -> float:
    """FlashAttention-2's HBM bytes over the compulsory bytes (1.0 is the floor)."""
    t = fa2_traffic(n, d, gpu=gpu, bytes_per_value=bytes_per_value, slices=slices, causal=causal)
    return float(t.over_compulsory)


def l2_over_hbm(
    n: int = 4096, d: int = 128, gpu="H100 SXM", *, bytes_per_value: int = 2
) -> float:
    """How many times more bytes cross L2 ↔ SRAM than HBM ↔ L2 (re-reads L2 absorbs)."""
    t = fa2_traffic(n, d, gpu=gpu, bytes_per_value=bytes_per_value)
    return float(t.l2_bytes / t.hbm_bytes)


def chapter_cases(n: int = 4096, gpu="H100 SXM") -> list[dict]:
    """The chapter's d = 64 and d = 128 rows: two- and three-level counts."""
    rows = []
    for d in (64, 128):
        t = fa2_traffic(n, d, gpu=gpu)
        rows.append(
            {
                "d": d,
                "n": n,
                "algorithm1_ratio": algorithm1_ratio(n, d),
                "three_level_ratio": three_level_ratio(n, d, gpu),
                "hbm_over_compulsory": float(t.over_compulsory),
                "l2_over_hbm": float(t.l2_bytes / t.hbm_bytes),
                "kv_resident": t.kv_resident,
                "block_q": t.block_q,
                "block_k": t.block_k,
                "l2_fit_length": l2_fit_length(d, gpu),
            }
        )
    return rows


def theorem2_scaling(
    ns, d: int = 128, gpu="H100 SXM", *, bytes_per_value: int = 2, slices: int = 1
) -> dict:
    """HBM and L2 ↔ SRAM bytes over a range of n: {'n', 'hbm', 'l2', 'compulsory',
    'resident'}."""
    try:
        ns = list(ns)
    except TypeError:
        kind = type(ns).__name__
        raise TypeError(f"ns must be a sequence of lengths, got {kind}") from None
    if not ns:
        raise ValueError("ns must hold at least one length")
    ts = [
        fa2_traffic(int(n), d, gpu=gpu, bytes_per_value=bytes_per_value, slices=slices)
        for n in ns
    ]
    return {
        "n": [int(n) for n in ns],
        "hbm": [t.hbm_bytes for t in ts],
        "l2": [t.l2_bytes for t in ts],
        "compulsory": [t.compulsory_bytes for t in ts],
        "resident": [t.kv_resident for t in ts],
    }


def crossover_slices(
    n: int, d: int, gpu="H100 SXM", *, bytes_per_value: int = 2
) -> float:
    """Heads in flight at which their K/V fill L2 at length n (the regime boundary)."""
    n = check_positive_int("n", n)
    return float(_gpu(gpu).l2_bytes / kv_bytes(n, d, bytes_per_value=bytes_per_value))


__all__ = [
    name for name in dir() if not name.startswith("_") and name not in ("math", "np")
]
