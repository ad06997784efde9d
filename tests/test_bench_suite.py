"""The benchmark suite (python -m attn_lib.bench) on a CPU, at tiny sizes, and its JSON schema.

The run itself is tests/conftest.py's `tiny_suite_run`, shared with test_recorded and test_viz_flash.
"""
import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from attn_lib import recorded  # noqa: E402
from attn_lib.bench import __main__ as cli, measure, plan as plans, report  # noqa: E402
from test_recorded import schema_1  # noqa: E402


@pytest.fixture
def run(tiny_suite_run):
    return tiny_suite_run


def test_run_follows_the_schema(run):
    assert recorded.validate_run(run) is run
    assert run["schema"] == recorded.SCHEMA and run["kind"] == recorded.KIND and run["device"]["type"] == "cpu"
    assert run["versions"]["torch"] == torch.__version__
    json.dumps(run)  # plain JSON types only


def test_every_case_is_recorded_once(run, tiny_plan):
    cases = {(r["impl"], r["n_q"], r["head_dim"], r["causal"], r["dtype"]) for r in run["attention"]}
    assert len(cases) == len(run["attention"]) == len(measure.attention_cases(tiny_plan))
    for rec in run["attention"]:
        if rec["impl"] == "triton":  # no GPU here: recorded as skipped, with the reason
            assert rec["status"] == "skipped" and "GPU" in rec["note"]
        else:
            assert rec["status"] == "ok", rec["note"]
            assert rec["tflops"] == pytest.approx(rec["flops"] / rec["median_s"] / 1e12)
            assert rec["times_s"] and rec["batch"] * rec["n_q"] == 64


def test_causal_flops_count_visible_pairs(run):
    by = {(r["impl"], r["n_q"], r["causal"]): r["flops"] for r in run["attention"]}
    b, h, n, d = 1, 2, 64, 16
    assert by[("standard", n, False)] == 4 * b * h * n * n * d
    assert by[("standard", n, True)] == 4 * b * h * n * (n + 1) // 2 * d


def test_the_schema_has_one_home():
    # the CLI writes recorded.py's schema constants, it does not keep copies of them
    assert measure.SCHEMA is recorded.SCHEMA and measure.KIND is recorded.KIND
    assert plans.MEASURED is recorded.MEASURED == recorded.SCHEMAS[measure.SCHEMA]


def test_unfused_rows_time_standard_attention_in_the_plans_dtype(run, tiny_plan):
    from attn_lib import torch_impl

    assert measure.BASELINE == "standard" and "naive" not in tiny_plan.impls
    assert measure._impl_fn("standard") is torch_impl.standard_attention
    assert {r["impl"] for r in run["attention"]} == set(recorded.MEASURED)
    assert {r["dtype"] for r in run["attention"]} == set(tiny_plan.dtypes)
    assert run["naive_oom"]["impl"] == "standard"


def test_every_sdpa_record_names_its_backend(run):
    from attn_lib import torch_impl

    for rec in run["attention"]:
        if rec["impl"] != "sdpa":
            assert rec["backend"] is None
            continue
        assert rec["backend"] in recorded.BACKENDS
        q = torch.zeros(rec["batch"], rec["heads"], rec["n_q"], rec["head_dim"])
        assert rec["backend"] == torch_impl.sdpa_backend(q, q, q, causal=rec["causal"])


def test_report_prints_dtype_backend_and_what_each_row_measured(run):
    table = report.format_table(run["attention"])
    header = table.splitlines()[0].split()
    assert header[:4] == ["dtype", "d", "causal", "N"] and header[-2:] == ["sdpa", "backend"]
    backend = next(r["backend"] for r in run["attention"] if r["impl"] == "sdpa")
    assert table.splitlines()[2].split()[0] == "float32" and table.splitlines()[2].split()[-1] == backend
    assert f"standard: {recorded.describe_impl('standard')}" in table
    text = report.summary(run)
    assert "standard attention (float32 inputs) OOM: none" in text and "prefill (s, float32)" in text


def test_report_reads_a_schema_1_run(run):
    # The first H200 file: 'naive' rows and no backend field; the table says so.
    old = schema_1(run)
    recorded.validate_run(old)
    table = report.format_table(old["attention"])
    assert "unrecorded" in table and "naive: the accurate float32 path" in table
    assert "naive attention (float32 inputs) OOM" in report.summary(old)


def test_kv_cache_and_matmul_sections(run):
    kv = run["kv_cache"]
    assert kv["status"] == "ok" and [r["n"] for r in kv["prefill"]] == [16, 32]
    assert [r["n"] for r in kv["decode"]] == [32, 64] and all(r["median_s"] > 0 for r in kv["decode"])
    assert kv["decode_batch"] == 8 and kv["prefill_batch"] == 1 and kv["dtype"] == "float32"
    assert [(m["n"], m["dtype"]) for m in run["matmul"]] == [(32, "float32")]
    assert run["naive_oom"]["n"] is None  # only searched on a GPU


