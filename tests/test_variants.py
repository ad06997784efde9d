"""attn_lib.variants: sliding-window attention against a masked dense reference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from attn_lib import reference, variants


def masked_reference(q, k, v, mask):
    """Dense softmax attention with an arbitrary boolean (Nq, Nk) mask, in float64."""
    s = q.astype(np.float64) @ np.swapaxes(k.astype(np.float64), -1, -2) / np.sqrt(q.shape[-1])
    return reference.softmax(np.where(mask, s, -np.inf)) @ v.astype(np.float64)


def qkv(rng, nq, nk, d=8, dv=8, lead=(2,), dtype=np.float32):
    return (rng.standard_normal(lead + (nq, d)).astype(dtype),
            rng.standard_normal(lead + (nk, d)).astype(dtype),
            rng.standard_normal(lead + (nk, dv)).astype(dtype))


def test_mask_small_case():
    # n = 4, window 2: each token sees itself and its predecessor.
    expected = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], bool)
    np.testing.assert_array_equal(variants.sliding_window_mask(4, 4, 2), expected)


def test_huge_window_is_causal_attention():
    q, k, v = qkv(np.random.default_rng(0), 37, 37)
    out = variants.sliding_window_attention(q, k, v, window=1000, block_q=8)
    np.testing.assert_allclose(out, reference.attention(q, k, v, causal=True), atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(nq=st.integers(1, 40), extra_k=st.integers(-10, 20), window=st.integers(1, 50),
       block_q=st.integers(1, 17), dv=st.integers(1, 6))
def test_matches_masked_reference(nq, extra_k, window, block_q, dv):
    nk = max(1, nq + extra_k)
    q, k, v = qkv(np.random.default_rng(nq * 100 + nk), nq, nk, dv=dv)
    mask = variants.sliding_window_mask(nq, nk, window)
    out = variants.sliding_window_attention(q, k, v, window=window, block_q=block_q)
    assert out.dtype == np.float32 and out.shape == (2, nq, dv)
    np.testing.assert_allclose(out, masked_reference(q, k, v, mask), atol=2e-5)
    assert np.all(out[:, ~mask.any(axis=1)] == 0)  # rows with no visible key are zeros


@pytest.mark.parametrize("bad, exc", [(None, TypeError), (0, ValueError), (2.5, TypeError)])
def test_bad_window_names_argument(bad, exc):
    q, k, v = qkv(np.random.default_rng(0), 4, 4)
    with pytest.raises(exc, match="window"):
        variants.sliding_window_attention(q, k, v, window=bad)


def test_torch_path_matches_numpy_and_counts_linear_flops():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    q, k, v = qkv(np.random.default_rng(1), 29, 35, dv=5)
    want = variants.sliding_window_attention(q, k, v, window=6, block_q=4)
    got = variants.sliding_window_attention(*map(torch.from_numpy, (q, k, v)), window=6, block_q=4)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    flops = []
    for n in (256, 512, 768):
        x = torch.zeros(1, n, 16)
        with FlopCounterMode(display=False) as counter:
            variants.sliding_window_attention(x, x, x, window=32, block_q=32)
        flops.append(counter.get_total_flops())
    assert flops[2] - flops[1] == flops[1] - flops[0] > 0  # every full block costs the same: linear


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_torch_path_half_inputs_with_large_logits_stay_finite(dtype):
    # Half inputs whose scores pass fp16's range (65504) in the matmul: float32 scores.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    q, k, v = (torch.from_numpy(x) for x in qkv(rng, 20, 20, d=4, dv=3))
    q, k = q * 300, k * 300  # |q·k| ~ 1e5, still representable inputs
    half = [x.to(getattr(torch, dtype)) for x in (q, k, v)]
    got = variants.sliding_window_attention(*half, window=5, block_q=8)
    assert got.dtype == half[0].dtype and torch.isfinite(got).all()
    want = variants.sliding_window_attention(*(x.double().numpy() for x in half), window=5, block_q=8)
    eps = torch.finfo(half[0].dtype).eps
    np.testing.assert_allclose(got.double().numpy(), want, atol=4 * eps * float(v.abs().max()), rtol=0)
