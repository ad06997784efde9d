"""Tests of the tests: apply each known mutant of attn_lib, run the tests that must catch it.

``make check-mutants`` runs this. The list is tests/mutants.toml: each mutant is one small,
plausible bug (an off-by-one in a causal bound, a missing rescale, a wrong closed-form
factor...) given as a `before` text in one file, its `after` replacement, and the tests that
cover it. For every mutant, one at a time, in a temporary copy of the repository (the
working tree is never edited), the mutant is applied and only its tests run
(``pytest -x -q``, hypothesis seeds free, no shrinking). The check fails when

- a mutant survives: its tests pass with the bug in place (the suite has a hole);
- a mutant no longer applies: its `before` text is not found exactly once in its file
  (the code moved on; the list must follow it);
- its tests cannot run: pytest reports an error other than a test failure (a renamed test),
  or the tests fail before any mutant is applied (the baseline run).

Mutants of triton_flash.py form their own section ([[triton]]); where Triton is not
installed they are checked for applying but not run. Run ``python tools/mutants.py --help``.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "tests" / "mutants.toml"
SECTIONS = ("mutant", "triton")  # [[mutant]]: attn_lib; [[triton]]: the Triton kernel
# Not copied into the scratch tree: nothing a test reads lives there.
IGNORE = shutil.ignore_patterns(".git", ".venv", "_build", "__pycache__", ".hypothesis",
                                ".pytest_cache", "*.egg-info", ".ipynb_checkpoints")
PYTEST = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:nbval",
          "-p", "mutants_profile"]


@dataclass
class Mutant:
    name: str
    section: str
    file: str
    before: str
    after: str
    tests: list
    k: str | None = None
    why: str = ""
    result: str = ""
    seconds: float = 0.0
    detail: str = field(default="", repr=False)


def load(path: Path = LIST) -> list[Mutant]:
    """Every mutant in the list, in order, with its section."""
    data = tomllib.loads(path.read_text())
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"{path}: unknown sections {sorted(unknown)} (known: {SECTIONS})")
    out = []
    for section in SECTIONS:
        for entry in data.get(section, []):
            missing = {"name", "file", "before", "after", "tests"} - set(entry)
            if missing:
                raise SystemExit(f"{path}: mutant {entry.get('name', '?')} lacks {sorted(missing)}")
            out.append(Mutant(section=section, **entry))
    names = [m.name for m in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit(f"{path}: duplicate mutant names {sorted(dup)}")
    return out


def stale(m: Mutant, root: Path = ROOT) -> str | None:
    """Why the mutant no longer applies to the code under `root`, or None if it does."""
    path = root / m.file
    if not path.is_file():
        return f"{m.file} does not exist"
    count = path.read_text().count(m.before)
    if count != 1:
        return f"its before-text occurs {count} times in {m.file} (must be exactly once)"
    if m.before == m.after:
        return "before and after are equal"
    for test in m.tests:
        file, _, func = test.partition("::")
        if not (root / file).is_file():
            return f"test file {file} does not exist"
        func = func.split("[")[0].split("::")[-1]
        if func and f"def {func}(" not in (root / file).read_text():
            return f"test {func} is no longer in {file}"
    return None


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _env(tree: Path) -> dict:
    """The scratch tree's attn_lib and tests first on the path; the no-shrink profile."""
    path = [str(tree), str(tree / "tools"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p),
            "HYPOTHESIS_PROFILE": "mutants",
            "PYTHONDONTWRITEBYTECODE": "1"}  # a .pyc of the last mutant must never be reused


