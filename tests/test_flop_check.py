"""FlopCounterMode on real torch ops agrees with the formulas of attn_lib.counting (chapter 2)."""
import pytest
import torch

from attn_lib import counting, flop_check, models

TINY_MHA = models.ModelConfig("tiny-mha", 2, 64, 4, 4, 16, 256, 100, 128, "test")
TINY_GQA_SWIGLU = models.ModelConfig("tiny-gqa", 2, 64, 4, 2, 16, 96, 100, 128, "test", mlp_matrices=3)


@pytest.mark.parametrize("cfg", [TINY_MHA, TINY_GQA_SWIGLU])
@pytest.mark.parametrize("n", [1, 7, 32])
def test_counted_matches_formula_on_cpu(cfg, n):
    for part, (formula, counted) in flop_check.compare_layer_flops(cfg, n).items():
        assert formula == counted, part


@pytest.mark.parametrize("name", list(models.PRESETS))
def test_presets_on_meta_device(name):
    counted = flop_check.counted_layer_flops(name, 2048, device="meta")
    formula = counting.layer_flops(name, 2048)
    assert all(counted[p] == formula[p] for p in flop_check.MATMUL_PARTS)
    assert counted["layer"] == sum(counted[p] for p in flop_check.MATMUL_PARTS)


def test_elementwise_parts_are_invisible_to_flop_counter():
    counted = flop_check.counted_layer_flops(TINY_MHA, 16)
    assert counted["scale"] == 0 and counted["softmax"] == 0


def test_textbook_forms():
    # MHA with a 4x MLP: projections 8·N·d², scores = AV = 2·N²·d, MLP 16·N·d²
    n, d = 32, TINY_MHA.d_model
    counted = flop_check.counted_layer_flops(TINY_MHA, n)
    assert counted["projections"] == 8 * n * d * d
    assert counted["scores"] == counted["av"] == 2 * n * n * d
    assert counted["mlp"] == 16 * n * d * d


def test_bad_input():
    with pytest.raises(ValueError, match="n_tokens"):
        flop_check.counted_layer_flops(TINY_MHA, 0)
    with pytest.raises(TypeError, match="dtype"):
        flop_check.counted_layer_flops(TINY_MHA, 4, dtype=torch.int32)
    with pytest.raises(ValueError, match="unknown model"):
        flop_check.counted_layer_flops("no-such-model", 4)


def test_counted_flops_is_the_matmul_count():
    a = torch.ones(8, 4)
    assert flop_check.counted_flops(torch.matmul, a, a.T) == 2 * 8 * 4 * 8


def test_counted_flops_sees_in_place_accumulation():
    acc, p, v = torch.zeros(2, 4, 5), torch.ones(2, 4, 3), torch.ones(2, 3, 5)
    assert flop_check.counted_flops(lambda: acc.baddbmm_(p, v)) == 2 * 2 * 4 * 3 * 5
    assert flop_check.counted_flops(lambda: torch.zeros(4, 5).addmm_(torch.ones(4, 3), torch.ones(3, 5))) == 120
