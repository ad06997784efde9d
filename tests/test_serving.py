"""Chapter 3b's serving experiments: waste (measured == closed form), chunked prefill (==
one prefill), prefix savings, the step model and the batching simulation.

Property tests draw fresh examples every run (tests/conftest.py).
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

from attn_lib import counting, decode_cost, hardware, models, serving  # noqa: E402
from attn_lib.tiny_gpt import TinyGPT, TinyGPTConfig  # noqa: E402


# ----------------------------------------------------------------------------- waste
@settings(max_examples=40)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 60), block=st.integers(1, 64),
       hi=st.integers(1, 300))
def test_measured_waste_equals_the_closed_form_on_the_trace(seed, n, block, hi):
    trace = serving.request_trace(n, seed=seed, prompt_range=(1, hi), output_range=(1, hi))
    lengths = [r.total_len for r in trace]
    w = serving.measure_waste(lengths, block, 2 * hi)
    assert w["paged_waste"] == counting.paged_waste_tokens(lengths, block)
    assert w["paged_reserved"] == block * sum(counting.blocks_for(L, block) for L in lengths)
    assert w["contiguous_waste"] == counting.contiguous_waste_tokens(lengths, 2 * hi)
    assert w["tokens"] == sum(lengths)


@pytest.mark.parametrize("block", [1, 2, 16, 64])
def test_expected_last_block_waste_is_exact_for_uniform_residues(block):
    lengths = range(1, 4 * block + 1)  # a range whose size is a multiple of B
    mean = counting.paged_waste_tokens(lengths, block) / len(lengths)
    assert mean == counting.expected_last_block_waste(block)


def test_expected_waste_share_forms():
    assert counting.expected_waste_share(100, max_len=400) == 0.75
    assert counting.expected_waste_share(99.5, block_size=2) == 0.5 / 100
    with pytest.raises(ValueError, match="block_size"):
        counting.expected_waste_share(10)
    with pytest.raises(ValueError, match="mean_len"):
        counting.expected_waste_share(500, max_len=400)


def test_trace_is_seeded_and_in_range():
    a = serving.request_trace(50, seed=3, prompt_range=(5, 9), output_range=(1, 2), rate=4.0)
    assert a == serving.request_trace(50, seed=3, prompt_range=(5, 9), output_range=(1, 2), rate=4.0)
    assert all(5 <= r.prompt_len <= 9 and 1 <= r.output_len <= 2 for r in a)
    assert all(x.arrival < y.arrival for x, y in zip(a, a[1:]))


# ----------------------------------------------------------------------------- prefix sharing
def test_prefix_savings_identical_prompts():
    prompts = [list(range(64))] * 5  # block 16: 3 full blocks cached (the last token recomputed)
    s = serving.prefix_savings("gpt2-small", prompts, 16)
    assert s["cached_tokens"] == 4 * 48
    assert s["bytes_private"] == 5 * 4 * counting.kv_cache_bytes("gpt2-small", 16)
    assert s["bytes_shared"] == (3 + 5) * counting.kv_cache_bytes("gpt2-small", 16)
    one = decode_cost.prefix_cache_flops("gpt2-small", 48, 16)["saved"]
    assert s["flops_saved"] == 4 * one


def test_distinct_prompts_share_nothing():
    prompts = serving.system_prompt_trace(6, n_prompts=6, system_len=64, seed=1)
    run = serving.prefix_sharing(prompts, 8)
    run["cache"].check_invariants()
    # with six different system prompts, sharing needs two draws of the same one
    distinct = len({tuple(p[:64]) for p in prompts})
    assert (sum(run["cached"]) == 0) == (distinct == 6)


# ----------------------------------------------------------------------------- chunked prefill
_MODELS = {kv: TinyGPT(TinyGPTConfig(context=96, n_kv_heads=kv), dtype=torch.float64)
           for kv in (1, 2, 4)}  # MHA, GQA and MQA-like heads, built once


@settings(max_examples=15)
@given(n=st.integers(1, 70), chunk=st.integers(2, 80), kv=st.sampled_from([1, 2, 4]),
       seed=st.integers(0, 2**31 - 1))
def test_chunked_prefill_equals_one_prefill(n, chunk, kv, seed):
    model = _MODELS[kv]
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.config.vocab, (2, n), generator=gen)
    whole, c1 = model.prefill(tokens)
    parts, c2 = serving.chunked_prefill(model, tokens, chunk)
    torch.testing.assert_close(parts, whole, rtol=0, atol=1e-10)
    assert c2.length == c1.length == n
    for layer in range(model.config.n_layers):
        torch.testing.assert_close(c2.keys(layer), c1.keys(layer), rtol=0, atol=1e-10)
        torch.testing.assert_close(c2.values(layer), c1.values(layer), rtol=0, atol=1e-10)


def test_chunks_of_one_token_are_decode_steps():
    model = _MODELS[2]
    tokens = torch.randint(0, 256, (1, 9), generator=torch.Generator().manual_seed(0))
    parts, _ = serving.chunked_prefill(model, tokens, 1)
    torch.testing.assert_close(parts, model.prefill(tokens)[0], rtol=0, atol=1e-10)


def test_activations_are_bounded_by_the_chunk():
    model = TinyGPT(TinyGPTConfig(context=256))
    tokens = torch.randint(0, 256, (1, 256), generator=torch.Generator().manual_seed(0))
    per = serving.activation_bytes_per_chunk(model, tokens, 32)
    assert len(per) == 8 and len(set(per)) == 1
    assert serving.activation_bytes_per_chunk(model, tokens, 64)[0] == 2 * per[0]
    assert serving.activation_bytes_per_chunk(model, tokens, 256)[0] == 8 * per[0]


def test_million_token_layer_recomputed_chunked():
    one_pass = counting.activation_bytes_per_device("llama-3-8b", 10**6, 1, n_layers=1)
    assert counting.chunked_prefill_activation_bytes("llama-3-8b", 10**6, 10**6) == one_pass
    chunked = counting.chunked_prefill_activation_bytes("llama-3-8b", 10**6, 10**4)
    assert chunked == one_pass / 100


# ----------------------------------------------------------------------------- step model
@pytest.mark.parametrize("context, batch", [(1, 1), (1024, 8), (8192, 64), (128, 2048)])
def test_mixed_length_step_agrees_with_decode_cost(context, batch):
    t, bound = serving.decode_step_seconds("llama-3-8b", [context] * batch)
    est = decode_cost.decode_step_estimate("llama-3-8b", context, batch)
    assert t == pytest.approx(est["time_s"], rel=1e-12) and bound == est["bound"]


def test_throughput_grows_then_turns_compute_bound():
    rows = serving.throughput_curve("llama-3-8b", 128, [1, 16, 256, 2048])
    tps = [r["tokens_per_s"] for r in rows]
    assert tps == sorted(tps) and rows[0]["bound"] == "memory" and rows[-1]["bound"] == "compute"


def test_simulated_batching():
    trace = serving.request_trace(40, seed=2, prompt_range=(1, 64), output_range=(1, 64), rate=50.0)
    sim = {p: serving.simulate_batching(trace, "gpt2-small", policy=p, max_batch=8)
           for p in ("static", "continuous")}
    for r in sim.values():
        assert len(r["ttft_s"]) == 40 and min(r["ttft_s"]) > 0
        assert r["tokens_per_s"] == pytest.approx(sum(q.output_len for q in trace) / r["makespan_s"])
    assert sim["continuous"]["ttft_mean_s"] < sim["static"]["ttft_mean_s"]
    assert sim["continuous"]["makespan_s"] <= sim["static"]["makespan_s"]


def test_batch_of_one_is_the_same_under_both_policies():
    trace = serving.request_trace(10, seed=4, prompt_range=(1, 32), output_range=(1, 32), rate=5.0)
    a, b = (serving.simulate_batching(trace, "gpt2-small", policy=p, max_batch=1)
            for p in ("static", "continuous"))
    assert a["makespan_s"] == pytest.approx(b["makespan_s"], rel=1e-12)
    assert a["ttft_s"] == pytest.approx(b["ttft_s"], rel=1e-12)


# ----------------------------------------------------------------------------- smaller caches
def test_mla_and_int8_bytes():
    mla = models.DEEPSEEK_V2_MLA
    assert counting.mla_kv_bytes_per_token(mla) == (512 + 64) * 60 * 2
    assert counting.mha_equivalent_kv_bytes_per_token(mla) == 2 * 128 * 128 * 60 * 2
    # the paper's Table 1: MLA's cache equals GQA's with 2.25 groups, (d_c + d_R) = 4.5 d_h
    assert counting.mla_kv_bytes_per_token(mla) == 2.25 * 2 * mla.head_dim * mla.n_layers * 2
    assert counting.int8_kv_bytes_per_token("llama-3-8b", 16) == (
        counting.kv_cache_bytes("llama-3-8b", 1, 1) + 2 * 32 * 8 * 2 / 16)


def test_prefill_step_is_compute_bound_for_long_prompts():
    flops = sum(counting.forward_flops("llama-3-8b", 4096, causal=True).values())
    t = serving.prefill_seconds("llama-3-8b", [4096], "H100 SXM", "bf16")
    assert t == pytest.approx(flops / hardware.get("H100 SXM").peak("bf16"), rel=1e-12)


def test_request_and_mla_config():
    r = serving.Request(3, 0.5, 10, 5)
    assert r.total_len == 15
    with pytest.raises(ValueError, match="output_len"):
        serving.Request(3, 0.5, 10, 0)
    half = models.MLAConfig("half", 1, 2, 4, 8, 2, "test")
    assert counting.mla_kv_bytes_per_token(half, 1) == 10
    assert counting.mha_equivalent_kv_bytes_per_token(half, 1) == 16
