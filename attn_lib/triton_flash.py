"""Fused FlashAttention kernels in Triton, forward and backward (chapter 4).

Timed by ``python -m attn_lib.bench`` and ``benchmarks/gpu_attention.py``.

``flash_attention(q, k, v, causal=..., scale=...)`` takes q (B, H, Nq, d), k (B, H, Nk, d),
v (B, H, Nk, dv) in fp16, bf16 or fp32 and returns (B, H, Nq, dv) in the input dtype, with the
library's contract: causal masking is bottom-right aligned (query i sees key j iff
j <= i + Nk - Nq) and a query that sees no key gets zeros.

What "fused" buys (chapter 4): torch_impl.flash_attention runs the same tiled algorithm as
separate torch ops, so every (Bq, Bk) score block still goes to and from HBM. Here one program
keeps its query block, running max m, denominator l and output accumulator in registers /
SRAM for the whole loop over keys; HBM sees q, k, v once in and the output once out.

Layout of the work (FlashAttention-2 order):
  grid = (query blocks, batch·heads); one program owns BLOCK_M queries of one head and loops
  over key blocks of BLOCK_N keys. The key loop has two stages: blocks every row of the
  program may fully see (no masks at all), then the few blocks on the causal diagonal or at
  the ragged end of the keys (masked). Blocks wholly above the diagonal are never visited.
  Causal grids start with the last query blocks, which see the most keys.

Backward (FlashAttention-2's): the forward saves the log-sum-exp per query; ``_attn_bwd_preprocess``
computes D = rowsum(dO ∘ O); ``_attn_bwd_dkdv`` (one program per key block) and
``_attn_bwd_dq`` (one per query block) recompute P tile by tile from the scores and the
log-sum-exp. ``flash_attention`` is differentiable through ``torch.autograd``.

On Hopper with Triton >= 3.5 the forward loads k and v through tensor descriptors (the TMA
copy engine) where strides allow; elsewhere (older GPUs, older Triton, the default under the
interpreter) through pointers. ``compile_report`` compiles any kernel for a GPU this machine
need not have and reports registers, spills, shared memory, wgmma and TMA.

Without a CUDA device the kernel runs in Triton's interpreter (NumPy on the CPU). Importing
this module queries no GPU, changes no environment variable and reloads no module: the kernel
functions below are plain Python until the first call, when :func:`interpreting` picks the
mode (TRITON_INTERPRET if the user set it, else "interpret unless CUDA is available") and
``_build_kernels`` wraps them as Triton's interpreted or JIT-compiled functions; the GPU
autotuner is built then too (with Triton 3.2 a module-level ``triton.autotune(...,
do_bench=...)`` raises "0 active drivers" on a CPU). The kernels call only Triton builtins
and their own helpers, so they interpret correctly although ``triton.language`` itself was
imported in compiled mode. The interpreter mishandles bf16 in ``tl.dot``, so there bf16
inputs are computed in fp32 and cast back. Importing never fails without Triton:
``AVAILABLE`` says whether Triton is installed, :func:`why_unavailable` whether the kernel
can run here (None) or, in one line, why not.
"""
from __future__ import annotations

import contextlib
import os

from ._checks import (check_bool, check_choice, check_positive_int, check_qkv, check_tensor,
                      resolve_scale)

try:
    import torch
except ImportError:  # pragma: no cover - torch is needed for the kernel, not for the import
    torch = None

try:
    import triton
    import triton.language as tl

    AVAILABLE = torch is not None
except ImportError:
    triton = tl = None
    AVAILABLE = False

#: Filled on first use, never at import: "interpret" (bool), "built" (kernels wrapped),
#: "tuned" (the GPU autotuner), "why" (why_unavailable's cached answer).
_RUNTIME: dict = {}

#: The kernel functions, wrapped on first use. They call each other by these module-global
#: names, which Triton resolves in this module's namespace.
_KERNEL_NAMES = ("_query_block", "_load_tile", "_load_kv", "_attn_fwd_inner", "_attn_fwd", "_attn_bwd_preprocess", "_load_row_stats",
                 "_attn_bwd_dkdv_inner", "_attn_bwd_dkdv", "_attn_bwd_dq_inner", "_attn_bwd_dq")


def interpreting() -> bool:
    """True when the kernel runs in Triton's CPU interpreter rather than compiled for a GPU.

    Decided once, on first use: TRITON_INTERPRET when the user set it ("0"/"" = compiled),
    else interpret exactly when torch sees no CUDA device.
    """
    if "interpret" not in _RUNTIME:
        env = os.environ.get("TRITON_INTERPRET")
        cuda = torch is not None and torch.cuda.is_available()
        _RUNTIME["interpret"] = env not in ("", "0") if env is not None else not cuda
    return _RUNTIME["interpret"]


def _build_kernels() -> None:
    """Wrap the kernel functions for this process's mode, once (first call, not import)."""
    if _RUNTIME.get("built"):
        return
    if interpreting():
        from triton.runtime.interpreter import InterpretedFunction as wrap
    else:
        from triton.runtime.jit import JITFunction as wrap
    namespace = globals()
    for name in _KERNEL_NAMES:
        if not isinstance(namespace[name], wrap):
            namespace[name] = wrap(namespace[name])
    _RUNTIME["built"] = True


def _tuned_kernel():
    """The GPU autotuner around ``_attn_fwd``, built on first use (never under the interpreter)."""
    if "tuned" not in _RUNTIME:
        _build_kernels()
        _RUNTIME["tuned"] = triton.autotune(
            configs=_gpu_configs(),
            key=["NQ_BUCKET", "NK_BUCKET", "HEAD_DIM", "HEAD_DIM_V", "CAUSAL", "DOT_PRECISION", "USE_TMA"],
            prune_configs_by={"early_config_prune": _prune_configs},
            do_bench=_quick_bench,
        )(_attn_fwd)
    return _RUNTIME["tuned"]


def why_unavailable() -> str | None:
    """None when the kernel runs here; else one line saying why not (chapter 4 prints it).

    The first call runs one tiny problem through the kernel (interpreted on a CPU, one small
    compile on a GPU), so a Triton that imports but cannot run this kernel is caught too.
    """
    if torch is None:
        return "torch is not installed"
    if not AVAILABLE:
        return "Triton is not installed (its wheels are for Linux x86-64 only)"
    if "why" not in _RUNTIME:
        try:
            x = torch.zeros(1, 1, 16, 16, device="cpu" if interpreting() else "cuda")
            flash_attention(x, x, x, _blocks=(16, 16))
            _RUNTIME["why"] = None
        except Exception as err:  # any failure means "cannot run here": say it in one line
            msg = " ".join(str(err).split())[:160]
            _RUNTIME["why"] = f"the Triton kernel cannot run here ({type(err).__name__}: {msg})"
    return _RUNTIME["why"]