def _pytest(tree: Path, tests: list, k: str | None, timeout: float):
    cmd = [sys.executable, *PYTEST, *tests] + (["-k", k] if k else [])
    try:
        run = subprocess.run(cmd, cwd=tree, env=_env(tree), capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired as err:  # a hang caused by the mutant: it did not pass
        out = err.stdout or ""
        return None, (out.decode(errors="replace") if isinstance(out, bytes) else out)[-3000:]
    return run.returncode, (run.stdout + run.stderr)[-3000:]


def make_tree(dest: Path) -> Path:
    """A copy of the repository (no .git, .venv, build outputs) to mutate freely."""
    tree = dest / "repo"
    shutil.copytree(ROOT, tree, ignore=IGNORE, symlinks=True)
    check = subprocess.run([sys.executable, "-c", "import attn_lib; print(attn_lib.__file__)"],
                           cwd=tree, env=_env(tree), capture_output=True, text=True)
    if not check.stdout.strip().startswith(str(tree)):
        raise SystemExit(f"the scratch copy's attn_lib is not the one imported: {check.stdout}"
                         f"{check.stderr}")
    return tree


def run_mutant(m: Mutant, tree: Path, timeout: float) -> Mutant:
    """Apply m in `tree`, run its tests, restore the file (always). Sets m.result."""
    path = tree / m.file
    original = path.read_text()
    t0 = time.monotonic()
    try:
        path.write_text(original.replace(m.before, m.after, 1))
        rc, out = _pytest(tree, m.tests, m.k, timeout)
    finally:
        path.write_text(original)
    m.seconds, m.detail = time.monotonic() - t0, out
    if rc is None:
        m.result = "killed (timeout)"
    elif rc == 1:
        m.result = "killed"
    elif rc == 0 and not re.search(r"\b\d+ passed", out):
        m.result = "ERROR (tests skipped)"  # e.g. torch missing: nothing was checked
    elif rc == 0:
        m.result = "SURVIVED"
    else:  # 2 interrupted/collection error, 4 usage, 5 nothing collected
        m.result = f"ERROR (pytest exit {rc})"
    return m


def baseline(mutants: list, tree: Path, timeout: float) -> bool:
    """Run every covering test unmutated (one pytest per distinct -k): they must pass, or
    no kill would mean anything."""
    groups: dict = {}
    for m in mutants:
        groups.setdefault(m.k, set()).update(m.tests)
    t0 = time.monotonic()
    for k, tests in groups.items():
        rc, out = _pytest(tree, sorted(tests), k, timeout * 2)
        if rc != 0:
            print(out)
            print(f"Baseline failed (pytest exit {rc}{', -k ' + k if k else ''}): the covering "
                  "tests do not pass without a mutant, so no kill would mean anything.")
            return False
    n = len(set().union(*groups.values())) if groups else 0
    print(f"baseline: {n} covering test(s) pass unmutated ({time.monotonic() - t0:.0f} s)",
          flush=True)
    return True


def _by(m: Mutant) -> str:
    """'  <- the test that failed' from pytest's summary, when there is one."""
    for line in m.detail.splitlines():
        if line.startswith("FAILED "):
            return "  <- " + line.split()[1].split("::", 1)[-1][:70]
    return ""


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", type=Path, default=LIST, help="the mutant list (TOML)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these mutants (names)")
    ap.add_argument("--jobs", type=int, default=2, help="mutants run side by side (one copy each)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per mutant's test run")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the unmutated run of every covering test")
    args = ap.parse_args(argv)

    mutants = load(args.list)
    if args.only is not None:
        wanted = set(args.only)
        if wanted - {m.name for m in mutants}:
            raise SystemExit(f"unknown mutants: {sorted(wanted - {m.name for m in mutants})}")
        mutants = [m for m in mutants if m.name in wanted]
    problems = [f"  {m.name}: no longer applies: {why}" for m in mutants if (why := stale(m))]
    if problems:
        print("Mutants that no longer apply (update tests/mutants.toml to follow the code):")
        print("\n".join(problems))
        return 1
    skipped = []
    if not triton_available():
        skipped = [m for m in mutants if m.section == "triton"]
        mutants = [m for m in mutants if m.section != "triton"]
    t_start, cpu_start = time.monotonic(), _children_cpu()
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        trees = [make_tree(Path(tmp) / f"w{i}") for i in range(max(1, args.jobs))]
        if not args.no_baseline and not baseline(mutants, trees[0], args.timeout):
            return 1
        free = list(trees)

        def job(m):
            tree = free.pop()
            try:
                return run_mutant(m, tree, args.timeout)
            finally:
                free.append(tree)

        with ThreadPoolExecutor(max_workers=len(trees)) as pool:
            for m in pool.map(job, mutants):
                print(f"{m.result:<18} {m.seconds:5.1f} s  [{m.section}] {m.name}{_by(m)}",
                      flush=True)
    bad = [m for m in mutants if not m.result.startswith("killed")]
    for m in bad:
        print(f"\n--- {m.name} ({m.file}): {m.result}\n    {m.why}\n    tests: {m.tests}"
              f"{' -k ' + m.k if m.k else ''}\n{m.detail}")
    if skipped:
        print(f"Triton is not installed: {len(skipped)} Triton mutants checked for applying, "
              "not run.")
    killed = len(mutants) - len(bad)
    cpu = _children_cpu() - cpu_start
    print(f"{killed} of {len(mutants)} mutants killed, {len(bad)} not: "
          f"{time.monotonic() - t_start:.0f} s wall ({args.jobs} at a time), {cpu:.0f} s CPU "
          "(the load-independent figure: on 2 idle cores about half of it in wall time)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
