"""attn_lib.recurrence: the parallel scan gives the sequential recurrence's states."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

from attn_lib import recurrence as rec  # noqa: E402

cases = st.tuples(st.sampled_from([(), (2,), (2, 3)]), st.integers(1, 70),
                  st.integers(1, 9), st.integers(0, 2**31 - 1), st.booleans())


def _inputs(lead, n, d, seed, with_h0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(lead + (n, d), generator=g, dtype=torch.float64) * 2 - 1  # |a| <= 1
    b = torch.randn(lead + (n, d), generator=g, dtype=torch.float64)
    h0 = torch.randn(lead + (d,), generator=g, dtype=torch.float64) if with_h0 else None
    cast = (lambda t: None if t is None else t.to(dtype))
    return cast(a), cast(b), cast(h0)


def _oracle(a, b, h0):  # plain Python floats in float64, one position at a time
    a, b = a.double().numpy(), b.double().numpy()
    h = np.zeros(a.shape[:-2] + a.shape[-1:]) if h0 is None else h0.double().numpy()
    out = np.empty_like(b)
    for t in range(a.shape[-2]):
        h = a[..., t, :] * h + b[..., t, :]
        out[..., t, :] = h
    return out


@settings(max_examples=150, deadline=None)
@given(cases)
def test_scan_matches_sequential_float64(case):
    lead, n, d, seed, with_h0 = case
    a, b, h0 = _inputs(lead, n, d, seed, with_h0)
    seq, scan = rec.linear_recurrence(a, b, h0), rec.linear_scan(a, b, h0)
    assert seq.shape == scan.shape == b.shape and scan.dtype == torch.float64
    np.testing.assert_allclose(seq.numpy(), _oracle(a, b, h0), rtol=0, atol=1e-12)
    # reassociating n products and sums: a few ulps per scan step, relative to the state size
    floor = 4 * rec.scan_steps(n) * 2**-52 * (1 + float(seq.abs().max()))
    assert float((scan - seq).abs().max()) <= floor + 1e-15


@settings(max_examples=100, deadline=None)
@given(cases)
def test_scan_float32_error_is_like_the_loops(case):
    """In float32 the scan's error against the float64 oracle is at most 2× the loop's plus
    the floor of rounding each of the log2(N) compositions once."""
    lead, n, d, seed, with_h0 = case
    a, b, h0 = _inputs(lead, n, d, seed, with_h0, torch.float32)
    ref = _oracle(a, b, h0)
    err = lambda out: float(np.abs(out.double().numpy() - ref).max())  # noqa: E731
    floor = (rec.scan_steps(n) + 1) * 2**-23 * (1 + float(np.abs(ref).max()))
    assert err(rec.linear_scan(a, b, h0)) <= 2 * err(rec.linear_recurrence(a, b, h0)) + floor


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_rnn_states_is_the_tanh_recurrence(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    out, h = rec.rnn_states(x, w), torch.zeros(d, dtype=torch.float64)
    for t in range(n):
        h = torch.tanh(w @ h + x[t])
        torch.testing.assert_close(out[t], h, rtol=0, atol=1e-12)


def test_a_nonlinear_step_is_not_a_linear_one():
    """tanh breaks the scan: tanh(w·h + x) is not a*h + b for any fixed (a, b) per step."""
    x, w = torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    step = [float(rec.rnn_states(x, w, torch.tensor([h], dtype=torch.float64))[0, 0]) for h in (0.0, 1.0, 2.0)]
    assert abs((step[2] - step[1]) - (step[1] - step[0])) > 0.1  # not affine in h


@pytest.mark.parametrize("n, steps", [(1, 0), (2, 1), (3, 2), (8, 3), (9, 4), (2048, 11)])
def test_scan_steps(n, steps):
    assert rec.scan_steps(n) == steps
