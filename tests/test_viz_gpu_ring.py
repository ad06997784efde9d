"""The GPU primer's figures (attn_lib.viz.gpu) and chapter 5's tables (attn_lib.viz.ring)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from attn_lib import counting, hardware, models  # noqa: E402
from attn_lib.ring import RankStats  # noqa: E402
from attn_lib.viz import gpu, ring as rviz  # noqa: E402


def test_memory_levels_come_from_hardware():
    levels = gpu.memory_levels("H100 SXM")
    h = hardware.get("H100 SXM")
    assert [lv["name"] for lv in levels][-1] == "HBM" and levels[-1]["bytes"] == h.memory
    assert levels[1]["bytes"] == h.smem_per_sm * h.sm_count
    assert levels[-1]["bandwidth"] == h.bandwidth
    with pytest.raises(ValueError, match="gpu"):
        gpu.memory_levels("T4")  # no on-chip sizes recorded


def test_gpu_figures_draw():
    fig = gpu.chip_figure()
    assert len(fig.axes) == 2
    fig = gpu.roofline_figure(points=[("mm", 1000.0)])
    assert len(fig.axes[0].get_lines()) == 3 * 2 + 1  # roof + ridge per line, one point
    plt.close("all")


def test_cuda_facts_have_sources():
    for name, (value, source) in hardware.CUDA_MODEL.items():
        assert hardware.cuda_fact(name) == value and len(source) > 20
    assert counting.matmul_intensity(3, 3, 3, 2) == pytest.approx(2 * 27 / (27 * 2))


def test_plan_tables_split_the_plan_and_say_layers():
    plans = [rviz.plan(p, 1 << 20) for p in (1, 8)]
    mem, time = rviz.plan_tables(plans)
    assert mem.splitlines()[0].startswith("| P | tokens/device")
    assert "all layers" in time.splitlines()[0] and len(time.splitlines()) == 4
    p = plans[0]
    assert p["attention_s"] == pytest.approx(p["layers"] * p["attention_layer_s"])
    assert p["layers"] == models.get("llama-3-8b").n_layers


def test_rank_table_rows_follow_the_stats():
    runs = {1: [RankStats(0, pairs=16, peak_bytes=2048, compute_s=[0.1], comm_s=[0.0])],
            2: [RankStats(0, 1024, 1024, 8, 1024, [0.05], [0.01]),
                RankStats(1, 1024, 1024, 8, 512, [0.05], [0.01])]}
    lines = rviz.rank_table(runs).splitlines()
    assert len(lines) == 4 and lines[3].startswith("| 2 | 1.0 | 1 | 8 |")


def test_scheme_overlap_training_and_usp_tables():
    table, rows = rviz.scheme_table(["llama-3-8b"], 1 << 20, 8)
    assert rows["llama-3-8b"]["ulysses_cap"] == 8 and "llama-3-8b" in table
    table, need = rviz.overlap_table()
    assert set(need) == set(hardware.LINKS)
    table, rows = rviz.training_table("llama-3-8b", 1 << 20, (2, 8))
    assert all(r["ratio"] > 1 for r in rows) and rows[0]["bwd_min"] > rows[0]["fwd_min"]
    table, usp = rviz.usp_table("llama-3-8b", 1 << 20, per_server=4, servers=2)
    assert set(usp) == {"ring", "USP", "Ulysses"}  # P = 8 <= 8 KV heads: Ulysses fits
    assert usp["Ulysses"]["ring"] == 0 and usp["ring"]["all_to_all"] == 0
    _, usp = rviz.usp_table("llama-3-8b", 1 << 20, per_server=8, servers=4)
    assert "Ulysses" not in usp  # 32 ranks, 8 KV heads
