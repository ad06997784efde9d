"""attn_lib.recorded: loading and validating recorded benchmark runs (real suite output).

The run is tests/conftest.py's `tiny_suite_run`; drawing a run is tested in test_viz_flash.py.
"""
import copy
import json

import pytest

pytest.importorskip("torch")

from attn_lib import recorded  # noqa: E402
from attn_lib.bench.measure import write_json  # noqa: E402


@pytest.fixture
def real_run(tiny_suite_run):
    return tiny_suite_run


@pytest.fixture
def data(tmp_path, real_run):
    """A book/data-like folder: the real run, and the same run stamped a day later (non-quick)."""
    write_json(real_run, tmp_path / "bench-cpu-a.json")
    later = copy.deepcopy(real_run)
    later["created"], later["quick"] = "2999-01-01T00:00:00Z", False
    write_json(later, tmp_path / "bench-cpu-b.json")
    return tmp_path


def test_missing_or_empty_directory_gives_no_runs(tmp_path):
    assert recorded.load_runs(directory=tmp_path / "nope") == []
    assert recorded.load_runs(directory=tmp_path) == []


def test_default_directory_is_the_books_data_folder(data, monkeypatch):
    assert recorded.data_dir().parts[-2:] == ("book", "data")
    recorded.load_runs()  # whatever book/data holds (maybe nothing yet) must validate
    monkeypatch.setattr(recorded, "data_dir", lambda: data)  # the default reads data_dir()
    assert [r.path.name for r in recorded.load_runs()] == ["bench-cpu-b.json", "bench-cpu-a.json"]


def test_runs_load_newest_first_and_filter(data):
    runs = recorded.load_runs(directory=data)
    assert [r.path.name for r in runs] == ["bench-cpu-b.json", "bench-cpu-a.json"]
    assert len(recorded.load_runs("cpu", directory=data)) == 2
    assert recorded.load_runs("gpu", directory=data) == []
    assert [r.path.name for r in recorded.load_runs(directory=data, include_quick=False)] == ["bench-cpu-b.json"]
    with pytest.raises(ValueError, match="kind"):
        recorded.load_runs("tpu", directory=data)


@pytest.mark.parametrize("breakage, field", [
    (lambda r: r.pop("device"), "missing field 'device'"),
    (lambda r: r.update(schema="other/9"), "'schema'"),
    (lambda r: r.update(kind="other"), "'kind'"),
    (lambda r: r["attention"][0].update(status="fast"), r"'attention\[0\]\.status'"),
    (lambda r: r["attention"][0].update(causal="yes"), r"'attention\[0\]\.causal' must be bool"),
    (lambda r: r["kv_cache"]["decode"][0].pop("median_s"), r"'kv_cache\.decode\[0\]\.median_s'"),
    (lambda r: r["matmul"][0].update(tflops=None), r"'matmul\[0\]\.tflops' must be number"),
    (lambda r: r["attention"][0].update(impl="naive"), r"'attention\[0\]\.impl' .* attn_lib.bench/2"),
    (lambda r: next(a for a in r["attention"] if a["impl"] == "sdpa").update(backend=None),
     r"'attention\[\d+\]\.backend' must be one of"),
    (lambda r: r["naive_oom"].pop("impl"), r"missing field 'naive_oom\.impl'"),
])
def test_schema_errors_name_file_and_field(tmp_path, real_run, breakage, field):
    broken = copy.deepcopy(real_run)
    breakage(broken)
    path = tmp_path / "bench-broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=field) as err:
        recorded.load_runs(directory=tmp_path)
    assert "bench-broken.json" in str(err.value)


def test_invalid_json_is_a_clear_error(tmp_path):
    (tmp_path / "bench-bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bench-bad.json: not valid JSON"):
        recorded.load_runs(directory=tmp_path)


def test_only_bench_files_are_runs(data):
    # make check-gpu writes notebooks-<device>-<date>.json beside the suite's run
    (data / "notebooks-cpu-2026-12-05.json").write_text(json.dumps({"kind": "notebook-check"}))
    assert len(recorded.load_runs(directory=data)) == 2


