"""The backward pass of torch_impl.flash_attention (FlashAttention-2: save the log-sum-exp,
recompute score tiles): gradients equal float64 autograd of the plain path; saved memory is
O(N), not O(N²); its FLOPs match counting.attention_backward_flops under FlopCounterMode."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings

from attn_lib import counting, torch_impl
from attn_lib.flop_check import counted_flops
from strategies import cases

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _leaves(case, dtype=torch.float64):
    q, k, v = (torch.from_numpy(x).to(dtype).requires_grad_() for x in case.arrays(np.float64))
    g = torch.from_numpy(np.random.default_rng(case.seed + 1).standard_normal(case.lead + (case.nq, case.dv)))
    return q, k, v, g.to(dtype)


@settings(max_examples=300)
@given(case=cases(blocks=True))
def test_gradients_match_float64_autograd_of_the_plain_path(case):
    q, k, v, g = _leaves(case)
    got = torch.autograd.grad(torch_impl.flash_attention(q, k, v, **case.kwargs, **case.block_kwargs),
                              (q, k, v), g)
    want = torch.autograd.grad(torch_impl.attention(q, k, v, **case.kwargs), (q, k, v), g)
    for name, a, b in zip("qkv", got, want):
        assert a.dtype == torch.float64 and a.shape == b.shape, name
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=f"d{name}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gradients_keep_dtype_and_stay_finite(dtype):
    from strategies import Case
    case = Case((2,), 13, 9, 8, 5, True, seed=3, block_q=4, block_k=3)
    q, k, v, g = _leaves(case, dtype)
    grads = torch.autograd.grad(torch_impl.flash_attention(q, k, v, causal=True, block_q=4, block_k=3),
                                (q, k, v), g)
    for x, dx in zip((q, k, v), grads):
        assert dx.dtype == dtype and dx.shape == x.shape and torch.isfinite(dx).all()
    assert not torch.any(grads[0][:, :4])  # queries that see no key get no gradient


def _saved_bytes(fn, n, d=8):
    """Bytes autograd saves for backward when fn runs on (1, n, d) leaves."""
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t
    q, k, v = (torch.randn(1, n, d, requires_grad=True) for _ in range(3))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(q, k, v)
    return sum(saved)


def test_saved_memory_is_linear_for_flash_and_quadratic_for_plain():
    sizes = (128, 256, 512)
    flash = [_saved_bytes(lambda q, k, v: torch_impl.flash_attention(q, k, v, causal=True, block_q=64, block_k=64), n)
             for n in sizes]
    plain = [_saved_bytes(lambda q, k, v: torch_impl.attention(q, k, v, causal=True), n) for n in sizes]
    assert flash[1] == 2 * flash[0] and flash[2] == 2 * flash[1]  # O(N): q, k, v, out, lse
    assert flash[0] == 4 * (4 * 128 * 8 + 128)  # float32 q, k, v, out (N·d each) and lse (N)
    assert all(3.5 < b / a <= 4 for a, b in zip(plain, plain[1:]))  # O(N²): scores, P
    assert plain[2] > 50 * flash[2]


@pytest.mark.parametrize("causal,blocks", [(False, (16, 32)), (False, (64, 64)), (True, (1, 1))])
def test_backward_flops_match_the_closed_form(causal, blocks):
    heads, n, d = 3, 24, 8
    q, k, v = (torch.randn(heads, n, d, requires_grad=True) for _ in range(3))
    g = torch.randn(heads, n, d)
    kw = dict(causal=causal, block_q=blocks[0], block_k=blocks[1])
    fwd = counted_flops(lambda: torch_impl.flash_attention(q, k, v, **kw))
    out = torch_impl.flash_attention(q, k, v, **kw)
    bwd = counted_flops(torch.autograd.grad, out, (q, k, v), g)
    # Causal with blocks of one computes exactly the visible pairs; blocks on the diagonal
    # would also compute (and mask) pairs above it.
    assert bwd == counting.attention_backward_flops(n, heads * d, causal=causal)
    assert fwd == counting.attention_flops(n, heads * d, causal=causal)
    assert bwd / fwd == 2.5  # recomputing S is the fifth matmul


def test_plain_autograd_backward_is_four_matmuls():
    heads, n, d = 2, 20, 8
    q, k, v = (torch.randn(heads, n, d, requires_grad=True) for _ in range(3))
    out = torch_impl.attention(q, k, v)
    bwd = counted_flops(torch.autograd.grad, out, (q, k, v), torch.randn(heads, n, d))
    assert bwd == counting.attention_backward_flops(n, heads * d, recompute=False)


def test_no_grad_path_is_unchanged():
    q, k, v = (torch.randn(2, 33, 8, requires_grad=True) for _ in range(3))
    with torch.no_grad():
        plain = torch_impl.flash_attention(q, k, v, causal=True, block_q=8, block_k=8)
    tracked = torch_impl.flash_attention(q, k, v, causal=True, block_q=8, block_k=8)
    assert not plain.requires_grad and tracked.requires_grad
    assert torch.equal(plain, tracked.detach())
