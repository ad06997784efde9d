"""Measuring (chapters 1-4, benchmarks/, ``python -m attn_lib.bench``): one clock chooser, one
timer, best-of rounds, log-log fits, peak memory, thread control.

Timings use ``torch.utils.benchmark`` (which synchronises CUDA and reports a median); peak
memory uses ``tracemalloc`` for NumPy on the CPU and ``torch.cuda.max_memory_allocated`` on a
GPU. Ratios, not absolute times, are what a noisy machine can be trusted with.

On a shared machine, multi-threaded BLAS calls on small blocks can be slowed many-fold by
oversubscription, and wall-clock time counts the slices other programs take. One thread
(:func:`use_threads`) and this process's CPU time (:func:`clock_for`) measure the algorithm,
not the scheduler.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import math
import os
import time
import tracemalloc
from typing import Callable, Mapping

import numpy as np

from ._checks import (check_block, check_callable, check_positive, check_real, check_positive_int,
                      check_type)


# ----------------------------------------------------------------------------- clock and timer
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
    """torch.utils.benchmark's blocked_autorange over fn(*args, **kwargs) (no warm-up)."""
    import torch
    from torch.utils import benchmark

    timer = benchmark.Timer(
        stmt="fn(*args, **kwargs)",
        globals={"fn": fn, "args": args, "kwargs": kwargs},
        num_threads=torch.get_num_threads(),  # Timer's default is 1 thread
        # Timer's own default clock is the wall clock with a CUDA synchronisation
        **({"timer": clock} if clock is not None and clock is not time.perf_counter else {}),
    )
    return timer.blocked_autorange(min_run_time=min_run_time)


def measure(fn: Callable, *args, min_run_time: float = 0.2, clock: Callable[[], float] | None = None,
            **kwargs) -> dict:
    """The timer: seconds per call of fn(*args, **kwargs) after a warm-up, with the raw numbers.

    Returns median, IQR, each timed block's seconds per call and the calls per block (the
    benchmark suite records them all). Uses every CPU thread torch uses. `clock` defaults to
    the wall clock, synchronising CUDA; pass :func:`clock_for`'s choice (CPU time on one
    CPU thread) on a shared machine.
    """
    check_callable("fn", fn), check_positive("min_run_time", min_run_time)
    if clock is not None:
        check_callable("clock", clock)
    fn(*args, **kwargs)  # warm-up: first-call allocation, kernel compilation, autotuning
    m = _autorange(fn, args, kwargs, min_run_time, clock)
    return {"median_s": m.median, "iqr_s": m.iqr, "times_s": list(m.times), "calls_per_time": m.number_per_run}


def time_fn(fn: Callable, *args, min_run_time: float = 0.2, clock: Callable[[], float] | None = None,
            **kwargs) -> float:
    """Median seconds per call of fn(*args, **kwargs): :func:`measure`'s median."""
    return measure(fn, *args, min_run_time=min_run_time, clock=clock, **kwargs)["median_s"]


def _one_call(fn: Callable, clock) -> float:
    """Seconds of one call of fn(), CUDA work included."""
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = clock()
    fn()
    sync()
    return clock() - start


def best_of(fns: Mapping, *, rounds: int = 3, min_run_time: float | None = 0.05,
            clock: Callable[[], float] | None = None, keep: Callable = min) -> dict:
    """Seconds per call of every fn() in `fns` ({key: zero-argument callable}), best of `rounds`.

    Keys are names, sizes or (name, size) pairs: ``{n: lambda n=n: f(x[n]) for n in sizes}``.
    Every fn is called once (warm-up), then all are timed round-robin `rounds` times, so a
    burst of load from other programs spoils one round of one key, not a whole curve. Each
    round is :func:`time_fn`'s median over `min_run_time` seconds, or with
    ``min_run_time=None`` one call (for calls too long to repeat, such as a whole generation).
    `clock` defaults to :func:`clock_for` of attn_lib's device. Returns {key: keep(seconds of
    each round)}: ``min`` (interference only ever adds time), ``statistics.median``, or
    ``list`` for every round.
    """
    from . import device

    check_type("fns", fns, Mapping, "a mapping of keys to callables")
    for fn in fns.values():
        check_callable("fns", fn)
    rounds, keep = check_positive_int("rounds", rounds), check_callable("keep", keep)
    if min_run_time is not None:
        check_positive("min_run_time", min_run_time)
    clock = clock_for(device()) if clock is None else check_callable("clock", clock)
    for fn in fns.values():
        fn()  # warm-up
    seconds = {key: [] for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            seconds[key].append(_one_call(fn, clock) if min_run_time is None
                                else _autorange(fn, (), {}, min_run_time, clock).median)
    return {key: keep(ts) for key, ts in seconds.items()}


def matmul_flops_per_s(n: int = 1024, dtype=None, device: str | None = None) -> float:
    """Achieved FLOP/s of an n×n @ n×n matmul: the device's practical peak."""
    import torch

    from . import device as default_device

    n = check_positive_int("n", n)
    dev = device or default_device()
    dtype = dtype or torch.float32
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    return 2 * n**3 / time_fn(torch.mm, a, b)


# ----------------------------------------------------------------------------- fits
#: What the whole book calls "linear" and "quadratic" for a fitted log-log slope of a
#: measured time. Bounds from the spread benchmarks/timing_spread.py measured on two CPUs
#: (decode steps 0.94-1.20 and 1.05-1.11, prefills 1.93-2.34, alone and loaded): a working
#: set that outgrows the CPU's caches bends a slope up, a fixed per-call cost bends it down
#: (at 4K cached tokens that cost is most of a decode step on some CPUs: slope 0.5-0.8), so
#: a chapter must choose sizes where the work dominates. 2^0.8 = 1.74: doubling N at least
#: 1.7x's the time.
LINEAR_SLOPE = (0.8, 1.4)
QUADRATIC_SLOPE_FROM = 1.5


def is_linear(slope: float) -> bool:
    """Whether a fitted log-log slope counts as linear (:data:`LINEAR_SLOPE`)."""
    lo, hi = LINEAR_SLOPE
    return lo <= check_real("slope", slope) <= hi


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


# ----------------------------------------------------------------------------- peak memory
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


# ----------------------------------------------------------------------------- threads
def _openblas_thread_setter():
    """NumPy's bundled OpenBLAS `set_num_threads`, or None where it cannot be found."""
    libs_dir = os.path.dirname(np.__file__) + ".libs"  # where NumPy's wheels vendor OpenBLAS
    for path in glob.glob(os.path.join(libs_dir, "*openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            if hasattr(lib, name):
                return getattr(lib, name)
    return None


def limit_threads(n: int = 1):
    """Run torch and NumPy's BLAS on n threads inside the block, then restore torch's count.

    One thread gives stable ratios on a shared machine (and one core's cache to tile for).
    `n` is checked here, when the block is set up, not when it is entered.
    """
    return _limited_threads(check_block("n", n))


@contextlib.contextmanager
def _limited_threads(n: int):
    import torch

    before = use_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        setter = _openblas_thread_setter()
        if setter is not None:
            setter(os.cpu_count() or 1)  # OpenBLAS's own default: one thread per core


def use_threads(n: int) -> int:
    """Set torch's and NumPy's BLAS thread counts to n for the rest of the session.

    Returns torch's previous count. Chapter 4 calls use_threads(1) on a CPU.
    """
    import torch

    n = check_block("n", n)
    before, setter = torch.get_num_threads(), _openblas_thread_setter()
    torch.set_num_threads(n)
    if setter is not None:
        setter(n)
    return before
