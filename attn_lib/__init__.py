"""attn_lib: the small library behind "Why is attention quadratic?".

Where each chapter's code lives (every closed form is in `counting`, every timer in
`timing`, every input check in `_checks`):

  chapter                   modules
  1 handshakes              counting, reference, torch_impl, recurrence, viz.scores
  2 FLOPs                   counting, models, hardware, flop_check, viz.flops
  3 KV cache                tiny_gpt, decode_cost, timing, viz.kv
  3b serving                paged_kv, serving, counting, models, viz.serving
  4 FlashAttention          reference, torch_impl, triton_flash, unfused, memory_model,
                            variants, reported, recorded, viz.flash
  5 long context            ring (on _launch), counting, recall, viz.ring,
                            viz.recall
  appendix: GPU primer      hardware, counting, viz.gpu
  appendix: claims ledger   claims (registry; essays: the seed essays' figures, once)
  appendix: tour            all of the above
  every chapter             colab (the set-up cell), book (glue, config readers),
                            viz (shared table, byte and tick helpers)
  outside the book          bench (`python -m attn_lib.bench`, the measured suite)

Importing attn_lib never needs a GPU, torch or Triton; submodules load on first use.
"""
from __future__ import annotations

import importlib

__version__ = "0.3.0"

_SUBMODULES = {
    "reference", "torch_impl", "counting", "models", "hardware", "bench", "book",
    "decode_cost", "tiny_gpt", "triton_flash", "colab", "timing", "recorded", "flop_check",
    "claims", "variants", "viz", "ring",
    "unfused", "memory_model", "reported",
    "recurrence", "paged_kv", "serving", "recall",
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