def test_kv_cache_skips_cleanly_without_tiny_gpt(monkeypatch, tiny_plan):
    monkeypatch.setitem(sys.modules, "attn_lib.tiny_gpt", None)  # import now raises ImportError
    kv = measure.run_kv_cache(tiny_plan)
    assert kv["status"] == "skipped" and "tiny_gpt" in kv["note"] and kv["prefill"] == []


def test_cli_writes_one_valid_json(tmp_path, monkeypatch, capsys, tiny_plan):
    monkeypatch.setattr(cli, "plan", lambda device=None, quick=False, one_dtype=False: tiny_plan)
    out = tmp_path / "run.json"
    assert cli.main(["--quick", "--out", str(out), "--no-progress"]) == 0
    loaded = recorded.load_run(out)
    assert loaded.data["command"] == "python -m attn_lib.bench --quick"
    printed = capsys.readouterr().out
    assert "standard" in printed and str(out) in printed


def test_cli_help_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "attn_lib.bench", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "--quick" in done.stdout and "--one-dtype" in done.stdout


def test_default_path_names_device_and_date(run, tmp_path):
    path = measure.default_path(run, root=tmp_path)
    assert path.parent == tmp_path / "book" / "data"
    assert path.name == f"bench-cpu-{run['created'][:10]}.json"
    assert measure.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


def test_plans_are_sized_to_the_device():
    cpu = plans.plan("cpu", quick=True)
    assert max(cpu.seq_lens) <= 1024 and cpu.oom_search_max == 0 and cpu.dtypes == ["float32"]
    if torch.cuda.is_available():
        gpu = plans.plan("cuda")
        assert 16384 in gpu.seq_lens and gpu.oom_search_max > 16384


@pytest.mark.parametrize("capability, dtypes", [
    ((7, 5), ["float16"]),               # T4: bf16 only emulated
    ((8, 0), ["bfloat16", "float16"]),   # A100
    ((9, 0), ["bfloat16", "float16"]),   # H100 / H200
])
def test_gpu_plans_follow_the_chapters_dtype_rule(monkeypatch, capability, dtypes):
    # torch.cuda.is_bf16_supported() answers True on a T4; the plan must not ask it.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    assert plans.gpu_dtypes(capability) == dtypes
    full, one = plans.plan("cuda"), plans.plan("cuda", one_dtype=True)
    assert full.dtypes == dtypes and full.matmul_dtypes == dtypes + ["float32"]
    assert one.dtypes == dtypes[:1] and one.matmul_dtypes == dtypes[:1] + ["float32"]
    assert plans.plan("cuda", quick=True).dtypes == dtypes[:1]
    with pytest.raises(ValueError, match="capability"):
        plans.gpu_dtypes((9,))


def test_targets_compare_triton_with_sdpa():
    # Synthetic records (test data only): Triton at 1.2x SDPA at N=4096, 0.9x at N=8192.
    def rec(impl, n, tflops):
        return {"impl": impl, "n_q": n, "dtype": "bfloat16", "head_dim": 128, "causal": False,
                "status": "ok", "tflops": tflops}

    result = {"device": {"name": "NVIDIA H100 80GB HBM3"},
              "attention": [rec("triton", 4096, 600.0), rec("sdpa", 4096, 500.0),
                            rec("triton", 8192, 450.0), rec("sdpa", 8192, 500.0), rec("triton", 1024, 1.0)]}
    ratio, peak = report.check_targets(result)
    assert ratio["value"] == pytest.approx(0.9) and not ratio["passed"]
    assert peak["value"] == pytest.approx(600 / 989.4) and peak["passed"]
    assert "MISS" in report.format_targets([ratio]) and "PASS" in report.format_targets([peak])


def test_table_has_one_row_per_case(run):
    table = report.format_table(run["attention"])
    rows = table.split("\n(TFLOP/s")[0]
    assert rows.count("\n") == 1 + 2 * 2  # header, rule, 2 N x 2 causal (then the footnotes)
    assert "skipped" in table


def test_out_of_memory_is_recorded_and_larger_n_skipped(monkeypatch, tiny_plan):
    from attn_lib import torch_impl

    def naive_that_ooms(q, k, v, causal=False):
        if q.shape[-2] >= 64:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")
        return torch_impl.attention(q, k, v, causal=causal)

    monkeypatch.setattr(measure, "_impl_fn", lambda impl: naive_that_ooms)
    plan = tiny_plan
    plan.seq_lens, plan.impls, plan.causal = [32, 64, 128], ["standard"], [False]
    status = {r["n_q"]: (r["status"], r["note"]) for r in measure.run_attention(plan)}
    assert status[32] == ("ok", None)
    assert status[64] == ("oom", "out of memory")
    assert status[128] == ("skipped", "out of memory already at N=64")
    # On a GPU the sweep's own OOM answers the search when it happened at batch 1.
    records = measure.run_attention(plan)
    plan.device, plan.oom_search_max, plan.tokens = "cuda", 1024, 32
    for r in records:
        r["batch"] = 1
    assert measure.find_naive_oom(plan, records)["n"] == 64


def test_threads_are_recorded_and_restored(run):
    assert run["device"]["torch_threads"] == 1 and run["config"]["threads"] == 1
    assert torch.get_num_threads() >= 1  # restored to the default after the run