def test_series_per_impl_and_section(data):
    run = recorded.load_runs(directory=data)[0]
    tflops = recorded.series(run, "tflops")
    assert set(tflops) == {"standard", "torch_tiled", "sdpa"}  # triton was skipped on the CPU
    assert tflops["standard"][0] == [32, 64] and all(y > 0 for y in tflops["standard"][1])
    assert recorded.series(run, "seconds", impl="sdpa", causal=True)["sdpa"][0] == [32, 64]
    assert recorded.series(run, "peak_bytes") == {}  # no CUDA memory on a CPU run
    assert recorded.series(run, "decode")["decode"][0] == [32, 64]
    assert recorded.series(run, "matmul") == {"float32": ([32], [run.data["matmul"][0]["tflops"]])}
    with pytest.raises(ValueError, match="what"):
        recorded.series(run, "joules")


def test_run_attention_filters(data):
    run = recorded.load_runs(directory=data)[0]
    assert {r["impl"] for r in run.attention(status=None)} == set(recorded.MEASURED)
    assert {r["status"] for r in run.attention(status=None)} <= set(recorded.STATUSES)
    assert [r["n_q"] for r in run.attention("standard", causal=False)] == [32, 64]
    assert run.label.startswith("CPU") and "2999-01-01" in run.label


def schema_1(run: dict) -> dict:
    """The run as the first H200 file stores it: schema 1, 'naive' rows, no backend field."""
    old = copy.deepcopy(run)
    old["schema"] = "attn_lib.bench/1"
    for rec in old["attention"]:
        rec.pop("backend")
        rec["impl"] = "naive" if rec["impl"] == "standard" else rec["impl"]
    old["naive_oom"].pop("impl")
    return old


def test_schema_1_runs_with_naive_rows_still_load(tmp_path, real_run):
    write_json(schema_1(real_run), tmp_path / "bench-old.json")
    run = recorded.load_runs(directory=tmp_path)[0]
    assert set(recorded.series(run, "tflops")) == {"naive", "torch_tiled", "sdpa"}
    assert list(recorded.SCHEMAS)[-1] == recorded.SCHEMA and "naive" in recorded.SCHEMAS["attn_lib.bench/1"]
    standard = schema_1(real_run)
    standard["attention"][0]["impl"] = "standard"  # schema 1 never recorded standard rows
    with pytest.raises(ValueError, match=r"impl' must be one of .* attn_lib.bench/1"):
        recorded.validate_run(standard)


def test_every_impl_says_what_its_rows_measured():
    assert set(recorded.IMPL_DESCRIPTIONS) == set(recorded.IMPLS)
    assert set(recorded.MEASURED) <= set(recorded.IMPLS) and "naive" not in recorded.MEASURED
    naive = recorded.describe_impl("naive")
    assert "float32" in naive and "torch_impl.attention" in naive and "not standard attention" in naive
    assert "standard_attention" in recorded.describe_impl("standard")
    assert "backend" in recorded.describe_impl("sdpa")
    with pytest.raises(ValueError, match="impl"):
        recorded.describe_impl("flash")


def test_book_data_installs_with_the_package():
    # Colab installs attn_lib with pip and has no checkout: book/data must ship as
    # attn_lib/_book_data (pyproject.toml), and every subpackage must be listed there.
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(recorded.__file__).resolve().parent.parent
    tool = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["package-dir"]["attn_lib._book_data"] == "book/data"
    patterns = tool["package-data"]["attn_lib._book_data"]
    for path in (root / "book" / "data").rglob("*"):
        if path.is_file():
            rel = path.relative_to(root / "book" / "data").as_posix()
            assert any(fnmatch.fnmatch(rel, p) for p in patterns), (rel, patterns)
    packages = {".".join(p.parent.relative_to(root).parts)
                for p in (root / "attn_lib").rglob("__init__.py")}
    assert set(tool["packages"]) == packages | {"attn_lib._book_data"}


def test_data_dir_falls_back_to_the_installed_copy(monkeypatch, tmp_path):
    # Laid out as site-packages: attn_lib/recorded.py with no book/ beside the package.
    fake = tmp_path / "attn_lib" / "recorded.py"
    monkeypatch.setattr(recorded, "__file__", str(fake))
    assert recorded.data_dir() == tmp_path / "attn_lib" / "_book_data"