#: log2(e): exp(x) = exp2(x·log2 e), so folding it into the softmax scale lets the kernel use exp2.
_LOG2E = 1.4426950408889634

#: Largest head dim accepted (d is padded to a power of two >= 16 inside the kernel).
_MAX_HEAD_DIM = 256

#: Fixed blocks under the interpreter: small enough that tests cover several blocks at N <= 128.
_INTERPRET_BLOCK_M = 32
_INTERPRET_BLOCK_N = 32

_SUPPORTED_DTYPES = ("float16", "bfloat16", "float32")


# ----------------------------------------------------------------------------- the kernel
if AVAILABLE:

    def _query_block(CAUSAL: tl.constexpr):
        """This program's query block. Causal: the last blocks (which see the most keys) first,
        so the longest programs start early and the grid does not end on a tail of them."""
        if CAUSAL:
            return tl.num_programs(0) - 1 - tl.program_id(0)
        else:
            return tl.program_id(0)

    def _load_tile(ptrs, rows, n_rows, cols, N_COLS: tl.constexpr, BLOCK_COLS: tl.constexpr,
                   CHECK_ROWS: tl.constexpr):
        """Load a (rows, BLOCK_COLS) tile; rows >= n_rows and padded columns >= N_COLS read as 0.

        Masks are emitted only where needed (constexpr branches), so full interior blocks
        are plain vectorised loads.
        """
        if CHECK_ROWS:
            if N_COLS == BLOCK_COLS:
                return tl.load(ptrs, mask=rows[:, None] < n_rows, other=0.0)
            else:
                return tl.load(ptrs, mask=(rows[:, None] < n_rows) & (cols[None, :] < N_COLS), other=0.0)
        else:
            if N_COLS == BLOCK_COLS:
                return tl.load(ptrs)
            else:
                return tl.load(ptrs, mask=cols[None, :] < N_COLS, other=0.0)

    def _load_kv(src, start_n, keys, N_K, stride_n, offs, N_COLS: tl.constexpr, BLOCK_N: tl.constexpr,
                 BLOCK_COLS: tl.constexpr, MASKED: tl.constexpr, USE_TMA: tl.constexpr):
        """Keys start_n .. start_n + BLOCK_N - 1 of k or v: (BLOCK_N, BLOCK_COLS).

        Pointer path: ``src`` points at key 0's tile; masked loads where MASKED. TMA path
        (Hopper): ``src`` is a tensor descriptor of this head's (N_K, N_COLS) matrix; the copy
        engine fetches the tile and fills rows and columns past the ends with zeros.
        """
        if USE_TMA:
            return src.load([start_n, 0])
        else:
            return _load_tile(src + start_n * stride_n, keys, N_K, offs, N_COLS, BLOCK_COLS, MASKED)

    def _attn_fwd_inner(acc, l_i, m_i, q, k_src, v_src, stride_kn, stride_vn,
                        lo, hi, offs_m, offs_n, offs_d, offs_dv, N_K, diag, qk_scale,
                        HEAD_DIM: tl.constexpr, HEAD_DIM_V: tl.constexpr,
                        BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, BLOCK_N: tl.constexpr,
                        CAUSAL: tl.constexpr, MASKED: tl.constexpr, DOT_PRECISION: tl.constexpr,
                        USE_TMA: tl.constexpr):
        """Fold key blocks [lo, hi) into the running (acc, l, m) of one query block: online softmax.

        acc (BLOCK_M, BLOCK_DV) fp32 = Σ_j exp2(s_j - m)·v_j,   l (BLOCK_M,) = Σ_j exp2(s_j - m),
        m (BLOCK_M,) = running max of the base-2 scores s = q·kᵀ·scale·log2(e).
        MASKED: apply the ragged-end (key >= N_K) and causal masks; False for interior blocks.
        """
        for start_n in range(lo, hi, BLOCK_N):
            keys = start_n + offs_n  # (BLOCK_N,) key indices of this block
            k = _load_kv(k_src, start_n, keys, N_K, stride_kn, offs_d, HEAD_DIM, BLOCK_N, BLOCK_D,
                         MASKED, USE_TMA)  # (BLOCK_N, BLOCK_D)
            # Scores in the log2 domain: exp(x·scale) = exp2(x·scale·log2 e).
            s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
            if MASKED:
                visible = keys[None, :] < N_K
                if CAUSAL:
                    visible = visible & (keys[None, :] <= offs_m[:, None] + diag)  # bottom-right
                s = tl.where(visible, s, float("-inf"))
            # Online softmax: new running max, then rescale the old state by exp2(m_old - m_new).
            m_new = tl.maximum(m_i, tl.reduce(s, 1, tl.standard._elementwise_max))  # row max
            if MASKED:
                # A row that has seen no key yet keeps m = -inf; subtract 0 instead (no NaN).
                m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)
            else:
                m_ref = m_new
            alpha = tl.math.exp2(m_i - m_ref)  # (BLOCK_M,); 0 on the first visible block
            p = tl.math.exp2(s - m_ref[:, None])  # (BLOCK_M, BLOCK_N) unnormalised probabilities
            l_i = l_i * alpha + tl.reduce(p, 1, tl.standard._sum_combine)  # row sum
            v = _load_kv(v_src, start_n, keys, N_K, stride_vn, offs_dv, HEAD_DIM_V, BLOCK_N, BLOCK_DV,
                         MASKED, USE_TMA)  # (BLOCK_N, BLOCK_DV)
            acc = acc * alpha[:, None]
            acc = tl.dot(p.to(v.dtype), v, acc, input_precision=DOT_PRECISION)  # acc += P·V in fp32
            m_i = m_new
        return acc, l_i, m_i

    def _attn_fwd(Q, K, V, Out, Lse,
                  stride_qb, stride_qh, stride_qn, stride_qd,
                  stride_kb, stride_kh, stride_kn, stride_kd,
                  stride_vb, stride_vh, stride_vn, stride_vd,
                  stride_ob, stride_oh, stride_on, stride_od,
                  H, N_Q, N_K, qk_scale,
                  NQ_BUCKET, NK_BUCKET,  # only read by the autotuner's key (powers of two)
                  HEAD_DIM: tl.constexpr, HEAD_DIM_V: tl.constexpr,
                  BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
                  CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, USE_TMA: tl.constexpr = False):
        """One program: BLOCK_M queries of one (batch, head) against all the keys they may see.

        USE_TMA (Hopper, Triton >= 3.5, 16-byte aligned strides): k and v tiles arrive through
        tensor descriptors (the TMA copy engine) instead of per-thread pointer loads.
        """
        pid_m = _query_block(CAUSAL)  # which query block
        pid_bh = tl.program_id(1)  # which (batch, head)
        b = (pid_bh // H).to(tl.int64)  # int64: batch·head offsets can pass 2**31 elements
        h = (pid_bh % H).to(tl.int64)

        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # query rows
        offs_n = tl.arange(0, BLOCK_N)  # key offsets within a block
        offs_d = tl.arange(0, BLOCK_D)  # head dim of q, k (padded to a power of two)
        offs_dv = tl.arange(0, BLOCK_DV)  # head dim of v and the output

        K += b * stride_kb + h * stride_kh  # this head's keys and values
        V += b * stride_vb + h * stride_vh
        if USE_TMA:
            k_src = tl.make_tensor_descriptor(K, shape=[N_K, HEAD_DIM], strides=[stride_kn, 1],
                                              block_shape=[BLOCK_N, BLOCK_D])
            v_src = tl.make_tensor_descriptor(V, shape=[N_K, HEAD_DIM_V], strides=[stride_vn, 1],
                                              block_shape=[BLOCK_N, BLOCK_DV])
        else:
            k_src = K + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd
            v_src = V + offs_n[:, None] * stride_vn + offs_dv[None, :] * stride_vd

        # The query block stays on chip for the whole key loop: read from HBM once.
        q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qn + offs_d[None, :] * stride_qd
        q = _load_tile(q_ptrs, offs_m, N_Q, offs_d, HEAD_DIM, BLOCK_D, True)  # (BLOCK_M, BLOCK_D)

        # Running statistics of the online softmax (fp32 whatever the input dtype).
        m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)  # running max (log2 domain)
        l_i = tl.full([BLOCK_M], 0.0, dtype=tl.float32)  # running denominator
        acc = tl.full([BLOCK_M, BLOCK_DV], 0.0, dtype=tl.float32)  # unnormalised output

        # Which key blocks to visit. Query i sees key j iff j <= i + diag (bottom-right causal).
        diag = N_K - N_Q
        full_blocks_end = N_K // BLOCK_N * BLOCK_N  # keys before this need no ragged-end mask
        if CAUSAL:
            start_m = pid_m * BLOCK_M
            # Causal early exit: keys >= hi are hidden from every row here (the last row sees
            # up to start_m + BLOCK_M - 1 + diag), so those blocks are skipped entirely.
            hi = tl.minimum(N_K, tl.maximum(start_m + BLOCK_M + diag, 0))
            # Keys < start_m + diag + 1 are visible to the block's first row, hence to all rows.
            unmasked_end = tl.minimum(tl.maximum(start_m + diag + 1, 0) // BLOCK_N * BLOCK_N, full_blocks_end)
        else:
            hi = N_K
            unmasked_end = full_blocks_end

        # Stage 1: interior blocks, no masks.  Stage 2: diagonal / ragged-end blocks, masked.
        acc, l_i, m_i = _attn_fwd_inner(acc, l_i, m_i, q, k_src, v_src, stride_kn, stride_vn,
                                        0, unmasked_end, offs_m, offs_n, offs_d, offs_dv, N_K, diag, qk_scale,
                                        HEAD_DIM, HEAD_DIM_V, BLOCK_D, BLOCK_DV, BLOCK_N,
                                        CAUSAL, False, DOT_PRECISION, USE_TMA)
        acc, l_i, m_i = _attn_fwd_inner(acc, l_i, m_i, q, k_src, v_src, stride_kn, stride_vn,
                                        unmasked_end, hi, offs_m, offs_n, offs_d, offs_dv, N_K, diag, qk_scale,
                                        HEAD_DIM, HEAD_DIM_V, BLOCK_D, BLOCK_DV, BLOCK_N,
                                        CAUSAL, True, DOT_PRECISION, USE_TMA)

        # Normalise once at the end; rows that saw no key (l = 0) stay 0 instead of 0/0.
        out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]  # (BLOCK_M, BLOCK_DV)
        o_ptrs = Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_on + offs_dv[None, :] * stride_od
        o_mask = (offs_m[:, None] < N_Q) & (offs_dv[None, :] < HEAD_DIM_V)
        tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=o_mask)
        # The backward recomputes P = exp2(s - lse) from this log-sum-exp (log2 domain, fp32,
        # (B·H, Nq)); a row that saw no key gets +inf, so its recomputed P is 0, not inf.
        lse = tl.where(l_i > 0, m_i + tl.math.log2(tl.where(l_i > 0, l_i, 1.0)), float("inf"))
        tl.store(Lse + pid_bh.to(tl.int64) * N_Q + offs_m, lse, mask=offs_m < N_Q)

    # ------------------------------------------------------------------------- the backward
    # FlashAttention-2's backward (Dao 2023, Algorithm 2), in three kernels over contiguous
    # (B·H, N, d) tensors. With P = softmax(scale·QKᵀ) (masked), O = PV and dO given:
    #   dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ∘ (dP − D) with D = rowsum(dO ∘ O),
    #   dQ = scale · dS K,   dK = scale · dSᵀ Q.
    # P is never stored: each tile is recomputed from the scores and the forward's saved
    # log-sum-exp, P = exp2(s − lse). dK, dV are summed over queries and dQ over keys, so
    # one kernel owns a key block (dK, dV) and another a query block (dQ): no atomics.

    def _attn_bwd_preprocess(O, DO, Delta, N_Q,
                             HEAD_DIM_V: tl.constexpr, BLOCK_DV: tl.constexpr, BLOCK_M: tl.constexpr):
        """D = rowsum(dO ∘ O) for BLOCK_M rows of one (batch, head): (B·H, Nq) fp32."""
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1).to(tl.int64)
        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_dv = tl.arange(0, BLOCK_DV)
        tile = pid_bh * N_Q * HEAD_DIM_V + rows[:, None] * HEAD_DIM_V + offs_dv[None, :]
        o = _load_tile(O + tile, rows, N_Q, offs_dv, HEAD_DIM_V, BLOCK_DV, True).to(tl.float32)
        do = _load_tile(DO + tile, rows, N_Q, offs_dv, HEAD_DIM_V, BLOCK_DV, True).to(tl.float32)
        delta = tl.reduce(o * do, 1, tl.standard._sum_combine)  # (BLOCK_M,)
        tl.store(Delta + pid_bh * N_Q + rows, delta, mask=rows < N_Q)

    def _load_row_stats(Lse, Delta, rows, N_Q, MASKED: tl.constexpr):
        """lse and D of these query rows; rows >= N_Q read lse = +inf (so P = 0) and D = 0."""
        if MASKED:
            lse = tl.load(Lse + rows, mask=rows < N_Q, other=float("inf"))
            delta = tl.load(Delta + rows, mask=rows < N_Q, other=0.0)
        else:
            lse = tl.load(Lse + rows)
            delta = tl.load(Delta + rows)
        return lse, delta

    def _attn_bwd_dkdv_inner(dk, dv, k, v, Q, DO, Lse, Delta, lo, hi, keys, N_Q, diag, qk_scale,
                             HEAD_DIM: tl.constexpr, HEAD_DIM_V: tl.constexpr,
                             BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, BLOCK_M: tl.constexpr,
                             CAUSAL: tl.constexpr, MASKED: tl.constexpr, DOT_PRECISION: tl.constexpr):
        """Add query blocks [lo, hi) to one key block's dK, dV. Tiles are transposed: (keys, queries).

        MASKED: query rows >= N_Q read as zero (they then add nothing) and the causal mask is
        applied; False for interior blocks that every key of the block is visible to.
        """
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        for start_m in range(lo, hi, BLOCK_M):
            rows = start_m + tl.arange(0, BLOCK_M)  # (BLOCK_M,) query indices
            q = _load_tile(Q + rows[:, None] * HEAD_DIM + offs_d[None, :], rows, N_Q, offs_d,
                           HEAD_DIM, BLOCK_D, MASKED)  # (BLOCK_M, BLOCK_D)
            do = _load_tile(DO + rows[:, None] * HEAD_DIM_V + offs_dv[None, :], rows, N_Q, offs_dv,
                            HEAD_DIM_V, BLOCK_DV, MASKED)  # (BLOCK_M, BLOCK_DV)
            lse, delta = _load_row_stats(Lse, Delta, rows, N_Q, MASKED)  # (BLOCK_M,) each
            s_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_N, BLOCK_M)
            if MASKED and CAUSAL:
                s_t = tl.where(keys[:, None] <= rows[None, :] + diag, s_t, float("-inf"))
            p_t = tl.math.exp2(s_t - lse[None, :])  # Pᵀ recomputed, already normalised
            dv = tl.dot(p_t.to(do.dtype), do, dv, input_precision=DOT_PRECISION)  # dV += Pᵀ dO
            dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)  # (dO Vᵀ)ᵀ
            ds_t = p_t * (dp_t - delta[None, :])  # dSᵀ (scale applied once, at the end)
            dk = tl.dot(ds_t.to(q.dtype), q, dk, input_precision=DOT_PRECISION)  # dK += dSᵀ Q
        return dk, dv

    def _attn_bwd_dkdv(Q, K, V, DO, DK, DV, Lse, Delta, N_Q, N_K, sm_scale, qk_scale,
                       HEAD_DIM: tl.constexpr, HEAD_DIM_V: tl.constexpr,
                       BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
                       CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
        """One program: dK, dV of BLOCK_N keys of one (batch, head), looping over the queries that see them."""
        pid_n = tl.program_id(0)  # which key block
        pid_bh = tl.program_id(1).to(tl.int64)  # which (batch, head)
        Q += pid_bh * N_Q * HEAD_DIM
        DO += pid_bh * N_Q * HEAD_DIM_V
        Lse += pid_bh * N_Q
        Delta += pid_bh * N_Q
        start_n = pid_n * BLOCK_N
        keys = start_n + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        k_tile = pid_bh * N_K * HEAD_DIM + keys[:, None] * HEAD_DIM + offs_d[None, :]
        v_tile = pid_bh * N_K * HEAD_DIM_V + keys[:, None] * HEAD_DIM_V + offs_dv[None, :]
        # The key block stays on chip. Keys >= N_K read as 0; their rows are never stored.
        k = _load_tile(K + k_tile, keys, N_K, offs_d, HEAD_DIM, BLOCK_D, True)  # (BLOCK_N, BLOCK_D)
        v = _load_tile(V + v_tile, keys, N_K, offs_dv, HEAD_DIM_V, BLOCK_DV, True)  # (BLOCK_N, BLOCK_DV)
        dk = tl.full([BLOCK_N, BLOCK_D], 0.0, dtype=tl.float32)
        dv = tl.full([BLOCK_N, BLOCK_DV], 0.0, dtype=tl.float32)

        # Which query blocks to visit. Query i sees key j iff j <= i + diag (bottom-right causal).
        diag = N_K - N_Q
        full_end = N_Q // BLOCK_M * BLOCK_M  # query blocks before this need no ragged-end mask
        rows_end = (N_Q + BLOCK_M - 1) // BLOCK_M * BLOCK_M
        if CAUSAL:
            # Queries before start_n - diag see none of these keys: skip their blocks. Queries
            # from start_n + BLOCK_N - 1 - diag on see all of them: no causal mask there.
            lo = tl.maximum(start_n - diag, 0) // BLOCK_M * BLOCK_M
            diag_end = tl.minimum((tl.maximum(start_n + BLOCK_N - 1 - diag, 0) + BLOCK_M - 1) // BLOCK_M * BLOCK_M,
                                  rows_end)
        else:
            lo = 0
            diag_end = 0
        # Stage 1: diagonal blocks (masked). Stage 2: interior blocks (no masks).
        # Stage 3: the ragged last query block, if stage 1 did not cover it (masked).
        dk, dv = _attn_bwd_dkdv_inner(dk, dv, k, v, Q, DO, Lse, Delta, lo, diag_end, keys, N_Q, diag,
                                      qk_scale, HEAD_DIM, HEAD_DIM_V, BLOCK_D, BLOCK_DV, BLOCK_M,
                                      CAUSAL, True, DOT_PRECISION)
        dk, dv = _attn_bwd_dkdv_inner(dk, dv, k, v, Q, DO, Lse, Delta, diag_end, full_end, keys, N_Q, diag,
                                      qk_scale, HEAD_DIM, HEAD_DIM_V, BLOCK_D, BLOCK_DV, BLOCK_M,
                                      CAUSAL, False, DOT_PRECISION)
        dk, dv = _attn_bwd_dkdv_inner(dk, dv, k, v, Q, DO, Lse, Delta, tl.maximum(diag_end, full_end),
                                      rows_end, keys, N_Q, diag, qk_scale, HEAD_DIM, HEAD_DIM_V,
                                      BLOCK_D, BLOCK_DV, BLOCK_M, CAUSAL, True, DOT_PRECISION)

        k_mask = (keys[:, None] < N_K) & (offs_d[None, :] < HEAD_DIM)
        v_mask = (keys[:, None] < N_K) & (offs_dv[None, :] < HEAD_DIM_V)
        tl.store(DK + k_tile, (dk * sm_scale).to(DK.dtype.element_ty), mask=k_mask)
        tl.store(DV + v_tile, dv.to(DV.dtype.element_ty), mask=v_mask)

    def _attn_bwd_dq_inner(dq, q, do, lse, delta, K, V, lo, hi, rows, N_K, diag, qk_scale,
                           HEAD_DIM: tl.constexpr, HEAD_DIM_V: tl.constexpr,
                           BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, BLOCK_N: tl.constexpr,
                           CAUSAL: tl.constexpr, MASKED: tl.constexpr, DOT_PRECISION: tl.constexpr):
        """Add key blocks [lo, hi) to one query block's dQ (the forward's loop, with dS for P·V).

        MASKED: apply the ragged-end (key >= N_K) and causal masks; False for interior blocks.
        """
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        for start_n in range(lo, hi, BLOCK_N):
            keys = start_n + tl.arange(0, BLOCK_N)  # (BLOCK_N,) key indices
            k = _load_tile(K + keys[:, None] * HEAD_DIM + offs_d[None, :], keys, N_K, offs_d,
                           HEAD_DIM, BLOCK_D, MASKED)  # (BLOCK_N, BLOCK_D)
            v = _load_tile(V + keys[:, None] * HEAD_DIM_V + offs_dv[None, :], keys, N_K, offs_dv,
                           HEAD_DIM_V, BLOCK_DV, MASKED)  # (BLOCK_N, BLOCK_DV)
            s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
            if MASKED:
                visible = keys[None, :] < N_K
                if CAUSAL:
                    visible = visible & (keys[None, :] <= rows[:, None] + diag)
                s = tl.where(visible, s, float("-inf"))
            p = tl.math.exp2(s - lse[:, None])  # P recomputed from the saved log-sum-exp
            dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)  # dO Vᵀ (BLOCK_M, BLOCK_N)
            ds = p * (dp - delta[:, None])
            dq = tl.dot(ds.to(k.dtype), k, dq, input_precision=DOT_PRECISION)  # dQ += dS K
        return dq

    def _attn_bwd_dq(Q, K, V, DO, DQ, Lse, Delta, N_Q, N_K, sm_scale, qk_scale,
                     HEAD_DIM: tl.constexpr, HEAD_DIM_V: tl.constexpr,
                     BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
                     CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
        """One program: dQ of BLOCK_M queries of one (batch, head), looping over the keys they see."""
        pid_m = _query_block(CAUSAL)  # which query block
        pid_bh = tl.program_id(1).to(tl.int64)  # which (batch, head)
        K += pid_bh * N_K * HEAD_DIM
        V += pid_bh * N_K * HEAD_DIM_V
        start_m = pid_m * BLOCK_M
        rows = start_m + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        q_tile = pid_bh * N_Q * HEAD_DIM + rows[:, None] * HEAD_DIM + offs_d[None, :]
        do_tile = pid_bh * N_Q * HEAD_DIM_V + rows[:, None] * HEAD_DIM_V + offs_dv[None, :]
        q = _load_tile(Q + q_tile, rows, N_Q, offs_d, HEAD_DIM, BLOCK_D, True)  # (BLOCK_M, BLOCK_D)
        do = _load_tile(DO + do_tile, rows, N_Q, offs_dv, HEAD_DIM_V, BLOCK_DV, True)  # (BLOCK_M, BLOCK_DV)
        lse, delta = _load_row_stats(Lse + pid_bh * N_Q, Delta + pid_bh * N_Q, rows, N_Q, True)
        dq = tl.full([BLOCK_M, BLOCK_D], 0.0, dtype=tl.float32)

        # The forward's two stages over the same key blocks.
        diag = N_K - N_Q
        full_blocks_end = N_K // BLOCK_N * BLOCK_N
        if CAUSAL:
            hi = tl.minimum(N_K, tl.maximum(start_m + BLOCK_M + diag, 0))
            unmasked_end = tl.minimum(tl.maximum(start_m + diag + 1, 0) // BLOCK_N * BLOCK_N, full_blocks_end)
        else:
            hi = N_K
            unmasked_end = full_blocks_end
        dq = _attn_bwd_dq_inner(dq, q, do, lse, delta, K, V, 0, unmasked_end, rows, N_K, diag, qk_scale,
                                HEAD_DIM, HEAD_DIM_V, BLOCK_D, BLOCK_DV, BLOCK_N, CAUSAL, False, DOT_PRECISION)
        dq = _attn_bwd_dq_inner(dq, q, do, lse, delta, K, V, unmasked_end, hi, rows, N_K, diag, qk_scale,
                                HEAD_DIM, HEAD_DIM_V, BLOCK_D, BLOCK_DV, BLOCK_N, CAUSAL, True, DOT_PRECISION)
        q_mask = (rows[:, None] < N_Q) & (offs_d[None, :] < HEAD_DIM)
        tl.store(DQ + q_tile, (dq * sm_scale).to(DQ.dtype.element_ty), mask=q_mask)

    #: The autotuner's search space, pruned per shape class to <= 8 configs (~1 s of compile
    #: and timing each: <= 10 s per new shape). Columns: (BLOCK_M, BLOCK_N, num_stages,
    #: num_warps, largest padded head dim it suits on the pointer path, the same with TMA).
    #: The head-dim limits are where compile_report() for sm_90 shows no register spills
    #: (tests/test_triton_flash.py holds that evidence); 0 = not shipped on that path. On the
    #: H200 (Triton 3.6, 2026-12-04) the autotuner chose BLOCK_M 64-128 x BLOCK_N 64 for every
    #: long sequence, so BLOCK_N 32 is kept only for d = 256 and decode; BLOCK_N 128 at d = 128
    #: spills on the pointer path and is offered only with TMA (not yet timed on a GPU).
    GPU_CONFIGS = [
        (16, 32, 3, 4, 256, 256), (16, 64, 3, 4, 128, 128), (16, 128, 3, 4, 64, 64),  # decode
        (64, 64, 3, 4, 128, 128), (64, 64, 4, 4, 128, 128),
        (64, 32, 2, 8, 256, 256), (64, 32, 3, 8, 256, 256),
        (128, 64, 3, 4, 64, 64), (128, 64, 3, 8, 128, 128), (128, 64, 4, 8, 128, 128),
        (128, 128, 2, 8, 64, 128), (128, 128, 3, 8, 64, 64),
    ]
    #: Not used: ``tl.range(..., warp_specialize=True)`` on the unmasked key loop. Compiled
    #: for sm_90 with Triton 3.7 (TMA path, d = 64 and 128) it crashes the compiler at
    #: 4 warps (NVGPUWarpSpecialization pass) and at 8 warps compiles to the same registers
    #: and shared memory as without it, so it stays out until a GPU run shows a gain.
    #: Before Ampere (T4): no cp.async pipelining and little shared memory; keep it small.
    PRE_AMPERE_CONFIGS = [(16, 32, 2, 4, 256, 0), (64, 32, 2, 4, 256, 0), (64, 64, 2, 4, 128, 0)]
    #: float32 inputs (twice the bytes per tile, no fp32 tensor-core speed to chase): two configs,
    #: so a float32 correctness check does not spend minutes autotuning. Exact float32 dots
    #: ("ieee", torch's default) run on the FMA units and spill at d >= 128 in every tile
    #: compile_report tried on sm_90 (16-64 rows, 4-8 warps): float32 is for checks, not speed.
    FP32_CONFIGS = [(64, 32, 2, 4, 256, 256), (64, 64, 2, 4, 128, 128)]

    def _table():
        """This GPU's half-precision search space (GPU_CONFIGS from Ampere on)."""
        major = torch.cuda.get_device_capability()[0] if torch.cuda.is_available() else 9
        return GPU_CONFIGS if major >= 8 else PRE_AMPERE_CONFIGS

    def _gpu_configs():
        rows = _table() + [c for c in FP32_CONFIGS if c[:4] not in {r[:4] for r in _table()}]
        return [triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_stages=s, num_warps=w)
                for m, n, s, w, _, _ in rows]

    def _config_key(c):
        return c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.num_stages, c.num_warps

    def _prune_configs(configs, named_args, **kwargs):
        """Keep the configs that suit this shape class: dtype, head dim (no spills), Nq.

        float32: only FP32_CONFIGS. Otherwise query blocks that fit Nq (16 / 64 / 64-128),
        configs whose head-dim limit on this path (pointer or TMA) covers the padded d, and
        BLOCK_N 32 only for d = 256 (never chosen for smaller d on the H200).
        """
        args = {**named_args, **kwargs}
        if "Q" in args and args["Q"].dtype == torch.float32:
            fp32 = {r[:4] for r in FP32_CONFIGS}
            return [c for c in configs if _config_key(c) in fp32]
        nq, block_d = args["NQ_BUCKET"], max(args["BLOCK_D"], args["BLOCK_DV"])
        limits = {r[:4]: r[5] if args.get("USE_TMA") else r[4] for r in _table()}
        fits_d = [c for c in configs if block_d <= limits.get(_config_key(c), 0)]
        if nq <= 16:
            wanted = lambda bm, bn: bm == 16  # noqa: E731
        elif nq <= 64:
            wanted = lambda bm, bn: bm == 64 and (bn > 32 or block_d > 128)  # noqa: E731
        else:
            wanted = lambda bm, bn: bm >= 64 and (bn > 32 or block_d > 128)  # noqa: E731
        return ([c for c in fits_d if wanted(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"])]
                or fits_d or configs[:1])

    def _quick_bench(kernel_call, quantiles):
        # Shorter than do_bench's default 25 ms warm-up / 100 ms repeats: we tune many shapes.
        return triton.testing.do_bench(kernel_call, warmup=5, rep=25, quantiles=quantiles)


# ----------------------------------------------------------------------------- the wrapper
def _check_inputs(q, k, v) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, x)
    check_qkv(q, k, v)
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if q.ndim != 4:
        raise ValueError(f"q, k, v must be 4-D (B, H, N, d) for the Triton kernel, got {shapes}")
    if str(q.dtype).removeprefix("torch.") not in _SUPPORTED_DTYPES:
        raise TypeError(f"q, k, v must be float16, bfloat16 or float32 for the Triton kernel, got {q.dtype}")
    for name, dim in (("d (q, k)", q.shape[-1]), ("dv (v)", v.shape[-1])):
        if dim > _MAX_HEAD_DIM:
            raise ValueError(f"head dim {name} must be <= {_MAX_HEAD_DIM}, got {dim} ({shapes})")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if not interpreting() and q.device.type != "cuda":
        raise ValueError(f"q, k, v must be CUDA tensors for the Triton kernel, got device {q.device}")
    if q.shape[0] * q.shape[1] > 65535:
        raise ValueError(f"batch·heads must be <= 65535 (grid axis 1), got {q.shape[0] * q.shape[1]} ({shapes})")


def _pow2(n: int, at_least: int = 1) -> int:
    return max(at_least, 1 << max(0, n - 1).bit_length())


def _dot_precision(dtype) -> str:
    """fp32 inputs: TF32 only where torch allows it for matmuls (off by default), else exact fp32."""
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "ieee"
    return "tf32"  # ignored for fp16/bf16 operands


def flash_attention(q, k, v, *, causal: bool = False, scale: float | None = None,
                    _blocks: tuple[int, int] | None = None):
    """Fused FlashAttention: q (B, H, Nq, d), k (B, H, Nk, d), v (B, H, Nk, dv) -> (B, H, Nq, dv).

    fp16 / bf16 / fp32 in, same dtype out, fp32 softmax statistics and accumulator.
    causal=True is bottom-right aligned (query i sees key j iff j <= i + Nk - Nq); rows that
    see no key are 0. Differentiable: ``torch.autograd`` runs the Triton backward kernels
    (FlashAttention-2's, from the saved log-sum-exp). Needs a CUDA device, or runs in
    Triton's interpreter on the CPU. ``_blocks=(BLOCK_M, BLOCK_N)`` fixes the block shape of
    every kernel (tests; skips autotuning on a GPU).
    """
    if not AVAILABLE:
        raise RuntimeError("attn_lib.triton_flash needs torch and triton (pip install triton; "
                           "Linux x86-64 only); use attn_lib.torch_impl.flash_attention instead")
    _check_inputs(q, k, v)
    causal = check_bool("causal", causal)
    scale = resolve_scale(scale, q.shape[-1])
    if _blocks is not None and not (len(_blocks) == 2 and all(
            isinstance(b, int) and b >= 16 and b & (b - 1) == 0 for b in _blocks)):
        raise ValueError(f"_blocks must be two powers of two >= 16 (BLOCK_M, BLOCK_N), got {_blocks!r}")
    if torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v)):
        return _FlashAttention.apply(q, k, v, causal, scale, _blocks)
    return _forward(q, k, v, causal, scale, _blocks)[0]


