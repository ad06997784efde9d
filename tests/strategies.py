"""Hypothesis strategies for attention inputs, and the float64 oracle they are checked against.

A `Case` is a shape plus a seed: q (*lead, Nq, d), k (*lead, Nk, d), v (*lead, Nk, dv) with
0, 1 or 2 leading (batch, head) dims, N = 1 and Nq != Nk included, causal on or off, and
optional block sizes (any positive ints, most of them not dividing N). Shapes stay small
(N <= 64, d <= 32) so hundreds of cases run in seconds on a 2-core machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

MAX_N = 64
MAX_D = 32


@dataclass(frozen=True)
class Case:
    lead: tuple
    nq: int
    nk: int
    d: int
    dv: int
    causal: bool
    seed: int
    scale: float | None = None
    block_q: int | None = None
    block_k: int | None = None
    logit_size: float | None = None  # if set, q is stretched so the largest |logit| is this

    def arrays(self, dtype=np.float64):
        """q, k, v as NumPy arrays of `dtype`: standard normal, q stretched if `logit_size` is set."""
        rng = np.random.default_rng(self.seed)
        q = rng.standard_normal(self.lead + (self.nq, self.d))
        k = rng.standard_normal(self.lead + (self.nk, self.d))
        v = rng.standard_normal(self.lead + (self.nk, self.dv))
        if self.logit_size is not None:  # stretch q so the largest |logit| is exactly logit_size
            largest = np.abs(q @ np.swapaxes(k, -1, -2)).max() * self.effective_scale
            q *= self.logit_size / largest
        return q.astype(dtype), k.astype(dtype), v.astype(dtype)

    @property
    def effective_scale(self) -> float:
        return 1.0 / math.sqrt(self.d) if self.scale is None else self.scale

    @property
    def kwargs(self) -> dict:
        return {"causal": self.causal, "scale": self.scale}

    @property
    def block_kwargs(self) -> dict:
        return {"block_q": self.block_q, "block_k": self.block_k}


def _block(n: int):
    # Any size from "8 blocks cover N" to "one block larger than N": keeps the loop short
    # while most sizes do not divide N (ragged last block). Size 1 gets its own test.
    return st.integers(max(1, math.ceil(n / 8)), n + 8)


@st.composite
def cases(draw, *, blocks: bool = False, max_n: int = MAX_N, max_d: int = MAX_D,
          logit_size: float | None = None, scales: bool = True) -> Case:
    """A random attention problem; `blocks=True` also draws block_q and block_k."""
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    n = st.one_of(st.just(1), st.integers(1, max_n))  # N = 1 often, not just by luck
    nq, nk = draw(n), draw(n)
    d, dv = draw(st.integers(1, max_d)), draw(st.integers(1, max_d))
    scale = draw(st.one_of(st.none(), st.floats(0.05, 2.0))) if scales else None
    block_q = draw(_block(nq)) if blocks else None
    block_k = draw(_block(nk)) if blocks else None
    return Case(lead, nq, nk, d, dv, draw(st.booleans()), draw(st.integers(0, 2**32 - 1)),
                scale, block_q, block_k, logit_size)


# ----------------------------------------------------------------------------- the oracle
def visible_keys(i: int, nq: int, nk: int, causal: bool) -> int:
    """How many keys (a prefix 0..n-1) query i sees: bottom-right causal means j <= i + nk - nq."""
    return max(0, min(nk, i + nk - nq + 1)) if causal else nk


def oracle_attention(q, k, v, *, causal: bool = False, scale: float | None = None) -> np.ndarray:
    """Attention in float64, one query row at a time, straight from the definition.

    For row i: logits over its visible keys, subtract their max, exponentiate, normalise,
    average the visible values. A row with no visible key stays 0. Deliberately shares no
    code with attn_lib (no masks, no -inf, no online softmax).
    """
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    nq, nk = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    out = np.zeros(q.shape[:-1] + (v.shape[-1],))  # (*lead, Nq, dv)
    for i in range(nq):
        n_vis = visible_keys(i, nq, nk, causal)
        if n_vis == 0:
            continue
        logits = np.einsum("...d,...jd->...j", q[..., i, :], k[..., :n_vis, :]) * scale  # (*lead, n_vis)
        w = np.exp(logits - logits.max(axis=-1, keepdims=True))
        out[..., i, :] = np.einsum("...j,...je->...e", w, v[..., :n_vis, :]) / w.sum(axis=-1, keepdims=True)
    return out


def blind_rows(nq: int, nk: int, causal: bool) -> np.ndarray:
    """Bool (nq,): True for query rows that see no key (only when causal and Nq > Nk)."""
    return np.array([visible_keys(i, nq, nk, causal) == 0 for i in range(nq)], dtype=bool)


# ----------------------------------------------------------------------------- fp32 error budgets
FP32_EPS = float(np.finfo(np.float32).eps)


def sdpa_error(q32, k32, v32, exact, *, causal: bool, scale: float | None) -> float:
    """Max-abs error of torch's fused SDPA (float32) against `exact`, over rows that see a key."""
    import torch
    import torch.nn.functional as F

    nq, nk = q32.shape[-2], k32.shape[-2]
    mask = np.arange(nk)[None, :] <= np.arange(nq)[:, None] + (nk - nq) if causal else None
    with torch.no_grad():
        out = F.scaled_dot_product_attention(
            *(torch.from_numpy(np.ascontiguousarray(x)) for x in (q32, k32, v32)),
            attn_mask=None if mask is None else torch.from_numpy(mask), scale=scale,
        ).numpy()
    seen = ~blind_rows(nq, nk, causal)  # torch leaves these NaN or 0; ours must be 0 (checked apart)
    return float(np.max(np.abs(out - exact)[..., seen, :], initial=0.0))


