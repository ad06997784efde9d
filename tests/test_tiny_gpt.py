"""The tiny transformer's KV cache (chapter 3): cached decoding equals recomputation."""
import dataclasses

import pytest
import torch

from attn_lib import torch_impl
from attn_lib import models
from attn_lib.tiny_gpt import (Block, CausalSelfAttention, KVCache, TinyGPT, TinyGPTConfig, bench_batch,
                               bench_config, grouped_attention)

SMALL = dict(vocab=97, context=64, d_model=32, n_layers=2, n_heads=4, d_ff=64)
pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tiny ops (tests/conftest.py)

CONFIGS = {"mha": TinyGPTConfig(**SMALL, n_kv_heads=4), "gqa": TinyGPTConfig(**SMALL, n_kv_heads=2),
           "mqa": TinyGPTConfig(**SMALL, n_kv_heads=1)}


@pytest.fixture(scope="module", params=list(CONFIGS))
def model(request):
    torch.manual_seed(0)
    return TinyGPT(CONFIGS[request.param])


def _prompts(cfg, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        batch = int(torch.randint(1, 4, (1,), generator=gen))
        length = int(torch.randint(1, 12, (1,), generator=gen))
        yield torch.randint(0, cfg.vocab, (batch, length), generator=gen)


def test_cached_generation_equals_recomputation(model):
    for prompt in _prompts(model.config, 15):
        n_new = 32
        cached = model.generate(prompt, n_new, use_cache=True)
        assert torch.equal(cached, model.generate(prompt, n_new, use_cache=False))
        assert cached.shape == (prompt.shape[0], prompt.shape[1] + n_new)
        assert torch.equal(cached[:, : prompt.shape[1]], prompt)


def test_cached_logits_equal_full_forward(model):
    for prompt in _prompts(model.config, 10, seed=1):
        seq = model.generate(prompt, 20)
        full = model(seq)  # (B, T, vocab), no cache
        n = prompt.shape[1]
        logits, cache = model.prefill(seq[:, :n])
        torch.testing.assert_close(logits, full[:, :n], rtol=1e-4, atol=1e-4)
        for i in range(n, seq.shape[1]):
            step, cache = model.decode_step(seq[:, i], cache)
            torch.testing.assert_close(step, full[:, i], rtol=1e-4, atol=1e-4)
        assert cache.length == seq.shape[1]


def test_float64_logits_match_tightly():
    cfg = CONFIGS["gqa"]
    m = TinyGPT(cfg, dtype=torch.float64)
    seq = m.generate(torch.tensor([1, 2, 3]), 30)
    full = m(seq)[0]
    _, cache = m.prefill(seq[:5])
    for i in range(5, seq.shape[0]):
        step, cache = m.decode_step(seq[i:i + 1], cache)
        assert (step[0] - full[i]).abs().max() < 1e-10


def test_chunked_prefill_continues_a_cache(model):
    seq = next(_prompts(model.config, 1, seed=2))
    seq = model.generate(seq, 30)
    full = model(seq)
    _, cache = model.prefill(seq[:, :10])
    fork = cache.clone()
    logits, cache = model.prefill(seq[:, 10:], cache)  # continue from the cached prefix
    torch.testing.assert_close(logits, full[:, 10:], rtol=1e-4, atol=1e-4)
    assert fork.length == 10 and cache.length == seq.shape[1]  # the clone is independent


def test_decode_attention_is_last_row_of_causal_attention():
    torch.manual_seed(0)
    for h, h_kv in ((4, 4), (4, 2), (6, 1)):
        q = torch.randn(2, h, 9, 8, dtype=torch.float64)
        k, v = torch.randn(2, 2, h_kv, 9, 8, dtype=torch.float64)
        full = grouped_attention(q, k, v)  # causal over all 9 tokens
        last = grouped_attention(q[:, :, -1:], k, v)  # one query against the whole cache
        torch.testing.assert_close(last, full[:, :, -1:], rtol=1e-12, atol=1e-12)
        reps = h // h_kv  # and both agree with plain attention on repeated kv heads
        ref = torch_impl.attention(q, k.repeat_interleave(reps, 1), v.repeat_interleave(reps, 1), causal=True)
        torch.testing.assert_close(full, ref, rtol=1e-12, atol=1e-12)


def test_past_keys_and_values_never_change():
    m = TinyGPT(CONFIGS["mha"])
    seq = torch.randint(0, 97, (2, 40), generator=torch.Generator().manual_seed(3))
    _, short = m.prefill(seq[:, :15])
    _, long = m.prefill(seq)
    for layer in range(m.config.n_layers):
        torch.testing.assert_close(long.keys(layer)[:, :, :15], short.keys(layer), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(long.values(layer)[:, :, :15], short.values(layer), rtol=1e-5, atol=1e-5)


def test_cache_shapes_dtypes_and_bytes():
    cfg = CONFIGS["gqa"]
    m = TinyGPT(cfg, dtype="float64")
    _, cache = m.prefill(torch.zeros(3, 7, dtype=torch.int32))
    assert isinstance(cache, KVCache) and cache.config == cfg and cache.length == 7
    assert len(cache.k) == len(cache.v) == cfg.n_layers
    assert cache.k[0].shape == (3, cfg.n_kv_heads, cfg.context, cfg.head_dim)
    assert cache.keys(1).shape == cache.values(1).shape == (3, cfg.n_kv_heads, 7, cfg.head_dim)
    assert cache.dtype == torch.float64 and cache.batch == 3
    assert cache.nbytes() == 2 * cfg.n_layers * 3 * cfg.n_kv_heads * 7 * cfg.head_dim * 8
    assert cache.nbytes(reserved=True) == cache.nbytes() * cfg.context // 7
    logits, same = m.decode_step(torch.tensor([1, 2, 3]), cache)
    assert same is cache and cache.length == 8 and logits.shape == (3, cfg.vocab)
    assert logits.dtype == torch.float64


def test_same_weights_from_the_same_seed():
    a, b = TinyGPT(CONFIGS["mha"]), TinyGPT(CONFIGS["mha"])
    c = TinyGPT(dataclasses.replace(CONFIGS["mha"], seed=1))
    x = torch.arange(10)
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))