def _meta(q, v, causal: bool) -> dict:
    """The constexpr arguments every kernel shares."""
    d, dv = q.shape[-1], v.shape[-1]
    return dict(HEAD_DIM=d, HEAD_DIM_V=dv, BLOCK_D=_pow2(d, 16), BLOCK_DV=_pow2(dv, 16),
                CAUSAL=causal, DOT_PRECISION=_dot_precision(q.dtype))


def _forward(q, k, v, causal: bool, scale: float, blocks, tma: bool | None = None):
    """Run ``_attn_fwd``: the output (B, H, Nq, dv) and the log-sum-exp (B, H, Nq) fp32, log2 domain.

    ``tma``: load k, v through tensor descriptors (None: where :func:`_use_tma` says so;
    tests force it under the interpreter, which emulates descriptors).
    """
    if interpreting() and q.dtype == torch.bfloat16:
        # The interpreter's tl.dot mishandles bf16: compute in fp32 (bf16 -> fp32 is exact).
        out, lse = _forward(q.float(), k.float(), v.float(), causal, scale, blocks, tma)
        return out.to(torch.bfloat16), lse
    batch, heads, n_q, _ = q.shape
    n_k, dv = k.shape[-2], v.shape[-1]
    out = torch.empty((batch, heads, n_q, dv), dtype=q.dtype, device=q.device)
    lse = torch.empty((batch, heads, n_q), dtype=torch.float32, device=q.device)
    if out.numel() == 0:
        return out, lse
    args = [q, k, v, out, lse, *q.stride(), *k.stride(), *v.stride(), *out.stride(),
            heads, n_q, n_k, scale * _LOG2E, _pow2(n_q), _pow2(n_k)]
    meta = _meta(q, v, causal)
    _build_kernels()  # first call: wrap the kernels for this process (interpreted or compiled)
    meta["USE_TMA"] = _use_tma(k, v) if tma is None else tma
    if meta["USE_TMA"]:
        _set_tma_allocator()
    if interpreting() or blocks is not None:
        block_m, block_n = blocks or (_INTERPRET_BLOCK_M, _INTERPRET_BLOCK_N)
        grid = (triton.cdiv(n_q, block_m), batch * heads)
        _attn_fwd[grid](*args, **meta, BLOCK_M=block_m, BLOCK_N=block_n)
    else:
        grid = lambda cfg: (triton.cdiv(n_q, cfg["BLOCK_M"]), batch * heads)  # noqa: E731
        with torch.cuda.device(q.device):
            try:
                _tuned_kernel()[grid](*args, **meta)
            except Exception as err:  # noqa: BLE001 - the TMA path is new: fall back, say why
                if not meta["USE_TMA"]:
                    raise
                _RUNTIME["no_tma"] = f"{type(err).__name__}: {' '.join(str(err).split())[:160]}"
                import warnings
                warnings.warn(f"triton_flash: the TMA path failed ({_RUNTIME['no_tma']}); "
                              "using the pointer path from now on", RuntimeWarning, stacklevel=3)
                _tuned_kernel()[grid](*args, **{**meta, "USE_TMA": False})
    return out, lse


