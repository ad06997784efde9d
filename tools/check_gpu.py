"""The book's GPU check in one command: every notebook (nbval, strict), the GPU tests, the suite.

    make check-gpu                  # the .venv's Python
    make check-gpu PY=python3       # any Python with a CUDA torch, Triton and the test stack
    make check-gpu CHECK_GPU_ARGS="--suite quick"   # options of this script
    python3 tools/check_gpu.py [--cell-timeout 120] [--suite one-dtype|quick|full|none]
                               [--wheels DIR] [--notebooks book/ch1_handshakes.ipynb ...]

Needs a CUDA GPU: on a machine without one it says so and exits 2 before running anything.
It needs no .venv: any Python works whose torch is a CUDA build and which has Triton, pytest,
hypothesis and the Jupyter test stack (nbval, nbclient, nbformat, ipykernel, ipywidgets,
IPython, PyYAML). A GPU machine without network gets that stack from a folder of wheels:

    make gpu-wheels                 # on a machine with network: .gpu-wheels/ (cp312, manylinux)
    make check-gpu PY=python3 WHEELS=.gpu-wheels   # pip install --no-index --find-links first

What it runs, one line of progress per step (logs and JUnit XML under _build/check-gpu/):
  1. nbval, strict, over every notebook of _toc.yml, one pytest run per notebook with the
     Makefile's options (sanitize file, current env) and a per-cell timeout, while a thread
     polls the device's used memory (torch.cuda.mem_get_info) for each notebook's peak;
  2. the GPU-only tests (:data:`GPU_TESTS`: the tests that skip or shrink on a CPU);
  3. the measured suite, ``python -m attn_lib.bench --one-dtype`` (time-boxed: the chapters'
     dtype only).
and writes, beside the suite's ``book/data/bench-<device>-<date>.json``, its own
``book/data/notebooks-<device>-<date>.json``: per notebook the seconds, the peak GPU memory,
the cells that raised, the compared lines that differ from the stored outputs, the slowest
cells; the GPU tests' and the suite's outcome; the total time against the 8-minute budget.
Exit status 0 only if no cell raised, no compared line differs, the GPU tests pass and the
suite ran.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "attn_lib.check_gpu/1"
#: The whole check on an H100 / H200 (notebooks, GPU tests, suite).
BUDGET_S = 480
#: A notebook cell that runs longer has hung (each cell is ~4 s of work on an H100).
CELL_TIMEOUT_S = 120
#: A notebook's own budget on an H100-class GPU (reported, not enforced).
NOTEBOOK_S = 60
#: The GPU tests and each notebook as a whole.
STEP_TIMEOUT_S = 600
SLOWEST = 5
#: Tests that skip or shrink without a GPU (tests/test_check_gpu.py keeps this list complete).
GPU_TESTS = (
    "tests/test_triton_flash.py",
    "tests/test_tiny_gpt.py::test_cuda_matches_cpu",
    "tests/test_timing.py::test_peak_cuda_bytes",
    "tests/test_ring.py::test_gpu_inputs_come_back_on_the_gpu",
    "tests/test_bench_suite.py::test_plans_are_sized_to_the_device",
)
#: The suite's plan per --suite choice: flags of ``python -m attn_lib.bench``.
SUITES = {"one-dtype": ["--one-dtype"], "quick": ["--quick"], "full": [], "none": None}
#: The Python packages the check imports (module names), beyond torch and Triton.
STACK_MODULES = ("pytest", "hypothesis", "nbval", "nbclient", "nbformat", "ipykernel",
                 "ipywidgets", "IPython", "yaml", "matplotlib", "numpy", "tqdm")
#: What `make gpu-wheels` downloads: the Jupyter test stack and PyYAML (torch, Triton,
#: NumPy, matplotlib, pytest, hypothesis and tqdm are on a GPU machine already). Pinned to
#: requirements.txt where it pins them.
WHEEL_PACKAGES = ("nbval", "nbclient", "nbformat", "ipykernel", "ipywidgets", "jupyter_client",
                  "ipython", "pyyaml")
WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
_ANSI = re.compile(r"(?:#x1B|\x1b)\[[0-9;]*m")


# ----------------------------------------------------------------------------- the stack
def wheel_requirements(requirements: Path = ROOT / "requirements.txt") -> list[str]:
    """WHEEL_PACKAGES as pip requirements, each pinned as requirements.txt pins it."""
    pins = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_canonical(name)] = version.strip()
    return [f"{p}=={pins[_canonical(p)]}" if _canonical(p) in pins else p for p in WHEEL_PACKAGES]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def download_command(dest: str, python_version: str = "3.12") -> list[str]:
    """``pip download`` of the stack's wheels (and their dependencies) for a GPU machine."""
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--python-version", python_version,
           "--implementation", "cp", "--dest", dest]
    for platform in WHEEL_PLATFORMS:
        cmd += ["--platform", platform]
    return cmd + wheel_requirements()


