"""tools/check_gpu.py (`make check-gpu`): its refusal without a GPU, and its JSON summary
built from JUnit XML as pytest and nbval write it (the XML below is a real nbval report's
shape, cut down: one cell passes, one prints different lines, one raises, one times out).
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_gpu", ROOT / "tools" / "check_gpu.py")
check_gpu = importlib.util.module_from_spec(_spec)
sys.modules["check_gpu"] = check_gpu
_spec.loader.exec_module(check_gpu)

NBVAL_JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" errors="0" failures="3" skipped="1" tests="6" time="40.1">
<testcase classname="" name="Cell 0" time="0.761" />
<testcase classname="" name="Cell 1" time="0.006"><failure message="#x1B[91mNotebook cell \
execution failed#x1B[0m&#10;Cell 1: Cell outputs differ&#10;[+9 more lines; full report in element \
text]">#x1B[91mNotebook cell execution failed#x1B[0m
#x1B[94mCell 1: Cell outputs differ

Input:
#x1B[0mprint(verdicts())

#x1B[94mTraceback:#x1B[0m
#x1B[94m mismatch 'stdout'#x1B[91m

 assert reference_output == test_output failed:

  'slope in [1.5, 2.5]: True\\nsame\\nscan faster: True\\n' == 'slope in [1.5, 2.5]: False\\nsame\\nscan faster: False\\n'
  
  - slope in [1.5, 2.5]: False
  ?                      ^^^^
  + slope in [1.5, 2.5]: True
  ?                      ^^^
    same
  - scan faster: False
  + scan faster: True
#x1B[0m
</failure></testcase>
<testcase classname="" name="Cell 2" time="3.5"><failure message="Cell 2: Cell execution caused an \
exception">Notebook cell execution failed
Cell 2: Cell execution caused an exception

Input:
1/0

Traceback:
#x1B[31mZeroDivisionError#x1B[39m                         Traceback (most recent call last)
Cell In[1], line 1
----&gt; 1 1/0

#x1B[31mZeroDivisionError#x1B[39m: division by zero
</failure></testcase>
<testcase classname="" name="Cell 3" time="30.2"><failure message="Cell 3: Timeout">Notebook cell \
execution failed
Cell 3: Timeout of 30 seconds exceeded executing cell

Input:
generate()

Traceback:
KeyboardInterrupt:
</failure></testcase>
<testcase classname="" name="Cell 4" time="0.0"><skipped type="pytest.xfail" \
message="Previous cell timed out, expected cell to fail" /></testcase>
<testcase classname="" name="Cell 5" time="5.25" />
</testsuite></testsuites>"""