def _has_tma() -> bool:
    """Triton >= 3.5 (device-side tensor descriptors) and a Hopper-or-newer GPU (the TMA engine)."""
    if not hasattr(tl, "make_tensor_descriptor") or not hasattr(triton, "set_allocator"):
        return False
    version = tuple(int(x) for x in triton.__version__.split(".")[:2])
    return version >= (3, 5) and not interpreting() and torch.cuda.get_device_capability()[0] >= 9


def _use_tma(k, v) -> bool:
    """TMA for k, v where the hardware has it and the layout allows: unit stride along the head
    dim, 16-byte aligned base pointers and row strides (the copy engine's rules)."""
    if not _has_tma() or k.shape[-2] == 0 or "no_tma" in _RUNTIME:  # no_tma: it failed here once
        return False
    size = k.element_size()
    return all(x.stride(-1) == 1 and x.data_ptr() % 16 == 0 and all(st * size % 16 == 0 for st in x.stride()[:-1])
               for x in (k, v))


def _set_tma_allocator() -> None:
    """Device-side descriptors need global scratch memory; Triton asks this allocator for it."""
    if "allocator" not in _RUNTIME:
        device = "cpu" if interpreting() else "cuda"
        triton.set_allocator(lambda size, align, stream: torch.empty(size, dtype=torch.int8, device=device))
        _RUNTIME["allocator"] = True


