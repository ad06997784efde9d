"""Published transformer configurations, each with the table or config file it comes from.

Chapters 2 and 3 count FLOPs and KV-cache bytes for these. `kv_heads < heads` means
grouped-query attention; `sliding_window` caps how many past tokens a layer attends to.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._checks import check_choice, check_optional_positive_int, check_positive_int, check_str

#: The ModelConfig fields that are counts (positive ints).
_COUNTS = ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab", "context",
           "mlp_matrices")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder-only transformer. `mlp_matrices` is 2 for GELU MLPs, 3 for SwiGLU."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    vocab: int
    context: int
    source: str
    mlp_matrices: int = 2
    sliding_window: int | None = None

    def __post_init__(self):
        check_str("name", self.name), check_str("source", self.source)
        for f in _COUNTS:  # NumPy integers are stored as int
            object.__setattr__(self, f, check_positive_int(f, getattr(self, f)))
        object.__setattr__(self, "sliding_window",
                           check_optional_positive_int("sliding_window", self.sliding_window))
        check_choice("mlp_matrices", self.mlp_matrices, (2, 3))  # GELU MLP or SwiGLU
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")

    @property
    def d_attn(self) -> int:
        """Width of all query heads together (= d_model for every preset here)."""
        return self.n_heads * self.head_dim

    @property
    def d_kv(self) -> int:
        """Width of the keys (or values) of one token in one layer."""
        return self.n_kv_heads * self.head_dim


def _cfg(name, layers, d, heads, kv, head_dim, d_ff, vocab, ctx, source, **kw) -> ModelConfig:
    return ModelConfig(name, layers, d, heads, kv, head_dim, d_ff, vocab, ctx, source, **kw)


PRESETS: dict[str, ModelConfig] = {
    c.name: c
    for c in (
        _cfg("gpt2-small", 12, 768, 12, 12, 64, 3072, 50257, 1024,
             "Radford et al. 2019, 'Language Models are Unsupervised Multitask Learners', Table 2 "
             "(117M: 12 layers, d_model 768); Hugging Face config 'gpt2' (n_head 12, n_ctx 1024)"),
        _cfg("gpt3-175b", 96, 12288, 96, 96, 128, 4 * 12288, 50257, 2048,
             "Brown et al. 2020, 'Language Models are Few-Shot Learners', Table 2.1 "
             "(n_layers 96, d_model 12288, n_heads 96, d_head 128, n_ctx 2048; d_ff = 4 d_model)"),
        _cfg("opt-13b", 40, 5120, 40, 40, 128, 20480, 50272, 2048,
             "Zhang et al. 2022, 'OPT: Open Pre-trained Transformer Language Models', Table 1 "
             "(13B: 40 layers, 40 heads, d_model 5120); Hugging Face config 'facebook/opt-13b' (ffn_dim 20480)"),
        _cfg("llama-2-7b", 32, 4096, 32, 32, 128, 11008, 32000, 4096,
             "Touvron et al. 2023, 'Llama 2', Table 1 (4k context, GQA only for 34B/70B); "
             "config.json of 'meta-llama/Llama-2-7b-hf' (intermediate_size 11008)", mlp_matrices=3),
        _cfg("llama-2-70b", 80, 8192, 64, 8, 128, 28672, 32000, 4096,
             "Touvron et al. 2023, 'Llama 2', Table 1 (GQA); config.json of 'meta-llama/Llama-2-70b-hf' "
             "(80 layers, 64 heads, 8 key-value heads, intermediate_size 28672)", mlp_matrices=3),
        _cfg("llama-3-8b", 32, 4096, 32, 8, 128, 14336, 128256, 8192,
             "Meta 2024, Llama 3 model card and config.json of 'meta-llama/Meta-Llama-3-8B' "
             "(8 key-value heads, intermediate_size 14336, vocab 128256, 8k context)", mlp_matrices=3),
        _cfg("mistral-7b", 32, 4096, 32, 8, 128, 14336, 32000, 8192,
             "Jiang et al. 2023, 'Mistral 7B', Table 1 (dim 4096, 32 layers, head_dim 128, hidden_dim 14336, "
             "32 heads, 8 kv heads, window_size 4096, context_len 8192, vocab 32000)",
             mlp_matrices=3, sliding_window=4096),
    )
}


def get(model) -> ModelConfig:
    """The one resolver of a model argument: a preset name, a ModelConfig, or a config that
    converts itself (the tiny model's TinyGPTConfig, via ``to_model_config()``).

    Public functions call it once at their boundary and pass the ModelConfig down.
    """
    if isinstance(model, ModelConfig):
        return model
    if callable(getattr(model, "to_model_config", None)):  # duck-typed: models sits below tiny_gpt
        return get(model.to_model_config())
    if not isinstance(model, str):
        raise TypeError(f"model must be a preset name or ModelConfig, got {type(model).__name__}")
    try:
        return PRESETS[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; presets: {', '.join(PRESETS)}") from None


# ----------------------------------------------------------------------------- latent attention
@dataclass(frozen=True)
class MLAConfig:
    """Cache shape of multi-head latent attention (MLA): what one token leaves per layer.

    kv_lora_rank (d_c): the compressed key-value latent; qk_rope_head_dim (d_h^R): the one
    decoupled rotary key shared by all heads; n_heads × head_dim: the heads it expands to.
    """

    name: str
    n_layers: int
    n_heads: int
    head_dim: int
    kv_lora_rank: int
    qk_rope_head_dim: int
    source: str

    def __post_init__(self):
        check_str("name", self.name), check_str("source", self.source)
        for f in ("n_layers", "n_heads", "head_dim", "kv_lora_rank", "qk_rope_head_dim"):
            object.__setattr__(self, f, check_positive_int(f, getattr(self, f)))


#: DeepSeek-V2's attention, the one model here with MLA.
DEEPSEEK_V2_MLA = MLAConfig(
    "deepseek-v2", n_layers=60, n_heads=128, head_dim=128, kv_lora_rank=512, qk_rope_head_dim=64,
    source="DeepSeek-AI 2024, 'DeepSeek-V2: A Strong, Economical, and Efficient Mixture-of-Experts "
           "Language Model' (arXiv:2405.04434), §3.1.1: 60 layers, 128 heads of dimension 128, "
           "KV compression dimension d_c = 512, decoupled key dimension d_h^R = 64 (config.json: "
           "kv_lora_rank 512, qk_rope_head_dim 64); Table 1: (d_c + d_h^R)·l elements per token")
