"""Associative recall (attn_lib.recall): the three readers and the measured curve."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from attn_lib import recall  # noqa: E402
from attn_lib.viz import recall as recall_viz  # noqa: E402


def test_task_is_seeded_and_shaped():
    k, v = recall.recall_task(5, 8, 3, seed=1)
    k2, v2 = recall.recall_task(5, 8, 3, seed=1)
    assert k.shape == (5, 8) and v.shape == (5, 3)
    assert np.array_equal(k, k2) and np.array_equal(v, v2)
    assert not np.array_equal(k, recall.recall_task(5, 8, 3, seed=2)[0])
    assert recall.recall_task(4, 6)[1].shape == (4, 6)  # dv defaults to d


def test_linear_read_is_exact_for_orthonormal_keys():
    # With N <= d orthonormal keys, S q = Σ v_i (k_i·q) returns exactly the value.
    rng = np.random.default_rng(0)
    keys = np.linalg.qr(rng.standard_normal((16, 16)))[0][:10]  # (10, 16), orthonormal rows
    values = rng.standard_normal((10, 4))
    np.testing.assert_allclose(recall.linear_read(keys, values, keys), values, atol=1e-12)


def test_linear_read_is_the_sum_of_outer_products():
    keys, values = recall.recall_task(7, 5, 3, seed=3)
    q = np.random.default_rng(1).standard_normal((2, 5))
    want = sum(np.outer(q @ k, v) for k, v in zip(keys, values))  # Σ (q·k_i) v_i
    np.testing.assert_allclose(recall.linear_read(keys, values, q), want, atol=1e-12)


def test_softmax_read_matches_the_definition():
    keys, values = recall.recall_task(6, 4, 2, seed=4)
    q = keys[:3]
    s = q @ keys.T / 2.0  # scale 1/√4
    w = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(recall.softmax_read(keys, values, q), w @ values, atol=1e-12)
    one = recall.softmax_read(keys[:1], values[:1], q)  # one stored pair: always its value
    np.testing.assert_allclose(one, np.repeat(values[:1], 3, axis=0), atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(d=st.integers(2, 24), frac=st.floats(0.1, 1.0), seed=st.integers(0, 2**31))
def test_best_state_is_exact_up_to_d_keys(d, frac, seed):
    """N <= d random keys are independent: some d × dv matrix maps each to its value."""
    n = max(1, int(frac * d))
    keys, values = recall.recall_task(n, d, 3, seed=seed)
    cond = np.linalg.cond(keys)
    got = recall.best_state_read(keys, values, keys)
    # least squares on a full-rank system: error ~ eps · cond(K) · |V|
    assert np.abs(got - values).max() <= 1e-12 * max(cond, 1.0) * 10
    assert recall.correct_reads(got, values) == n


def test_no_state_of_size_d_is_exact_beyond_d_keys():
    keys, values = recall.recall_task(48, 16, 16, seed=5)  # N = 3d
    err = np.abs(recall.best_state_read(keys, values, keys) - values).max()
    assert err > 0.1  # rank d cannot interpolate 3d random targets


def test_correct_reads_counts_nearest_values():
    values = np.eye(3)
    reads = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 0, 2.0]])  # rows 0 and 2 right
    assert recall.correct_reads(reads, values) == 2


def test_recall_curve_counts_and_the_gap():
    c = recall.recall_curve(32, [8, 32, 256], trials=2, seed=0)
    assert c["total"] == [16, 64, 512] and c["d"] == 32 and c["trials"] == 2
    for name in recall.READERS:
        assert all(0 <= k <= t for k, t in zip(c[name], c["total"]))
    assert c["best_state"][:2] == c["total"][:2]  # exact up to N = d
    acc = {r: recall.accuracy(c, r) for r in recall.READERS}
    assert acc["softmax"][-1] > 0.9 and acc["linear"][-1] < 0.5  # N = 8d
    assert recall.recall_curve(32, [8, 32, 256], trials=2, seed=0) == c  # seeded


def test_recall_figure_draws_three_readers():
    c = recall.recall_curve(8, [4, 8, 32], trials=1)
    fig = recall_viz.recall_figure(c)
    assert len(fig.axes[0].get_lines()) == 3 + 1  # three readers + the N = d marker
    with pytest.raises(TypeError, match="curve"):
        recall_viz.recall_figure([1, 2])
    plt.close("all")