def install_command(python: str, wheels: str) -> list[str]:
    """Offline install of the stack from a folder of wheels (no package index is contacted)."""
    return [python, "-m", "pip", "install", "--no-index", "--find-links", wheels] + wheel_requirements()


def missing_modules(find_spec=None) -> list[str]:
    """STACK_MODULES this Python cannot import."""
    import importlib.util

    find_spec = find_spec or importlib.util.find_spec
    return [m for m in STACK_MODULES if find_spec(m) is None]


def cuda_status() -> tuple[bool, str]:
    """(usable, what this Python's torch says): the gate that runs before anything else."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed in this Python"
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return False, f"torch {torch.__version__} ({build}) sees no CUDA device"
    return True, f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"


# ----------------------------------------------------------------------------- JUnit -> summary
def _text(node) -> str:
    """A failure's full report (its element text; the message attribute is a truncated copy)."""
    return _ANSI.sub("", node.text or node.get("message") or "")


def parse_junit(xml_text: str) -> list[dict]:
    """One dict per test case of a pytest JUnit XML: name, seconds, outcome and failure text.

    outcome: 'passed', 'failed' (an assertion or nbval failure), 'error' (pytest or the kernel
    broke) or 'skipped' (nbval marks the cells after a timed-out one xfail, i.e. skipped).
    """
    cases = []
    for case in ET.fromstring(xml_text).iter("testcase"):
        outcome, detail = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                detail = _text(node) if tag != "skipped" else (node.get("message") or "")
                break
        name = case.get("name", "")
        classname = case.get("classname") or ""
        cases.append({"name": f"{classname}::{name}" if classname else name,
                      "seconds": float(case.get("time") or 0.0), "outcome": outcome, "detail": detail})
    return cases


def cell_number(name: str) -> int | None:
    """nbval's test name 'Cell 12' -> 12 (the code cell's index, counting code cells from 0)."""
    m = re.search(r"Cell (\d+)$", name)
    return int(m.group(1)) if m else None


def differing_lines(detail: str) -> dict:
    """The stored and the computed lines of an nbval 'Cell outputs differ' failure.

    nbval hands pytest's comparison ``reference == test`` its diff: '+' lines are the stored
    output, '-' lines the newly computed one ('?' hint lines are dropped). When the number of
    outputs differs it prints both in full between '<<<<' / 'disagrees with' / '>>>>' markers.
    What nbval says about whole outputs (a missing or extra field, which field) is in `fields`.
    """
    stored, computed, fields, block = [], [], [], None
    for line in detail.splitlines():
        body = line[2:] if line.startswith("  ") else line
        if "<<<<<<<<<<<<" in line:
            block = stored
        elif "disagrees with newly computed" in line:
            block = computed
        elif ">>>>>>>>>>>>" in line:
            block = None
        elif block is not None:
            block.extend(ln for ln in line.strip().splitlines() if ln)
        elif body.startswith("+ "):
            stored.append(body[2:])
        elif body.startswith("- "):
            computed.append(body[2:])
        if "output fields" in line or "dissimilar number" in line or line.strip().startswith("mismatch "):
            fields.append(line.split("<<<<")[0].strip())
    return {"stored": stored, "computed": computed, "fields": fields}


def _lines_differ(diff: dict) -> int:
    """Lines one differing cell changed: a changed line counts once (stored and computed), a
    difference nbval reports without a line diff (an output missing or extra) once."""
    return max(len(diff["stored"]), len(diff["computed"]), 1)


def _error_line(detail: str) -> str:
    """The exception's own last line ('ZeroDivisionError: division by zero'), or the message."""
    lines = [ln.strip() for ln in detail.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Warning)\b", ln):
            return ln[:300]
    return next((ln for ln in lines if "Cell" in ln and ":" in ln), lines[0] if lines else "")[:300]


