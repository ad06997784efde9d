"""q, k, v checks, in depth: every attention implementation names the argument and the shapes.

The other rules (flags, scale, counts, byte sizes, io) are one row each per public function
in the table of tests/test_bad_inputs.py; this file varies the arrays themselves.
"""
import re

import numpy as np
import pytest
import torch

from attn_lib import reference, torch_impl

NUMPY = [reference.attention, reference.flash_attention]
TORCH = [torch_impl.attention, torch_impl.flash_attention, torch_impl.sdpa]
TILED = [reference.flash_attention, torch_impl.flash_attention]


def make(fn, shape, dtype="float32"):
    """A zero array of `shape` in the library the function expects."""
    if fn in NUMPY:
        return np.zeros(shape, dtype=dtype)
    return torch.zeros(shape, dtype=getattr(torch, dtype))


def qkv(fn, q=(2, 5, 4), k=(2, 6, 4), v=(2, 6, 3), dtypes=("float32",) * 3):
    return [make(fn, s, dt) for s, dt in zip((q, k, v), dtypes)]


ALL = pytest.mark.parametrize("fn", NUMPY + TORCH, ids=lambda f: f"{f.__module__.split('.')[-1]}.{f.__name__}")


@ALL
def test_valid_input_is_accepted(fn):
    assert tuple(fn(*qkv(fn)).shape) == (2, 5, 3)


@ALL
@pytest.mark.parametrize("which", ["q", "k", "v"])
def test_too_few_dims(fn, which):
    shapes = {"q": (2, 5, 4), "k": (2, 6, 4), "v": (2, 6, 3)}
    shapes[which] = (4,)
    with pytest.raises(ValueError, match=rf"^{which} must have at least 2 dims.*\(4,\)"):
        fn(*qkv(fn, **shapes))


@ALL
@pytest.mark.parametrize("shapes, pattern", [
    ({"k": (2, 6, 5)}, r"q and k must share the head dim d"),
    ({"v": (2, 7, 3)}, r"k and v must have the same number of keys Nk"),
    ({"k": (3, 6, 4), "v": (3, 6, 3)}, r"equal leading \(batch, head\) dims"),
    ({"q": (1, 2, 5, 4)}, r"same number of dims"),
    ({"q": (2, 0, 4)}, r"q must have N >= 1 and d >= 1"),
])
def test_mismatched_shapes_name_arguments_and_shapes(fn, shapes, pattern):
    with pytest.raises(ValueError, match=pattern) as err:
        fn(*qkv(fn, **shapes))
    q, k, v = ({"q": (2, 5, 4), "k": (2, 6, 4), "v": (2, 6, 3)} | shapes).values()
    if "N >= 1" not in pattern:
        assert all(str(s) in str(err.value) for s in (q, k, v))  # every shape is quoted


@ALL
@pytest.mark.parametrize("which", [0, 1, 2])
def test_integer_dtype_is_a_type_error(fn, which):
    dtypes = ["float32"] * 3
    dtypes[which] = "int32"
    with pytest.raises(TypeError, match=rf"^{'qkv'[which]} must have a floating dtype"):
        fn(*qkv(fn, dtypes=dtypes))


@ALL
def test_mixed_float_dtypes_are_a_type_error(fn):
    with pytest.raises(TypeError, match="q, k, v must share one dtype"):
        fn(*qkv(fn, dtypes=("float32", "float64", "float32")))


@pytest.mark.parametrize("fn", TILED, ids=lambda f: f.__module__.split(".")[-1])
@pytest.mark.parametrize("arg", ["block_q", "block_k"])
@pytest.mark.parametrize("value, error", [(0, ValueError), (-3, ValueError), (2.0, TypeError),
                                          (True, TypeError), ("8", TypeError)])
def test_bad_block_sizes_name_the_argument(fn, arg, value, error):
    with pytest.raises(error, match=rf"^{arg} must be"):
        fn(*qkv(fn), **{arg: value})


@pytest.mark.parametrize("fn", TORCH, ids=lambda f: f.__name__)
def test_torch_functions_reject_numpy_arrays(fn):
    with pytest.raises(TypeError, match=re.escape("q must be a torch.Tensor, got ndarray")):
        fn(*qkv(reference.attention))


@pytest.mark.parametrize("fn", NUMPY, ids=lambda f: f.__name__)
@pytest.mark.parametrize("which", [0, 1, 2])
def test_numpy_functions_send_torch_tensors_to_torch_impl(fn, which):
    args = qkv(fn)
    args[which] = torch.from_numpy(args[which])
    with pytest.raises(TypeError, match=rf"^{'qkv'[which]} must be a NumPy array, got Tensor; "
                                        r"for torch tensors use attn_lib\.torch_impl"):
        fn(*args)


@pytest.mark.parametrize("fn", NUMPY, ids=lambda f: f.__name__)
def test_numpy_functions_reject_lists(fn):
    with pytest.raises(TypeError, match="q must be an array or tensor, got list"):
        fn([[1.0]], np.zeros((1, 1)), np.zeros((1, 1)))
