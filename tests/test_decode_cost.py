"""Decode-time cost (chapter 3): pair counts, bytes and estimates; the tiny model against the
NumPy decode-step oracle (tests/oracles.py)."""
import numpy as np
import pytest
import torch

from attn_lib import counting, decode_cost as dc, hardware, models, reference
from attn_lib.tiny_gpt import TinyGPT, TinyGPTConfig
from attn_lib.viz import kv as kvviz
from oracles import decode_attention_step

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tiny ops (tests/conftest.py)


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_numpy_decode_step_matches_torch_layer(n_kv_heads):
    cfg = TinyGPTConfig(vocab=50, context=32, d_model=32, n_layers=2, n_heads=4, n_kv_heads=n_kv_heads, d_ff=64)
    model = TinyGPT(cfg, dtype=torch.float64)
    seq = torch.randint(0, cfg.vocab, (2, 12), generator=torch.Generator().manual_seed(0))
    _, cache = model.prefill(seq[:, :11])
    layer, block = 1, model.blocks[1]
    k_past, v_past = cache.keys(layer).numpy().copy(), cache.values(layer).numpy().copy()
    x = torch.randn(2, 1, cfg.d_model, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = block.attn(x, cache, layer)[:, 0]  # appends one row to layer 1
    w = {n: getattr(block.attn, n).weight.detach().numpy().T for n in ("wq", "wk", "wv", "wo")}
    out, k, v = decode_attention_step(x[:, 0].numpy(), k_past, v_past, **w, n_heads=cfg.n_heads)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(k, cache.k[layer][:, :, :12].numpy(), rtol=1e-12, atol=1e-12)
    assert k.shape == v.shape == (2, n_kv_heads, 12, cfg.head_dim)


def test_numpy_decode_step_is_last_row_of_causal_attention():
    rng = np.random.default_rng(0)
    d, h, hd, n = 16, 2, 8, 10
    x = rng.standard_normal((n, d))
    wq, wk, wv = (rng.standard_normal((d, h * hd)) / 4 for _ in range(3))
    wo = rng.standard_normal((h * hd, d))
    split = lambda a: a.reshape(len(a), h, hd).transpose(1, 0, 2)  # (h, rows, hd)
    full = reference.attention(split(x @ wq), split(x @ wk), split(x @ wv), causal=True)  # (h, n, hd)
    out, _, _ = decode_attention_step(x[-1:], split(x[:-1] @ wk)[None], split(x[:-1] @ wv)[None],
                                         wq, wk, wv, wo, n_heads=h)
    np.testing.assert_allclose(out[0], full[:, -1].reshape(-1) @ wo, rtol=1e-10, atol=1e-10)


def test_numpy_decode_step_rejects_bad_input():
    z = np.zeros
    with pytest.raises(TypeError, match="x"):
        decode_attention_step([1.0], z((1, 2, 3, 4)), z((1, 2, 3, 4)), z((8, 8)), z((8, 8)), z((8, 8)), z((8, 8)), n_heads=2)
    with pytest.raises(ValueError, match="n_heads"):
        decode_attention_step(z((1, 8)), z((1, 2, 3, 4)), z((1, 2, 3, 4)), z((8, 12)), z((8, 8)), z((8, 8)), z((12, 8)), n_heads=3)
    nd = [z(s) for s in ((1, 8), (1, 2, 3, 4), (1, 2, 3, 4), (8, 16), (8, 8), (8, 8), (16, 8))]
    with pytest.raises(TypeError, match="n_heads"):
        decode_attention_step(*nd, n_heads=4.0)
    with pytest.raises(ValueError, match="wo"):
        decode_attention_step(*nd[:-1], nd[3], n_heads=4)


def _brute_pairs(p, n, cached):
    total = 0
    for t in range(1, n + 1):
        seen = p + t - 1  # tokens the prediction of token t is computed from
        if cached and t > 1:
            total += seen  # one query against every cached key (itself included)
        else:
            total += sum(1 for i in range(seen) for j in range(seen) if j <= i)
    return total


@pytest.mark.parametrize("p,n", [(1, 1), (1, 10), (5, 7), (16, 3)])
def test_generation_pairs(p, n):
    assert dc.generation_attention_pairs(p, n, cached=True) == _brute_pairs(p, n, True)
    assert dc.generation_attention_pairs(p, n, cached=False) == _brute_pairs(p, n, False)
    t = 50  # from a 1-token prompt: T(T+1)/2 with the cache, T(T+1)(T+2)/6 without
    assert dc.generation_attention_pairs(1, t, cached=True) == t * (t + 1) // 2
    assert dc.generation_attention_pairs(1, t, cached=False) == t * (t + 1) * (t + 2) // 6


def test_decode_attention_intensity():
    mha = dc.decode_attention_cost("llama-2-7b", 10**7)  # long cache: 1 + 1.5/head_dim
    assert mha["intensity"] == pytest.approx(1 + 1.5 / 128, rel=1e-5)
    gqa = dc.decode_attention_cost("llama-2-70b", 10**7)  # 8 query heads per kv head
    assert gqa["intensity"] == pytest.approx(8 * (1 + 1.5 / 128), rel=1e-5)
    fp32 = dc.decode_attention_cost("llama-2-7b", 4096, bytes_per_value=4)
    assert fp32["intensity"] == pytest.approx(dc.decode_attention_cost("llama-2-7b", 4096)["intensity"] / 2)
    one, eight = (dc.decode_attention_cost("gpt2-small", 100, batch=b) for b in (1, 8))
    assert eight["flops"] == 8 * one["flops"] and eight["intensity"] == one["intensity"]
    win = dc.decode_attention_cost("mistral-7b", 8000)  # the window caps the keys read
    assert win == dc.decode_attention_cost("mistral-7b", 4096)


def test_weight_matmuls_become_compute_bound_at_the_ridge():
    assert dc.weight_matmul_cost("llama-2-7b", 1)["intensity"] == pytest.approx(1, rel=1e-3)
    b = dc.compute_bound_batch("H100 SXM", "bf16")
    assert b == pytest.approx(hardware.get("H100 SXM").ridge_point("bf16"))
    assert dc.compute_bound_batch("H100 SXM", "bf16", bytes_per_value=1) == pytest.approx(b / 2)
    # The activations (batch·(m + n) values) lower the intensity a little: the exact crossover
    # batch is somewhat above the ridge point.
    assert 0.85 * b < dc.weight_matmul_cost("llama-2-7b", round(b))["intensity"] < b


def test_max_batch():
    assert dc.max_batch("llama-2-70b", 4096, "H100 SXM") == 0  # 138 GB of bf16 weights
    n = dc.max_batch("llama-2-7b", 4096, "H100 SXM")
    fits = lambda b: counting.weight_bytes("llama-2-7b") + counting.kv_cache_bytes("llama-2-7b", 4096, batch=b)
    assert fits(n) <= 80e9 < fits(n + 1)


def test_decode_step_estimate():
    small = dc.decode_step_estimate("llama-2-7b", 4096, 1, "H100 SXM")
    assert small["bound"] == "memory" and small["fits"]
    assert small["time_s"] == pytest.approx(small["bytes"] / 3.35e12)
    big = dc.decode_step_estimate("llama-2-7b", 16, 4096, "H100 SXM")  # huge batch, short caches
    assert big["bound"] == "compute" and big["fits"]
    assert not dc.decode_step_estimate("llama-2-7b", 4096, 64, "H100 SXM")["fits"]


def test_prefix_cache_saves_exactly_the_prefix_prefill():
    for model in ("gpt2-small", "llama-3-8b", TinyGPTConfig()):
        r = dc.prefix_cache_flops(model, 300, 20)
        cfg = models.get(model)
        parts = counting.layer_flops(cfg, 1)
        dense = (parts["projections"] + parts["mlp"]) * 20
        pairs = 20 * 300 + 20 * 21 // 2  # the suffix's queries see the prefix and each other
        per_pair = parts["scores"] + parts["scale"] + parts["softmax"] + parts["av"]
        assert r["with_cache"] == cfg.n_layers * (dense + pairs * per_pair)
        assert r["saved"] == sum(counting.forward_flops(cfg, 300, causal=True).values())
        # the prefix's own prefill, split: dense linear in P, attention quadratic
        assert r["saved_dense"] == cfg.n_layers * (parts["projections"] + parts["mlp"]) * 300
        assert r["saved_dense"] + r["saved_attention"] == r["saved"]
        assert r["saved_attention"] == cfg.n_layers * per_pair * (300 * 301 // 2)
    shares = [dc.prefix_cache_flops("llama-2-7b", p, 0)["saved_attention_share"]
              for p in (1000, 4000, 16000, 100_000)]
    assert shares == sorted(shares) and shares[0] < 0.05 and shares[-1] > 0.5
    assert dc.prefix_cache_flops("llama-2-7b", 0, 5)["saved_attention_share"] == 0.0
    assert dc.common_prefix_len([1, 2, 3, 4], [1, 2, 9]) == 2
    assert dc.common_prefix_len([1, 2], [1, 2, 3]) == 2


def test_table_rows():
    rows = {r["model"]: r for r in kvviz.kv_memory_rows()}
    table = kvviz.kv_table_markdown()
    assert "| 37.75 MB (36.00 MiB) |" in table and "0.0 GB" not in table  # gpt2-small
    head = table.splitlines()[0].split("|")
    assert len(set(head)) == len(head) - 1  # no repeated header ('per token | per token')
    assert rows["opt-13b"]["per_token"] == 819200  # vLLM paper: ~800 KB per token
    assert rows["llama-2-7b"]["per_token"] == 4 * rows["llama-3-8b"]["per_token"]  # GQA 32/8
    assert rows["mistral-7b"]["full_context"] == rows["mistral-7b"]["per_token"] * 4096  # window


def test_bad_arguments():
    with pytest.raises(ValueError, match="cache_len"):
        dc.decode_attention_cost("gpt2-small", 0)
    with pytest.raises(TypeError, match="batch"):
        dc.weight_matmul_cost("gpt2-small", 1.5)
    with pytest.raises(ValueError, match="unknown model"):
        dc.max_batch("gpt-5", 1024, "T4")


def test_viz_smoke():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attn_lib.viz import kv as kvviz

    kvviz.plot_decode_scaling([250, 500, 1000], [1e-3, 2e-3, 4e-3], [500, 1000], 1.0)
    kvviz.plot_prefill_scaling([100, 200, 400, 800], [1e-3, 2.2e-3, 5e-3, 13e-3], 1536)
    kvviz.plot_generation([8, 16, 32], [0.01, 0.02, 0.04], [0.02, 0.06, 0.2])
    kvviz.plot_batch_context(["llama-2-7b", "llama-2-70b"], ("H100 SXM", "T4"))
    kvviz.plot_roofline({"decode": 1.0, "weights, batch 64": 64.0})
    plt.close("all")
    table = kvviz.kv_table_markdown(["opt-13b"])
    assert "819.20 KB (800.00 KiB)" in table  # decimal and binary units in one cell
    assert kvviz.estimate_table_markdown(("gpt2-small",), (1024,), (1, 8)).count("\n") == 3
    assert kvviz.explorer() is not None  # builds the widgets (no kernel needed)
