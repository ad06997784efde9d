"""Counting: the one home of every closed form (chapters 1-5).

Pairs (square, causal, rectangular, sliding-window), FLOPs (whole models, one layer, one
attention call), bytes (scores, KV cache, weights), crossover lengths, the receptive field of
stacked windows, and context parallelism's per-device figures. Models are preset names, a
:class:`attn_lib.models.ModelConfig` or the tiny model's config, resolved by
:func:`attn_lib.models.get` at each public function.

Conventions. A multiply-add is 2 FLOPs, so an (m, k) @ (k, n) matmul is 2·m·k·n FLOPs.
Attention "score FLOPs" are the two N×N matmuls, QKᵀ and PV: 2·N²·d each, 4·N²·d per
layer (d = d_attn = heads × head dim). With a causal mask only the N(N+1)/2 visible pairs
are computed (what FlashAttention's causal kernel does), giving exactly 2·N(N+1)·d.
"""
from __future__ import annotations

from . import models
from ._checks import (check_bool, check_bytes, check_choice, check_int,
                      check_nonneg_int, check_positive, check_positive_int)

#: Elementwise FLOPs we charge per score for the softmax: max, subtract, exp, sum, divide.
SOFTMAX_FLOPS_PER_SCORE = 5


def handshakes(n: int) -> int:
    """Unordered pairs of n people, nobody shaking their own hand: n(n-1)/2."""
    n = check_nonneg_int("n", n)
    return n * (n - 1) // 2


def block_pairs(rows: int, cols: int, offset: int) -> int:
    """Pairs (i, j) of a rows × cols block with j <= i + offset (causal, visible).

    Row i sees min(cols, max(0, i + offset + 1)) keys: none before row a, all from row
    b, an arithmetic series in between.
    """
    rows, cols = check_nonneg_int("rows", rows), check_nonneg_int("cols", cols)
    offset = check_int("offset", offset)
    if cols == 0:
        return 0
    a = min(rows, max(0, -offset))  # first row that sees a key
    b = min(rows, max(a, cols - 1 - offset))  # first row that sees every key
    return (b - a) * (a + b - 1) // 2 + (b - a) * (offset + 1) + (rows - b) * cols


def attention_pairs(n_tokens: int, n_keys: int | None = None, *, causal: bool = False,
                    window: int | None = None) -> int:
    """(query, key) pairs attention scores: n_tokens queries against n_keys keys (default the
    same tokens), ordered and self included.

    Square: N². Causal (bottom-right aligned, query i sees key j iff j <= i + Nk − Nq):
    N(N+1)/2 when square. A sliding `window` (causal; query at position p sees
    p − window < j <= p): min(i + 1, window) keys for query i when square.
    """
    nq, causal = check_nonneg_int("n_tokens", n_tokens), check_bool("causal", causal)
    nk = nq if n_keys is None else check_nonneg_int("n_keys", n_keys)
    if window is not None:
        window, diag = check_positive_int("window", window), nk - nq
        return block_pairs(nq, nk, diag) - block_pairs(nq, nk, diag - window)
    return block_pairs(nq, nk, nk - nq) if causal else nq * nk


def attention_flops(n_tokens: int, d_model: int, n_layers: int = 1, *, causal: bool = False,
                    window: int | None = None) -> int:
    """FLOPs of QKᵀ and PV over all heads and layers: 4·N²·d·L (2·N(N+1)·d·L causal;
    4·pairs·d·L under a sliding window)."""
    d_model = check_positive_int("d_model", d_model)
    n_layers = check_positive_int("n_layers", n_layers)
    return 4 * attention_pairs(n_tokens, causal=causal, window=window) * d_model * n_layers