def _backward(q, k, v, out, lse, do, causal: bool, scale: float, blocks):
    """dQ, dK, dV (shapes and dtypes of q, k, v) from the saved output and log-sum-exp."""
    if interpreting() and q.dtype == torch.bfloat16:
        grads = _backward(*(x.float() for x in (q, k, v, out)), lse, do.float(), causal, scale, blocks)
        return tuple(g.to(torch.bfloat16) for g in grads)
    q, k, v, out, do = (x.contiguous() for x in (q, k, v, out, do.to(q.dtype)))  # (B, H, N, ·)
    batch, heads, n_q, _ = q.shape
    n_k = k.shape[-2]
    if n_q == 0 or n_k == 0 or q.numel() + k.numel() + v.numel() == 0:
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)  # every row is written
    delta = torch.empty_like(lse)  # (B, H, Nq) fp32: D = rowsum(dO ∘ O)
    meta = _meta(q, v, causal)
    _build_kernels()
    kv_cfg, q_cfg = _bwd_configs(max(meta["BLOCK_D"], meta["BLOCK_DV"]), blocks)
    bh, args = batch * heads, (n_q, n_k, scale, scale * _LOG2E)
    with contextlib.nullcontext() if interpreting() else torch.cuda.device(q.device):
        _attn_bwd_preprocess[(triton.cdiv(n_q, 64), bh)](out, do, delta, n_q, HEAD_DIM_V=meta["HEAD_DIM_V"],
                                                        BLOCK_DV=meta["BLOCK_DV"], BLOCK_M=64)
        _attn_bwd_dkdv[(triton.cdiv(n_k, kv_cfg[1]), bh)](q, k, v, do, dk, dv, lse, delta, *args, **meta,
                                                          **_launch_options(*kv_cfg))
        _attn_bwd_dq[(triton.cdiv(n_q, q_cfg[0]), bh)](q, k, v, do, dq, lse, delta, *args, **meta,
                                                       **_launch_options(*q_cfg))
    return dq, dk, dv


