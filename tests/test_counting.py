"""attn_lib.counting: handshakes, FLOPs (checked against torch's FlopCounterMode), bytes, crossovers."""
import itertools

import pytest
import torch
from hypothesis import given, strategies as st
from torch.utils.flop_counter import FlopCounterMode

from attn_lib import counting as C
from attn_lib import models, reference, variants
from attn_lib.models import ModelConfig


# ----------------------------------------------------------------------------- pairs
@pytest.mark.parametrize("n, pairs", [(0, 0), (1, 0), (2, 1), (5, 10), (10, 45), (100, 4950), (1000, 499500)])
def test_handshakes(n, pairs):
    assert C.handshakes(n) == pairs


@given(st.integers(0, 60))
def test_handshakes_count_pairs_by_enumeration(n):
    assert C.handshakes(n) == len(list(itertools.combinations(range(n), 2)))
    # Ordered (query, key) pairs with self: N² all-to-all, N(N+1)/2 causal = handshakes + N.
    assert C.attention_pairs(n) == n * n
    assert C.attention_pairs(n, causal=True) == sum(1 for i in range(n) for j in range(n) if j <= i)
    assert C.attention_pairs(n, causal=True) == C.handshakes(n) + n


@pytest.mark.parametrize("nq,nk", [(1, 1), (5, 5), (3, 9), (9, 3), (1, 64), (64, 1), (0, 4)])
def test_rectangular_pairs_and_call_flops_count_the_mask(nq, nk):
    for causal in (False, True):
        pairs = int(reference.causal_mask(nq, nk).sum()) if causal else nq * nk
        assert C.attention_pairs(nq, nk, causal=causal) == pairs
        assert C.attention_call_flops(2, 3, nq, nk, 16, causal) == 4 * 2 * 3 * pairs * 16
    assert C.attention_call_flops(1, 1, nq, nk, 16, False, head_dim_v=32) == 2 * nq * nk * (16 + 32)


@pytest.mark.parametrize("nq,nk", [(0, 3), (1, 3), (5, 5), (10, 10), (100, 100), (3, 9), (9, 3)])
def test_sliding_window_pairs_and_flops_count_the_mask(nq, nk):
    for w in (1, 3, 7, 10, 200):
        pairs = int(variants.sliding_window_mask(nq, nk, w).sum())
        assert C.attention_pairs(nq, nk, window=w) == pairs
    assert C.attention_flops(100, 64, window=7) == 4 * C.attention_pairs(100, window=7) * 64
    # a window as long as the sequence is plain causal attention
    assert C.attention_pairs(50, window=50) == C.attention_pairs(50, causal=True)


def test_receptive_field():
    assert C.receptive_field(0, 5) == 1
    assert C.receptive_field(3, 5) == 13
    assert C.receptive_field(32, 4096) == 32 * 4095 + 1


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_window_names_argument(bad, exc):
    with pytest.raises(exc, match="window"):
        C.attention_pairs(4, window=bad)
    with pytest.raises(exc, match="window"):
        C.receptive_field(2, bad)


# ----------------------------------------------------------------------------- FLOPs
@given(st.integers(0, 5000), st.integers(1, 8192), st.integers(1, 100))
def test_attention_flops_formula(n, d, layers):
    assert C.attention_flops(n, d, layers) == 4 * n * n * d * layers
    assert C.attention_flops(n, d, layers, causal=True) == 2 * n * (n + 1) * d * layers


def test_attention_flops_equal_flop_counter_on_qk_and_av():
    n, heads, hd = 48, 4, 16
    q, k, v = (torch.randn(heads, n, hd) for _ in range(3))
    with FlopCounterMode(display=False) as fc:
        p = torch.softmax(q @ k.transpose(-1, -2) / hd**0.5, dim=-1)
        p @ v
    assert fc.get_total_flops() == C.attention_flops(n, heads * hd)


