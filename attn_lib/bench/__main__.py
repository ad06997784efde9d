"""``python -m attn_lib.bench``: run the benchmark suite for this device and write its JSON.

The logic lives in :mod:`attn_lib.bench.suite`; ``--help`` lists the options.
"""
import sys

from .suite import main

sys.exit(main())
