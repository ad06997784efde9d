"""Counting: handshakes, FLOPs, bytes and crossover lengths (chapters 1-3).

Conventions. A multiply-add is 2 FLOPs, so an (m, k) @ (k, n) matmul is 2·m·k·n FLOPs.
Attention "score FLOPs" are the two N×N matmuls, QKᵀ and PV: 2·N²·d each, 4·N²·d per
layer (d = d_attn = heads × head dim). With a causal mask only the N(N+1)/2 visible pairs
are computed (what FlashAttention's causal kernel does), giving exactly 2·N(N+1)·d.
"""
from __future__ import annotations

from . import models

#: Elementwise FLOPs we charge per score for the softmax: max, subtract, exp, sum, divide.
SOFTMAX_FLOPS_PER_SCORE = 5


def _check_n(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return n


def handshakes(n: int) -> int:
    """Unordered pairs of n people, nobody shaking their own hand: n(n-1)/2."""
    n = _check_n("n", n)
    return n * (n - 1) // 2


def attention_pairs(n_tokens: int, *, causal: bool = False) -> int:
    """(query, key) pairs attention scores: ordered and self included, N² (N(N+1)/2 causal)."""
    n = _check_n("n_tokens", n_tokens)
    return n * (n + 1) // 2 if causal else n * n


def attention_flops(n_tokens: int, d_model: int, n_layers: int = 1, *, causal: bool = False) -> int:
    """FLOPs of QKᵀ and PV over all heads and layers: 4·N²·d·L (2·N(N+1)·d·L causal)."""
    _check_n("d_model", d_model), _check_n("n_layers", n_layers)
    return 4 * attention_pairs(n_tokens, causal=causal) * d_model * n_layers


def attention_backward_flops(n_tokens: int, d_model: int, n_layers: int = 1, *,
                             causal: bool = False, recompute: bool = True) -> int:
    """Backward FLOPs of QKᵀ and PV: 10·N²·d·L with recomputation, 8·N²·d·L without.

    Per visible (query, key) pair and head dim, each matmul costs 2: FlashAttention's backward
    recomputes S = QKᵀ, then dV = PᵀdO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀQ (5 matmuls,
    2.5× the forward's 4·N²·d); plain autograd keeps P and skips the recomputation
    (4 matmuls, 2×).
    causal counts the N(N+1)/2 visible pairs, as :func:`attention_flops` does. Chapter 4.
    """
    _check_n("d_model", d_model), _check_n("n_layers", n_layers)
    matmuls = 5 if recompute else 4
    return 2 * matmuls * attention_pairs(n_tokens, causal=causal) * d_model * n_layers


def layer_flops(model: str | models.ModelConfig, n_tokens: int, *, causal: bool = False) -> dict[str, int]:
    """Forward FLOPs of one layer over N tokens, by part.

    projections: Q and O (2·N·d·d_attn each) plus K and V (2·N·d·d_kv each) — 8·N·d² for MHA
    scores:      QKᵀ, 2·pairs·head_dim per head
    scale:       one multiply per score
    softmax:     SOFTMAX_FLOPS_PER_SCORE per score
    av:          PV, 2·pairs·head_dim per head
    mlp:         2·N·d·d_ff per matrix: 16·N·d² for a 4× GELU MLP, 6·N·d·d_ff for SwiGLU
    """
    cfg = models.get(model)
    n = _check_n("n_tokens", n_tokens)
    pairs = attention_pairs(n, causal=causal) * cfg.n_heads  # scores over all heads
    d = cfg.d_model
    return {
        "projections": 2 * n * d * (2 * cfg.d_attn + 2 * cfg.d_kv),
        "scores": 2 * pairs * cfg.head_dim,
        "scale": pairs,
        "softmax": SOFTMAX_FLOPS_PER_SCORE * pairs,
        "av": 2 * pairs * cfg.head_dim,
        "mlp": 2 * n * d * cfg.d_ff * cfg.mlp_matrices,
    }


def forward_flops(model: str | models.ModelConfig, n_tokens: int, *, causal: bool = False,
                  unembedding: bool = False) -> dict[str, int]:
    """Whole-model forward FLOPs by part (all layers), optionally with the output logits."""
    cfg = models.get(model)
    parts = {k: v * cfg.n_layers for k, v in layer_flops(cfg, n_tokens, causal=causal).items()}
    if unembedding:
        parts["unembedding"] = 2 * n_tokens * cfg.d_model * cfg.vocab
    return parts


def attention_share(model: str | models.ModelConfig, n_tokens: int, *, causal: bool = False) -> float:
    """Fraction of forward FLOPs that grow with N²: scores, scale, softmax and PV."""
    parts = layer_flops(model, n_tokens, causal=causal)
    quadratic = parts["scores"] + parts["scale"] + parts["softmax"] + parts["av"]
    return quadratic / sum(parts.values())


def crossover_length(model: str | models.ModelConfig, against: str = "mlp", *, causal: bool = False) -> float:
    """N at which score FLOPs (QKᵀ + PV) equal the dense FLOPs `against`.

    against: 'projections' (N = 2d for MHA), 'mlp' (N = 4d for a 4× MLP) or 'dense'
    (both; N = 6d). Score FLOPs per token grow as 4·N·d_attn (2·N·d_attn causal, to leading
    order), dense FLOPs per token are constant, so the crossover is their ratio.
    """
    parts = layer_flops(model, 1)
    dense = {"projections": parts["projections"], "mlp": parts["mlp"]}
    dense["dense"] = dense["projections"] + dense["mlp"]
    if against not in dense:
        raise ValueError(f"against must be one of {sorted(dense)}, got {against!r}")
    cfg = models.get(model)
    per_token_per_n = (2 if causal else 4) * cfg.d_attn
    return dense[against] / per_token_per_n


def score_matrix_bytes(n_tokens: int, bytes_per_value: int = 2, *, n_heads: int = 1, n_layers: int = 1) -> int:
    """Bytes of the materialised N×N score matrix (per head per layer by default)."""
    n = _check_n("n_tokens", n_tokens)
    return n * n * bytes_per_value * n_heads * n_layers


def kv_cache_bytes(model: str | models.ModelConfig, n_tokens: int, bytes_per_value: int = 2, *,
                   batch: int = 1) -> int:
    """Bytes of the K and V cache: 2 · layers · kv_heads · head_dim · tokens · bytes · batch.

    Grouped-query models store only their kv heads; a sliding window caps the stored tokens.
    """
    cfg = models.get(model)
    n = _check_n("n_tokens", n_tokens)
    stored = min(n, cfg.sliding_window) if cfg.sliding_window else n
    return 2 * cfg.n_layers * cfg.d_kv * stored * bytes_per_value * _check_n("batch", batch)


def kaplan_forward_flops_per_token(model: str | models.ModelConfig, n_ctx: int) -> float:
    """Kaplan et al. 2020, Table 1: C_forward ≈ 2·N_params + 2·n_layer·n_ctx·d_attn per token.

    N_params counts non-embedding weights: layers · (attention 2·d·(d_attn + d_kv) + MLP).
    """
    cfg = models.get(model)
    n_params = cfg.n_layers * (2 * cfg.d_model * (cfg.d_attn + cfg.d_kv) + cfg.mlp_matrices * cfg.d_model * cfg.d_ff)
    return 2 * n_params + 2 * cfg.n_layers * n_ctx * cfg.d_attn


def palm_training_flops_per_token(model: str | models.ModelConfig, seq_len: int) -> float:
    """Chowdhery et al. 2022 (PaLM), Appendix B: 6·N + 12·L·H·Q·T per token (training).

    N = non-embedding parameters, L layers, H heads, Q head dim, T sequence length. Forward
    is a third of it: 2·N + 4·L·H·Q·T, i.e. 4·L·d_attn·T per token = our 4·N²·d per sequence.
    """
    cfg = models.get(model)
    n_params = cfg.n_layers * (2 * cfg.d_model * (cfg.d_attn + cfg.d_kv) + cfg.mlp_matrices * cfg.d_model * cfg.d_ff)
    return 6 * n_params + 12 * cfg.n_layers * cfg.n_heads * cfg.head_dim * seq_len
