"""Input validation shared by every attention implementation.

Works on anything with ``.ndim``, ``.shape`` and ``.dtype`` (NumPy arrays, torch tensors),
so the NumPy, torch and Triton paths reject bad input with the same messages.
"""
from __future__ import annotations

import math


def _is_float(dtype) -> bool:
    # NumPy dtypes have .kind; torch dtypes have .is_floating_point.
    if hasattr(dtype, "is_floating_point"):
        return bool(dtype.is_floating_point)
    return getattr(dtype, "kind", None) == "f"


def check_qkv(q, k, v) -> None:
    """Check q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv); raise ValueError/TypeError."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not hasattr(x, "ndim"):
            raise TypeError(f"{name} must be an array or tensor, got {type(x).__name__}")
        if x.ndim < 2:
            raise ValueError(f"{name} must have at least 2 dims (..., N, d), got shape {tuple(x.shape)}")
        if not _is_float(x.dtype):
            raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
        if 0 in tuple(x.shape[-2:]):
            raise ValueError(f"{name} must have N >= 1 and d >= 1, got shape {tuple(x.shape)}")
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if not (q.ndim == k.ndim == v.ndim):
        raise ValueError(f"q, k, v must have the same number of dims, got {shapes}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the head dim d (last axis), got {shapes}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys Nk (axis -2), got {shapes}")
    if not (tuple(q.shape[:-2]) == tuple(k.shape[:-2]) == tuple(v.shape[:-2])):
        raise ValueError(f"q, k, v must have equal leading (batch, head) dims, got {shapes}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")


def check_block(name: str, value) -> int | None:
    """Return a block size as int (None stays None); reject non-positive or non-integer ones."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int or None, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def resolve_scale(scale, d: int) -> float:
    """Default softmax scale 1/sqrt(d)."""
    if scale is None:
        return 1.0 / math.sqrt(d)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a number or None, got {scale!r}")
    return float(scale)
