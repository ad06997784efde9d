"""attn_lib.claims: the ledger's checks give the verdicts the appendix prints (no timing here)."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from attn_lib import claims
from attn_lib.claims import CAVEAT, FAILS, HOLDS

#: Every claim whose check is deterministic (counting, recorded figures, traced memory).
EXPECTED = {
    "handshakes": HOLDS,
    "doubling_quadruples": HOLDS,
    "thousand_to_million": HOLDS,
    "cost_n2_d": HOLDS,
    "term_breakdown": HOLDS,
    "docstring_formula": FAILS,
    "ffn_linear": HOLDS,
    "ffn_crossover": CAVEAT,
    "request_4k_to_8k": FAILS,
    "flop_table": CAVEAT,
    "h100_times": CAVEAT,
    "relative_column": HOLDS,
    "memory_table": CAVEAT,
    "one_point_86_tb": CAVEAT,  # substance holds, the figure is a unit slip
    "decode_vs_prefill_counting": HOLDS,
    "flash_same_flops": HOLDS,
    "flash_linear_memory": HOLDS,
    "hbm_traffic": HOLDS,
    "sram_hbm_ratios": HOLDS,
    "reported_speedups": CAVEAT,
    "bert_512": HOLDS,
    "softmax_global": HOLDS,
    "sliding_window": HOLDS,
    "million_needs_many_devices": HOLDS,
    "three_buckets": CAVEAT,
}
TIMED = {"decode_vs_prefill_measured", "quadratic_vs_recurrence"}  # run by the notebook only


def test_every_claim_is_covered_here_or_timed():
    assert set(claims.CLAIMS) == set(EXPECTED) | TIMED


def test_claims_are_numbered_in_order():
    assert [c.number for c in claims.CLAIMS.values()] == list(range(1, len(claims.CLAIMS) + 1))


#: The ledger's order: its stored outputs (numbers, section anchors) depend on it.
ORDER = ["handshakes", "doubling_quadruples", "thousand_to_million", "cost_n2_d",
         "term_breakdown", "docstring_formula", "ffn_linear", "ffn_crossover",
         "request_4k_to_8k", "flop_table", "h100_times", "relative_column", "memory_table",
         "one_point_86_tb", "decode_vs_prefill_counting", "decode_vs_prefill_measured",
         "flash_same_flops", "flash_linear_memory", "hbm_traffic", "sram_hbm_ratios",
         "reported_speedups", "quadratic_vs_recurrence", "bert_512", "softmax_global",
         "sliding_window", "million_needs_many_devices", "three_buckets"]


def test_claims_keep_the_ledgers_order():
    assert list(claims.CLAIMS) == ORDER


def test_every_line_of_the_claims_package_fits_the_column():
    """The ledger shows each check's source (source_markdown): 80 columns at most."""
    package = Path(inspect.getfile(claims)).parent
    wide = [f"{f.name}:{i}" for f in sorted(package.glob("*.py"))
            for i, line in enumerate(f.read_text().splitlines(), 1) if len(line) > claims.WIDTH]
    assert not wide, wide
    for key in claims.CLAIMS:
        assert max(map(len, claims.source_markdown(key).splitlines())) <= claims.WIDTH, key


def test_essay_figures_are_the_ones_checked():
    e = claims.essays
    assert claims.check("flop_table").values["quoted"] == list(e.TABLE_TFLOP)
    assert claims.check("h100_times").values["quoted"] == list(e.TABLE_H100_S)
    assert claims.check("relative_column").values["quoted"] == list(e.TABLE_RELATIVE)
    assert len(claims.check("memory_table").values["bytes"]) == len(e.MEMORY_QUOTED) == len(e.MEMORY_N)
    assert set(e.MEMORY_N) <= set(e.TABLE_N) and e.TABLE_D_MODEL == e.TABLE_HEADS * 128
    assert claims.check("reported_speedups").values == {k: v for k, (v, _) in e.FLASH_REPORTED.items()}
    assert all(claims.check("handshakes").values[f"h{n}"] == h for n, h in e.HANDSHAKES.items())
    assert claims.check("ffn_crossover").values["vs_mlp"] == e.FFN_CROSSOVER == 4 * e.FFN_D_MODEL
    v = claims.check("sram_hbm_ratios").values
    assert (round(v["bandwidth_ratio"]), v["capacity_ratio"]) == (
        e.SRAM_OVER_HBM_BANDWIDTH, e.HBM_OVER_SRAM_CAPACITY)
    assert claims.check("bert_512").values["max_position_embeddings"] == e.BERT_LENGTH
    assert e.MEMORY_1M == (1.86, "TB") and e.TABLE_H100_PEAK == 990e12