def test_bad_inputs_raise_clear_errors():
    cfg = CONFIGS["mha"]
    m = TinyGPT(cfg)
    _, cache = m.prefill(torch.tensor([[1, 2, 3]]))
    with pytest.raises(TypeError, match="tokens"):
        m.prefill(torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="token"):
        m.decode_step(torch.tensor([0.5]), cache)
    with pytest.raises(ValueError, match="vocab"):
        m.prefill(torch.tensor([1, cfg.vocab]))
    with pytest.raises(ValueError, match="token.*vocab"):
        m.decode_step(torch.tensor([-1]), cache)
    with pytest.raises(ValueError, match="context"):
        m.prefill(torch.zeros(cfg.context + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="n_new"):
        m.generate(torch.tensor([1, 2]), cfg.context)
    other = TinyGPT(CONFIGS["gqa"])
    with pytest.raises(ValueError, match="different config"):
        other.decode_step(torch.tensor([1]), cache)
    with pytest.raises(ValueError, match="batch"):
        m.decode_step(torch.tensor([1, 2]), cache)
    with pytest.raises(TypeError, match="cache"):
        m.decode_step(torch.tensor([1]), {"k": []})
    full = KVCache.random(cfg, 1, cfg.context)
    with pytest.raises(ValueError, match="context"):
        m.decode_step(torch.tensor([1]), full)
    with pytest.raises(ValueError, match="n_kv_heads"):
        TinyGPTConfig(n_heads=4, n_kv_heads=3)
    with pytest.raises(ValueError, match="d_model"):
        TinyGPTConfig(d_model=30, n_heads=4)
    with pytest.raises(TypeError, match="vocab"):
        TinyGPTConfig(vocab=2.5)


def test_bench_config_is_sized_to_the_device():
    assert bench_config("cpu").context >= 65536 and bench_config("cuda").d_model > bench_config("cpu").d_model
    # on a GPU: two Llama-2-7B-sized layers (issue 19), with a small vocabulary
    assert bench_config("cuda") == TinyGPTConfig.from_model("llama-2-7b", n_layers=2, context=32768, vocab=256)


def test_from_model_copies_the_layer_shape_of_a_preset():
    m = models.get("llama-3-8b")
    cfg = TinyGPTConfig.from_model("llama-3-8b", n_layers=1, context=128, vocab=32)
    assert (cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ff, cfg.head_dim) == \
        (m.d_model, m.n_heads, m.n_kv_heads, m.d_ff, m.head_dim)
    assert (cfg.n_layers, cfg.context, cfg.vocab) == (1, 128, 32)
    full = TinyGPTConfig.from_model(m)  # a ModelConfig works too; defaults are the model's
    assert (full.n_layers, full.context, full.vocab) == (m.n_layers, m.context, m.vocab)
    # the counts see the same layer shape (two MLP matrices: this model's GELU MLP)
    assert cfg.to_model_config().d_ff == m.d_ff and cfg.to_model_config().n_kv_heads == m.n_kv_heads
    with pytest.raises(ValueError, match="model"):
        TinyGPTConfig.from_model("no-such-model")
    with pytest.raises(ValueError, match="n_layers"):
        TinyGPTConfig.from_model("llama-2-7b", n_layers=0)


def test_bench_batch_fits_the_reserved_caches():
    cfg = bench_config("cuda")
    assert bench_batch(bench_config("cpu"), "cpu") == 8 and bench_batch(cfg, "cpu", cap=2) == 2
    # a 16 GB T4 (15.1 GiB usable): fp16 caches of 32,768 tokens in two 4096-wide layers, 1 GiB each
    per_seq = KVCache.empty(cfg, 1, device="meta", dtype=torch.float16).nbytes(reserved=True)
    assert per_seq == 2**30 and 8 * per_seq <= 0.6 * 15.1 * 2**30 < 16 * per_seq
    with pytest.raises(ValueError, match="memory_share"):
        bench_batch(cfg, "cpu", memory_share=0)
    with pytest.raises(TypeError, match="config"):
        bench_batch(models.get("llama-2-7b"), "cpu")


def test_one_layer_with_a_cache_matches_the_whole_sequence():
    cfg = CONFIGS["gqa"]
    torch.manual_seed(0)
    attn, block = CausalSelfAttention(cfg), Block(cfg)
    x = torch.randn(2, 6, cfg.d_model)  # (B, T, d_model)
    with torch.no_grad():
        whole = attn(x)  # causal over all six tokens, no cache
        cache = KVCache.empty(cfg, 2)
        first = attn(x[:, :4], cache, 0)  # keys and values of tokens 0..3 go into the cache
        cache.length = 4  # (TinyGPT advances it after every layer has written)
        rest = attn(x[:, 4:], cache, 0)  # tokens 4, 5 attend to the cached ones
        torch.testing.assert_close(torch.cat([first, rest], 1), whole, rtol=1e-5, atol=1e-6)
        assert block(x).shape == x.shape


def test_no_timing_helpers_of_its_own():
    from attn_lib import tiny_gpt

    assert not [name for name in vars(tiny_gpt) if name.startswith("time_") or name == "bench"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    cfg = CONFIGS["gqa"]
    cpu, gpu = TinyGPT(cfg), TinyGPT(cfg, device="cuda")
    prompt = torch.tensor([[3, 1, 4, 1, 5]])
    assert torch.equal(cpu.generate(prompt, 30), gpu.generate(prompt.cuda(), 30).cpu())


def test_generate_from_a_prefix_cache_equals_full_generation():
    m = TinyGPT(CONFIGS["gqa"])
    gen = torch.Generator().manual_seed(4)
    prefix = torch.randint(0, 97, (2, 20), generator=gen)
    _, prefix_cache = m.prefill(prefix)
    for _ in range(3):
        question = torch.randint(0, 97, (2, 5), generator=gen)
        reused = m.generate(question, 15, cache=prefix_cache.clone())
        full = m.generate(torch.cat([prefix, question], 1), 15)
        assert torch.equal(reused, full[:, 20:])
    assert prefix_cache.length == 20
    with pytest.raises(ValueError, match="use_cache"):
        m.generate(question, 3, use_cache=False, cache=prefix_cache)
    with pytest.raises(ValueError, match="context"):
        m.generate(question, 40, cache=prefix_cache.clone())
