"""Claims 26-27, the ledger's "Long contexts": a million tokens on one GPU,
and the kinds of long-context method (chapter 5's counts)."""
from __future__ import annotations

from .. import counting, hardware, models
from ._registry import claim, verdict


@claim("1M context needed more than 100k: one GPU runs out", "A",
       "A context of about 100k tokens could be served on one GPU, while 1M "
       "tokens needed new engineering: a single 1M-token sequence no longer "
       "fits one accelerator.")
def million_needs_many_devices(model: str = "llama-3-8b",
                               gpu: str = "H100 SXM"):
    g, cfg = hardware.get(gpu), models.get(model)
    weights = counting.weight_bytes(model)
    need = {n: weights + counting.kv_cache_bytes(model, n)
            + counting.activation_bytes_per_device(model, n, 1, n_layers=1)
            for n in (100_000, 1_000_000)}
    flops = counting.attention_flops(1_000_000, cfg.d_attn, cfg.n_layers,
                                     causal=True)
    values = {"gb_at_100k": need[100_000] / 1e9,
              "gb_at_1m": need[1_000_000] / 1e9,
              "gpu_gb": g.memory / 1e9,
              "attention_s_at_1m_one_gpu": flops / g.peak("bf16")}
    ok = need[100_000] <= g.memory < need[1_000_000]
    note = (f"{model} in bf16 on one {gpu}: weights + KV cache + one layer's "
            "activations fit at 100k tokens, not at 1M (the KV cache alone "
            "exceeds 80 GB), and the causal attention arithmetic alone takes "
            "minutes at peak; chapter 5 splits the sequence over devices.")
    return verdict(ok), note, values, {}


@claim("every long-context method hides the matrix, skips prefill or changes "
       "the model", "A",
       "Every long-context optimization in production either hides where the "
       "N×N matrix lives, skips the prefill when a prefix repeats, or changes "
       "what attention computes.")
def three_buckets(n: int = 1 << 20, world_size: int = 8,
                  model: str = "llama-3-8b"):
    pairs = counting.ring_pairs_per_rank(n, world_size, "zigzag")
    single = counting.attention_pairs(n, causal=True)
    kv_share = (counting.kv_bytes_per_device(model, n, world_size)
                / counting.kv_cache_bytes(model, n))
    values = {"pairs_per_device_share": pairs[0] / single,
              "same_total_pairs": sum(pairs) == single,
              "kv_bytes_per_device_share": kv_share}
    ok = values["same_total_pairs"] and pairs[0] * world_size == single
    note = ("A fourth bucket is missing: context parallelism (ring attention, "
            "Ulysses) computes the very same N² scores, skips nothing and "
            "changes nothing, but splits them and the KV cache over P devices "
            "(1/P each, measured in chapter 5). It is how 1M-token contexts "
            "are trained and prefilled.")
    return verdict(ok, caveat=True), note, values, {}
