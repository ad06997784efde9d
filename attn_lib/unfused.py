"""Standard attention as frameworks run it: one kernel per op, each an HBM round trip.

Chapter 4.

Algorithm 0 of the FlashAttention paper counts three N×N passes (S, P, O). A framework
runs more: QKᵀ, the scale, the mask, the softmax, dropout and PV are separate kernels,
and each reads its input from HBM and writes its output back. This module counts that
traffic from the real aten ops (:class:`TrafficMode`, a ``TorchDispatchMode`` that
records the bytes of every op's input and output tensors), gives the same count in
closed form (:func:`closed_form`), and sets it beside the paper's Figure 2 (left),
quoted as reported (:data:`FIGURE2_REPORTED`, :func:`figure2_comparison`).

Counting rule (one kernel = read every input tensor once, write every output once):
views (transpose, expand, view) move nothing; a broadcast tensor counts its own elements
once (the (N, N) mask is read once for the whole batch); allocations (``empty_like``)
move nothing. Caches between kernels are ignored, as the paper's count ignores them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from ._checks import (check_bool, check_bytes, check_nonneg_int, check_positive,
                      check_positive_int, check_real, check_str, check_tensor,
                      check_type)

STEPS = ("QKᵀ", "scale", "mask", "softmax", "dropout", "PV")

# aten ops that allocate or re-label memory without moving data
_FREE_OPS = {
    "aten._unsafe_view",
    "aten.empty_like",
    "aten.empty",
    "aten.new_empty_strided",
    "aten.new_empty",
    "aten.alias",
    "aten.detach",
    "aten.lift_fresh",
}
# forward op -> step; bmm is QKᵀ the first time and PV the second
_STEP_OF = {
    "aten.div": "scale",
    "aten.mul": "scale",
    "aten.masked_fill": "mask",
    "aten._softmax": "softmax",
    "aten.native_dropout": "dropout",
    "aten._softmax_backward_data": "softmax",
    "aten.native_dropout_backward": "dropout",
}


@dataclass(frozen=True)
class OpTraffic:
    """Bytes one aten op read from and wrote to slow memory, and its step."""

    op: str  # e.g. "aten.bmm"
    step: str  # one of STEPS
    phase: str  # "forward" | "backward"
    read_bytes: int
    write_bytes: int

    def __post_init__(self):
        check_str("op", self.op), check_str("step", self.step)
        if self.phase not in ("forward", "backward"):
            raise ValueError(
                f"phase must be 'forward' or 'backward', got {self.phase!r}")
        check_nonneg_int("read_bytes", self.read_bytes)
        check_nonneg_int("write_bytes", self.write_bytes)

    @property
    def total(self) -> int:
        return self.read_bytes + self.write_bytes


def tensor_bytes(t) -> int:
    """Bytes a kernel moves for tensor t: its distinct elements (broadcast dims count
    once)."""
    check_tensor("t", t)
    distinct = math.prod(n for n, s in zip(t.shape, t.stride()) if s != 0)
    return int(distinct) * t.element_size()


def _check_dropout(dropout) -> float:
    p = check_real("dropout", dropout)
    if not 0 <= p < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    return float(p)


def _check_ops(ops) -> list:
    check_type("ops", ops, (list, tuple), "a list of OpTraffic")
    for o in ops:
        check_type("ops", o, OpTraffic, "a list of OpTraffic")
    return ops


def _tensors(tree) -> list:
    import torch
    from torch.utils._pytree import tree_flatten

    return [x for x in tree_flatten(tree)[0] if isinstance(x, torch.Tensor)]


def _make_mode_class():
    from torch.utils._python_dispatch import TorchDispatchMode

    class TrafficMode(TorchDispatchMode):
        """Records an :class:`OpTraffic` for every aten op that moves data.

        Set ``phase`` to "forward" or "backward" before running each part; steps follow
        STEPS (bmm: QKᵀ then PV in the forward; in the backward, the first two bmm
        belong to PV and the last two to QKᵀ, the order autograd runs them).
        """

        def __init__(self):
            super().__init__()
            self.ops: list[OpTraffic] = []
            self.phase = "forward"

        def _step(self, name: str) -> str:
            if name != "aten.bmm":
                return _STEP_OF.get(name, name)
            seen = sum(o.op == "aten.bmm" and o.phase == self.phase for o in self.ops)
            first, second = ("QKᵀ", "PV") if self.phase == "forward" else ("PV", "QKᵀ")
            return first if seen < (1 if self.phase == "forward" else 2) else second

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket._qualified_op_name.replace("::", ".")
            if not func.is_view and name not in _FREE_OPS:
                read = sum(tensor_bytes(t) for t in _tensors((args, kwargs)))
                write = sum(tensor_bytes(t) for t in _tensors(out))
                self.ops.append(
                    OpTraffic(name, self._step(name), self.phase, read, write)
                )
            return out

    return TrafficMode


_MODE = None


def TrafficMode():  # noqa: N802 - a class built on first use (torch is imported lazily)
    """A new :class:`TrafficMode` (``with TrafficMode() as mode: ...; mode.ops``)."""
    global _MODE
    if _MODE is None:
        _MODE = _make_mode_class()
    return _MODE()


def standard_attention_module(n_ctx: int, *, causal: bool = True, dropout: float = 0.1):
    """Attention written plainly, as GPT-2-style framework code does, one op a line.

    forward(q, k, v) with q, k, v (B, H, N, d), N <= n_ctx. The mask is a registered
    buffer (built once, like Hugging Face GPT-2's ``bias``); dropout calls
    ``torch.native_dropout``, the one fused kernel ``F.dropout`` runs on a GPU (on a CPU
    ``F.dropout`` splits into three ops, so calling it directly keeps the count the same
    on every device).
    """
    import torch

    n_ctx, causal = check_positive_int("n_ctx", n_ctx), check_bool("causal", causal)
    dropout = _check_dropout(dropout)

    class StandardAttention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.causal, self.p = causal, float(dropout)
            # True where masked
            future = torch.ones(n_ctx, n_ctx, dtype=torch.bool).triu(1)
            self.register_buffer("future", future, persistent=False)

        def forward(self, q, k, v):  # (B, H, N, d) each
            n = q.shape[-2]
            s = torch.matmul(q, k.transpose(-2, -1))  # (B, H, N, N): QKᵀ
            s = s / math.sqrt(q.shape[-1])  # scale: another N×N pass
            if self.causal:
                s = s.masked_fill(self.future[:n, :n], float("-inf"))  # mask
            p = torch.softmax(s, dim=-1)  # softmax
            if self.training and self.p > 0:
                # dropout, which also writes a bool keep-mask
                p, _ = torch.native_dropout(p, self.p, True)
            return torch.matmul(p, v)  # (B, H, N, d): PV

    return StandardAttention()


def count_unfused(
    batch: int,
    heads: int,
    n: int,
    d: int,
    *,
    causal: bool = True,
    dropout: float = 0.1,
    backward: bool = False,
    dtype=None,
    device: str = "meta",
) -> list[OpTraffic]:
    """Run :func:`standard_attention_module` under :class:`TrafficMode`: op bytes.

    On the "meta" device (default) tensors have shapes but no data, so GPT-2-medium
    sizes cost nothing; any real device gives the same list. backward=True also runs
    autograd's backward (gradients of q, k, v for a given dO), the other half of a
    training step.
    """
    import torch

    batch, heads = check_positive_int("batch", batch), check_positive_int("heads", heads)
    n, d = check_positive_int("n", n), check_positive_int("d", d)
    dropout = _check_dropout(dropout)
    causal, backward = check_bool("causal", causal), check_bool("backward", backward)
    dtype = dtype or torch.float16
    module = standard_attention_module(n, causal=causal, dropout=dropout).to(device)
    module.train(dropout > 0)
    q, k, v = (
        torch.empty(batch, heads, n, d, device=device, dtype=dtype)
        .normal_()
        .requires_grad_(backward)
        for _ in range(3)
    )
    grad_out = torch.empty(batch, heads, n, d, device=device, dtype=dtype).normal_()
    with TrafficMode() as mode:
        out = module(q, k, v)
        if backward:
            mode.phase = "backward"
            torch.autograd.grad(out, (q, k, v), grad_out)
    return mode.ops


def closed_form(
    batch: int,
    heads: int,
    n: int,
    d: int,
    *,
    bytes_per_value: int = 2,
    causal: bool = True,
    dropout: float = 0.1,
    backward: bool = False,
) -> dict:
    """The bytes :func:`count_unfused` records, per (phase, step), as formulas.

    Per (batch, head) slice, b bytes per value, N² score entries, Nd per Q/K/V/O:
      forward   QKᵀ b(2Nd + N²) · scale 2bN² · mask 2bN² · softmax 2bN² ·
                dropout 2bN² + N² (bool keep-mask) · PV b(N² + 2Nd)
      backward  PV b(4Nd + 2N²) · dropout 2bN² + N² · softmax 3bN² · mask 2bN² ·
                scale 2bN² · QKᵀ b(4Nd + 2N²)
    plus the (N, N) bool causal mask, read once per mask op for the whole batch.
    """
    batch = check_positive_int("batch", batch)
    heads = check_positive_int("heads", heads)
    n, d = check_positive_int("n", n), check_positive_int("d", d)
    causal, backward = check_bool("causal", causal), check_bool("backward", backward)
    b = check_bytes("bytes_per_value", bytes_per_value)
    s, sq, nd = batch * heads, n * n, n * d
    drop = _check_dropout(dropout) > 0
    fwd = {
        "QKᵀ": s * b * (2 * nd + sq),
        "scale": s * 2 * b * sq,
        "mask": (s * 2 * b * sq + sq) if causal else 0,
        "softmax": s * 2 * b * sq,
        "dropout": s * (2 * b * sq + sq) if drop else 0,
        "PV": s * b * (sq + 2 * nd),
    }
    out = {("forward", k): v for k, v in fwd.items() if v}
    if backward:
        bwd = {
            "PV": s * b * (4 * nd + 2 * sq),
            "dropout": s * (2 * b * sq + sq) if drop else 0,
            "softmax": s * 3 * b * sq,
            "mask": (s * 2 * b * sq + sq) if causal else 0,
            "scale": s * 2 * b * sq,
            "QKᵀ": s * b * (4 * nd + 2 * sq),
        }
        out |= {("backward", k): v for k, v in bwd.items() if v}
    return out


def by_step(ops: list[OpTraffic]) -> dict:
    """Sum the counted ops per (phase, step): comparable with :func:`closed_form`."""
    total = Counter()
    for o in _check_ops(ops):
        total[o.phase, o.step] += o.total
    return dict(total)


def total_bytes(ops: list[OpTraffic]) -> int:
    return sum(o.total for o in _check_ops(ops))


# ----------------------------------------------------------------------------- Figure 2
#: Dao et al. 2022, "FlashAttention", arXiv:2205.14135 (v2, dated June 24 2022), Figure
#: 2
#: (left): forward + backward of the attention of GPT-2 medium on an A100. Reported, not
#: measured here. The conference (NeurIPS 2022) version's Figure 2 shows another run
#: (key-padding mask, no dropout): standard 35.3 GB / 35.1 ms, FlashAttention 4.4 GB /
#: 11.7 ms.
FIGURE2_REPORTED = {
    "config": {
        "model": "GPT-2 medium",
        "n": 1024,
        "head_dim": 64,
        "heads": 16,
        "batch": 64,
        "gpu": "A100",
        "pass": "forward + backward",
    },
    "standard": {"gflops": 66.6, "hbm_gb": 40.3, "runtime_ms": 41.7},
    "flash": {"gflops": 75.2, "hbm_gb": 4.4, "runtime_ms": 7.3},
    "source": "Dao et al. 2022, 'FlashAttention', arXiv:2205.14135v2, Figure 2 "
    "(left): GPT-2 medium (seq. length 1024, head dim. 64, 16 heads, batch size 64) "
    "on A100 GPU",
}


def figure2_comparison(
    *, dropout: float = 0.1, gpu: str = "A100 40GB", sram_bytes: float = 100e3
) -> dict:
    """The book's own counts for Figure 2's configuration, beside the reported figures.

    standard: bytes counted from real ops (forward + backward, causal mask, dropout p),
    matmul FLOPs 4N²d per slice forward and twice that backward (12N²d in all), and the
    roofline floor bytes / bandwidth. flash: Algorithm 1's forward traffic with fast
    memory `sram_bytes` (the backward is not counted here) and its forward FLOPs. Plain
    floats.
    """
    from . import hardware, reference

    dropout = _check_dropout(dropout)
    sram_bytes = check_positive("sram_bytes", sram_bytes)
    cfg = FIGURE2_REPORTED["config"]
    b, h, n, d = cfg["batch"], cfg["heads"], cfg["n"], cfg["head_dim"]
    slices, bw = b * h, hardware.get(gpu).bandwidth
    ops = count_unfused(b, h, n, d, dropout=dropout, backward=True)
    std_bytes = total_bytes(ops)
    fwd_bytes = sum(o.total for o in ops if o.phase == "forward")
    br, bc = reference.algorithm1_blocks(int(sram_bytes // 2), d)
    flash_fwd = (
        reference.flash_io_elements(n, n, d, block_q=br, block_k=bc) * 2 * slices
    )
    fwd_flops = 4 * n * n * d * slices
    return {
        "standard_hbm_gb": std_bytes / 1e9,
        "standard_forward_hbm_gb": fwd_bytes / 1e9,
        "standard_gflops": 3 * fwd_flops / 1e9,
        "standard_floor_ms": std_bytes / bw * 1e3,
        "flash_forward_hbm_gb": flash_fwd / 1e9,
        "flash_forward_gflops": fwd_flops / 1e9,
        "reported_standard_hbm_gb": FIGURE2_REPORTED["standard"]["hbm_gb"],
        "reported_flash_hbm_gb": FIGURE2_REPORTED["flash"]["hbm_gb"],
        "counted_over_reported": std_bytes
        / 1e9
        / FIGURE2_REPORTED["standard"]["hbm_gb"],
        "bandwidth_tb_s": bw / 1e12,
    }


def unfused_over_algorithm0(
    n: int,
    d: int,
    *,
    causal: bool = True,
    dropout: float = 0.1,
    bytes_per_value: int = 2,
) -> float:
    """Forward bytes of the unfused pipeline over Algorithm 0's 4N² + 4Nd values."""
    from . import reference

    counted = sum(
        closed_form(
            1, 1, n, d, bytes_per_value=bytes_per_value, causal=causal, dropout=dropout
        ).values()
    )
    return float(counted / (reference.naive_io_elements(n, n, d) * bytes_per_value))


# ----------------------------------------------------------------------------- fusion by a compiler
_FUSION_IMPLS = ("eager tiled loop", "compiled tiled loop", "SDPA", "standard attention")


def compile_fusion_run(ns, *, head_dim: int = 64, heads: int = 1, device: str = "cpu",
                       dtype: str = "float32", rounds: int = 3, min_run_time: float = 0.1) -> dict:
    """Time the tiled torch loop eager and under ``torch.compile`` beside SDPA and standard
    attention, per length in `ns`; a dict in the shape benchmarks/compile_fusion.py records.

    ``torch_impl.flash_attention`` runs each tile as separate torch ops; ``torch.compile``
    (inductor: C++ loops on a CPU, Triton kernels on a GPU) fuses the element-wise ops of a
    tile into the kernels around them. Inputs (1, heads, N, head_dim) in `dtype`; seconds
    per call from interleaved best-of rounds (attn_lib.timing.best_of); compile_s is the
    first call's wall time (tracing and compiling, with any cache the process finds).
    """
    import time

    import torch

    from . import torch_impl
    from .colab import torch_dtype
    from .timing import best_of

    ns = [check_positive_int("ns[]", n) for n in ns]
    head_dim, heads = check_positive_int("head_dim", head_dim), check_positive_int("heads", heads)
    check_str("device", device)
    dt = torch_dtype(dtype)
    rows = []
    for n in ns:
        x = [torch.randn(1, heads, n, head_dim, device=device, dtype=dt)
             for _ in range(3)]  # (B, H, N, d)
        compiled = torch.compile(torch_impl.flash_attention, dynamic=False)
        t0 = time.perf_counter()
        compiled(*x)
        if device == "cuda":
            torch.cuda.synchronize()
        compile_s = time.perf_counter() - t0
        fns = dict(zip(_FUSION_IMPLS, (lambda: torch_impl.flash_attention(*x), lambda: compiled(*x),
                                      lambda: torch_impl.sdpa(*x),
                                      lambda: torch_impl.standard_attention(*x))))
        seconds = best_of(fns, rounds=rounds, min_run_time=min_run_time)
        err = (compiled(*x).float() - torch_impl.attention(*x).float()).abs().max().item()
        rows.append({"n": n, "heads": heads, "head_dim": head_dim, "compile_s": compile_s,
                     "seconds": seconds, "max_abs_error_vs_attention": err})
    return {"dtype": dtype, "sdpa_backend": torch_impl.sdpa_backend(*x),
            "inductor_backend": "C++ loops" if device == "cpu" else "Triton kernels",
            "rows": rows}
