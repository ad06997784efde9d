"""Claims 23-25, the ledger's "Smaller facts": BERT's length, the softmax's
coupling of a row, the reach of a sliding window (chapters 1 and 2)."""
from __future__ import annotations

import numpy as np

from .. import counting
from ..flop_check import counted_flops
from ._registry import HOLDS, claim, prose_list, verdict
from .essays import BERT_LENGTH


@claim("BERT's default length was 512", "A",
       "BERT's maximum (and customary) sequence length was 512 tokens.")
def bert_512():
    cost = (counting.attention_flops(BERT_LENGTH, 768)
            / counting.attention_flops(128, 768))
    values = {"max_position_embeddings": BERT_LENGTH,
              "pretraining_share_at_128": 0.9, "cost_512_over_128": cost}
    note = ("Recorded, not computed: Devlin et al. 2019 (BERT), Appendix A.2 "
            "and the released configs (max_position_embeddings 512); 90% of "
            "pre-training steps used 128 tokens, 16× cheaper in attention.")
    return HOLDS, note, values, {}


@claim("softmax couples a whole row; dropping it allows linear cost", "A",
       "Every softmax weight depends on every score in its row; replacing the "
       "softmax by a factorised kernel lets attention be computed without the "
       "N×N matrix, in O(N·d²).")
def softmax_global(n: int = 256, d: int = 16):
    import torch

    torch.manual_seed(0)
    s = torch.randn(n, n)  # (N, N) scores
    bumped = s.clone()
    bumped[0, -1] += 1.0  # change one score in row 0
    row = torch.softmax(bumped, -1)[0] != torch.softmax(s, -1)[0]
    row_changed = row.all().item()

    def phi(t):  # a positive feature map (linear attention)
        return torch.nn.functional.elu(t) + 1

    q, k, v = (torch.randn(n, d, dtype=torch.float64) for _ in range(3))
    quadratic = lambda: (phi(q) @ phi(k).T) @ v  # (N, N) then (N, d)
    linear = lambda: phi(q) @ (phi(k).T @ v)  # (d, d) then (N, d)
    values = {"whole_row_changed": row_changed,
              "same_result": torch.allclose(quadratic(), linear()),
              "flops_quadratic": counted_flops(quadratic),
              "flops_linear": counted_flops(linear)}
    ok = (row_changed and values["same_result"]
          and values["flops_linear"] < values["flops_quadratic"])
    note = ("One score moves all N weights of its row (normalisation). "
            "Without a softmax, re-associating the product gives the same "
            "output for 4·N·d² instead of 4·N²·d FLOPs (the normaliser is "
            "omitted here).")
    return verdict(ok), note, values, {}


def window_reach(n: int, window: int, layers: int) -> int:
    """How far back (in positions) the last token can draw information from
    after `layers` windowed layers."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    # (N, N): query i sees the last W keys
    mask = ((j <= i) & (j > i - window)).astype(np.int64)
    reach = np.eye(n, dtype=bool)
    for _ in range(layers):
        reach = (mask @ reach.astype(np.int64)) > 0
    return int(n - 1 - np.argmax(reach[-1]))


@claim("a sliding window relays information layer by layer", "A",
       "With attention limited to a window of W tokens, information moves at "
       "most W − 1 positions per layer, while the number of scored pairs "
       "becomes linear in N.")
def sliding_window(n: int = 64, window: int = 8, n_long: int = 16_384,
                   w_long: int = 256, d: int = 64):
    import torch

    from .. import variants

    reach = [window_reach(n, window, layers) for layers in (1, 2, 3, 4)]
    pairs = [counting.attention_pairs(m, window=window) for m in (1024, 2048)]
    # (B, H, N, d): shapes only, counted not computed
    x = torch.empty(1, 1, n_long, d, device="meta")
    sw = counted_flops(variants.sliding_window_attention, x, x, x,
                       window=w_long)
    causal_pairs = counting.attention_pairs(n_long, causal=True)
    window_pairs = counting.attention_pairs(n_long, window=w_long)
    causal_flops = counting.attention_flops(n_long, d, causal=True)
    dense_flops = counting.attention_flops(n_long, d)
    values = {"reach_per_layers_1_to_4": reach, "reach_text": prose_list(reach),
              "full_attention_reach": window_reach(n, n, 1),
              "window_pairs_ratio_2N": pairs[1] / pairs[0],
              # against what a causal kernel does (half the N² scores), not
              # masked dense attention
              "flops_ratio_vs_causal": causal_flops / sw,
              "flops_ratio_vs_masked_dense": dense_flops / sw,
              "pairs_ratio_vs_causal": causal_pairs / window_pairs}
    ok = (reach == [layer * (window - 1) for layer in (1, 2, 3, 4)]
          and values["full_attention_reach"] == n - 1
          and 1 < values["flops_ratio_vs_causal"]
          < values["flops_ratio_vs_masked_dense"])
    note = ("Reach grows by W − 1 per layer (powers of the banded mask); full "
            "attention reaches everything in one. At 16K tokens and W = 256 "
            "the window saves about half as much arithmetic against a causal "
            "kernel (which skips the masked half) as against masked dense "
            "attention counted in full.")
    return verdict(ok), note, values, {}