def test_verdict_rule_and_prose_list():
    from attn_lib.claims._registry import prose_list, verdict

    assert [verdict(True), verdict(True, caveat=True), verdict(False, caveat=True)] == [
        HOLDS, CAVEAT, FAILS]
    assert prose_list([7, 14, 21]) == "7, 14 and 21" and prose_list([1_000]) == "1,000"
    with pytest.raises(TypeError, match="xs"):
        prose_list("7, 14")


@pytest.mark.parametrize("key, verdict", EXPECTED.items())
def test_verdict(key, verdict):
    result = claims.check(key)
    assert result.verdict == verdict, result.note
    assert result.line() == f"claim {result.number} ({result.title}): {verdict}"
    assert result.values and not result.measured or key == "flash_linear_memory"


def test_headline_numbers():
    assert claims.check("handshakes").values["h1000"] == 499_500
    assert claims.check("thousand_to_million").values["ratio"] == 1e6
    assert claims.check("ffn_crossover").values["vs_mlp"] == 16_384
    assert round(claims.check("sram_hbm_ratios").values["bandwidth_ratio"]) == 13
    assert claims.check("memory_table").values["readings"] == ["decimal"] + ["binary"] * 4


def test_check_by_number_and_unknown():
    assert claims.check("3").key == "thousand_to_million"
    with pytest.raises(ValueError, match="unknown claim"):
        claims.check("nope")


@pytest.mark.parametrize("n_bytes, quoted, unit, reading", [
    (2_000_000, 2, "MB", "decimal"), (2**25, 32, "MB", "binary"), (2e12, 1.86, "TB", "neither"),
    (32_768_000_000, 30.5, "GB", "binary")])
def test_unit_reading(n_bytes, quoted, unit, reading):
    assert claims.tables.unit_reading(n_bytes, quoted, unit) == reading


def test_unit_reading_rejects_unknown_unit():
    with pytest.raises(ValueError, match="unit"):
        claims.tables.unit_reading(1, 1, "KiB")


@pytest.mark.parametrize("window, layers, reach", [(8, 1, 7), (8, 3, 21), (64, 1, 63), (4, 100, 63)])
def test_window_reach(window, layers, reach):
    assert claims.facts.window_reach(64, window, layers) == reach


def test_ema_recurrence_matches_closed_form():
    torch = pytest.importorskip("torch")
    x = torch.ones(20, 3)
    expected = 1 - 0.9 ** torch.arange(1, 21, dtype=torch.float32)  # 0.1·Σ 0.9^k
    assert torch.allclose(claims.vs_recurrence.ema_recurrence(x)[:, 0], expected, atol=1e-6)


def test_summary_and_tally():
    results = [claims.check(k) for k in ("handshakes", "memory_table", "docstring_formula")]
    table = claims.summary_markdown(results)
    assert table.count("\n") == 4 and "✘ does not hold" in table and "(#claim-1)" in table
    assert claims.tally(results) == {HOLDS: 1, CAVEAT: 1, FAILS: 1}


def test_verdict_str_and_glue():
    result = claims.check("doubling_quadruples")
    assert str(result).splitlines()[-1] == result.line()
    glued = {}
    result.glue(lambda name, value: glued.__setitem__(name, value))
    assert glued["c2_ratio"] == 4.0
    only = {}
    result.glue(lambda name, value: only.__setitem__(name, value), keys=["ratio"])
    assert only == {"c2_ratio": 4.0}
    with pytest.raises(ValueError, match="keys"):
        result.glue(lambda *_: None, keys=["no_such_value"])
    with pytest.raises(TypeError, match="keys"):
        result.glue(lambda *_: None, keys="ratio")


