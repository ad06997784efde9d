"""Claims 1-6, the ledger's "Pairs and FLOPs": how many pairs attention scores
and how many FLOPs that takes (chapters 1 and 2)."""
from __future__ import annotations

import itertools

from .. import counting
from ..flop_check import counted_flops
from ._registry import FAILS, claim, verdict
from .essays import HANDSHAKES, TABLE_D_MODEL, TABLE_HEADS, TABLE_LAYERS


@claim("handshakes 4,950 and 499,500", "B",
       "Among n people n(n−1)/2 handshakes happen: 10 for 5, 45 for 10 (4.5× "
       "for twice the people), 4,950 for 100 and 499,500 for 1,000.")
def handshakes():
    # enumerate every pair
    brute = sum(1 for _ in itertools.combinations(range(100), 2))
    values = {f"h{n}": counting.handshakes(n) for n in HANDSHAKES}
    values |= {"ratio_10_vs_5": values["h10"] / values["h5"],
               "enumerated_100": brute}
    note = ("The formula and an explicit enumeration agree with every quoted "
            "count.")
    ok = (all(values[f"h{n}"] == q for n, q in HANDSHAKES.items())
          and brute == HANDSHAKES[100] and values["ratio_10_vs_5"] == 4.5)
    return verdict(ok), note, values, {}


@claim("doubling N → 4x attention cost", "A, B",
       "Doubling the number of tokens multiplies the work of attention's score "
       "matrix by four, not two.")
def doubling_quadruples(n: int = 4096, d_model: int = 4096):
    def growth(causal):
        return (counting.attention_flops(2 * n, d_model, causal=causal)
                / counting.attention_flops(n, d_model, causal=causal))

    full, causal = growth(False), growth(True)
    values = {"n": n, "ratio": full, "ratio_causal": causal}
    note = ("Exactly 4× for the N² pairs; with a causal mask N(N+1)/2 pairs "
            "give just under 4×.")
    ok = full == 4.0 and 3.99 < causal < 4.0
    return verdict(ok), note, values, {}


@claim("1K→1M = 10^6x", "B",
       "Going from a thousand to a million tokens multiplies attention's FLOPs "
       "by a million.")
def thousand_to_million():
    d, layers = TABLE_D_MODEL, TABLE_LAYERS
    ratio = (counting.attention_flops(1_000_000, d, layers)
             / counting.attention_flops(1_000, d, layers))
    causal = (counting.attention_flops(1_000_000, d, causal=True)
              / counting.attention_flops(1_000, d, causal=True))
    values = {"ratio": ratio, "ratio_causal": causal}
    note = "(10⁶/10³)² = 10⁶ exactly; causal counting gives 0.999 × 10⁶."
    return verdict(ratio == 1e6), note, values, {}


@claim("attention cost ∝ N²·d", "A",
       "Attention's matmul work grows as the square of the length times the "
       "width d.")
def cost_n2_d(sizes=((64, 16), (128, 16), (64, 32))):
    import torch

    from .. import torch_impl

    torch.manual_seed(0)
    measured = []
    for n, d in sizes:
        x = torch.randn(1, n, d)
        measured.append(counted_flops(torch_impl.attention, x, x, x))
    formula = [4 * n * n * d for n, d in sizes]
    values = {"flop_counter": measured, "formula_4N2d": formula,
              "ratio_2N": measured[1] / measured[0],
              "ratio_2d": measured[2] / measured[0]}
    ok = (measured == formula and values["ratio_2N"] == 4
          and values["ratio_2d"] == 2)
    note = ("torch's FlopCounterMode counts exactly 4·N²·d for QKᵀ and PV; "
            "the softmax adds O(N²) more.")
    return verdict(ok), note, values, {}


@claim("QKᵀ and PV 2N²d each, softmax O(N²)", "A, B",
       "The score matmul and the value matmul each cost 2·N²·d_h per head; "
       "the softmax adds a constant per score; over H heads the total is "
       "4·N²·d_model.")
def term_breakdown(n: int = 128, heads: int = 4, head_dim: int = 16):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .. import torch_impl

    torch.manual_seed(0)
    q = torch.randn(1, heads, n, head_dim)  # (B, H, N, d_h)
    with FlopCounterMode(display=False) as counter:
        s = torch.matmul(q, q.transpose(-1, -2))  # (B, H, N, N)
        qk = counter.get_total_flops()
        torch.matmul(torch.softmax(s, -1), q)
    total = counter.get_total_flops()
    d_model = heads * head_dim
    per_score = counting.SOFTMAX_FLOPS_PER_SCORE
    values = {"qk": qk, "pv": total - qk,
              "per_head_2N2dh": 2 * n * n * head_dim * heads,
              "total": total, "formula_4N2d_model": 4 * n * n * d_model,
              "softmax_flops": per_score * n * n * heads}
    counted = counted_flops(torch_impl.attention, q, q, q)
    ok = (qk == total - qk == values["per_head_2N2dh"]
          and total == counted == values["formula_4N2d_model"])
    note = ("The counter sees 2·N²·d_h per matmul per head; it ignores the "
            f"softmax, which we charge {per_score} FLOPs per score: "
            "O(N²·H), no factor d.")
    return verdict(ok), note, values, {}


@claim("essay B's '2 × 3' FLOP formula", "B",
       "Essay B's code documents its count as L·n²·d·2·3 (a factor 3 for QKᵀ, "
       "softmax and PV), while the code itself computes 4·L·n²·d.")
def docstring_formula(n: int = 1_000, d_model: int = TABLE_D_MODEL,
                      n_layers: int = TABLE_LAYERS):
    documented = n * n * d_model * 2 * 3 * n_layers
    coded = counting.attention_flops(n, d_model, n_layers)
    softmax = (counting.SOFTMAX_FLOPS_PER_SCORE * n * n * TABLE_HEADS
               * n_layers)
    values = {"documented": documented, "coded": coded,
              "documented_over_coded": documented / coded,
              "softmax_share_of_coded": softmax / coded}
    note = ("The factor 3 treats the softmax like a third matmul of 2·n²·d "
            "FLOPs; it costs a few FLOPs per score (O(n²·H)), so 6·L·n²·d "
            "overstates the count by 1.5×. The table uses 4·L·n²·d, which is "
            "right.")
    return FAILS, note, values, {}
