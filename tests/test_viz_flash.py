"""attn_lib.viz.flash: the chapter 4 figures draw what they say, and reject bad input."""
import copy

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from attn_lib import reference  # noqa: E402
from attn_lib.viz import flash  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("causal", [False, True])
def test_block_order_numbers_tiles_in_algorithm1_order(causal):
    fig, ax = plt.subplots()
    order = flash.draw_block_order(ax, 10, 12, 4, 5, causal=causal)  # ragged edges on both axes
    assert order == reference.visited_blocks(10, 12, 4, 5, causal)
    labels = [t.get_text() for t in ax.texts]
    assert labels == [str(s + 1) for s in range(len(order))]
    assert len(ax.patches) == 3 * 3  # every tile drawn, visited or skipped
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 9 - len(order)
    assert f"{len(order)} of 9" in ax.get_title()


def test_causal_skips_tiles_above_the_diagonal():
    order = reference.visited_blocks(8, 8, 2, 2, True)
    assert len(order) == 4 * 5 // 2  # lower triangle of a 4×4 tile grid, diagonal included
    fig = flash.block_order_figure(8, 8, 2, 2)
    assert len(fig.axes) == 2


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_block_order_rejects_bad_sizes(bad):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="block_q"):
        flash.draw_block_order(ax, 8, 8, bad, 2)


def test_curve_validates_and_power_law_passes_through_anchor():
    with pytest.raises(ValueError, match="equal length"):
        flash.Curve([1, 2], [1], "bad")
    guide = flash.power_law([1, 2, 4], 2, 8.0, 2, "∝ N²")
    np.testing.assert_allclose(guide.y, [2, 8, 32])
    assert not guide.measured and guide.dashed


def test_loglog_figure_draws_every_curve():
    panels = [dict(curves=[flash.Curve([1, 2, 4], [1, 4, 16], "measured"),
                           flash.power_law([1, 4], 1, 1, 2, "guide")],
                   xlabel="N", ylabel="elements", title="t", span=(1, 2)),
              dict(curves=[flash.Curve([1, 2], [3, 4], "formula", measured=False)], xlabel="M", ylabel="y")]
    fig = flash.loglog_figure(panels)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_xscale() == "log"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["measured", "guide"]


def test_time_bars_label_speedups():
    ax = flash.time_bars({"naive": 0.2, "tiled": 0.1}, baseline="naive")
    texts = [t.get_text().strip() for t in ax.texts]
    assert texts == ["1.00× vs naive", "2.00× vs naive"]
    with pytest.raises(ValueError, match="baseline"):
        flash.time_bars({"a": 1.0}, baseline="b")
    with pytest.raises(ValueError, match="times"):
        flash.time_bars({})


def test_note_figure_carries_its_text():
    fig = flash.note_figure("no recorded GPU run")
    assert fig.axes[0].texts[0].get_text() == "no recorded GPU run"


def test_explorer_builds():
    pytest.importorskip("ipywidgets")
    widget = flash.block_order_explorer()
    assert {c.description for c in widget.children if hasattr(c, "description")} >= {"n", "causal"}


@pytest.fixture
def gpu_like_runs(tiny_suite_run, tmp_path):
    """The real (tiny, CPU) suite run of tests/conftest.py relabelled as a GPU run with peak memory,
    loaded back."""
    from attn_lib import recorded
    from attn_lib.bench.measure import write_json

    run = copy.deepcopy(tiny_suite_run)
    run["device"].update(type="cuda", name="Test GPU")
    for rec in run["attention"]:
        rec["peak_bytes"] = 1000 * rec["n_q"] if rec["status"] == "ok" else None
    write_json(run, tmp_path / "bench-gpu.json")
    return recorded.load_runs("gpu", directory=tmp_path)


