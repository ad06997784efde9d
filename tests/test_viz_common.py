"""What the chapters' figures and tables share (attn_lib.viz._common, exported by attn_lib.viz)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from attn_lib import viz  # noqa: E402


def test_format_bytes_picks_a_unit():
    assert viz.format_bytes(999) == "999 B"
    assert viz.format_bytes(2e6) == "2.00 MB (1.91 MiB)"
    assert viz.format_bytes(2**25) == "33.55 MB (32.00 MiB)"
    assert viz.format_bytes(128_000**2 * 2) == "32.77 GB (30.52 GiB)"
    assert viz.format_bytes(1010) == "1.01 KB (1,010 B)"  # under 1 KiB: whole bytes
    with pytest.raises(ValueError, match="nbytes"):
        viz.format_bytes(-1)


def test_format_bytes_in_a_given_unit():
    assert viz.format_bytes(819200, "KB") == "819.2 KB"
    assert viz.format_bytes(819200, "KiB") == "800.0 KiB"
    with pytest.raises(ValueError, match="unit"):
        viz.format_bytes(1, "kb")
    with pytest.raises(ValueError, match="nbytes"):
        viz.format_bytes(-1024, "KB")


def test_markdown_table():
    assert viz.markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert viz.markdown_table(["a", "b"], [[1, 2]], "lr") == "| a | b |\n|:---|---:|\n| 1 | 2 |"
    with pytest.raises(ValueError, match="columns"):
        viz.markdown_table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="columns"):
        viz.markdown_table(["a", "b"], [[1, 2]], "l")


def test_plain_ticks_label_log_axes_plainly():
    _, ax = plt.subplots()
    ax.loglog([10, 100, 1000], [1, 2, 3])
    viz.plain_ticks(ax, [10, 100, 1000])
    assert list(ax.get_xticks()) == [10, 100, 1000]
    assert ax.xaxis.get_major_formatter()(1000, 0) == "1,000"
    plt.close("all")
