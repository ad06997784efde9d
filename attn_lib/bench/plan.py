"""What one ``python -m attn_lib.bench`` run measures: the :class:`Plan`, sized to the device.

On a GPU the attention sweep is FlashAttention-2's benchmark setting: batch × N = 16K tokens,
heads × d = 2048. On a CPU the sizes stay small enough for a shared 2-core machine.
Dtypes follow the chapters' rule (:func:`attn_lib.colab.dtype_for`): bfloat16 only where it
is native (sm_80+), float16 on older GPUs such as the T4, float32 on a CPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..colab import dtype_for
from ..recorded import MEASURED


@dataclass
class Plan:
    """What one suite run measures; every field is recorded in the JSON as `config`."""

    device: str
    quick: bool = False
    dtypes: list = field(default_factory=lambda: ["float32"])
    head_dims: list = field(default_factory=lambda: [64])
    causal: list = field(default_factory=lambda: [False, True])
    seq_lens: list = field(default_factory=lambda: [256, 512, 1024])
    tokens: int = 1024  # batch = max(1, tokens // N)
    model_dim: int = 256  # heads = model_dim // d
    impls: list = field(default_factory=lambda: list(MEASURED))
    min_run_time: float = 0.1
    oom_search_max: int = 0  # double N for the baseline (standard) until it OOMs, up to this (0: no search)
    prefill_lens: list = field(default_factory=lambda: [128, 256, 512])
    decode_lens: list = field(default_factory=lambda: [256, 1024, 4096])
    matmul_sizes: list = field(default_factory=lambda: [256, 512])
    matmul_dtypes: list = field(default_factory=lambda: ["float32"])
    threads: int | None = None  # torch CPU threads (None: torch's default); 1 on a busy shared machine


def gpu_dtypes(capability: tuple[int, int]) -> list[str]:
    """Half dtypes the GPU suite times on a device of this capability: the chapters' dtype first.

    (9, 0) -> ['bfloat16', 'float16']; a T4's (7, 5) -> ['float16'] (its bf16 is emulated).
    """
    main = dtype_for("cuda", capability)
    return [main] + (["float16"] if main == "bfloat16" else [])


def plan(device: str | None = None, quick: bool = False, one_dtype: bool = False) -> Plan:
    """The standard suite sized to `device` ('cuda' or 'cpu'); quick = the small CPU smoke run.

    one_dtype: on a GPU, time attention in the chapters' dtype only (matmul: it and float32),
    the time-boxed run ``make check-gpu`` records (about half the full GPU run).
    """
    import torch

    from .. import device as default_device
    from .._checks import check_bool, check_choice

    dev = check_choice("device", device or default_device(), ("cpu", "cuda"))
    quick, one_dtype = check_bool("quick", quick), check_bool("one_dtype", one_dtype)
    if dev == "cuda":
        half = gpu_dtypes(tuple(torch.cuda.get_device_capability(0)))
        half = half[:1] if one_dtype else half
        if quick:
            return Plan(device=dev, quick=True, dtypes=half[:1], head_dims=[64], seq_lens=[1024, 4096],
                        tokens=16384, model_dim=2048, min_run_time=0.05, prefill_lens=[1024, 4096],
                        decode_lens=[1024, 16384], matmul_sizes=[4096], matmul_dtypes=half[:1])
        return Plan(device=dev, quick=quick, dtypes=half, head_dims=[64, 128], causal=[False, True],
                    seq_lens=[1024, 2048, 4096, 8192, 16384], tokens=16384, model_dim=2048,
                    min_run_time=0.2, oom_search_max=262144,
                    prefill_lens=[2048, 4096, 8192, 16384, 32768],
                    decode_lens=[2048, 4096, 8192, 16384, 32767],
                    matmul_sizes=[4096, 8192], matmul_dtypes=half + ["float32"])
    if quick:
        return Plan(device="cpu", quick=True, seq_lens=[128, 256, 512], tokens=512, model_dim=128,
                    min_run_time=0.05, prefill_lens=[64, 128, 256], decode_lens=[256, 1024, 4096],
                    matmul_sizes=[256, 512])
    return Plan(device="cpu", seq_lens=[512, 1024, 2048, 4096], tokens=4096, model_dim=256,
                min_run_time=0.2, prefill_lens=[128, 256, 512, 1024, 2048],
                decode_lens=[2048, 4096, 16384, 65535], matmul_sizes=[512, 1024, 2048])
