"""What torch.compile's fusion buys the tiled attention loop: eager vs compiled vs SDPA.

    .venv/bin/python benchmarks/compile_fusion.py [--n 512 1024 2048]   # ~2 min on 2 CPU cores

Chapter 4 (issue "Fusion made visible"): ``torch_impl.flash_attention`` is the tiled loop
of separate torch ops; ``torch.compile`` (inductor: C++ loops on a CPU, Triton kernels on a
GPU) fuses the ops inside each tile. This script times, on this machine and in the
chapter's dtype, the eager loop, the compiled loop, torch's SDPA (stating its backend) and
standard attention (``torch_impl.standard_attention``), with the compilation time, and
writes ``book/data/compile_fusion/<device>-<date>.json`` (device, versions, date), which
chapter 4 plots when compiling live would be too slow. On a CPU one thread is used, as in
the chapter. Timings: interleaved best-of rounds (attn_lib.timing.best_of).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from attn_lib import colab, device, timing, unfused  # noqa: E402
from attn_lib.viz.flash import compile_fusion_path  # noqa: E402


def _cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=None)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    dev = device()
    if dev == "cpu":
        timing.use_threads(1)
    cap = torch.cuda.get_device_capability() if dev == "cuda" else None
    dtype_name = colab.dtype_for(dev, cap)
    ns = args.n or ([512, 1024, 2048] if dev == "cpu" else [2048, 4096, 8192])
    heads = 1 if dev == "cpu" else 16
    part = unfused.compile_fusion_run(ns, head_dim=args.head_dim, heads=heads, device=dev,
                                      dtype=dtype_name)
    for r in part["rows"]:
        print(f"N = {r['n']}: compile {r['compile_s']:.1f} s, "
              + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in r["seconds"].items()), flush=True)
    name = torch.cuda.get_device_name() if dev == "cuda" else _cpu_name()
    result = {
        "schema": "attn_lib.compile_fusion/1",
        "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python benchmarks/compile_fusion.py",
        "device": {"type": dev, "name": name, "threads": torch.get_num_threads()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        **part,
    }
    out = args.out or compile_fusion_path(dev, result["created"][:10])
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", out)
    return result


if __name__ == "__main__":
    main()