def _launch_options(block_m: int, block_n: int, num_stages: int, num_warps: int) -> dict:
    """Block sizes, plus warps and pipeline stages where compiled (the interpreter takes neither)."""
    blocks = {"BLOCK_M": block_m, "BLOCK_N": block_n}
    return blocks if interpreting() else {**blocks, "num_stages": num_stages, "num_warps": num_warps}


#: Backward blocks on a GPU by padded head dim: ((BLOCK_M, BLOCK_N, num_stages, num_warps) of
#: _attn_bwd_dkdv, the same of _attn_bwd_dq). dK, dV keep a key block in registers while
#: queries stream past (so BLOCK_N is the wide side); dQ the other way round. Checked free of
#: register spills on sm_90 by compile_report (tests/test_triton_flash.py).
_BWD_GPU_CONFIGS = {
    64: ((64, 128, 2, 8), (128, 64, 2, 8)),
    128: ((64, 64, 2, 8), (64, 64, 2, 8)),
    256: ((32, 32, 2, 8), (32, 32, 2, 4)),  # d = 256 spills in wider tiles (32 x 32 x 4 warps too)
}
#: Before Ampere (T4: 64 KB of shared memory per block): tiles that fit it (compile_report(75)
#: gives 40-48 KB), one stage (no cp.async). Correct, not tuned: never timed on a T4.
_BWD_PRE_AMPERE_CONFIGS = {
    64: ((32, 64, 1, 4), (64, 32, 1, 4)),
    128: ((32, 32, 1, 4), (32, 32, 1, 4)),
    256: ((16, 16, 1, 4), (16, 16, 1, 4)),
}