def attention_call_flops(batch: int, heads: int, n_q: int, n_k: int, head_dim: int,
                         causal: bool = False, head_dim_v: int | None = None) -> int:
    """FLOPs of one attention call on (B, H, Nq, d) queries: 2·B·H·pairs·(d + dv).

    Only the (query, key) pairs computed count (the bottom-right causal ones under a mask);
    with dv = d that is 4·B·H·Nq·Nk·d. The benchmark suite's TFLOP/s use it.
    """
    batch, heads = check_positive_int("batch", batch), check_positive_int("heads", heads)
    head_dim = check_positive_int("head_dim", head_dim)
    dv = head_dim if head_dim_v is None else check_positive_int("head_dim_v", head_dim_v)
    n_q, n_k = check_nonneg_int("n_q", n_q), check_nonneg_int("n_k", n_k)
    return 2 * batch * heads * attention_pairs(n_q, n_k, causal=causal) * (head_dim + dv)


def receptive_field(n_layers: int, window: int) -> int:
    """Tokens a position can draw on after n_layers of sliding windows: n_layers·(window - 1) + 1.

    Information hops at most window - 1 positions back per layer (chapter 4).
    """
    window, n_layers = check_positive_int("window", window), check_nonneg_int("n_layers", n_layers)
    return n_layers * (window - 1) + 1


def attention_backward_flops(n_tokens: int, d_model: int, n_layers: int = 1, *,
                             causal: bool = False, recompute: bool = True) -> int:
    """Backward FLOPs of QKᵀ and PV: 10·N²·d·L with recomputation, 8·N²·d·L without.

    Per visible (query, key) pair and head dim, each matmul costs 2: FlashAttention's backward
    recomputes S = QKᵀ, then dV = PᵀdO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀQ (5 matmuls,
    2.5× the forward's 4·N²·d); plain autograd keeps P and skips the recomputation
    (4 matmuls, 2×).
    causal counts the N(N+1)/2 visible pairs, as :func:`attention_flops` does. Chapter 4.
    """
    d_model = check_positive_int("d_model", d_model)
    n_layers = check_positive_int("n_layers", n_layers)
    matmuls = 5 if check_bool("recompute", recompute) else 4
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
    n = check_nonneg_int("n_tokens", n_tokens)
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
    cfg, unembedding = models.get(model), check_bool("unembedding", unembedding)
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
    cfg, causal = models.get(model), check_bool("causal", causal)
    parts = layer_flops(cfg, 1)
    dense = {"projections": parts["projections"], "mlp": parts["mlp"]}
    dense["dense"] = dense["projections"] + dense["mlp"]
    if against not in dense:
        raise ValueError(f"against must be one of {sorted(dense)}, got {against!r}")
    per_token_per_n = (2 if causal else 4) * cfg.d_attn
    return dense[against] / per_token_per_n


def score_matrix_bytes(n_tokens: int, bytes_per_value: int = 2, *, n_heads: int = 1, n_layers: int = 1) -> int:
    """Bytes of the materialised N×N score matrix (per head per layer by default)."""
    n = check_nonneg_int("n_tokens", n_tokens)
    bytes_per_value = check_bytes("bytes_per_value", bytes_per_value)
    n_heads = check_positive_int("n_heads", n_heads)
    n_layers = check_positive_int("n_layers", n_layers)
    return n * n * bytes_per_value * n_heads * n_layers


def kv_cache_bytes(model: str | models.ModelConfig, n_tokens: int, bytes_per_value: int = 2, *,
                   batch: int = 1) -> int:
    """Bytes of the K and V cache: 2 · layers · kv_heads · head_dim · tokens · bytes · batch.

    Grouped-query models store only their kv heads; a sliding window caps the stored tokens.
    """
    cfg = models.get(model)
    n, batch = check_nonneg_int("n_tokens", n_tokens), check_positive_int("batch", batch)
    bytes_per_value = check_bytes("bytes_per_value", bytes_per_value)
    stored = min(n, cfg.sliding_window) if cfg.sliding_window else n
    return 2 * cfg.n_layers * cfg.d_kv * stored * bytes_per_value * batch


def _layer_params(cfg: models.ModelConfig) -> int:
    """Weights of one layer: attention 2·d·(d_attn + d_kv) (Q, O and K, V) + MLP."""
    return 2 * cfg.d_model * (cfg.d_attn + cfg.d_kv) + cfg.mlp_matrices * cfg.d_model * cfg.d_ff


