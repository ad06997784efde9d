"""attn_lib.bench: timing, peak memory and log-log slope helpers (no speed is asserted here)."""
import numpy as np
import pytest
import torch

from attn_lib import bench

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("p", [1.0, 2.0, 0.5, 3.0])
def test_loglog_slope_recovers_exponent(p):
    xs = [64, 128, 256, 512, 1024]
    assert bench.loglog_slope(xs, [7.0 * x**p for x in xs]) == pytest.approx(p, abs=1e-12)


def test_loglog_slope_rejects_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        bench.loglog_slope([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="equal length"):
        bench.loglog_slope([1], [1])
    with pytest.raises(ValueError, match="positive"):
        bench.loglog_slope([1, 0], [1, 2])


def test_time_fn_returns_a_median_and_passes_arguments():
    calls = []

    def fn(a, *, b):
        calls.append((a, b))

    t = bench.time_fn(fn, 1, b=2, min_run_time=0.01)
    assert 0 < t < 0.01 and calls and set(calls) == {(1, 2)}


def test_peak_cpu_bytes_sees_a_numpy_temporary():
    n = 1_000_000
    peak = bench.peak_cpu_bytes(lambda: np.ones(n).sum())  # an 8 MB temporary
    assert 8 * n <= peak < 8 * n + 200_000
    assert bench.peak_cpu_bytes(lambda: None) < 10_000


def test_matmul_flops_per_s_is_positive_and_plausible():
    rate = bench.matmul_flops_per_s(64, device="cpu")
    assert 1e6 < rate < 1e14  # between a calculator and a data-centre GPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_peak_cuda_bytes():
    n = 1 << 20
    assert bench.peak_cuda_bytes(lambda: torch.ones(n, device="cuda").sum()) >= 4 * n


def test_loglog_fit_is_closed_form_and_gives_the_intercept():
    xs = [1, 2, 4, 8, 16]
    slope, intercept = bench.loglog_fit(xs, [3.0 * x**1.5 for x in xs])
    assert slope == pytest.approx(1.5, abs=1e-12) and np.exp(intercept) == pytest.approx(3.0, rel=1e-12)
    # exactly reproducible: no BLAS/LAPACK call, so the same bits for any input order of work
    assert bench.loglog_slope(xs, [x**2 for x in xs]) == bench.loglog_slope(list(xs), [x**2 for x in xs])
    with pytest.raises(ValueError, match="not all be equal"):
        bench.loglog_fit([2, 2], [1, 3])


def test_glue_rounds_floats_to_the_rule():
    from attn_lib import book

    assert book.glue("x", np.float64(2.0000000000000004)) == 2.0
    assert type(book.glue("x", np.float64(1.2345))) is float and book.glue("x", 1.2345) == 1.23
    assert book.glue("x", 4.002002002002002, sig=4) == 4.002
    assert book.glue("x", 16384.0) == 16384.0  # whole numbers are exact: kept
    assert book.glue("x", np.int64(7)) == 7 and type(book.glue("x", np.int64(7))) is int
    assert book.glue("x", "0.82") == "0.82" and book.glue("x", np.bool_(True)) is True
    assert book.glue("x", [0.00021491400002560113, 3]) == [0.000215, 3]
    assert book.glue_many({"a": 1.23456}, b=2) == {"a": 1.23, "b": 2}
    assert book.glue_many(a=1.23456, sig=5) == {"a": 1.2346}
    with pytest.raises(ValueError, match="sig"):
        book.glue("x", 1.0, sig=book.MAX_SIG + 1)
    with pytest.raises(ValueError, match="twice"):
        book.glue_many({"a": 1}, a=2)
