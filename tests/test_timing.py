"""attn_lib.timing: clock, timer, best-of rounds, log-log fits, peak memory, threads (no speed is asserted)."""
import statistics
import time

import numpy as np
import pytest
import torch

from attn_lib import timing

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("p", [1.0, 2.0, 0.5, 3.0])
def test_loglog_slope_recovers_exponent(p):
    xs = [64, 128, 256, 512, 1024]
    assert timing.loglog_slope(xs, [7.0 * x**p for x in xs]) == pytest.approx(p, abs=1e-12)


def test_loglog_slope_rejects_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        timing.loglog_slope([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="equal length"):
        timing.loglog_slope([1], [1])
    with pytest.raises(ValueError, match="positive"):
        timing.loglog_slope([1, 0], [1, 2])


def test_time_fn_returns_a_median_and_passes_arguments():
    calls = []

    def fn(a, *, b):
        calls.append((a, b))

    t = timing.time_fn(fn, 1, b=2, min_run_time=0.01)
    assert 0 < t < 0.01 and calls and set(calls) == {(1, 2)}


def test_measure_keeps_the_raw_numbers_and_takes_a_clock():
    m = timing.measure(lambda: sum(range(1000)), min_run_time=0.01, clock=time.process_time)
    assert m["median_s"] > 0 and m["times_s"] and m["calls_per_time"] >= 1
    assert m["iqr_s"] >= 0 and min(m["times_s"]) <= m["median_s"] <= max(m["times_s"])


def test_time_fn_with_cpu_time_is_per_call_and_positive():
    calls = []
    t = timing.time_fn(lambda: calls.append(sum(range(10_000))), min_run_time=0.01, clock=time.process_time)
    assert t > 0 and len(calls) >= 2  # the warm-up and at least one timed call


def test_clock_for_picks_cpu_time_on_one_cpu_thread():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert timing.clock_for("cpu") is time.process_time
        assert timing.clock_for(torch.device("cuda")) is time.perf_counter
        torch.set_num_threads(2)
        assert timing.clock_for("cpu") is time.perf_counter
    finally:
        torch.set_num_threads(before)


def test_best_of_interleaves_rounds_and_keeps_the_minimum():
    order, fake = [], iter(range(1, 100))

    def fn(key):
        return lambda: order.append(key)

    clock = lambda: float(next(fake))  # noqa: E731  each call reads one more second
    best = timing.best_of({"a": fn("a"), 8: fn(8)}, rounds=3, min_run_time=None, clock=clock)
    assert order == ["a", 8] * 4  # warm-up, then 3 round-robin rounds
    assert best == {"a": 1.0, 8: 1.0}
    rounds = timing.best_of({"a": fn("a")}, rounds=2, min_run_time=None, clock=clock, keep=list)
    assert rounds == {"a": [1.0, 1.0]}


def test_best_of_median_of_timed_blocks():
    got = timing.best_of({n: (lambda n=n: sum(range(n))) for n in (10, 100_000)}, rounds=3,
                         min_run_time=0.005, clock=time.process_time, keep=statistics.median)
    assert list(got) == [10, 100_000] and 0 < got[10] < got[100_000]


def test_best_of_rejects_bad_input():
    with pytest.raises(TypeError, match="fns"):
        timing.best_of([abs])
    with pytest.raises(TypeError, match="fns"):
        timing.best_of({"a": 3})
    with pytest.raises(ValueError, match="rounds"):
        timing.best_of({"a": abs}, rounds=0)
    with pytest.raises(ValueError, match="min_run_time"):
        timing.best_of({"a": abs}, min_run_time=0)


def test_limit_threads_restores_torch_threads():
    before = torch.get_num_threads()
    with timing.limit_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n"):
        with timing.limit_threads(0):
            pass


def test_use_threads_returns_previous_count():
    before = torch.get_num_threads()
    try:
        assert timing.use_threads(1) == before
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_timing_is_a_floor_that_imports_only_the_checks():
    from test_layering import graph  # tests/test_layering.py: attn_lib's import graph

    assert graph()["timing"] <= {"_checks", "__init__"}


def test_peak_cpu_bytes_sees_a_numpy_temporary():
    n = 1_000_000
    peak = timing.peak_cpu_bytes(lambda: np.ones(n).sum())  # an 8 MB temporary
    assert 8 * n <= peak < 8 * n + 200_000
    assert timing.peak_cpu_bytes(lambda: None) < 10_000


def test_matmul_flops_per_s_is_positive_and_plausible():
    rate = timing.matmul_flops_per_s(64, device="cpu")
    assert 1e6 < rate < 1e14  # between a calculator and a data-centre GPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_peak_cuda_bytes():
    n = 1 << 20
    assert timing.peak_cuda_bytes(lambda: torch.ones(n, device="cuda").sum()) >= 4 * n


def test_loglog_fit_is_closed_form_and_gives_the_intercept():
    xs = [1, 2, 4, 8, 16]
    slope, intercept = timing.loglog_fit(xs, [3.0 * x**1.5 for x in xs])
    assert slope == pytest.approx(1.5, abs=1e-12) and np.exp(intercept) == pytest.approx(3.0, rel=1e-12)
    # exactly reproducible: no BLAS/LAPACK call, so the same bits for any input order of work
    assert timing.loglog_slope(xs, [x**2 for x in xs]) == timing.loglog_slope(list(xs), [x**2 for x in xs])
    with pytest.raises(ValueError, match="not all be equal"):
        timing.loglog_fit([2, 2], [1, 3])


def test_bench_keeps_the_contracted_loglog_slope_and_no_other_timer():
    import attn_lib.bench as bench

    assert bench.loglog_slope is timing.loglog_slope
    assert not {"time_fn", "measure_fn", "clock_for", "best_of"} & set(vars(bench))


def test_one_definition_of_linear():
    lo, hi = timing.LINEAR_SLOPE
    assert timing.is_linear(1.0) and timing.is_linear(lo) and timing.is_linear(hi)
    assert not timing.is_linear(0.64)  # 2^0.64 = 1.56: doubling does not "roughly double"
    assert not timing.is_linear(timing.QUADRATIC_SLOPE_FROM)