def weight_shapes(model: str | models.ModelConfig, *, unembedding: bool = False) -> list[tuple[int, int]]:
    """(in, out) of every weight matrix a token passes through: per layer Q, K, V, O and the
    MLP, then the unembedding if asked. Norms and biases are left out (under 0.1 %)."""
    cfg, unembedding = models.get(model), check_bool("unembedding", unembedding)
    d = cfg.d_model
    per_layer = [(d, cfg.d_attn), (d, cfg.d_kv), (d, cfg.d_kv), (cfg.d_attn, d)]
    per_layer += [(d, cfg.d_ff)] * cfg.mlp_matrices
    return per_layer * cfg.n_layers + ([(d, cfg.vocab)] if unembedding else [])


def weight_bytes(model: str | models.ModelConfig, bytes_per_value: int = 2, *, untied_embeddings: bool = True) -> int:
    """Bytes of all weights: layers, the token embedding, and the unembedding if untied.

    GPT-2 and OPT tie the two embeddings (pass untied_embeddings=False); Llama and Mistral
    do not (Llama-3-8B comes to 8.03 B parameters). Context parallelism replicates these on
    every device; decode reads them once per step.
    """
    untied_embeddings = check_bool("untied_embeddings", untied_embeddings)
    cfg, b = models.get(model), check_bytes("bytes_per_value", bytes_per_value)
    embeddings = (2 if untied_embeddings else 1) * cfg.vocab * cfg.d_model
    return (cfg.n_layers * _layer_params(cfg) + embeddings) * b


def kaplan_forward_flops_per_token(model: str | models.ModelConfig, n_ctx: int) -> float:
    """Kaplan et al. 2020, Table 1: C_forward ≈ 2·N_params + 2·n_layer·n_ctx·d_attn per token.

    N_params counts non-embedding weights: layers · (attention 2·d·(d_attn + d_kv) + MLP).
    """
    cfg, n_ctx = models.get(model), check_positive_int("n_ctx", n_ctx)
    n_params = cfg.n_layers * _layer_params(cfg)
    return 2 * n_params + 2 * cfg.n_layers * n_ctx * cfg.d_attn


def palm_training_flops_per_token(model: str | models.ModelConfig, seq_len: int) -> float:
    """Chowdhery et al. 2022 (PaLM), Appendix B: 6·N + 12·L·H·Q·T per token (training).

    N = non-embedding parameters, L layers, H heads, Q head dim, T sequence length. Forward
    is a third of it: 2·N + 4·L·H·Q·T, i.e. 4·L·d_attn·T per token = our 4·N²·d per sequence.
    """
    cfg, seq_len = models.get(model), check_positive_int("seq_len", seq_len)
    n_params = cfg.n_layers * _layer_params(cfg)
    return 6 * n_params + 12 * cfg.n_layers * cfg.n_heads * cfg.head_dim * seq_len


# ------------------------------------------------------------------ context parallelism
# Chapter 5: one sequence split over P devices (ring attention, Ulysses). Per device,
# per layer unless stated; "width" = values per token (K and V together for kv_width).
def kv_bytes_per_device(model: str | models.ModelConfig, n_tokens: int, world_size: int,
                        bytes_per_value: int = 2) -> float:
    """K and V of all layers for one device's N/P tokens: kv_cache_bytes(N) / P."""
    return kv_cache_bytes(model, n_tokens, bytes_per_value) / check_positive_int("world_size", world_size)


def activation_width(model: str | models.ModelConfig) -> int:
    """Values per token live in one layer's forward: residual d, q/k/v, MLP hidden.

    d_model (the residual stream) + d_attn + 2·d_kv (q, k, v) + (mlp_matrices − 1)·d_ff
    (SwiGLU's gate and up projections; a GELU MLP's one hidden layer).
    """
    cfg = models.get(model)
    return cfg.d_model + cfg.d_attn + 2 * cfg.d_kv + (cfg.mlp_matrices - 1) * cfg.d_ff