def one_layer_flops_by_part(cfg: ModelConfig, n: int) -> dict[str, int]:
    """Run one decoder layer's matmuls as torch ops on the meta device and count them.

    Projections with nn.Linear (no bias), scores and AV with matmul per query head (grouped
    kv heads are repeated to their queries), MLP with nn.Linear: 2 matrices (GELU) or 3 (SwiGLU).
    """
    meta = {"device": "meta"}
    lin = lambda i, o: torch.nn.Linear(i, o, bias=False, **meta)  # noqa: E731
    x = torch.empty(n, cfg.d_model, **meta)  # (N, d)
    counts = {}

    def count(part, fn):
        with FlopCounterMode(display=False) as fc:
            out = fn()
        counts[part] = fc.get_total_flops()
        return out

    def projections():
        q = lin(cfg.d_model, cfg.d_attn)(x)
        k, v = lin(cfg.d_model, cfg.d_kv)(x), lin(cfg.d_model, cfg.d_kv)(x)
        lin(cfg.d_attn, cfg.d_model)(torch.empty(n, cfg.d_attn, **meta))  # output projection
        return q, k, v

    q, k, v = count("projections", projections)
    heads = lambda t, h: t.view(n, h, cfg.head_dim).transpose(0, 1)  # noqa: E731  (h, N, hd)
    group = cfg.n_heads // cfg.n_kv_heads
    qh = heads(q, cfg.n_heads)
    kh, vh = (heads(t, cfg.n_kv_heads).repeat_interleave(group, dim=0) for t in (k, v))
    s = count("scores", lambda: torch.matmul(qh, kh.transpose(-1, -2)))  # (h, N, N)
    count("av", lambda: torch.matmul(s, vh))

    def mlp():
        if cfg.mlp_matrices == 3:  # SwiGLU: gate, up, down
            h = lin(cfg.d_model, cfg.d_ff)(x) * lin(cfg.d_model, cfg.d_ff)(x)
        else:
            h = lin(cfg.d_model, cfg.d_ff)(x)
        return lin(cfg.d_ff, cfg.d_model)(h)

    count("mlp", mlp)
    return counts


TOY_GQA = ModelConfig("toy-gqa", 1, 96, 6, 2, 16, 256, 100, 64, "test", mlp_matrices=3)


@pytest.mark.parametrize("model", [*models.PRESETS, TOY_GQA])
def test_layer_flops_matmul_parts_equal_flop_counter(model):
    cfg = models.get(model)
    n = 16
    counted = one_layer_flops_by_part(cfg, n)
    ours = C.layer_flops(cfg, n)
    for part in ("projections", "scores", "av", "mlp"):
        assert ours[part] == counted[part], part


def test_layer_flops_formulas_for_gpt_style_model():
    cfg, n = models.get("gpt2-small"), 1024
    d = cfg.d_model
    parts = C.layer_flops(cfg, n)
    assert parts["projections"] == 8 * n * d * d
    assert parts["mlp"] == 16 * n * d * d
    assert parts["scores"] + parts["av"] == C.attention_flops(n, d)
    assert parts["softmax"] == C.SOFTMAX_FLOPS_PER_SCORE * cfg.n_heads * n * n
    assert parts["scale"] == cfg.n_heads * n * n
    causal = C.layer_flops(cfg, n, causal=True)
    assert causal["scores"] + causal["av"] == C.attention_flops(n, d, causal=True)
    assert causal["mlp"] == parts["mlp"]


def test_forward_flops_and_attention_share():
    cfg = models.get("llama-2-7b")
    per_layer = C.layer_flops(cfg, 512)
    total = C.forward_flops(cfg, 512)
    assert total == {k: v * cfg.n_layers for k, v in per_layer.items()}
    assert C.forward_flops(cfg, 512, unembedding=True)["unembedding"] == 2 * 512 * cfg.d_model * cfg.vocab
    shares = [C.attention_share(cfg, n) for n in (128, 1024, 8192, 65536)]
    assert shares == sorted(shares) and 0 < shares[0] < 0.1 and shares[-1] > 0.5


@pytest.mark.parametrize("model", ["gpt2-small", "gpt3-175b", "opt-13b"])
def test_crossovers_for_gpt_style_models(model):
    # 4x MLP, MHA: score FLOPs 4N·d per token vs projections 8d², MLP 16d², both 24d².
    d = models.get(model).d_model
    assert C.crossover_length(model, "projections") == 2 * d
    assert C.crossover_length(model, "mlp") == 4 * d
    assert C.crossover_length(model, "dense") == 6 * d
    assert C.crossover_length(model, "dense", causal=True) == 12 * d


def test_crossover_is_where_score_flops_equal_dense_flops():
    cfg = models.get("llama-3-8b")
    n = round(C.crossover_length(cfg, "dense"))
    parts = C.layer_flops(cfg, n)
    assert parts["scores"] + parts["av"] == pytest.approx(parts["projections"] + parts["mlp"], rel=1e-3)
    with pytest.raises(ValueError, match="against"):
        C.crossover_length(cfg, "softmax")


def test_kaplan_and_palm_per_token_flops():
    cfg = models.get("gpt3-175b")
    n_params = 12 * cfg.n_layers * cfg.d_model**2  # Kaplan's 12·L·d² for a 4x MLP
    assert C.kaplan_forward_flops_per_token(cfg, 2048) == 2 * n_params + 2 * cfg.n_layers * 2048 * cfg.d_model
    assert n_params == pytest.approx(174e9, rel=0.01)  # "175B" minus embeddings
    assert C.palm_training_flops_per_token(cfg, 2048) == 6 * n_params + 12 * cfg.n_layers * cfg.d_model * 2048
    # Forward attention term per token, times N tokens, is our 4·N²·d·L.
    assert (C.palm_training_flops_per_token(cfg, 2048) - 6 * n_params) / 3 * 2048 == C.attention_flops(2048, cfg.d_model, cfg.n_layers)


