"""attn_lib: the small library behind "Why is attention quadratic?".

Submodules (each says which chapter uses it):
  reference   NumPy attention and FlashAttention with IO accounting (ch. 1, 4)
  torch_impl  the same in torch, on any device, plus torch's fused SDPA (ch. 1, 2, 4)
  counting    handshakes, FLOPs, bytes, crossovers, context parallelism (ch. 1-3, 5)
  models      published model configurations (ch. 2, 3)
  hardware    published GPU peaks, roofline, interconnects (ch. 2-5)
  bench       timing, peak memory, log-log slopes (every chapter); `python -m attn_lib.bench`
  flop_check  one layer of real torch ops under FlopCounterMode (ch. 2)
  tiny_gpt    a tiny decoder with prefill / decode_step / generate (ch. 3)
  kv_cache    NumPy decode step against a cache, decode-time accounting (ch. 3)
  triton_flash  a fused FlashAttention forward kernel in Triton (ch. 4)
  variants    attention that changes the model: sliding window (ch. 4)
  recorded    recorded benchmark runs in book/data (ch. 4)
  unfused     standard attention as separate kernels: HBM bytes from real ops (ch. 4)
  memory_model  SRAM / L2 / HBM traffic of FlashAttention-2's loop order (ch. 4)
  reported    GPU figures published elsewhere (papers, tutorials), cited (ch. 4)
  recurrence  RNN and linear recurrences, sequential and as a parallel scan (ch. 1)
  ring        ring attention and Ulysses over torch.distributed processes (ch. 5)
  claims      the claims ledger's checks (appendix)
  setup, book, viz  notebook set-up, glue, figures and explorers

Importing attn_lib never needs a GPU, torch or Triton; submodules load on first use.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "reference", "torch_impl", "counting", "models", "hardware", "bench", "book",
    "decode_cost", "tiny_gpt", "triton_flash", "colab", "recorded", "flop_check",
    "claims", "variants", "viz", "ring",
    "unfused", "memory_model", "reported",
    "recurrence",
}


def device() -> str:
    """'cuda' when a CUDA GPU is usable, else 'cpu' (no torch installed also means 'cpu')."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def __getattr__(name: str):
    # Lazy submodules: `attn_lib.counting` works after a bare `import attn_lib`.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'attn_lib' has no attribute {name!r}")