def activation_bytes_per_device(model: str | models.ModelConfig, n_tokens: int,
                                world_size: int, bytes_per_value: int = 2, *,
                                n_layers: int | None = None) -> float:
    """Activations of N/P tokens over `n_layers` layers (default: all, as in training).

    N/P · activation_width · bytes · layers. With FlashAttention no N² term appears: the
    scores never exist as a whole, so activations are linear in N and fall as 1/P.
    """
    cfg = models.get(model)
    layers = cfg.n_layers if n_layers is None else check_nonneg_int("n_layers", n_layers)
    n = check_nonneg_int("n_tokens", n_tokens)
    p = check_positive_int("world_size", world_size)
    b = check_bytes("bytes_per_value", bytes_per_value)
    return n / p * activation_width(cfg) * b * layers


def ring_bytes_per_step(n_tokens: int, world_size: int, kv_width: int,
                        bytes_per_value: int = 2) -> float:
    """Bytes each rank sends (and receives) per ring step: N/P · kv_width · b.

    kv_width = heads · (d + dv) for one attention call; 2·d_kv per layer of a model.
    """
    n, p = check_nonneg_int("n_tokens", n_tokens), check_positive_int("world_size", world_size)
    kv_width = check_positive_int("kv_width", kv_width)
    return n / p * kv_width * check_bytes("bytes_per_value", bytes_per_value)


def ring_bytes_total(n_tokens: int, world_size: int, kv_width: int,
                     bytes_per_value: int = 2) -> float:
    """Bytes each rank sends in P − 1 ring steps: (P − 1)/P · N · kv_width · b."""
    p = check_positive_int("world_size", world_size)
    return (p - 1) * ring_bytes_per_step(n_tokens, p, kv_width, bytes_per_value)


def ulysses_bytes_total(n_tokens: int, world_size: int, width: int,
                        bytes_per_value: int = 2) -> float:
    """Bytes each rank sends in Ulysses' all-to-alls: (P − 1)/P² · N · width · b.

    Each rank keeps 1/P of its N/P-token shard and sends the rest; width sums every
    tensor moved: q, k, v in and the output back, heads·(2d + 2dv) (2·d_attn + 2·d_kv
    per layer of a model).
    """
    p = check_positive_int("world_size", world_size)
    width = check_positive_int("width", width)
    n = check_nonneg_int("n_tokens", n_tokens)
    b = check_bytes("bytes_per_value", bytes_per_value)
    return (p - 1) / p**2 * n * width * b


def ulysses_max_world_size(model: str | models.ModelConfig) -> int:
    """Ulysses gives each rank whole heads: at most n_kv_heads ranks, unless K/V heads
    are copied."""
    return models.get(model).n_kv_heads


