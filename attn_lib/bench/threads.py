"""Thread control and CPU-time timing for measuring on a shared CPU (chapters 1, 3, 4).

On a shared machine, multi-threaded BLAS calls on small blocks can be slowed many-fold by
oversubscription, and wall-clock time counts the slices other programs take. One thread and
this process's CPU time measure the algorithm, not the scheduler.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os

import numpy as np

from .._checks import check_block

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

    On a shared machine, multi-threaded BLAS calls on small blocks can be slowed many-fold
    by oversubscription; one thread gives stable ratios (and one core's cache to tile for).
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
