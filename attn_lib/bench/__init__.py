"""Measurement helpers: timing, peak memory, log-log slopes (every chapter; `python -m attn_lib.bench`).

Timings use ``torch.utils.benchmark`` (which synchronises CUDA and reports a median);
peak memory uses ``tracemalloc`` for NumPy on the CPU and ``torch.cuda.max_memory_allocated``
on a GPU. Ratios, not absolute times, are what a noisy machine can be trusted with.
"""
from __future__ import annotations

import math
import time
import tracemalloc
from typing import Callable

import numpy as np

from .._checks import check_callable, check_positive, check_positive_int, check_type
from .threads import limit_threads, use_threads  # noqa: F401  (public here)


def clock_for(device) -> Callable[[], float]:
    """The clock to time work on `device` with (chapters 1, 3, 4).

    On a CPU running one thread: this process's CPU time, which other programs on a shared
    machine do not inflate. Otherwise (several threads, whose spin-waits it would add up, or
    a GPU, whose work is not CPU time): the wall clock.
    """
    import torch

    check_type("device", device, (str, torch.device), "a device name or torch.device")
    if str(device).startswith("cpu") and torch.get_num_threads() == 1:
        return time.process_time
    return time.perf_counter


def _autorange(fn: Callable, args, kwargs, min_run_time: float, clock):
    """torch.utils.benchmark's blocked_autorange over fn(*args, **kwargs), after a warm-up."""
    import torch
    from torch.utils import benchmark

    check_callable("fn", fn), check_positive("min_run_time", min_run_time)
    if clock is not None:
        check_callable("clock", clock)
    fn(*args, **kwargs)  # warm-up: first-call allocation, kernel compilation, autotuning
    timer = benchmark.Timer(
        stmt="fn(*args, **kwargs)",
        globals={"fn": fn, "args": args, "kwargs": kwargs},
        num_threads=torch.get_num_threads(),  # Timer's default is 1 thread
        **({"timer": clock} if clock is not None and clock is not time.perf_counter else {}),
    )
    return timer.blocked_autorange(min_run_time=min_run_time)


def time_fn(fn: Callable, *args, min_run_time: float = 0.2, clock: Callable[[], float] | None = None,
            **kwargs) -> float:
    """Median seconds per call of fn(*args, **kwargs), using every CPU thread torch uses.

    `clock` defaults to torch.utils.benchmark's wall clock, which synchronises CUDA; pass
    ``time.process_time`` (or :func:`clock_for`'s choice) for CPU time on a shared machine.
    """
    return _autorange(fn, args, kwargs, min_run_time, clock).median


def cpu_time_fn(fn: Callable, *args, min_run_time: float = 0.2, **kwargs) -> float:
    """Median CPU seconds (this process) per call of fn(*args, **kwargs).

    On a shared machine wall time includes the slices other processes take; CPU time does
    not. Use it with one thread (:func:`use_threads`): with several, it adds their times and
    any spin-waiting. benchmarks/cpu_attention.py and chapter 4 use it.
    """
    return time_fn(fn, *args, min_run_time=min_run_time, clock=time.process_time, **kwargs)


def cpu_seconds(fn: Callable, *args, min_time: float = 0.1, **kwargs) -> float:
    """:func:`cpu_time_fn` with a shorter default budget (chapter 4's timing cells)."""
    check_positive("min_time", min_time)
    return cpu_time_fn(fn, *args, min_run_time=min_time, **kwargs)


def peak_cpu_bytes(fn: Callable, *args, **kwargs) -> int:
    """Peak bytes allocated through Python/NumPy while fn runs (tracemalloc), above the start."""
    check_callable("fn", fn)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


def peak_cuda_bytes(fn: Callable, *args, **kwargs) -> int:
    """Peak CUDA bytes allocated while fn runs, above what was allocated before."""
    import torch

    check_callable("fn", fn)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    fn(*args, **kwargs)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - start


def loglog_fit(xs, ys) -> tuple[float, float]:
    """Least-squares (slope, intercept) of log y against log x: y ≈ exp(intercept)·x^slope.

    Closed form over ``math.fsum`` sums, not NumPy's polynomial fit: LAPACK's solver rounds
    differently under each BLAS kernel set (Haswell, SkylakeX, ...), this gives the same
    bits on every CPU.
    """
    xs, ys = [float(x) for x in np.ravel(xs)], [float(y) for y in np.ravel(ys)]
    if np.shape(xs) != np.shape(ys) or len(xs) < 2:
        raise ValueError(f"xs and ys need equal length >= 2, got {len(xs)} and {len(ys)}")
    if min(xs) <= 0 or min(ys) <= 0 or not all(map(math.isfinite, xs + ys)):
        raise ValueError("xs and ys must be positive and finite for a log-log fit")
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = math.fsum(lx) / len(lx), math.fsum(ly) / len(ly)
    sxx = math.fsum((a - mx) ** 2 for a in lx)
    if sxx == 0:
        raise ValueError("xs must not all be equal for a log-log fit")
    slope = math.fsum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx
    return slope, my - slope * mx


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log y against log x: the exponent p in y ≈ c·x^p (see loglog_fit)."""
    return loglog_fit(xs, ys)[0]


def matmul_flops_per_s(n: int = 1024, dtype=None, device: str | None = None) -> float:
    """Achieved FLOP/s of an n×n @ n×n matmul: the device's practical peak."""
    import torch

    from .. import device as default_device

    n = check_positive_int("n", n)
    dev = device or default_device()
    dtype = dtype or torch.float32
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    return 2 * n**3 / time_fn(torch.mm, a, b)


def measure(fn: Callable, *args, min_run_time: float = 0.2, **kwargs) -> dict:
    """Like :func:`time_fn`, but keep the raw numbers: median, IQR and each block's seconds per call.

    Used by the benchmark suite (``python -m attn_lib.bench``), which records every timing.
    """
    m = _autorange(fn, args, kwargs, min_run_time, None)
    return {"median_s": m.median, "iqr_s": m.iqr, "times_s": list(m.times), "calls_per_time": m.number_per_run}