def ring_pairs_per_rank(n_tokens: int, world_size: int, layout: str = "contiguous", *,
                        causal: bool = True) -> list[int]:
    """Visible (query, key) pairs each rank scores, one head, Nq = Nk = N.

    Not causal: N²/P each. Causal, contiguous: rank r scores r·C² + C(C+1)/2 with
    C = N/P, so the last rank does ≈ 2P − 1 times the first's work. Causal, zigzag
    (chunks r and 2P − 1 − r of c = N/2P): (2P − 1)·c² + c(c + 1) for every rank.
    """
    n, p = check_nonneg_int("n_tokens", n_tokens), check_positive_int("world_size", world_size)
    check_choice("layout", layout, ("contiguous", "zigzag"))
    causal = check_bool("causal", causal)
    parts = p * (1 if layout == "contiguous" else 2)
    if n % parts:
        raise ValueError(f"n_tokens ({n}) must be divisible by {parts} "
                         f"for layout {layout!r}")
    if not causal:
        return [n * n // p] * p
    c = n // parts
    if layout == "contiguous":
        return [r * c * c + c * (c + 1) // 2 for r in range(p)]
    return [(2 * p - 1) * c * c + c * (c + 1) for _ in range(p)]


def overlap_min_tokens(model: str | models.ModelConfig, flop_rate: float,
                       link_bandwidth: float, bytes_per_value: int = 2, *,
                       causal: bool = False) -> float:
    """Fewest tokens per device for which a ring step's compute hides its K/V transfer.

    Per layer, a step scores C = N/P local queries against C received keys, 4·C²·d_attn
    FLOPs (half of that under a causal mask, zigzag), while C·2·d_kv·b bytes cross the
    link. Compute ≥ transfer ⇔ 4·C²·d_attn / F ≥ 2·C·d_kv·b / B ⇔
    C ≥ d_kv·b·F / (2·d_attn·B) (twice that causal).
    """
    cfg, b = models.get(model), check_bytes("bytes_per_value", bytes_per_value)
    f = check_positive("flop_rate", flop_rate)
    bw = check_positive("link_bandwidth", link_bandwidth)
    c = cfg.d_kv * b * f / (2 * cfg.d_attn * bw)
    return 2 * c if check_bool("causal", causal) else c


def ring_step_seconds(model: str | models.ModelConfig, n_tokens: int, world_size: int,
                      flop_rate: float, link_bandwidth: float,
                      bytes_per_value: int = 2, *, causal: bool = False) -> dict:
    """One ring step of one layer at peak rates: compute, transfer, step (their max).

    The transfer overlaps the compute, so a step takes max(compute, transfer); the whole
    attention of a forward pass is P steps × layers.
    """
    cfg = models.get(model)
    c = check_nonneg_int("n_tokens", n_tokens) / check_positive_int("world_size", world_size)
    flop_rate = check_positive("flop_rate", flop_rate)
    link_bandwidth = check_positive("link_bandwidth", link_bandwidth)
    causal = check_bool("causal", causal)
    flops = 4 * c * c * cfg.d_attn / (2 if causal else 1)
    compute = flops / flop_rate
    sent = ring_bytes_per_step(n_tokens, world_size, 2 * cfg.d_kv, bytes_per_value)
    transfer = sent / link_bandwidth
    if world_size == 1:
        transfer = 0.0
    return {"compute": compute, "transfer": transfer, "step": max(compute, transfer)}



# ------------------------------------------------------------------ serving (chapter 3b)
# Paged caches, chunked prefill and compressed caches. Lengths are tokens per sequence.
def blocks_for(n_tokens: int, block_size: int) -> int:
    """Blocks of `block_size` tokens a paged cache reserves for n_tokens: ceil(N / B)."""
    n, b = check_nonneg_int("n_tokens", n_tokens), check_positive_int("block_size", block_size)
    return -(-n // b)


def paged_waste_tokens(lengths, block_size: int) -> int:
    """Reserved but empty token slots of a paged cache: Σ (ceil(L/B)·B − L) = Σ (−L mod B).

    Only each sequence's last block can be partly empty (internal fragmentation).
    """
    b = check_positive_int("block_size", block_size)
    return sum((-check_nonneg_int("lengths", n)) % b for n in lengths)


def contiguous_waste_tokens(lengths, max_len: int) -> int:
    """Empty slots when each sequence reserves `max_len` up front: Σ (max_len − L)."""
    m = check_positive_int("max_len", max_len)
    total = 0
    for n in lengths:
        n = check_nonneg_int("lengths", n)
        if n > m:
            raise ValueError(f"lengths: a sequence of {n} tokens exceeds max_len={m}")
        total += m - n
    return total


def expected_last_block_waste(block_size: int) -> float:
    """Expected empty slots in a sequence's last block, (B − 1)/2, when L mod B is uniform.

    Exact for lengths uniform on a range whose size is a multiple of B (and for sums of
    independent such lengths); close to it for any spread-out length distribution.
    """
    return (check_positive_int("block_size", block_size) - 1) / 2


def expected_waste_share(mean_len: float, *, block_size: int | None = None,
                         max_len: int | None = None) -> float:
    """Expected share of reserved KV memory holding no token (a ratio of expectations).

    Paged (block_size B): w / (E[L] + w) with w = (B − 1)/2. Contiguous preallocation at
    max_len: 1 − E[L]/max_len. Give exactly one of block_size, max_len.
    """
    mean = check_positive("mean_len", mean_len)
    if (block_size is None) == (max_len is None):
        raise ValueError("block_size, max_len: give exactly one of them")
    if block_size is not None:
        w = expected_last_block_waste(block_size)
        return w / (mean + w)
    m = check_positive_int("max_len", max_len)
    if mean > m:
        raise ValueError(f"mean_len ({mean}) exceeds max_len ({m})")
    return 1 - mean / m


def chunked_prefill_activation_bytes(model: str | models.ModelConfig, n_tokens: int, chunk: int,
                                     bytes_per_value: int = 2) -> float:
    """One layer's live activations while prefilling n_tokens in chunks of `chunk` tokens.

    Each chunk is a forward pass over min(chunk, N) tokens against the cache, so the peak is
    chapter 5's :func:`activation_bytes_per_device` for that many tokens (one layer, one
    device, no N² term with a fused attention kernel): it depends on the chunk, not on N.
    """
    n, c = check_positive_int("n_tokens", n_tokens), check_positive_int("chunk", chunk)
    return activation_bytes_per_device(model, min(n, c), 1, bytes_per_value, n_layers=1)


def int8_kv_bytes_per_token(model: str | models.ModelConfig, block_size: int,
                            scale_bytes: int = 2) -> float:
    """KV bytes per token of an 8-bit cache with one scale per block, kv head, K or V, layer.

    1 byte per value + scale_bytes / block_size per (layer, kv head, K or V) for the scale.
    """
    cfg, b = models.get(model), check_positive_int("block_size", block_size)
    s = check_bytes("scale_bytes", scale_bytes)
    return kv_cache_bytes(cfg, 1, 1) + 2 * cfg.n_layers * cfg.n_kv_heads * s / b


def mla_kv_bytes_per_token(mla: models.MLAConfig, bytes_per_value: int = 2) -> int:
    """Cache bytes per token of multi-head latent attention: (d_c + d_rope) · layers · bytes.

    MLA stores one compressed latent c_KV (d_c values) and one shared rotary key (d_rope)
    per token and layer, instead of 2 · heads · head_dim keys and values.
    """
    from ._checks import check_type

    cfg = check_type("mla", mla, models.MLAConfig)
    b = check_bytes("bytes_per_value", bytes_per_value)
    return (cfg.kv_lora_rank + cfg.qk_rope_head_dim) * cfg.n_layers * b


def mha_equivalent_kv_bytes_per_token(mla: models.MLAConfig, bytes_per_value: int = 2) -> int:
    """What the same heads would cache per token with plain multi-head attention: 2·h·d_h·L·bytes."""
    from ._checks import check_type

    cfg = check_type("mla", mla, models.MLAConfig)
    b = check_bytes("bytes_per_value", bytes_per_value)
    return 2 * cfg.n_heads * cfg.head_dim * cfg.n_layers * b
# ---------------------------------------- context parallelism: the backward pass, USP
# Chapter 5, continued: what training adds to the ring, and the hybrid of both schemes.
def ring_backward_bytes_total(n_tokens: int, world_size: int, kv_width: int,
                              bytes_per_value: int = 2,
                              grad_bytes_per_value: int = 4) -> float:
    """Bytes each rank sends in the ring's backward pass, per layer (0 for P = 1).

    Each rank keeps its queries, output, dO and log-sum-exp, and adds its share of dQ
    locally. The K/V shards travel the ring again, P − 1 hops of N/P · kv_width · b; each
    shard's dK/dV accumulator travels with it, picks up every rank's contribution and
    takes one hop more, home: P hops of N/P · kv_width · b_grad (float32 accumulators,
    b_grad = 4, as ring-flash-attention keeps them). Total
    (P − 1)/P · N · kv_width · b + N · kv_width · b_grad.
    """
    p = check_positive_int("world_size", world_size)
    b_grad = check_bytes("grad_bytes_per_value", grad_bytes_per_value)
    if p == 1:
        check_nonneg_int("n_tokens", n_tokens), check_positive_int("kv_width", kv_width)
        check_bytes("bytes_per_value", bytes_per_value)
        return 0.0
    kv = ring_bytes_total(n_tokens, p, kv_width, bytes_per_value)
    return kv + p * ring_bytes_per_step(n_tokens, p, kv_width, b_grad)


def ring_backward_min_tokens(model: str | models.ModelConfig, flop_rate: float,
                             link_bandwidth: float, bytes_per_value: int = 2,
                             grad_bytes_per_value: int = 4, *,
                             causal: bool = False) -> float:
    """Fewest tokens per device for which a backward ring step hides its transfer.

    A backward step does 2.5× the forward's matmuls (recompute S, then dV, dP, dQ, dK:
    10·C²·d_attn FLOPs) and moves K/V and dK/dV: C·2·d_kv·(b + b_grad) bytes. Compute ≥
    transfer ⇔ C ≥ d_kv·(b + b_grad)·F / (5·d_attn·B) (twice that causal).
    """
    cfg = models.get(model)
    b = check_bytes("bytes_per_value", bytes_per_value)
    b_grad = check_bytes("grad_bytes_per_value", grad_bytes_per_value)
    f = check_positive("flop_rate", flop_rate)
    bw = check_positive("link_bandwidth", link_bandwidth)
    c = cfg.d_kv * (b + b_grad) * f / (5 * cfg.d_attn * bw)
    return 2 * c if check_bool("causal", causal) else c


def usp_bytes_total(n_tokens: int, ulysses_size: int, ring_size: int, kv_width: int,
                    width: int, bytes_per_value: int = 2) -> dict[str, float]:
    """Bytes each rank sends per layer in USP (Fang and Zhao 2024): Ulysses inside, ring across.

    P = ulysses_size · ring_size ranks on a 2-D grid. An all-to-all among ulysses_size
    ranks trades sequence for heads ((P_u − 1)/(P_u · P) · N · width · b, width as for
    :func:`ulysses_bytes_total`); then a ring of ring_size ranks passes K/V shards of
    N/P_r tokens and H/P_u heads ((P_r − 1)/P · N · kv_width · b). With P_u = 1 it is the
    ring, with P_r = 1 Ulysses. Returns {"all_to_all", "ring", "total"}.
    """
    pu = check_positive_int("ulysses_size", ulysses_size)
    pr = check_positive_int("ring_size", ring_size)
    n = check_nonneg_int("n_tokens", n_tokens)
    width, kv_width = check_positive_int("width", width), check_positive_int("kv_width", kv_width)
    b = check_bytes("bytes_per_value", bytes_per_value)
    p = pu * pr
    a2a = (pu - 1) / (pu * p) * n * width * b
    ring = (pr - 1) / p * n * kv_width * b
    return {"all_to_all": a2a, "ring": ring, "total": a2a + ring}


def linear_state_bytes(model: str | models.ModelConfig, bytes_per_value: int = 2) -> int:
    """Bytes of a linear-attention state in place of the KV cache, for any N.

    One head_dim × head_dim matrix Σ v_i k_iᵀ per KV head per layer (identity features):
    layers · kv_heads · head_dim² · b. The KV cache it replaces grows as N (chapter 5).
    """
    cfg = models.get(model)
    b = check_bytes("bytes_per_value", bytes_per_value)
    return int(cfg.n_layers * cfg.n_kv_heads * cfg.head_dim ** 2 * b)


def matmul_intensity(m: int, n: int, k: int, bytes_per_value: int = 2) -> float:
    """Arithmetic intensity (FLOP per byte) of an (m, k) @ (k, n) matmul that reads both
    inputs and writes its output once: 2·m·n·k / ((m·k + k·n + m·n) · b).

    n³ matmuls reach n/3 FLOP per bf16 byte; a matrix-vector product (n = 1) about 1
    (the GPU primer's roofline).
    """
    m, n, k = (check_positive_int(a, v) for a, v in (("m", m), ("n", n), ("k", k)))
    b = check_bytes("bytes_per_value", bytes_per_value)
    return 2 * m * n * k / ((m * k + k * n + m * n) * b)