def test_plot_recorded_labels_lines_with_the_device(tiny_suite_run):
    from attn_lib import recorded

    run = recorded.Run(None, recorded.validate_run(copy.deepcopy(tiny_suite_run)))
    fig, ax = plt.subplots()
    lines = flash.plot_recorded(ax, run, "tflops", causal=True)
    assert len(lines) == 3 and all(run.device_name in ln.get_label() for ln in lines)
    assert all(ln.get_linestyle() == "--" for ln in lines)
    assert flash.plot_recorded(ax, run, "prefill", color="k")[0].get_label().startswith("prefill")
    standard = flash.plot_recorded(ax, run, "tflops", impl="standard")[0].get_label()
    assert standard.startswith(flash.IMPL_LABELS["standard"] + " (")


def test_recorded_figure_and_summary(gpu_like_runs):
    fig = flash.recorded_figure(gpu_like_runs)
    tput, mem = fig.axes
    assert tput.lines and mem.lines and mem.get_yscale() == "log"
    assert "Test GPU" in fig._suptitle.get_text()
    text = flash.recorded_summary(gpu_like_runs)
    assert text.startswith("On Test GPU, recorded ") and "at N = 64" in text and "TFLOP/s" in text


def test_recorded_without_runs():
    assert "No GPU run" in flash.recorded_summary([])
    with pytest.raises(ValueError, match="runs"):
        flash.recorded_figure([])


# ----------------------------------------------------------------------------- data flow
def _texts(fig):
    return [t for ax in fig.axes for t in ax.texts + [ax.title]] + fig.texts


@pytest.mark.parametrize("n_keys, block_k", [(10, 3), (8, 8)])
def test_dataflow_frames_one_panel_per_step_plus_the_write(n_keys, block_k):
    fig = flash.dataflow_frames(n_keys, 4, block_k)
    t = -(-n_keys // block_k)
    drawn = [ax for ax in fig.axes if ax.patches]
    assert len(drawn) == t + 1
    titles = [ax.get_title() for ax in drawn]
    assert titles[0].startswith("j = 0: load $Q_i$") and titles[-1].startswith("after the loop")
    assert all(f"$K_{j}$" in titles[j] for j in range(t))
    fig.canvas.draw()  # renders with Agg


def test_dataflow_is_readable_at_page_width():
    fig = flash.dataflow_frames()
    assert fig.get_figwidth() <= 7.5
    assert min(t.get_fontsize() for t in _texts(fig) if t.get_text()) >= 9


def test_dataflow_states_end_at_exact_attention():
    states = flash.dataflow_states(13, 3, 4, d=5, seed=1)
    assert [s["j"] for s in states] == [0, 1, 2, 3]
    np.testing.assert_allclose(states[-1]["o"], states[-1]["exact"], rtol=1e-12, atol=1e-12)
    assert all(np.all(np.diff([s["m"] for s in states], axis=0) >= 0) for _ in [0])  # m only grows


def test_dataflow_rejects_bad_step_and_sizes():
    states = flash.dataflow_states()
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="step"):
        flash.draw_dataflow_step(ax, len(states) + 1, states)
    with pytest.raises(ValueError, match="block_k"):
        flash.dataflow_states(8, 4, 0)


def test_dataflow_explorer_is_a_widget():
    pytest.importorskip("ipywidgets")
    assert hasattr(flash.dataflow_explorer(), "children")


def test_reported_figure_keeps_reported_and_recorded_apart():
    fig = flash.reported_figure()
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels and all("reported elsewhere" in lab for lab in labels)
    assert "no recorded run" in fig.axes[0].get_title()


# ----------------------------------------------------------------------------- chapter 4's GPU run, tables, excerpts
def _h200_run():
    from attn_lib import recorded

    runs = [r for r in recorded.load_runs("gpu") if r.device_name == "NVIDIA H200"]
    if not runs:
        pytest.skip("the H200 run is not in book/data")
    return runs[-1]