def test_reports_fit_the_column():
    for key in EXPECTED:
        assert max(map(len, claims.check(key).report().splitlines())) <= claims.WIDTH, key


def test_claim_14_separates_substance_from_figure():
    v = claims.check("one_point_86_tb").values
    assert v["substance"] == "holds" and "unit slip" in v["figure"]
    assert v["TB"] == 2.0 and v["times_largest_gpu"] > 10


def test_claim_16_linear_means_a_slope_near_one():
    lo, hi = claims.decode.DECODE_LINEAR
    assert lo <= 1 <= hi and hi < claims.decode.PREFILL_QUADRATIC  # 0.75 is not linear
    assert not lo <= 0.75 <= hi


def test_claim_19_transfers_are_prose():
    v = claims.check("hbm_traffic").values
    assert v["nxn_count"] == 4 and isinstance(v["nxn_transfers"], str)
    assert "[" not in v["nxn_transfers"]


def test_claim_registration_validates():
    with pytest.raises(ValueError, match="source"):
        claims.claim("t", "C", "text")


def test_hbm_traffic_uses_one_sms_shared_memory():
    from attn_lib import hardware, memory_model, reference

    v = claims.check("hbm_traffic").values
    a100 = hardware.get("A100 40GB")
    assert v["fast_memory_elements"] == a100.smem_per_sm // 2  # fp16 elements of 164 KiB
    br, bc = reference.algorithm1_blocks(v["fast_memory_elements"], 64)
    assert v["flash_elements"] == reference.flash_io_elements(1024, 1024, 64, block_q=br, block_k=bc)
    # the same order as the chapter's M ≈ 100 KB figure, not the 1 MiB default's 11×
    assert 3 < v["ratio"] < 6 and memory_model.algorithm1_ratio(1024, 64) < v["ratio"]


def test_sliding_window_ratio_against_a_causal_count():
    v = claims.check("sliding_window").values
    # a causal kernel skips the masked half: half the saving against masked dense attention
    assert v["flops_ratio_vs_masked_dense"] == pytest.approx(2 * v["flops_ratio_vs_causal"], rel=1e-3)
    assert 15 < v["flops_ratio_vs_causal"] < v["pairs_ratio_vs_causal"] < 40


def test_causal_crossover_is_twice_the_full_one():
    v = claims.check("ffn_crossover").values
    assert v["llama2_7b_vs_dense_causal"] == 2 * v["llama2_7b_vs_dense"]


def test_quadratic_vs_recurrence_scan_is_checked_not_assumed():
    """Claim 22 runs the recurrence as a parallel scan too; its note does not overclaim."""
    result = claims.check("quadratic_vs_recurrence")  # timed, but only its counts are asserted
    m = result.measured
    assert m["scan_same_states"] and m["scan_steps"] == (m["loop_n"][-1] - 1).bit_length()
    assert "nonlinear" in result.note and "(n/5,000)²" in result.note  # essay B extrapolates
    assert set(result.values) == {"short_half_attention_faster",  # both halves are tested
                                  "long_half_loop_linear_attention_quadratic",
                                  "essay_rows_extrapolated"}


def test_folded_source_and_reported_table():
    folded = claims.source_markdown("handshakes", folded=True)
    assert folded.startswith("<details>") and claims.source_markdown("handshakes") in folded
    with pytest.raises(TypeError, match="folded"):
        claims.source_markdown("handshakes", folded="yes")
    table = claims.reported_markdown(claims.essays.FLASH_REPORTED)
    assert table.count("\n") == 1 + len(claims.essays.FLASH_REPORTED)
    with pytest.raises(TypeError, match="reported"):
        claims.reported_markdown([("a", 1)])


def test_claim_22_names_essay_bs_extrapolated_rows():  # the race itself: the notebook (TIMED)
    e = claims.essays
    assert [n for n in e.RACE_N if n > e.RACE_TIMED_UP_TO] == [10_000, 100_000]
    assert 0 < claims.vs_recurrence.SHORT_RATIO_BELOW < 1  # a margin, not a tie
    src = inspect.getsource(claims.vs_recurrence.quadratic_vs_recurrence)
    assert "short_ok and long_ok" in src and "timing.is_linear" in src  # both halves tested
