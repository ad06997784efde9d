"""attn_lib.reported: the cited file of figures published elsewhere validates and plots
apart."""

import copy
import fnmatch
import tomllib
from pathlib import Path
import re
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from attn_lib import recorded, reported  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return reported.load()


def test_the_books_file_validates_and_is_apart_from_recorded_runs(data):
    assert data["schema"] == reported.SCHEMA and data["rows"]
    # shipped inside the package, never among the book's runs
    assert reported.data_path().is_relative_to(Path(reported.__file__).parent)
    # recorded.load_runs reads book/data/*.json only: the reported file is never a "run"
    assert all("reported" not in str(r.path) for r in recorded.load_runs())
    for row in data["rows"]:
        assert row["source"] in data["sources"] and row["where"]
        if not row["up_to"]:
            assert all(
                row[k] is not None for k in ("dtype", "head_dim", "causal", "seq_len")
            )


def test_the_file_is_package_data_so_pip_installs_it():
    # Colab installs attn_lib with pip, without the checkout: the file must be declared
    root = Path(reported.__file__).parent
    config = tomllib.loads((root.parent / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["attn_lib"]
    rel = reported.data_path().relative_to(root).as_posix()
    assert any(fnmatch.fnmatch(rel, p) for p in patterns), (rel, patterns)


def test_rate_and_time_agree_where_both_are_reported(data):
    timed = [r for r in data["rows"] if r.get("time_ms")]
    assert timed
    for (
        r
    ) in timed:  # the FA3 Table 2 row: 4·8448²·128·16·4 FLOPs in 3.538 ms = 661 TFLOP/s
        assert reported.reported_flops(r) / (
            r["time_ms"] * 1e-3
        ) / 1e12 == pytest.approx(r["tflops"], rel=0.01)


def _break(data, where, value):
    bad = copy.deepcopy(data)
    target = bad
    *path, last = where
    for key in path:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return bad


@pytest.mark.parametrize(
    "where, value, field",
    [
        (("schema",), "attn_lib.reported/0", "schema"),
        (("rows", 0, "tflops"), "740", "rows[0].tflops"),
        (("rows", 1, "head_dim"), None, "rows[1].head_dim"),
        (("rows", 1, "tflops"), 700.0, "rows[1].tflops"),  # disagrees with its own time
        (
            ("rows", 0, "tflops"),
            2000.0,
            "rows[0].tflops",
        ),  # above the H100's dense fp16 peak
        (("rows", 0, "gpu"), "H900", "rows[0].gpu"),
        (("rows", 0, "source"), "fa9", "rows[0].source"),
        (("rows", 0, "pass"), "fwd", "rows[0].pass"),
        (("sources", "fa3", "id"), "", "sources.fa3.id"),
        (("rows", 0, "up_to"), KeyError, "rows[0].up_to"),
    ],
)
def test_errors_name_the_field(data, where, value, field, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_break(data, where, value)))
    with pytest.raises(ValueError, match=re.escape(f"bad.json: field '{field}'")):
        reported.load(path)


def test_validate_checks_the_data_and_each_row(data):
    assert reported.validate(data) is data  # the parsed file, returned as it came
    row = data["rows"][0]
    assert reported.validate_row(row, "rows[0]", data["sources"]) is row
    with pytest.raises(ValueError, match=re.escape("mine.json: field 'rows[0].source'")):
        reported.validate_row(row, "rows[0]", {}, "mine.json")  # a source not cited
    with pytest.raises(ValueError, match="x: must be a JSON object"):
        reported.validate([data], "x")


def test_invalid_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        reported.load(path)


def test_plot_labels_every_line_reported_elsewhere(data):
    fig, ax = plt.subplots()
    lines = reported.plot_reported(ax, data)
    assert lines and all("reported elsewhere" in line.get_label() for line in lines)
    plt.close(fig)


def test_plain_floats_for_prose():
    assert reported.max_reported_tflops("H100 SXM") == 740.0
    assert type(reported.max_reported_tflops("H100 SXM", "FlashAttention-3")) is float
    with pytest.raises(ValueError, match="no reported"):
        reported.max_reported_tflops("T4")


def test_hardware_figures_are_the_fa3_papers():
    # FlashAttention-3 (Section 3.2): 989 TFLOP/s of fp16 matmul, 3.9 TFLOP/s of exponentials
    assert reported.hardware_figure("h100_matmul_tflops") == 989.0
    assert reported.hardware_figure("h100_exp_tflops") == 3.9
    assert "3.9 TFLOPS" in reported.hardware_citation("h100_exp_tflops")


def test_a_hardware_figure_needs_a_known_source():
    data = reported.load()
    bad = {**data, "hardware": {"x": {**data["hardware"]["h100_exp_tflops"], "source": "nope"}}}
    with pytest.raises(ValueError, match="hardware.x.source"):
        reported.validate(bad)


def test_label_names_what_where_and_that_it_was_reported(data):
    for row in data["rows"]:
        text = reported.label(row, data)
        assert text.startswith(row["impl"]) and text.endswith("reported elsewhere)")
        assert (row.get("gpu") or "GPU not stated") in text
        assert (", causal" in text) == (row.get("causal") is True)
