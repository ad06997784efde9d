"""attn_lib.memory_model: the three-level (SRAM / L2 / HBM) count of FlashAttention-2's
loop."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_lib import hardware, memory_model as mm, reference

GPUS = [g.name for g in hardware.GPUS.values() if g.smem_per_sm is not None]


def test_chapter_two_level_cases():
    # Algorithm 1 with the paper's M ≈ 100 KB (fp16), N = 4096: 3.9× at d = 64, 1.01× at
    # d = 128
    assert round(mm.algorithm1_ratio(4096, 64), 1) == 3.9
    assert round(mm.algorithm1_ratio(4096, 128), 2) == 1.01
    assert isinstance(mm.algorithm1_ratio(), float)


@pytest.mark.parametrize("d", [64, 128])
def test_three_level_model_near_compulsory_at_4096(d):
    t = mm.fa2_traffic(4096, d, gpu="H100 SXM")
    assert t.kv_resident and t.over_compulsory < 2
    assert t.l2_bytes > 10 * t.hbm_bytes  # the re-reads happen, but between L2 and SRAM
    assert mm.three_level_ratio(4096, d) > 30 * mm.algorithm1_ratio(4096, d) / 4


@settings(max_examples=60)
@given(
    n=st.integers(1, 300_000),
    d=st.sampled_from([32, 64, 128, 256]),
    gpu=st.sampled_from(GPUS),
    slices=st.integers(1, 256),
    causal=st.booleans(),
    bytes_per_value=st.sampled_from([1, 2, 4]),
)
def test_hbm_within_2x_of_compulsory_where_kv_fits_l2(
    n, d, gpu, slices, causal, bytes_per_value
):
    t = mm.fa2_traffic(
        n, d, gpu=gpu, slices=slices, causal=causal, bytes_per_value=bytes_per_value
    )
    assert t.hbm_bytes >= t.compulsory_bytes  # nothing beats reading inputs once
    if t.kv_resident:
        assert t.over_compulsory <= 2
    else:  # K/V overflow L2: every re-read reaches HBM, the two-level count
        assert t.hbm_bytes == t.l2_bytes
    g = hardware.get(gpu)
    fits = mm.heads_in_flight(n, t.block_q, gpu, slices) * mm.kv_bytes(
        n, d, None, bytes_per_value
    )
    assert t.kv_resident == (fits <= g.l2_bytes)


@settings(max_examples=40)
@given(
    nq=st.integers(1, 90),
    nk=st.integers(1, 90),
    bq=st.integers(1, 40),
    bk=st.integers(1, 40),
    causal=st.booleans(),
)
def test_key_loads_match_the_visited_blocks(nq, nk, bq, bk, causal):
    seen = mm._keys_seen(nq, nk, bq, bk, causal)
    pairs = reference.visited_blocks(nq, nk, bq, bk, causal)
    want = [
        sum(min(bk, nk - j * bk) for i2, j in pairs if i2 == i)
        for i in range(-(-nq // bq))
    ]
    assert list(seen) == want


def test_l2_traffic_follows_theorem2():
    # L2 ↔ SRAM bytes ≈ (N/B_r)·N·2d·b: ×4 per doubling of N, halved by doubling B_r (∝
    # M/d)
    a, b2 = (
        mm.fa2_traffic(n, 128, block_q=64, block_k=64).l2_bytes for n in (8192, 16384)
    )
    assert 3.9 < b2 / a < 4.1
    small, big = (
        mm.fa2_traffic(16384, 128, block_q=bq, block_k=64).l2_bytes for bq in (64, 128)
    )
    assert 1.9 < small / big < 2.1


def test_regime_switches_where_kv_leaves_l2():
    n_fit = mm.l2_fit_length(128, "H100 SXM")
    # 50 MiB / (K and V, 128 fp16 values each)
    assert n_fit == 50 * 10**6 // (2 * 128 * 2) == 97_656
    assert (
        mm.regime(n_fit, 128) == "L2-resident"
        and mm.regime(n_fit + 1, 128) == "Theorem 2"
    )
    # 5 heads in flight at 4096
    assert mm.regime(4096, 128, slices=1024) == "L2-resident"
    # one head in flight, 32 MiB
    assert mm.regime(65536, 128, slices=1024) == "L2-resident"
    assert mm.regime(131072, 128) == "Theorem 2"  # one head's K/V alone is 64 MiB
    # heads in flight share L2: 5 heads × 2 MiB overflow a 4 MiB cache, one head does
    # not
    assert mm.heads_in_flight(4096, 128, "H100 SXM", 1024) == 5
    assert not mm.fa2_traffic(4096, 128, slices=1024, l2_bytes=4 * 2**20).kv_resident
    assert mm.fa2_traffic(4096, 128, slices=1, l2_bytes=4 * 2**20).kv_resident


def test_blocks_fit_shared_memory():
    for gpu in GPUS:
        g = hardware.get(gpu)
        for d in (64, 128, 256):
            bq, bk = mm.fa2_blocks(g.smem_per_sm, d)
            assert (bq * d + 2 * bk * 2 * d) * 2 <= g.smem_per_sm and bq >= bk
    with pytest.raises(ValueError, match="d=4096"):
        mm.fa2_blocks(1024, 4096)


def test_traffic_record_counts_compulsory_bytes():
    t = mm.fa2_traffic(4096, 64)
    assert isinstance(t, mm.Traffic)
    assert t.compulsory_bytes == 2 * 4096 * (64 + 64) * 2  # Q and O, K and V, fp16
    assert t.over_compulsory == t.hbm_bytes / t.compulsory_bytes
    with pytest.raises(ValueError, match="block_q"):
        mm.Traffic(0, 0, 0, False, 0, 64)


def test_bad_input_and_unknown_figures():
    with pytest.raises(ValueError, match="n must"):
        mm.fa2_traffic(0, 64)
    with pytest.raises(ValueError, match="T4"):
        mm.fa2_traffic(128, 64, gpu="T4")  # no on-chip figures recorded for it


def test_chapter_cases_are_plain_numbers():
    rows = mm.chapter_cases()
    assert [r["d"] for r in rows] == [64, 128]
    for r in rows:
        assert all(
            type(r[k]) is float
            for k in (
                "algorithm1_ratio",
                "three_level_ratio",
                "hbm_over_compulsory",
                "l2_over_hbm",
            )
        )
        assert r["kv_resident"] and r["hbm_over_compulsory"] < 2