def summarise_notebook(notebook: str, cases: list[dict], *, seconds: float, peak_gpu_bytes: int | None,
                       returncode: int | None, slowest: int = SLOWEST) -> dict:
    """One notebook's entry of the JSON, from its nbval JUnit cases."""
    raised, differs = [], []
    for c in cases:
        cell = cell_number(c["name"])
        if c["outcome"] == "error" or (c["outcome"] == "failed" and "Cell outputs differ" not in c["detail"]):
            timeout = "Timeout of" in c["detail"]
            raised.append({"cell": cell, "error": "timeout" if timeout else _error_line(c["detail"]),
                           "seconds": round(c["seconds"], 3)})
        elif c["outcome"] == "failed":
            differs.append({"cell": cell, **differing_lines(c["detail"])})
    ranked = sorted(cases, key=lambda c: c["seconds"], reverse=True)[:slowest]
    return {"notebook": notebook, "seconds": round(seconds, 3), "peak_gpu_bytes": peak_gpu_bytes,
            "returncode": returncode, "cells": len(cases),
            "passed": sum(c["outcome"] == "passed" for c in cases),
            "not_run": [cell_number(c["name"]) for c in cases if c["outcome"] == "skipped"],
            "raised": raised, "differs": differs,
            "lines_differ": sum(_lines_differ(d) for d in differs),
            "slowest": [{"cell": cell_number(c["name"]), "seconds": round(c["seconds"], 3)} for c in ranked]}


def summarise_tests(cases: list[dict], *, seconds: float, returncode: int | None) -> dict:
    """The GPU tests' outcome: counts, and each test that failed with its first lines."""
    count = {o: sum(c["outcome"] == o for c in cases) for o in ("passed", "failed", "error", "skipped")}
    failures = [{"test": c["name"], "detail": "\n".join(c["detail"].strip().splitlines()[:12])}
                for c in cases if c["outcome"] in ("failed", "error")]
    return {"seconds": round(seconds, 3), "returncode": returncode, **count, "failures": failures}


def totals(notebooks: list[dict], tests: dict | None, suite: dict | None, elapsed_s: float,
           budget_s: float = BUDGET_S) -> dict:
    """The verdict: ok iff nothing raised, no compared line differs, tests and suite succeeded."""
    cells_raised = sum(len(n["raised"]) for n in notebooks)
    lines_differ = sum(n["lines_differ"] for n in notebooks)
    broken = [n["notebook"] for n in notebooks if n["returncode"] not in (0, 1) or not n["cells"]]
    tests_ok = tests is None or (tests["returncode"] == 0 and not tests["failed"] and not tests["error"])
    suite_ok = suite is None or suite["returncode"] == 0
    return {"notebooks": len(notebooks), "cells_raised": cells_raised, "lines_differ": lines_differ,
            "notebooks_broken": broken,
            "notebooks_over_s": [n["notebook"] for n in notebooks if n["seconds"] > NOTEBOOK_S], "gpu_tests_ok": tests_ok, "suite_ok": suite_ok,
            "elapsed_s": round(elapsed_s, 1), "budget_s": budget_s, "within_budget": elapsed_s <= budget_s,
            "ok": cells_raised == 0 and lines_differ == 0 and not broken and tests_ok and suite_ok}


# ----------------------------------------------------------------------------- running
class PeakMemory:
    """Polls the device's used memory (all processes: nbval's kernels run in their own) in a thread.

    ``with PeakMemory() as m: ...`` then ``m.peak_bytes``: the most used above what was in
    use when it started.
    """

    def __init__(self, interval_s: float = 0.05):
        self.interval_s, self.peak_bytes = interval_s, 0
        self._stop = threading.Event()

    @staticmethod
    def used_bytes() -> int:
        import torch

        free, total = torch.cuda.mem_get_info(0)
        return int(total - free)

    def _poll(self):
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.used_bytes() - self._base)
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self._base = self.used_bytes()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.used_bytes() - self._base)


def _env() -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")  # as the Makefile exports it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(cmd: list[str], log: Path, timeout: float, *, show_stderr: bool = False) -> tuple[int | None, float]:
    """Run `cmd` in the checkout with its output in `log` (stderr on the terminal if
    `show_stderr`: the suite's progress bar); (returncode or None on timeout, seconds)."""
    start = time.perf_counter()
    with open(log, "w") as out:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=_env(), stdout=out,
                                stderr=None if show_stderr else subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = None
    return rc, time.perf_counter() - start