def test_recorded_highlights_read_the_h200_run():
    hl = flash.recorded_highlights(_h200_run())
    assert hl["n"] == 16384 and hl["oom_n"] == 32768 and hl["dtype"] == "bfloat16"
    assert round(hl["naive_gib"]) == 96 and round(hl["triton_gib"], 2) == 0.06
    assert 0.4 < hl["triton_share"] < hl["sdpa_share"] < 0.7  # of the 989 TFLOP/s peak
    assert 0.7 < hl["ratio_lo"] <= hl["ratio_hi"] < 1


def test_run_caption_names_device_versions_date():
    cap = flash.run_caption(_h200_run())
    assert cap == "NVIDIA H200, torch 2.11.0+cu130, Triton 3.6.0, cuDNN 9.19, recorded 2026-12-04"


def test_recorded_gpu_figure_labels_the_float32_rows():
    fig = flash.recorded_gpu_figure(_h200_run())
    labels = [t.get_text() for ax in fig.axes for leg in [ax.get_legend()] if leg for t in leg.get_texts()]
    assert any("not standard attention" in t for t in labels)
    assert "NVIDIA H200" in fig._suptitle.get_text()


def test_reported_figure_draws_forward_figures_on_named_gpus_only():
    fig = flash.reported_figure()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels and all("GPU not stated" not in t and "FlashAttention-2" not in t for t in labels)
    left = flash.reported_left_out()
    assert any("forward+backward" in line for line in left)
    assert any("does not name" in line for line in left)


def test_markdown_table_shape():
    assert flash.markdown_table(("a", "b"), [(1, 2)]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    with pytest.raises(ValueError):
        flash.markdown_table(("a", "b"), [(1,)])


def test_source_excerpt_fits_the_width_and_keeps_the_code():
    from attn_lib import reference

    text = flash.source_excerpt(reference._update_block, width=60)
    assert all(len(line) <= 60 for line in text.splitlines())
    assert '"""' not in text and "m_new = np.maximum" in text
    assert flash.source_excerpt(reference._update_block, "alpha =", "l_new =").count("\n") == 1
    with pytest.raises(ValueError, match="start"):
        flash.source_excerpt(reference._update_block, "no such line")


def test_long_call_is_rewrapped_aligned_to_its_bracket():
    lines = flash._wrap_code_line("x, y = f(" + ", ".join(f"arg{i}" for i in range(30)) + ")", 40)
    assert all(len(line) <= 40 for line in lines) and lines[0].startswith("x, y = f(")
    assert all(line.startswith(" " * 9) for line in lines[1:])


def test_compile_fusion_run_is_recorded_and_plots():
    runs = flash.load_compile_fusion()
    if not runs:
        pytest.skip("no compile_fusion run in book/data")
    run = runs[0]
    assert run["schema"] == "attn_lib.compile_fusion/1" and run["rows"]
    assert {"eager tiled loop", "compiled tiled loop", "SDPA", "standard attention"} <= set(
        run["rows"][0]["seconds"])
    assert all(r["max_abs_error_vs_attention"] < 1e-4 for r in run["rows"])  # float32 on a CPU
    fig = flash.compile_fusion_figure(run)
    assert run["created"][:10] in fig.axes[0].get_title()


def test_kernel_excerpts_the_chapter_prints_parse_and_fit():
    import ast

    import torch

    from attn_lib import triton_flash

    if triton_flash.why_unavailable():
        pytest.skip(triton_flash.why_unavailable())
    triton_flash.flash_attention(*(torch.randn(1, 1, 8, 16) for _ in range(3)))  # builds the kernels
    for fn, start, stop in ((triton_flash._attn_fwd, "pid_m = _query_block", "acc = tl.full"),
                            (triton_flash._attn_fwd_inner, "for start_n", "return acc"),
                            (triton_flash._attn_fwd, "if CAUSAL:", "CAUSAL, True"),
                            (triton_flash._attn_fwd, "out = acc /", "tl.store(Lse")):
        text = flash.source_excerpt(fn, start, stop)
        ast.parse(text)
        assert all(len(line) <= 80 for line in text.splitlines())