def _bwd_configs(block_d: int, blocks):
    """(dkdv config, dq config): fixed blocks (tests, interpreter) or the GPU table."""
    if interpreting() or blocks is not None:
        block_m, block_n = blocks or (_INTERPRET_BLOCK_M, _INTERPRET_BLOCK_N)
        return (block_m, block_n, 2, 4), (block_m, block_n, 2, 4)
    table = _BWD_GPU_CONFIGS if torch.cuda.get_device_capability()[0] >= 8 else _BWD_PRE_AMPERE_CONFIGS
    return table[max(64, block_d)]


if torch is not None:

    class _FlashAttention(torch.autograd.Function):
        """The Triton forward, saving (q, k, v, out, lse); the Triton backward from them: O(N) memory."""

        @staticmethod
        def forward(ctx, q, k, v, causal, scale, blocks):
            out, lse = _forward(q, k, v, causal, scale, blocks)
            ctx.save_for_backward(q, k, v, out, lse)
            ctx.causal, ctx.scale, ctx.blocks = causal, scale, blocks
            return out

        @staticmethod
        def backward(ctx, do):
            q, k, v, out, lse = ctx.saved_tensors
            dq, dk, dv = _backward(q, k, v, out, lse, do, ctx.causal, ctx.scale, ctx.blocks)
            return dq, dk, dv, None, None, None


