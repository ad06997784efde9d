"""``python -m attn_lib.bench``: run the benchmark suite for this device and write its JSON.

The plan lives in :mod:`.plan`, the measuring in :mod:`.measure`, the summary in :mod:`.report`;
``--help`` lists the options.
"""
from __future__ import annotations

import sys

from .measure import default_path, run_suite, write_json
from .plan import plan
from .report import summary


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m attn_lib.bench [--quick] [--one-dtype] [--out PATH] [--device cpu|cuda]
    [--threads N] [--no-progress]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m attn_lib.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke run, under a minute)")
    parser.add_argument("--one-dtype", action="store_true",
                        help="GPU: attention in the chapters' dtype only (the time-boxed run of make check-gpu)")
    parser.add_argument("--out", help="JSON path (default: book/data/bench-<device>-<date>.json)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    from .. import device as default_device

    if args.device == "cuda" and default_device() != "cuda":
        parser.error("--device cuda: no CUDA device is available")
    flags = (["--quick"] * args.quick + ["--one-dtype"] * args.one_dtype
             + ([f"--device {args.device}"] if args.device else [])
             + ([f"--threads {args.threads}"] if args.threads else []))
    p = plan(args.device, quick=args.quick, one_dtype=args.one_dtype)
    p.threads = args.threads or p.threads
    result = run_suite(p, progress=not args.no_progress, command=" ".join(["python -m attn_lib.bench"] + flags))
    path = write_json(result, args.out or default_path(result))
    print(summary(result))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
