"""Claims 7-9, the ledger's "Attention against the feed-forward block": where
the quadratic part meets the linear rest of a layer (chapter 2)."""
from __future__ import annotations

from .. import counting, models
from ._registry import claim, verdict
from .essays import FFN_CROSSOVER, FFN_D_MODEL

#: A GPT-style layer at essay A's width with a 4× GELU MLP (for the ledger).
_GPT_4096 = models.ModelConfig(
    "d4096-gelu", 32, FFN_D_MODEL, 32, 32, 128, 4 * FFN_D_MODEL, 50257, 2048,
    "a GPT-style layer at d_model 4096 with a 4× GELU MLP (for the ledger)")


@claim("FFN cost ∝ N·d²", "A",
       "The feed-forward block costs work linear in the length and quadratic "
       "in the width (with d_ff = 4d).")
def ffn_linear(n: int = 4096):
    wide = models.ModelConfig("d8192-gelu", 1, 8192, 64, 64, 128, 4 * 8192,
                              50257, 2048, "ledger: 2× wider")
    mlp = counting.layer_flops(_GPT_4096, n)["mlp"]
    values = {"mlp_flops": mlp,
              "per_token_over_d2": mlp / n / _GPT_4096.d_model**2,
              "ratio_2N": counting.layer_flops(_GPT_4096, 2 * n)["mlp"] / mlp,
              "ratio_2d": counting.layer_flops(wide, n)["mlp"] / mlp}
    ok = (values["per_token_over_d2"] == 16 and values["ratio_2N"] == 2
          and values["ratio_2d"] == 4)
    note = "16·N·d² FLOPs: ×2 when N doubles, ×4 when d doubles."
    return verdict(ok), note, values, {}


@claim("attention overtakes the FFN near 16K at d=4096", "A",
       "At d_model = 4096 attention's quadratic part starts to cost more than "
       "the feed-forward block around 16K tokens.")
def ffn_crossover():
    d, x = _GPT_4096.d_model, counting.crossover_length
    values = {
        "vs_mlp": x(_GPT_4096, "mlp"),
        "vs_mlp_causal": x(_GPT_4096, "mlp", causal=True),
        "block_vs_mlp": 2 * d,  # 8·N·d² + 4·N²·d = 16·N·d²  ⇒  N = 2d
        "vs_dense": x(_GPT_4096, "dense"),
        "llama2_7b_vs_mlp": x("llama-2-7b", "mlp"),
        # causal kernels compute half the scores: the crossover is twice out
        "llama2_7b_vs_dense": x("llama-2-7b", "dense"),
        "llama2_7b_vs_dense_causal": x("llama-2-7b", "dense", causal=True),
    }
    ok = values["vs_mlp"] == 4 * d == FFN_CROSSOVER
    note = ("QKᵀ + PV equal a 4× MLP at N = 4d = 16,384 (Llama-2-7B's SwiGLU "
            "MLP: 16,512). But the crossover moves with what is counted: "
            "32,768 with a causal mask, 8,192 if the projections count as "
            "attention, 24,576 against all dense layers (twice each with a "
            "causal mask: Llama-2-7B's causal crossover against its dense "
            "layers is about 49K tokens).")
    return verdict(ok, caveat=True), note, values, {}


@claim("4K→8K prompt ≈ 4x slower request", "A",
       "Doubling a 4K-token prompt to 8K makes the whole request about four "
       "times slower.")
def request_4k_to_8k(model: str = "llama-2-7b"):
    total = {n: sum(counting.forward_flops(model, n, causal=True).values())
             for n in (4096, 8192)}
    attention = {n: counting.attention_flops(n, 4096, causal=True)
                 for n in (4096, 8192)}
    values = {"model": model, "forward_ratio": total[8192] / total[4096],
              "attention_ratio": attention[8192] / attention[4096],
              "attention_share_4k": counting.attention_share(model, 4096,
                                                             causal=True)}
    ok = values["forward_ratio"] > 3.5
    note = ("Only the attention part quadruples. At 4K the quadratic part is "
            "a small share of a 7B model's forward FLOPs, so the whole "
            "prefill grows barely more than 2×.")
    return verdict(ok), note, values, {}
