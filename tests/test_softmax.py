"""Softmax and online softmax (attn_lib.reference): streamed statistics give the exact softmax."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from attn_lib import reference as R

finite = st.floats(-50, 50, allow_nan=False, width=64)
rows = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=12), elements=finite)


def softmax_by_definition(x):
    """exp(x_i) / sum_j exp(x_j) per row, in Python floats with math.fsum (logits are small)."""
    flat = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
    out = [[math.exp(a) / math.fsum(math.exp(b) for b in row) for a in row] for row in flat]
    return np.array(out).reshape(x.shape)


@settings(max_examples=200)
@given(rows)
def test_softmax_matches_definition(x):
    np.testing.assert_allclose(R.softmax(x), softmax_by_definition(x), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(R.softmax(x).sum(axis=-1), 1.0, rtol=1e-12)


@settings(max_examples=200)
@given(rows, st.integers(1, 14))
def test_online_softmax_equals_softmax_for_any_chunk(x, chunk):
    np.testing.assert_allclose(R.online_softmax(x, chunk), R.softmax(x), rtol=1e-12, atol=1e-300)
    whole = R.softmax_stats(x)
    streamed = R.online_softmax_stats(x, chunk)
    np.testing.assert_allclose(streamed.m, whole.m)
    np.testing.assert_allclose(streamed.l, whole.l, rtol=1e-12)


@settings(max_examples=200)
@given(hnp.arrays(np.float64, st.integers(3, 30), elements=finite), st.data())
def test_merge_stats_is_associative_and_commutative(x, data):
    i = data.draw(st.integers(1, x.size - 2))
    j = data.draw(st.integers(i + 1, x.size - 1))
    a, b, c = (R.softmax_stats(part) for part in (x[:i], x[i:j], x[j:]))
    left = R.merge_stats(R.merge_stats(a, b), c)
    right = R.merge_stats(a, R.merge_stats(b, c))
    swapped = R.merge_stats(c, R.merge_stats(b, a))
    whole = R.softmax_stats(x)
    for s in (left, right, swapped):
        assert s.m == whole.m
        assert s.l == pytest.approx(whole.l, rel=1e-12)


def test_masked_entries_and_all_masked_rows():
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]])
    out = R.softmax(x)
    assert out[0, 1] == 0 and out[0].sum() == pytest.approx(1.0)
    assert np.all(out[1] == 0)  # a row that sees nothing: zeros, not NaN
    np.testing.assert_array_equal(R.online_softmax(x, 1), out)
    stats = R.online_softmax_stats(x, 1)
    assert stats.m[1] == -np.inf and stats.l[1] == 0


@pytest.mark.parametrize("big", [1e4, 1e30, 1e300])
def test_huge_logits_do_not_overflow(big):
    x = np.array([big, big - 1.0, -big])
    expected = np.array([1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1)), 0.0])
    if big > 1e16:  # big - 1 == big in float64: two equal logits
        expected = np.array([0.5, 0.5, 0.0])
    np.testing.assert_allclose(R.softmax(x), expected, rtol=1e-14)
    np.testing.assert_allclose(R.online_softmax(x, 1), expected, rtol=1e-14)


def test_float32_stays_float32():
    x = np.linspace(-3, 3, 10, dtype=np.float32)
    assert R.softmax(x).dtype == np.float32


def test_online_softmax_rejects_bad_chunk():
    with pytest.raises(ValueError, match="chunk"):
        R.online_softmax(np.zeros(3), chunk=0)
    with pytest.raises(TypeError, match="chunk"):
        R.online_softmax_stats(np.zeros(3), chunk=1.5)


def test_softmax_stats_hold_the_max_and_the_shifted_sum():
    stats = R.softmax_stats(np.log(np.array([[1.0, 3.0]])))
    assert isinstance(stats, R.SoftmaxStats)
    np.testing.assert_allclose([stats.m, stats.l], [[math.log(3)], [4 / 3]])
    one = R.SoftmaxStats(np.zeros(1), np.ones(1))  # the stats of the single logit 0
    merged = R.merge_stats(one, R.softmax_stats(np.full((1, 1), math.log(3))))
    np.testing.assert_allclose([merged.m, merged.l], [[math.log(3)], [4 / 3]])
    with pytest.raises(TypeError, match="a must be"):
        R.merge_stats((stats.m, stats.l), stats)  # a bare (m, l) tuple is not stats
