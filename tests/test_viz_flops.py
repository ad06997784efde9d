"""Chapter 1-2 figure and table helpers (attn_lib.viz.scores, attn_lib.viz.flops)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from attn_lib import counting  # noqa: E402
from attn_lib.claims import essays  # noqa: E402
from attn_lib.viz import flops, scores  # noqa: E402


def test_demo_scores_seeded_and_square():
    a, b = scores.demo_scores(5), scores.demo_scores(5)
    assert a.shape == (5, 5) and np.array_equal(a, b)
    assert not np.allclose(a, a.T)  # q_i·k_j != q_j·k_i: the matrix is not symmetric
    with pytest.raises(ValueError, match="n must"):
        scores.demo_scores(0)


def test_plot_score_matrix_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        scores.plot_score_matrix(np.zeros((2, 3)))


def test_figures_and_widgets_build():
    scores.score_explorer_static((2, 3))
    flops.flop_explorer_static("gpt2-small", (128, 1024))
    flops.plot_attention_share(ns=[64, 1024, 16384])
    flops.flop_explorer_static("llama-2-7b", (4096,), causal=True)
    assert scores.score_explorer().children and flops.flop_explorer().children
    plt.close("all")


def test_plot_times_labels_the_fitted_slope():  # the timing itself: tests/test_timing.py
    ax = scores.plot_times([4, 8, 16], {"x": [1.0, 4.0, 16.0]}, fit_ranges=[(4, 16)])
    assert ax.get_lines()[0].get_label() == "x (slope 2.0)" and len(ax.get_lines()) == 2
    plt.close("all")


def test_plot_times_skips_untimed_sizes():  # chapter 1 times its GPU recurrence at few sizes
    ax = scores.plot_times([2, 4, 8, 16], {"x": [1.0, 4.0, 16.0, 64.0], "y": [1.0, 2.0, np.nan, np.nan]},
                           fit_ranges=[(2, 4), (8, 16)])
    labels = [line.get_label() for line in ax.get_lines()]
    assert "x (slope 2.0 | 2.0)" in labels and "y (slope 1.0)" in labels  # y: no fit over 8..16
    plt.close("all")


def test_tables_say_what_they_count():
    layer = flops.layer_flops_table("gpt2-small", 1024)
    assert "share of the layer" in layer and layer.count("\n") == 1 + 6  # header, rule, 6 parts
    cross = flops.crossover_table(["gpt2-small"])
    assert "N where QKᵀ+PV = projections" in cross and "1,536" in cross  # 2·d for d = 768


def test_source_markdown_shows_the_function():
    from attn_lib import torch_impl
    from attn_lib.viz import source_markdown

    text = source_markdown(torch_impl.standard_attention)
    assert text.startswith("```python\ndef standard_attention(") and text.endswith("```")


def test_attention_flop_rows_follow_formula():
    rows = flops.attention_flop_rows((1000, 2000), 8192, 80, 1e15)
    assert rows[0]["flops"] == 4 * 1000**2 * 8192 * 80
    assert rows[1]["ratio"] == 4.0 and rows[0]["seconds"] == rows[0]["flops"] / 1e15
    assert "| 2,000 |" in flops.attention_flop_table(rows)


def test_attention_flop_table_beside_the_essay():
    from attn_lib import hardware
    from attn_lib.claims import essays

    rows = flops.attention_flop_rows()  # essay B's rows at the H100's dense fp16 peak
    peak = hardware.get("H100 SXM").peak("fp16")
    assert rows[-1]["seconds"] == rows[-1]["flops"] / peak
    quoted = list(zip(essays.TABLE_TFLOP, essays.TABLE_H100_S, essays.TABLE_RELATIVE))
    work, growth = flops.attention_flop_table(rows, quoted).split("\n\n")
    assert "| 4,096 | 44.0 | 43.8 | 0.044 | 0.044 |" in work.splitlines()
    assert "| 1,000,000 | 1,000,000× | 1,000,000× |" in growth.splitlines()
    with pytest.raises(ValueError, match="quoted"):
        flops.attention_flop_table(rows, quoted[:-1])


def test_score_memory_table_and_unit_readings():
    table = flops.score_memory_table((4096,))
    assert "33.55 MB (32.00 MiB)" in table and "67.11 MB (64.00 MiB)" in table
    assert "essay" not in table
    # with the essay's figures: each one's unit reading (claims.tables.unit_reading)
    essay = flops.score_memory_table((1000, 4096), [(2, "MB"), (32, "MB")]).splitlines()
    assert essay[0].endswith("| essay | essay's unit |") and essay[1].endswith("|:---|")
    assert essay[2].endswith("| 2 MB | decimal |") and essay[3].endswith("| 32 MB | binary |")
    assert flops.score_memory_table().count("\n") == 1 + len(essays.TABLE_N)
    with pytest.raises(ValueError, match="quoted"):
        flops.score_memory_table((1000, 4096), [(2, "MB")])


def test_chapter_2_tables_default_to_the_essay_figures():
    rows = flops.attention_flop_rows()
    assert [r["n"] for r in rows] == list(essays.TABLE_N)
    assert rows[0]["flops"] == counting.attention_flops(
        essays.TABLE_N[0], essays.TABLE_D_MODEL, essays.TABLE_LAYERS)


def _texts(fig):
    for ax in fig.axes:
        yield from [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts,
                    *ax.get_xticklabels(), *ax.get_yticklabels()]
        if ax.get_legend():
            yield from ax.get_legend().get_texts()


@pytest.mark.parametrize("draw", [
    lambda: scores.score_explorer_static(),
    lambda: flops.flop_explorer_static(),
    lambda: flops.plot_attention_share().figure,
    lambda: scores.plot_score_matrix(scores.demo_scores(12)).figure,
    lambda: scores.plot_times([4, 8], {"x": [1.0, 4.0]}, fit_ranges=[(4, 8)]).figure,
], ids=["score_static", "flop_static", "share", "score_matrix", "times"])
def test_static_figures_fit_the_column_with_readable_text(draw):
    """The book's column is 688 px: at 100 dpi a figure is at most 7 in, its text >= 9 pt."""
    fig = draw()
    fig.canvas.draw()
    assert fig.get_size_inches()[0] <= 7 and fig.dpi == 100
    sizes = [t.get_fontsize() for t in _texts(fig) if t.get_text()]
    assert sizes and min(sizes) >= 9, min(sizes)
    plt.close("all")