def nbval_command(python: str, notebook: str, junit: Path, cell_timeout: int) -> list[str]:
    """The Makefile's `notebooks` options for one notebook, with JUnit XML and a shorter timeout."""
    # -vv: pytest's full diff of a differing output (less verbose, it elides common lines)
    return [python, "-m", "pytest", "-vv", "-p", "no:cacheprovider", "--color=no", "--nbval",
            "--nbval-current-env", f"--nbval-cell-timeout={cell_timeout}",
            "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", f"--junitxml={junit}", notebook]


def toc_notebooks() -> list[str]:
    """The notebooks of _toc.yml, in reading order, relative to the checkout."""
    sys.path.insert(0, str(ROOT))
    from attn_lib.book import toc_pages

    return [f"{p}.ipynb" for p in toc_pages(ROOT / "_toc.yml") if (ROOT / f"{p}.ipynb").is_file()]


def _junit_cases(path: Path) -> list[dict]:
    return parse_junit(path.read_text()) if path.is_file() else []


def _say(text: str, end: str = "\n") -> None:
    print(text, end=end, flush=True)


def run_notebook(python: str, notebook: str, logs: Path, cell_timeout: int) -> dict:
    stem = Path(notebook).stem
    junit = logs / f"{stem}.xml"
    junit.unlink(missing_ok=True)
    with PeakMemory() as mem:
        rc, seconds = _run(nbval_command(python, notebook, junit, cell_timeout), logs / f"{stem}.log",
                           STEP_TIMEOUT_S)
    return summarise_notebook(notebook, _junit_cases(junit), seconds=seconds, peak_gpu_bytes=mem.peak_bytes,
                              returncode=rc)


def run_gpu_tests(python: str, logs: Path) -> dict:
    junit = logs / "gpu-tests.xml"
    junit.unlink(missing_ok=True)
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no", f"--junitxml={junit}",
           *GPU_TESTS]
    with PeakMemory() as mem:
        rc, seconds = _run(cmd, logs / "gpu-tests.log", STEP_TIMEOUT_S)
    return {**summarise_tests(_junit_cases(junit), seconds=seconds, returncode=rc), "peak_gpu_bytes": mem.peak_bytes}


def run_suite(python: str, suite: str, out: Path, logs: Path) -> dict:
    cmd = [python, "-m", "attn_lib.bench", *SUITES[suite], "--out", str(out)]
    with PeakMemory() as mem:
        rc, seconds = _run(cmd, logs / "suite.log", STEP_TIMEOUT_S, show_stderr=True)
    return {"plan": suite, "command": " ".join(["python -m attn_lib.bench", *SUITES[suite]]),
            "path": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out),
            "returncode": rc, "seconds": round(seconds, 3), "peak_gpu_bytes": mem.peak_bytes}


def output_paths(device_name: str, date: str, data_dir: Path) -> tuple[Path, Path]:
    """(the suite's bench-<slug>-<date>.json, this check's notebooks-<slug>-<date>.json)."""
    sys.path.insert(0, str(ROOT))
    from attn_lib.bench.measure import default_path, slug

    bench = data_dir / default_path({"device": {"slug": slug(device_name)}, "created": date}).name
    return bench, bench.with_name("notebooks-" + bench.name.removeprefix("bench-"))


