"""Every figure the two seed essays print, typed once, with where it stands.

Essay A is "Why is attention quadratic?" (the handshake argument, the FFN
crossover, the KV cache, FlashAttention); essay B is the derivation with a FLOP
table, a memory table and a quadratic-versus-recurrent timing sketch. The
ledger's checks (attn_lib.claims) compare these figures with ours; chapter 2
prints its FLOP and memory tables for the same contexts and model.
"""
from __future__ import annotations

#: Essay B, the handshake paragraph: people -> handshakes.
HANDSHAKES = {5: 10, 10: 45, 100: 4_950, 1_000: 499_500}

#: Essay B, the FLOP and H100 tables: the model they are computed for,
#: d_model 8192 (64 heads of 128) and 80 layers (Llama-2-70B's shape).
TABLE_D_MODEL, TABLE_HEADS, TABLE_LAYERS = 8192, 64, 80
#: Essay B's FLOP table, one entry per row: the context (tokens), attention's
#: forward TFLOP, seconds on an H100 and the cost relative to the first row.
TABLE_N = (1_000, 4_096, 32_768, 128_000, 200_000, 1_000_000)
TABLE_TFLOP = (2.6, 43.8, 2_802.8, 42_762.8, 104_448.0, 2_611_200.0)
TABLE_H100_S = (0.003, 0.044, 2.831, 43.195, 105.504, 2_637.576)
TABLE_RELATIVE = (1, 17, 1_074, 16_384, 40_000, 1_000_000)
#: The H100 rate (FLOP/s) essay B divides its FLOPs by.
TABLE_H100_PEAK = 990e12

#: Essay B's memory table: one FP16 N×N score matrix (one head, one layer),
#: (figure, unit) as printed, for each context of MEMORY_N.
MEMORY_N = (1_000, 4_096, 32_768, 128_000, 1_000_000)
MEMORY_QUOTED = ((2, "MB"), (32, "MB"), (2, "GB"), (30.5, "GB"), (1_862, "GB"))
#: Essay B, the sentence after the memory table: the matrix at 1M tokens.
MEMORY_1M = (1.86, "TB")

#: Essay B's timing race (quadratic against recurrent): the lengths it prints,
#: and the longest it times; longer rows scale the timed 5,000-token runs by
#: (n/5000)² (quadratic) and n/5000 (recurrence), i.e. they assume the growth
#: they set out to show.
RACE_N, RACE_TIMED_UP_TO = (100, 1_000, 10_000, 100_000), 5_000

#: Essay A: the width at which attention overtakes the FFN "around 16K".
FFN_D_MODEL, FFN_CROSSOVER = 4096, 16_384

#: Essay A, the FlashAttention paper's A100 (Dao et al. 2022, Figure 1, left):
#: SRAM has about 13x HBM's bandwidth and a 2000th of its capacity.
SRAM_OVER_HBM_BANDWIDTH, HBM_OVER_SRAM_CAPACITY = 13, 2_000

#: Speed-ups reported by Dao et al. 2022 ("FlashAttention"), as essay A quotes
#: them: (figure, where in the paper).
FLASH_REPORTED = {
    "attention_gpt2": (
        7.6,
        "Figure 1 (right): the attention computation of GPT-2 vs PyTorch "
        "attention, A100",
    ),
    "end_to_end_gpt2": (
        3.0,
        "abstract: GPT-2 training, sequence length 1K (vs the Hugging Face "
        "implementation)",
    ),
    "end_to_end_bert_large_pct": (
        15,
        "abstract: BERT-large training, sequence length 512, vs the MLPerf 1.1 "
        "record",
    ),
}

#: Essay A: BERT's maximum (and customary) sequence length.
BERT_LENGTH = 512