def tuned_configs() -> list[tuple[tuple, dict]]:
    """The autotuner's choices so far, as (key, config) pairs; [] where nothing was tuned
    (no Triton, the interpreter, or no compiled call yet). The benchmark suite records them."""
    if not AVAILABLE or interpreting() or "tuned" not in _RUNTIME:
        return []
    return [(key, {**cfg.kwargs, "num_warps": cfg.num_warps, "num_stages": cfg.num_stages})
            for key, cfg in _RUNTIME["tuned"].cache.items()]


#: The kernels compile_report can compile, by the name its ``kernel`` argument takes.
_REPORTED_KERNELS = ("fwd", "bwd_dkdv", "bwd_dq")


def _check_compile_args(capability, dtype, head_dim, causal, block_m, block_n, num_stages,
                        num_warps, dot_precision, kernel, tma) -> None:
    check_choice("kernel", kernel, _REPORTED_KERNELS)
    if check_bool("tma", tma) and kernel != "fwd":
        raise ValueError(f"tma=True needs kernel='fwd' (only the forward has a TMA path), got kernel={kernel!r}")
    check_positive_int("capability", capability)
    check_choice("dtype", dtype, ("fp16", "bf16", "fp32"))
    if check_positive_int("head_dim", head_dim) > _MAX_HEAD_DIM:
        raise ValueError(f"head_dim must be <= {_MAX_HEAD_DIM}, got {head_dim}")
    check_bool("causal", causal)
    for name, b in (("block_m", block_m), ("block_n", block_n)):
        if check_positive_int(name, b) < 16 or b & (b - 1):
            raise ValueError(f"{name} must be a power of two >= 16, got {b}")
    check_positive_int("num_stages", num_stages), check_positive_int("num_warps", num_warps)
    check_choice("dot_precision", dot_precision, ("tf32", "tf32x3", "ieee"))


def compile_report(capability: int = 90, *, dtype: str = "bf16", head_dim: int = 64, causal: bool = True,
                   block_m: int = 128, block_n: int = 64, num_stages: int = 4, num_warps: int = 8,
                   dot_precision: str = "tf32", kernel: str = "fwd", tma: bool = False) -> dict:
    """Compile a kernel ahead of time for a GPU this machine need not have; report its resources.

    ``kernel``: "fwd" (``_attn_fwd``), "bwd_dkdv" (``_attn_bwd_dkdv``) or "bwd_dq"
    (``_attn_bwd_dq``); ``tma``: the forward's tensor-descriptor path. Uses Triton's bundled LLVM and ptxas, so it works on a CPU-only
    machine, but only in a process where the kernel is not interpreted (start Python with
    TRITON_INTERPRET=0). Mimics the JIT's specialisation for contiguous inputs (unit head-dim
    strides, 16-aligned pointers, strides and lengths). Returns shared memory bytes, registers
    per thread, stack bytes (spills), and whether the loads are pipelined (cp.async), the dots
    use Hopper's wgmma and the tiles move by TMA (cp.async.bulk.tensor).
    """
    _check_compile_args(capability, dtype, head_dim, causal, block_m, block_n, num_stages,
                        num_warps, dot_precision, kernel, tma)
    if not AVAILABLE:
        raise RuntimeError("compile_report needs torch and triton")
    if interpreting():
        raise RuntimeError("compile_report needs compiled kernels: run Python with TRITON_INTERPRET=0")
    _build_kernels()
    import re
    import subprocess
    import tempfile

    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    meta = dict(HEAD_DIM=head_dim, HEAD_DIM_V=head_dim, BLOCK_D=_pow2(head_dim, 16), BLOCK_DV=_pow2(head_dim, 16),
                CAUSAL=causal, DOT_PRECISION=dot_precision, BLOCK_M=block_m, BLOCK_N=block_n)
    if kernel == "fwd":
        meta["USE_TMA"] = tma
    fn = {"fwd": _attn_fwd, "bwd_dkdv": _attn_bwd_dkdv, "bwd_dq": _attn_bwd_dq}[kernel]
    signature, constants, attrs = {}, dict(meta), {}
    for i, name in enumerate(fn.arg_names):
        if name in meta:
            signature[name] = "constexpr"
        elif name in ("Q", "K", "V", "Out", "DO", "DQ", "DK", "DV"):
            signature[name], attrs[(i,)] = "*" + dtype, [["tt.divisibility", 16]]
        elif name in ("Lse", "Delta"):
            signature[name], attrs[(i,)] = "*fp32", [["tt.divisibility", 16]]
        elif name.startswith("stride_") and name.endswith("d"):
            signature[name], constants[name] = "constexpr", 1  # contiguous head dim
        elif name in ("qk_scale", "sm_scale"):
            signature[name] = "fp32"
        else:  # strides, lengths (multiples of 16 for long sequences), heads
            signature[name] = "i32"
            if name.startswith("stride_") or name in ("N_Q", "N_K"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    compiled = triton.compile(ASTSource(fn, signature, constants, attrs),
                              target=GPUTarget("cuda", capability, 32),
                              options={"num_warps": num_warps, "num_stages": num_stages})
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
        usage = subprocess.run([cuobjdump, "-res-usage", f.name], capture_output=True, text=True).stdout
    regs, stack = re.search(r"REG:(\d+)\s+STACK:(\d+)", usage).groups()
    ptx = compiled.asm["ptx"]
    return {"kernel": kernel, "capability": capability, "shared_bytes": compiled.metadata.shared,
            "registers": int(regs), "stack_bytes": int(stack), "pipelined_loads": "cp.async" in ptx,
            "wgmma": "wgmma.mma_async" in ptx, "tma": "cp.async.bulk.tensor" in ptx}
