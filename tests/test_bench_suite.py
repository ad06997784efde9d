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
    assert by[("naive", n, False)] == 4 * b * h * n * n * d
    assert by[("naive", n, True)] == 4 * b * h * n * (n + 1) // 2 * d


def test_the_schema_has_one_home():
    # the CLI writes recorded.py's schema constants, it does not keep copies of them
    assert measure.SCHEMA is recorded.SCHEMA and measure.KIND is recorded.KIND
    assert plans.IMPLS is recorded.IMPLS


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
    monkeypatch.setattr(cli, "plan", lambda device=None, quick=False: tiny_plan)
    out = tmp_path / "run.json"
    assert cli.main(["--quick", "--out", str(out), "--no-progress"]) == 0
    loaded = recorded.load_run(out)
    assert loaded.data["command"] == "python -m attn_lib.bench --quick"
    printed = capsys.readouterr().out
    assert "naive" in printed and str(out) in printed


def test_cli_help_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "attn_lib.bench", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "--quick" in done.stdout


def test_default_path_names_device_and_date(run, tmp_path):
    path = measure.default_path(run, root=tmp_path)
    assert path.parent == tmp_path / "book" / "data"
    assert path.name == f"bench-cpu-{run['created'][:10]}.json"
    assert measure.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


def test_plans_are_sized_to_the_device():
    cpu = plans.plan("cpu", quick=True)
    assert max(cpu.seq_lens) <= 1024 and cpu.oom_search_max == 0
    if torch.cuda.is_available():
        gpu = plans.plan("cuda")
        assert 16384 in gpu.seq_lens and gpu.oom_search_max > 16384


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
    assert table.count("\n") == 2 + 2 * 2  # header, rule, 2 N x 2 causal, footnote
    assert "skipped" in table


def test_out_of_memory_is_recorded_and_larger_n_skipped(monkeypatch, tiny_plan):
    from attn_lib import torch_impl

    def naive_that_ooms(q, k, v, causal=False):
        if q.shape[-2] >= 64:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")
        return torch_impl.attention(q, k, v, causal=causal)

    monkeypatch.setattr(measure, "_impl_fn", lambda impl: naive_that_ooms)
    plan = tiny_plan
    plan.seq_lens, plan.impls, plan.causal = [32, 64, 128], ["naive"], [False]
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
