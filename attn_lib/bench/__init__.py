"""The benchmark suite's CLI, ``python -m attn_lib.bench`` (GPU evidence for chapters 3-4).

  plan      what one run measures, sized to the device (:class:`plan.Plan`)
  measure   the run itself: attention, the baseline's OOM, prefill / decode, matmul -> one JSON dict
  report    the attention table, the GPU targets and a plain-text summary
  __main__  the command line

The timers themselves live in :mod:`attn_lib.timing`, the run schema in :mod:`attn_lib.recorded`.
"""
from __future__ import annotations

# The one name of the timers that other tooling imports from here (GUIDE's contract).
from ..timing import loglog_slope  # noqa: F401