def _line(entry: dict) -> str:
    peak = entry["peak_gpu_bytes"]
    return (f"{entry['seconds']:.0f} s, {len(entry['raised'])} raised, {entry['lines_differ']} lines differ, "
            f"peak {peak / 2**30:.2f} GiB" + ("" if entry["returncode"] in (0, 1) else
                                              f", pytest exit {entry['returncode']}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/check_gpu.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT_S, help="nbval's per-cell limit (s)")
    parser.add_argument("--suite", choices=list(SUITES), default="one-dtype", help="the suite's plan")
    parser.add_argument("--notebooks", nargs="+", help="default: every notebook of _toc.yml")
    parser.add_argument("--no-tests", action="store_true", help="skip the GPU-only tests")
    parser.add_argument("--wheels", help="install the stack from this folder of wheels first (offline)")
    parser.add_argument("--data-dir", default=str(ROOT / "book" / "data"), help="where the JSON files go")
    parser.add_argument("--download-wheels", metavar="DIR",
                        help="only download the stack's cp312 manylinux wheels into DIR (needs network, no GPU)")
    args = parser.parse_args(argv)
    if args.cell_timeout < 1:
        parser.error(f"--cell-timeout must be >= 1, got {args.cell_timeout}")
    if args.download_wheels:
        return subprocess.run(download_command(args.download_wheels)).returncode

    usable, what = cuda_status()
    if not usable:
        _say(f"make check-gpu needs a CUDA GPU: {what}. Nothing was run.")
        return 2
    python = sys.executable
    if args.wheels:
        _say(f"installing the test stack from {args.wheels} (offline)")
        subprocess.run(install_command(python, args.wheels), check=True)
    missing = missing_modules()
    if missing:
        _say(f"this Python ({python}) lacks {', '.join(missing)}: run `make gpu-wheels` where there is "
             f"network, then `make check-gpu PY={python} WHEELS=.gpu-wheels` here")
        return 3
    return check(args, python, what)


def check(args, python: str, what: str) -> int:
    import torch

    start = time.perf_counter()
    created = _dt.datetime.now(_dt.timezone.utc)
    date = created.date().isoformat()
    data_dir = Path(args.data_dir).resolve()
    bench_path, notebooks_path = output_paths(torch.cuda.get_device_name(0), date, data_dir)
    logs = ROOT / "_build" / "check-gpu"
    logs.mkdir(parents=True, exist_ok=True)
    notebooks = args.notebooks or toc_notebooks()
    steps = len(notebooks) + (not args.no_tests) + (SUITES[args.suite] is not None)
    _say(f"check-gpu on {what}: {len(notebooks)} notebooks, "
         f"{'no' if args.no_tests else len(GPU_TESTS)} GPU test targets, suite: {args.suite}; "
         f"budget {BUDGET_S} s; logs in {logs.relative_to(ROOT)}/")
    entries, tests, suite, step = [], None, None, 0
    for nb in notebooks:
        step += 1
        _say(f"[{step}/{steps}] nbval {nb} ... ", end="")
        entries.append(run_notebook(python, nb, logs, args.cell_timeout))
        _say(_line(entries[-1]))
    if not args.no_tests:
        step += 1
        _say(f"[{step}/{steps}] GPU tests ... ", end="")
        tests = run_gpu_tests(python, logs)
        _say(f"{tests['seconds']:.0f} s, {tests['passed']} passed, {tests['failed'] + tests['error']} failed, "
             f"{tests['skipped']} skipped")
    if SUITES[args.suite] is not None:
        step += 1
        _say(f"[{step}/{steps}] suite ({args.suite}), its progress bar below ...")
        suite = run_suite(python, args.suite, bench_path, logs)
        _say(f"{suite['seconds']:.0f} s, exit {suite['returncode']}, {suite['path']}")
    from attn_lib.bench.measure import device_info, versions  # the suite's own provenance

    elapsed = time.perf_counter() - start
    result = {"schema": SCHEMA, "kind": "notebook-check",
              "created": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
              "command": "python tools/check_gpu.py " + " ".join(sys.argv[1:]),
              "device": device_info("cuda"), "versions": versions(),
              "options": {"cell_timeout_s": args.cell_timeout, "sanitize": "tests/nbval_sanitize.cfg",
                          "suite": args.suite, "gpu_tests": None if args.no_tests else list(GPU_TESTS)},
              "notebooks": entries, "gpu_tests": tests, "suite": suite,
              "totals": totals(entries, tests, suite, elapsed)}
    notebooks_path.parent.mkdir(parents=True, exist_ok=True)
    notebooks_path.write_text(json.dumps(result, indent=1) + "\n")
    t = result["totals"]
    _say(f"\n{t['cells_raised']} cells raised, {t['lines_differ']} compared lines differ, GPU tests "
         f"{'ok' if t['gpu_tests_ok'] else 'FAILED'}, suite {'ok' if t['suite_ok'] else 'FAILED'}; "
         f"{t['elapsed_s']:.0f} s of a {BUDGET_S} s budget{'' if t['within_budget'] else ' (OVER BUDGET)'}")
    _say(f"wrote {notebooks_path}" + (f" and {bench_path}" if suite and suite["returncode"] == 0 else ""))
    return 0 if t["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