def largest_visible_logit(q, k, *, causal: bool, scale: float | None) -> float:
    """max |s_ij| over the (query, key) pairs the mask lets through, s = scale · q kᵀ (float64)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = np.abs(np.asarray(q, np.float64) @ np.swapaxes(np.asarray(k, np.float64), -1, -2)) * scale
    if causal:
        nq, nk = q.shape[-2], k.shape[-2]
        s = np.where(np.arange(nk)[None, :] <= np.arange(nq)[:, None] + (nk - nq), s, 0.0)
    return float(np.max(s, initial=0.0))


def fp32_budget(q32, k32, v32, exact, *, causal: bool, scale: float | None) -> float:
    """Largest error against the float64 oracle a float32 implementation may make here.

    FlashAttention's rule: twice torch SDPA's error on the same input, plus the first-order
    floor of rounding the logits once, eps32 · max|s| · max|v| (d o / d s_j = p_j (v_j - o),
    so a relative eps32 on every logit may move the output that far), plus the floor this
    suite always had for rounding the output, 2 ulps of max|v| (FlashAttention's tests add
    the same kind of output-rounding term). Without the floors, an input SDPA happens to
    round almost exactly (N = 1, or logits ~0.05 with one query: measured 1.5x SDPA for a
    correct float32 result) would demand bit-exactness of every other float32 algorithm.
    """
    logits = largest_visible_logit(q32, k32, causal=causal, scale=scale)
    floor = FP32_EPS * (logits + 2) * float(np.max(np.abs(v32)))
    return 2 * sdpa_error(q32, k32, v32, exact, causal=causal, scale=scale) + floor


def check_against_oracle(run, case: Case, *, fp64_tol: float = 1e-10, budget=fp32_budget) -> None:
    """Assert run(q, k, v) -> NumPy output matches the oracle in float64 and in float32.

    float64: within fp64_tol (absolute and relative). float32: dtype kept, max-abs error
    within `budget(q, k, v, exact, causal=, scale=)`. Both: finite, and rows that see
    no key are exactly zero.
    """
    blind = blind_rows(case.nq, case.nk, case.causal)
    q, k, v = case.arrays(np.float64)
    out = run(q, k, v)
    assert out.dtype == np.float64 and out.shape == case.lead + (case.nq, case.dv)
    np.testing.assert_allclose(out, oracle_attention(q, k, v, **case.kwargs), rtol=fp64_tol, atol=fp64_tol)
    assert not np.any(out[..., blind, :]), "rows that see no key must be exact zeros"

    q32, k32, v32 = case.arrays(np.float32)
    out32 = run(q32, k32, v32)
    assert out32.dtype == np.float32 and np.isfinite(out32).all()
    assert not np.any(out32[..., blind, :])
    exact = oracle_attention(q32, k32, v32, **case.kwargs)
    err = float(np.max(np.abs(out32 - exact), initial=0.0))
    allowed = budget(q32, k32, v32, exact, **case.kwargs)
    assert err <= allowed, f"float32 error {err:.3g} exceeds its budget {allowed:.3g}"


def logit_rounding_budget(q32, k32, v32, exact, *, causal: bool, scale: float | None) -> float:
    """float32 budget when logits are huge (~1e4): what a few roundings of each logit cost.

    A logit s is known in float32 only to about |s|·eps per rounding (product, sum, scale,
    max subtraction: allow 4), and d o / d s_j = p_j (v_j - o) turns a logit error δ into an
    output error of at most 2·max|v|·δ. At |s| = 1e4 that is ~5e-3·max|v|, far below the
    O(max|v|) error of a real bug (no max subtraction, a wrong rescale).
    """
    scale = 1.0 / np.sqrt(q32.shape[-1]) if scale is None else scale
    largest_logit = float(np.max(np.abs(q32.astype(np.float64) @ np.swapaxes(k32, -1, -2)))) * scale
    vmax = float(np.max(np.abs(v32)))
    return 2 * vmax * 4 * FP32_EPS * largest_logit + 2 * FP32_EPS * vmax


def random_cases(n: int, seed: int = 0, *, logit_size: float | None = None, blocks: bool = True) -> list:
    """A fixed population of n cases (plain NumPy RNG), for statements about error *levels*."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lead = tuple(int(x) for x in rng.integers(1, 4, size=rng.integers(0, 3)))
        nq, nk = (int(x) for x in rng.integers(1, MAX_N + 1, size=2))
        bq = int(rng.integers(max(1, -(-nq // 8)), nq + 9)) if blocks else None
        bk = int(rng.integers(max(1, -(-nk // 8)), nk + 9)) if blocks else None
        out.append(Case(lead, nq, nk, int(rng.integers(1, MAX_D + 1)), int(rng.integers(1, MAX_D + 1)),
                        bool(rng.integers(2)), int(rng.integers(2**32)), None, bq, bk, logit_size))
    return out


def population_errors(run, population) -> tuple[np.ndarray, np.ndarray]:
    """float32 max-abs errors of run(q, k, v) and of torch SDPA against the oracle, per case."""
    ours, sdpa = [], []
    for case in population:
        q32, k32, v32 = case.arrays(np.float32)
        exact = oracle_attention(q32, k32, v32, **case.kwargs)
        ours.append(np.max(np.abs(run(case, q32, k32, v32) - exact), initial=0.0))
        sdpa.append(sdpa_error(q32, k32, v32, exact, **case.kwargs))
    return np.array(ours), np.array(sdpa)