TESTS_JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.test_triton_flash" name="test_matches_reference[64]" time="2.0" />
<testcase classname="tests.test_triton_flash" name="test_long_sequences_on_gpu[64-True]" time="1.0">
<failure message="AssertionError: 0.02 &gt; 0.01">E   AssertionError: 0.02 &gt; 0.01</failure></testcase>
<testcase classname="tests.test_timing" name="test_peak_cuda_bytes" time="0.1">
<skipped type="pytest.skip" message="needs a CUDA GPU" /></testcase>
<testcase classname="tests.test_ring" name="test_gpu_inputs_come_back_on_the_gpu" time="0.5">
<error message="failed on setup">RuntimeError: NCCL error</error></testcase>
</testsuite></testsuites>"""


# ------------------------------------------------------------------ no GPU: nothing runs
def test_refuses_without_a_gpu_and_runs_nothing(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "check_gpu.py"), "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs a CUDA GPU" in done.stdout and "Nothing was run" in done.stdout
    assert list(tmp_path.iterdir()) == []  # no JSON written


def test_the_gate_comes_first(monkeypatch, capsys):
    # Nothing after the gate may run: every later step would fail loudly here.
    monkeypatch.setattr(check_gpu, "cuda_status", lambda: (False, "torch 9 (a CPU-only build) sees no CUDA device"))
    for name in ("check", "missing_modules", "install_command", "toc_notebooks", "run_notebook"):
        monkeypatch.setattr(check_gpu, name, lambda *a, **k: pytest.fail("ran after the gate"))
    assert check_gpu.main(["--wheels", "somewhere"]) == 2
    assert "needs a CUDA GPU: torch 9" in capsys.readouterr().out


def test_cuda_status_on_this_machine():
    torch = pytest.importorskip("torch")
    usable, what = check_gpu.cuda_status()
    assert usable == torch.cuda.is_available() and torch.__version__ in what


def test_a_missing_stack_is_named_with_the_wheels_command(monkeypatch, capsys):
    monkeypatch.setattr(check_gpu, "cuda_status", lambda: (True, "Test GPU"))
    monkeypatch.setattr(check_gpu, "missing_modules", lambda: ["nbval", "ipykernel"])
    monkeypatch.setattr(check_gpu, "check", lambda *a: pytest.fail("checked without nbval"))
    assert check_gpu.main([]) == 3
    out = capsys.readouterr().out
    assert "nbval, ipykernel" in out and "make gpu-wheels" in out and "WHEELS=" in out


def test_missing_modules_asks_for_each_module():
    assert check_gpu.missing_modules(lambda name: None) == list(check_gpu.STACK_MODULES)
    assert check_gpu.missing_modules(lambda name: object()) == []


# ------------------------------------------------------------------ JUnit -> JSON
def test_nbval_report_becomes_one_notebook_entry():
    cases = check_gpu.parse_junit(NBVAL_JUNIT)
    assert [c["outcome"] for c in cases] == ["passed", "failed", "failed", "failed", "skipped", "passed"]
    entry = check_gpu.summarise_notebook("book/ch1_handshakes.ipynb", cases, seconds=41.234,
                                         peak_gpu_bytes=3 * 2**30, returncode=1, slowest=3)
    assert entry["notebook"] == "book/ch1_handshakes.ipynb" and entry["cells"] == 6 and entry["passed"] == 2
    assert entry["raised"] == [{"cell": 2, "error": "ZeroDivisionError: division by zero", "seconds": 3.5},
                               {"cell": 3, "error": "timeout", "seconds": 30.2}]
    assert entry["not_run"] == [4]
    (diff,) = entry["differs"]
    assert diff["cell"] == 1 and diff["fields"] == ["mismatch 'stdout'"]
    assert diff["stored"] == ["slope in [1.5, 2.5]: True", "scan faster: True"]
    assert diff["computed"] == ["slope in [1.5, 2.5]: False", "scan faster: False"]
    assert entry["lines_differ"] == 2  # two lines changed
    assert entry["slowest"] == [{"cell": 3, "seconds": 30.2}, {"cell": 5, "seconds": 5.25},
                                {"cell": 2, "seconds": 3.5}]
    assert entry["peak_gpu_bytes"] == 3 * 2**30 and entry["seconds"] == 41.234
    json.dumps(entry)


def test_a_different_number_of_outputs_lists_both_sides():
    # nbval's report when a cell prints more (or fewer) outputs than the stored ones
    detail = ('dissimilar number of outputs for key "text/plain"<<<<<<<<<<<< Reference outputs from '
              "ipynb file:\n'N = 1,024'\n============ disagrees with newly computed (test) output:\n"
              "'N = 16,384'\n'extra'\n>>>>>>>>>>>>")
    diff = check_gpu.differing_lines(detail)
    assert diff["stored"] == ["'N = 1,024'"] and diff["computed"] == ["'N = 16,384'", "'extra'"]
    assert diff["fields"] == ['dissimilar number of outputs for key "text/plain"']


def test_a_difference_without_a_line_diff_counts_once():
    missing = {"stored": [], "computed": [], "fields": ["Missing output fields from running code: {'stdout'}"]}
    assert check_gpu._lines_differ(missing) == 1
    assert check_gpu._lines_differ({"stored": ["a", "b"], "computed": ["c"], "fields": []}) == 2


def test_gpu_tests_report():
    cases = check_gpu.parse_junit(TESTS_JUNIT)
    assert cases[0]["name"] == "tests.test_triton_flash::test_matches_reference[64]"
    summary = check_gpu.summarise_tests(cases, seconds=3.6, returncode=1)
    assert (summary["passed"], summary["failed"], summary["error"], summary["skipped"]) == (1, 1, 1, 1)
    assert [f["test"].rsplit("::", 1)[1] for f in summary["failures"]] == [
        "test_long_sequences_on_gpu[64-True]", "test_gpu_inputs_come_back_on_the_gpu"]
    assert "NCCL error" in summary["failures"][1]["detail"]


def test_totals_pass_only_a_clean_run():
    clean = check_gpu.summarise_notebook("a.ipynb", check_gpu.parse_junit(NBVAL_JUNIT.replace(
        "<failure", "<skipped").replace("</failure>", "</skipped>")), seconds=1, peak_gpu_bytes=0, returncode=0)
    dirty = check_gpu.summarise_notebook("b.ipynb", check_gpu.parse_junit(NBVAL_JUNIT), seconds=1,
                                         peak_gpu_bytes=0, returncode=1)
    tests = {"returncode": 0, "failed": 0, "error": 0}
    ok = check_gpu.totals([clean], tests, {"returncode": 0}, elapsed_s=300)
    assert ok["ok"] and ok["within_budget"] and ok["cells_raised"] == ok["lines_differ"] == 0
    assert ok["notebooks_over_s"] == [] and check_gpu.totals(
        [{**clean, "seconds": 61.0}], None, None, 61)["notebooks_over_s"] == ["a.ipynb"]
    bad = check_gpu.totals([clean, dirty], tests, {"returncode": 0}, elapsed_s=500)
    assert not bad["ok"] and not bad["within_budget"] and (bad["cells_raised"], bad["lines_differ"]) == (2, 2)
    assert not check_gpu.totals([clean], {**tests, "failed": 1}, None, 1)["ok"]
    assert not check_gpu.totals([clean], None, {"returncode": 1}, 1)["ok"]
    hung = {**clean, "returncode": None}  # the notebook's own time limit: killed
    assert check_gpu.totals([hung], None, None, 1)["notebooks_broken"] == ["a.ipynb"]


# ------------------------------------------------------------------ what it runs, where it writes
def test_each_notebook_runs_under_the_makefiles_nbval_options():
    cmd = check_gpu.nbval_command("python3", "book/ch1_handshakes.ipynb", Path("j.xml"), 120)
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nnotebooks:", 1)[1].split("\n\n", 1)[0]
    for option in ("--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
                   "-p", "no:cacheprovider"):
        assert option in recipe.split() and option in cmd
    assert "--nbval-lax" not in cmd and "--nbval-cell-timeout=120" in cmd and "--junitxml=j.xml" in cmd
    assert cmd[-1] == "book/ch1_handshakes.ipynb"


def test_every_toc_notebook_is_checked():
    notebooks = check_gpu.toc_notebooks()
    assert notebooks and all((ROOT / nb).is_file() for nb in notebooks)
    assert notebooks[0] == "book/ch1_handshakes.ipynb" and len(set(notebooks)) == len(notebooks)


def test_output_files_use_the_suites_name(tmp_path):
    bench, notebooks = check_gpu.output_paths("NVIDIA H100 80GB HBM3", "2026-12-05", tmp_path)
    assert bench == tmp_path / "bench-nvidia-h100-80gb-hbm3-2026-12-05.json"
    assert notebooks == tmp_path / "notebooks-nvidia-h100-80gb-hbm3-2026-12-05.json"


def test_the_suite_is_time_boxed_by_default():
    assert check_gpu.SUITES["one-dtype"] == ["--one-dtype"] and check_gpu.SUITES["none"] is None
    assert check_gpu.BUDGET_S == 8 * 60 and check_gpu.CELL_TIMEOUT_S < check_gpu.BUDGET_S


def _gpu_only_tests() -> set[str]:
    """Tests that skip without CUDA (skipif on cuda.is_available() / CUDA) or branch on it."""
    found = set()
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if path.name == "test_check_gpu.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
                continue
            marks = [ast.unparse(d) for d in node.decorator_list]
            body = ast.unparse(node)
            if any("skipif" in m and ("cuda.is_available()" in m or "CUDA" in m) for m in marks) \
                    or "if torch.cuda.is_available()" in body:
                found.add(f"tests/{path.name}::{node.name}")
    return found


def test_gpu_tests_list_every_test_that_needs_a_gpu():
    listed = set(check_gpu.GPU_TESTS)
    for test in _gpu_only_tests():
        assert test in listed or test.split("::")[0] in listed, f"{test} is missing from GPU_TESTS"
    for target in listed:
        path, _, name = target.partition("::")
        assert (ROOT / path).is_file(), target
        assert not name or f"def {name}(" in (ROOT / path).read_text(), target


# ------------------------------------------------------------------ wheels for an offline GPU machine
def test_wheels_are_pinned_as_requirements_pins_them():
    reqs = check_gpu.wheel_requirements()
    assert "nbval==0.11.0" in reqs and "ipykernel==7.4.0" in reqs and "ipython" in reqs and "pyyaml" in reqs
    cmd = check_gpu.download_command("/tmp/w")
    assert cmd[3:5] == ["download", "--only-binary=:all:"] and ["--python-version", "3.12"] == cmd[5:7]
    assert "manylinux2014_x86_64" in cmd and cmd[-len(reqs):] == reqs
    install = check_gpu.install_command("python3", "/tmp/w")
    assert install[:6] == ["python3", "-m", "pip", "install", "--no-index", "--find-links"]


@pytest.mark.parametrize("args, python", [
    (["PY=python3.12"], "python3.12"),                          # the chosen Python, never .venv's
    (["VENV=/nonexistent-venv", "PYTHON=python3"], "python3"),  # no .venv: the system Python
])
def test_make_check_gpu_runs_the_chosen_python(args, python):
    # --no-print-directory: under `make unit` the sub-make would announce its directory
    done = subprocess.run(["make", "-n", "--no-print-directory", "check-gpu", "WHEELS=w",
                           'CHECK_GPU_ARGS=--suite quick', *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [python, "tools/check_gpu.py", "--wheels", "w", "--suite", "quick"]


def test_makefile_targets_need_no_venv():
    makefile = (ROOT / "Makefile").read_text()
    target = [ln for ln in makefile.splitlines() if ln.startswith("check-gpu:")]
    assert target == ["check-gpu:"]  # no $(STAMP): `make check-gpu PY=python3` installs nothing
    assert "gpu-wheels:" in makefile and "/.gpu-wheels/" in (ROOT / ".gitignore").read_text()


# ------------------------------------------------------------------ the whole run, on a fake GPU
def test_a_run_writes_one_json_and_exits_by_its_totals(monkeypatch, tmp_path, capsys):
    # Every step is faked (no GPU, no kernels): this checks the orchestration and the file.
    torch = pytest.importorskip("torch")
    from attn_lib.bench import measure

    entry = check_gpu.summarise_notebook("book/x.ipynb", check_gpu.parse_junit(NBVAL_JUNIT), seconds=2.0,
                                         peak_gpu_bytes=2**30, returncode=1)
    monkeypatch.setattr(check_gpu, "cuda_status", lambda: (True, "Test GPU, torch 9"))
    monkeypatch.setattr(check_gpu, "missing_modules", lambda: [])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Test GPU 80GB")
    monkeypatch.setattr(measure, "device_info", lambda device: {"type": device, "name": "Test GPU 80GB"})
    monkeypatch.setattr(check_gpu, "run_notebook", lambda python, nb, logs, timeout: {**entry, "notebook": nb})
    monkeypatch.setattr(check_gpu, "run_gpu_tests", lambda python, logs: {
        "seconds": 1.0, "returncode": 0, "passed": 3, "failed": 0, "error": 0, "skipped": 0, "failures": []})
    suites = []
    monkeypatch.setattr(check_gpu, "run_suite", lambda python, suite, out, logs: suites.append((suite, out)) or {
        "plan": suite, "path": str(out), "returncode": 0, "seconds": 1.0, "peak_gpu_bytes": 0})
    rc = check_gpu.main(["--notebooks", "book/a.ipynb", "book/b.ipynb", "--data-dir", str(tmp_path)])
    assert rc == 1  # cells raised and lines differ
    (written,) = tmp_path.glob("notebooks-test-gpu-80gb-*.json")
    run = json.loads(written.read_text())
    assert run["schema"] == check_gpu.SCHEMA and run["device"]["name"] == "Test GPU 80GB"
    assert [n["notebook"] for n in run["notebooks"]] == ["book/a.ipynb", "book/b.ipynb"]
    assert run["totals"]["cells_raised"] == 4 and run["totals"]["lines_differ"] == 4
    assert suites == [("one-dtype", tmp_path / written.name.replace("notebooks-", "bench-"))]
    out = capsys.readouterr().out
    assert "[1/4] nbval book/a.ipynb" in out and "[4/4] suite (one-dtype), its progress bar" in out
    assert "4 cells raised, 4 compared lines differ" in out