# ----------------------------------------------------------------------------- bytes
def test_score_matrix_bytes():
    assert C.score_matrix_bytes(32768, 4) == 4 * 2**30  # fp32, one head: 4 GiB
    assert C.score_matrix_bytes(1024) == 2 * 2**20
    assert C.score_matrix_bytes(10, 2, n_heads=3, n_layers=2) == 10 * 10 * 2 * 6


def test_weight_bytes():
    assert C.weight_bytes("llama-2-7b", 1) == pytest.approx(6.74e9, rel=2e-3)  # the paper's 7B is 6.74B
    assert C.weight_bytes("llama-3-8b", 1) == pytest.approx(8.03e9, rel=1e-3)
    assert C.weight_bytes("gpt2-small", 1, untied_embeddings=False) == pytest.approx(124e6, rel=0.02)
    cfg = models.get("gpt2-small")
    assert C.weight_bytes(cfg, 2) - C.weight_bytes(cfg, 2, untied_embeddings=False) == 2 * cfg.vocab * cfg.d_model
    # the same matrices a decode step multiplies by, plus the input embedding
    shapes = C.weight_shapes(cfg, unembedding=True)
    assert C.weight_bytes(cfg, 1) == sum(m * n for m, n in shapes) + cfg.vocab * cfg.d_model
    assert len(C.weight_shapes(cfg)) == cfg.n_layers * (4 + cfg.mlp_matrices)


def test_counting_accepts_the_tiny_models_config():
    from attn_lib.tiny_gpt import TinyGPTConfig

    tiny = TinyGPTConfig()
    as_model = tiny.to_model_config()
    assert models.get(tiny) == as_model
    assert C.kv_cache_bytes(tiny, 64) == C.kv_cache_bytes(as_model, 64)
    assert C.forward_flops(tiny, 32, causal=True) == C.forward_flops(as_model, 32, causal=True)
    with pytest.raises(TypeError, match="model"):
        models.get(3)


def test_kv_cache_opt13b_is_800_kib_per_token():
    # vLLM paper (Kwon et al. 2023, §3): "≈800 KB" per token for OPT-13B = 2·40·5120·2 bytes.
    assert C.kv_cache_bytes("opt-13b", 1) == 819200 == 800 * 1024
    assert C.kv_cache_bytes("opt-13b", 2048, batch=3) == 3 * 2048 * 819200
    assert C.kv_cache_bytes("opt-13b", 1, bytes_per_value=4) == 2 * 819200


def test_kv_cache_mistral_capped_by_window():
    per_token = C.kv_cache_bytes("mistral-7b", 1)
    assert per_token == 2 * 32 * 8 * 128 * 2  # 8 kv heads only
    assert C.kv_cache_bytes("mistral-7b", 4095) == 4095 * per_token
    assert C.kv_cache_bytes("mistral-7b", 4096) == C.kv_cache_bytes("mistral-7b", 8192) == 4096 * per_token
    assert C.kv_cache_bytes("mistral-7b", 10**6) == 4096 * per_token


@pytest.mark.parametrize("model, kv_heads", [("llama-2-70b", 8), ("llama-3-8b", 8), ("mistral-7b", 8),
                                             ("llama-2-7b", 32), ("gpt2-small", 12)])
def test_kv_cache_stores_kv_heads_only(model, kv_heads):
    cfg = models.get(model)
    assert cfg.n_kv_heads == kv_heads
    assert C.kv_cache_bytes(model, 1) == 2 * cfg.n_layers * kv_heads * cfg.head_dim * 2
    mha = ModelConfig(**{**cfg.__dict__, "n_kv_heads": cfg.n_heads, "sliding_window": None})
    assert C.kv_cache_bytes(mha, 1) == C.kv_cache_bytes(model, 1) * cfg.n_heads // kv_heads


@pytest.mark.parametrize("model, width", [
    ("gpt2-small", 768 + 768 + 2 * 768 + 3072),  # GELU MLP: one hidden layer
    ("llama-3-8b", 4096 + 4096 + 2 * 1024 + 2 * 14336),  # GQA K/V; SwiGLU gate and up
])
def test_activation_width_and_bytes_per_device(model, width):
    assert C.activation_width(model) == width
    layers = models.get(model).n_layers
    assert C.activation_bytes_per_device(model, 4096, 4) == 4096 / 4 * width * 2 * layers


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_counting_rejects_bad_counts(bad):
    err = ValueError if bad == -1 else TypeError
    with pytest.raises(err, match="n"):
        C.handshakes(bad)
    with pytest.raises(err, match="n_tokens"):
        C.kv_cache_bytes("opt-13b", bad)
