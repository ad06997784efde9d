"""The one input-checking rule of attn_lib: public functions validate arguments here.

A wrong kind of value is a TypeError, a wrong value a ValueError; the message starts
with the argument's name (and quotes the shapes where they matter).

- flags (causal, cached, ...) are ``bool``; ``"False"`` or ``0`` is a TypeError.
- ``scale`` is a finite real number or None; bool is a TypeError, nan/inf a ValueError.
- counts (heads, layers, dims, batch, block and world sizes) are positive ints; token
  counts where 0 means something (tokens still to come, a prefix of length 0, an empty
  mask) use the non-negative rule. NumPy integer scalars are accepted wherever a Python
  int is (``np.int64(4)`` = ``4``) and converted; bool and floats (``4.0``) are not.
- byte sizes (bytes_per_value, ...) are positive finite reals (0.5 for 4-bit values).
- arrays: q, k, v shapes and dtypes (:func:`check_qkv`, NumPy arrays and torch tensors);
  the NumPy reference rejects torch tensors and points to attn_lib.torch_impl.
- ``io`` is an :class:`attn_lib.reference.IOCounter` or None.
"""
from __future__ import annotations

import math
import numbers


# ----------------------------------------------------------------------------- scalars
def _kind(value) -> str:
    return type(value).__name__


def check_bool(name: str, value) -> bool:
    """A flag: exactly True or False (np.bool_ too); strings and ints are refused."""
    if _is_bool(value):
        return bool(value)
    raise TypeError(f"{name} must be a bool (True or False), got {value!r} "
                    f"({_kind(value)})")


def check_optional_bool(name: str, value) -> bool | None:
    """A flag or None (None: 'any' in a filter)."""
    return None if value is None else check_bool(name, value)


def _is_bool(value) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # np.bool_ too


def _as_int(name: str, value, want: str) -> int:
    # numbers.Integral covers int and NumPy integer scalars; bool is an int we refuse.
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {want}, got {value!r} ({_kind(value)})")
    return int(value)


def check_int(name: str, value) -> int:
    """Any int (negative too: an axis, a diagonal offset); NumPy integers accepted."""
    return _as_int(name, value, "an int")


def check_positive_int(name: str, value) -> int:
    """A count that must be >= 1 (heads, layers, dims, batch, block sizes)."""
    n = _as_int(name, value, "a positive int")
    if n <= 0:
        raise ValueError(f"{name} must be a positive int, got {n}")
    return n


def check_nonneg_int(name: str, value) -> int:
    """A count where 0 is meaningful (tokens to generate, a prefix of length 0)."""
    n = _as_int(name, value, "an int >= 0")
    if n < 0:
        raise ValueError(f"{name} must be an int >= 0, got {n}")
    return n


def check_optional_positive_int(name: str, value) -> int | None:
    """A positive int, or None for 'choose for me' (block sizes, windows in configs)."""
    return None if value is None else check_positive_int(name, value)


#: Block sizes: a positive int or None (the name other modules already import).
check_block = check_optional_positive_int


def check_int_in(name: str, value, lo: int, hi: int) -> int:
    """An int index in [lo, hi)."""
    n = check_int(name, value)
    if not lo <= n < hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}), got {n}")
    return n


def check_real(name: str, value) -> float:
    """A finite real number (int, float, NumPy scalar); bool, nan, inf are refused."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({_kind(value)})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value.item() if hasattr(value, "item") else value


def check_positive(name: str, value) -> float:
    """A finite real number > 0: byte sizes, bandwidths, times. Ints stay ints."""
    x = check_real(name, value)
    if x <= 0:
        raise ValueError(f"{name} must be positive, got {x!r}")
    return x


def check_nonneg(name: str, value) -> float:
    """A finite real number >= 0: FLOP and byte totals."""
    x = check_real(name, value)
    if x < 0:
        raise ValueError(f"{name} must be >= 0, got {x!r}")
    return x


def check_bytes(name: str, value) -> float:
    """A byte size (bytes_per_value, ...): positive; 2 for fp16, 0.5 for 4-bit."""
    return check_positive(name, value)


def check_choice(name: str, value, choices) -> object:
    """One of a fixed set of values (strings mostly)."""
    if value not in tuple(choices):
        options = ", ".join(map(repr, choices))
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def check_str(name: str, value) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r} ({_kind(value)})")
    if not value:
        raise ValueError(f"{name} must be a non-empty str")
    return value


def check_type(name: str, value, cls, what: str | None = None) -> object:
    """value is an instance of cls (or a tuple of classes)."""
    if not isinstance(value, cls):
        what = what or getattr(cls, "__name__", str(cls))
        raise TypeError(f"{name} must be {what}, got {_kind(value)}")
    return value


def check_callable(name: str, value) -> object:
    """value can be called (a function to time or measure)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {_kind(value)}")
    return value


def check_scale(scale) -> float | None:
    """The softmax scale: a finite real number or None (None: 1/sqrt(d))."""
    return None if scale is None else float(check_real("scale", scale))


def resolve_scale(scale, d: int) -> float:
    """Validated scale; None becomes the default 1/sqrt(d)."""
    scale = check_scale(scale)
    return 1.0 / math.sqrt(d) if scale is None else scale


# ----------------------------------------------------------------------------- arrays
def is_torch(x) -> bool:
    """True for a torch tensor (checked without importing torch)."""
    return type(x).__module__.split(".")[0] == "torch"


def check_numpy(name: str, x) -> None:
    """The NumPy reference takes arrays, not torch tensors: say where tensors go."""
    if is_torch(x):
        raise TypeError(f"{name} must be a NumPy array, got {_kind(x)}; "
                        f"for torch tensors use attn_lib.torch_impl (same names)")


def check_tensor(name: str, x) -> None:
    """A torch tensor (torch_impl, tiny_gpt, triton_flash)."""
    if not is_torch(x) or not hasattr(x, "ndim"):
        raise TypeError(f"{name} must be a torch.Tensor, got {_kind(x)}")


def check_io(io, counter_cls) -> None:
    """io is None or a `counter_cls` (attn_lib.reference.IOCounter, which passes itself:
    this low module imports nothing of attn_lib's)."""
    if io is not None and not isinstance(io, counter_cls):
        raise TypeError(f"io must be an attn_lib.reference.IOCounter or None, "
                        f"got {io!r} ({_kind(io)})")


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
