"""Colab drift check: run every notebook in a venv that mirrors Colab's runtime.

    python tools/check_colab.py [--stack colab|old] [--repo PATH] [--python EXE]

Builds the stack's venv once, cached outside the checkout under
``$ATTN_LIB_COLAB_CACHE`` (default ``~/.cache/attn-lib-colab/<key>``, the key a hash
of the stack's Python version and pins), installs attn_lib from the checkout with
``pip install --no-deps`` as every notebook's first cell does on Colab, then executes
each notebook of ``_toc.yml`` top to bottom in a kernel running the stack's Python,
from an empty working directory (a fresh Colab runtime has no checkout). Exits 1 naming
every notebook and cell that raised. The driver (nbclient) runs in the project's own
venv; only the kernel runs in the stack's venv.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# ------------------------------------------------------------------------ the stacks
#: Colab's runtime (its package list, 2026-08) and an older runtime; the packages are
#: installed by name from the package index. torch's default wheel is its CUDA build,
#: which runs on a CPU. jupyter-client: ipykernel 6.17 predates jupyter-client 8
#: (kernels built on the pair can stop answering mid-notebook). setuptools lets
#: attn_lib build without fetching a build backend per run.
STACKS = {
    "colab": {
        "python": "3.13",
        "pins": ["torch==2.11.0", "triton==3.6.0", "numpy==2.1.3", "ipywidgets==7.7.1",
                 "ipython==7.34.0", "ipykernel==6.17.1", "matplotlib==3.10.0",
                 "tqdm==4.67.1", "jupyter-client==7.4.9", "setuptools==75.2.0"],
        "absent": ["myst_nb"],
    },
    "old": {
        "python": "3.12",
        "pins": ["torch==2.6.0", "triton==3.2.0", "numpy==1.26.4", "ipywidgets==7.7.1",
                 "ipython==7.34.0", "ipykernel==6.17.1", "matplotlib==3.8.4",
                 "tqdm==4.66.5", "jupyter-client==7.4.9", "setuptools==75.2.0"],
        "absent": ["myst_nb"],
    },
}
#: Bump when the build recipe changes, so old caches are not reused.
RECIPE = 1
#: A cell that runs longer has hung (a whole notebook takes ~1 min on 2 cores).
CELL_TIMEOUT_S = 300
KERNEL_NAME = "attn-lib-colab"
STAMP = ".complete.json"
ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------ pure parts
def stack_key(stack: str, python_version: str, pins: list[str]) -> str:
    """Cache directory name: '<stack>-py<version>-<12 hex>', whatever the pin order."""
    blob = json.dumps({"recipe": RECIPE, "python": python_version,
                       "pins": sorted(pins)}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return f"{stack}-py{python_version}-{digest}"


def stamp_record(key: str, python_version: str, pins: list[str]) -> dict:
    """What a finished build writes into its stamp; it is reused only if it matches."""
    return {"key": key, "python": python_version, "pins": sorted(pins),
            "recipe": RECIPE}


def build_is_complete(venv: Path, record: dict) -> bool:
    """True when `venv` holds a finished build of exactly `record` (else: rebuild)."""
    try:
        return json.loads((venv / STAMP).read_text()) == record
    except (OSError, ValueError):
        return False


def version_mismatches(pins: list[str], installed: dict[str, str | None]) -> list[str]:
    """'name: want X, got Y' for each `name==X` pin that `installed` doesn't satisfy."""
    bad = []
    for pin in pins:
        name, want = pin.split("==")
        got = installed.get(name)
        if got is None or got.split("+")[0] != want:
            bad.append(f"{name}: want {want}, got {got}")
    return bad


def toc_notebooks(repo: Path) -> list[Path]:
    """The .ipynb files of `repo`'s _toc.yml, in reading order (markdown skipped)."""
    sys.path.insert(0, str(ROOT))  # attn_lib.book holds the one _toc.yml reader
    try:
        from attn_lib.book import toc_pages
    finally:
        sys.path.pop(0)
    notebooks = []
    for page in toc_pages(repo / "_toc.yml"):
        path = repo / page
        if path.suffix == "" and (repo / f"{page}.ipynb").is_file():
            path = repo / f"{page}.ipynb"
        elif path.suffix == "" and (repo / f"{page}.md").is_file():
            continue
        if path.suffix == ".ipynb" and not path.is_file():
            raise FileNotFoundError(f"_toc.yml lists {page}, but {path} does not exist")
        if path.suffix == ".ipynb":
            notebooks.append(path)
    return notebooks


@dataclass(frozen=True)
class CellError:
    notebook: str
    cell: int  # 1-based position among the notebook's code cells
    execution_count: int | None
    ename: str
    evalue: str
    first_line: str

    def __str__(self) -> str:
        n = self.execution_count
        count = "" if n is None else f" (In [{n}])"
        return (f"{self.notebook}: code cell {self.cell}{count} `{self.first_line}` "
                f"raised {self.ename}: {self.evalue}")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ARROW = re.compile(r"^-*> *(\d+)")  # IPython marks the line that raised: '---> 2 ...'


def raising_line(source: str, traceback: list[str]) -> str:
    """The cell's line that raised (the traceback's first '--->'), else its first."""
    lines = source.splitlines()
    for frame in traceback:
        for text in _ANSI.sub("", frame).splitlines():
            m = _ARROW.match(text.strip())
            if m and 0 < int(m.group(1)) <= len(lines):
                return lines[int(m.group(1)) - 1].strip()[:60]
    code = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return (code[0].strip() if code else "")[:60]


def cell_errors(nb: dict, name: str) -> list[CellError]:
    """Every code cell of an executed notebook whose outputs hold an error.

    Cells tagged `raises-exception` are expected to raise and are skipped.
    """
    errors = []
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code_cells, start=1):
        if "raises-exception" in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell["source"]
        source = source if isinstance(source, str) else "".join(source)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                evalue = " ".join(str(out.get("evalue", "")).split())[:300]
                errors.append(CellError(name, i, cell.get("execution_count"),
                                        out.get("ename", "?"), evalue,
                                        raising_line(source, out.get("traceback", []))))
    return errors


def slowest_cell(nb: dict) -> tuple[int, float] | None:
    """(1-based code cell, seconds) of the longest cell, from nbclient's timings."""
    from datetime import datetime

    best = None
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code_cells, start=1):
        times = cell.get("metadata", {}).get("execution", {})
        start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
        if start and end:
            start, end = (datetime.fromisoformat(t.replace("Z", "+00:00"))
                          for t in (start, end))
            secs = (end - start).total_seconds()
            if best is None or secs > best[1]:
                best = (i, secs)
    return best


def report(failures: list[str], timings: dict[str, float], stack: str) -> str:
    """The closing summary: per-notebook times, then each failure, then the verdict."""
    lines = [f"{name:<40} {secs:7.1f} s" for name, secs in timings.items()]
    lines += [f"FAIL {f}" for f in failures]
    verdict = "FAILED" if failures else "passed"
    lines.append(f"check-colab [{stack}]: {len(timings)} notebooks, "
                 f"{len(failures)} failures: {verdict}")
    return "\n".join(lines)


# ------------------------------------------------------------------------ the build
def log(msg: str) -> None:
    print(f"[check-colab] {msg}", flush=True)


def python_version(exe: str) -> str:
    code = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    out = subprocess.run([exe, "-c", code], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def find_python(version: str) -> str:
    """A working interpreter for `version` ('3.13'): pyenv's newest, else on PATH."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(pyenv.glob(f"{version}.*/bin/python{version}"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.parts[-3])])
    candidates = [str(p) for p in reversed(found)] + [shutil.which(f"python{version}")]
    for exe in filter(None, candidates):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            if python_version(exe).startswith(version + "."):
                return exe
    raise SystemExit(f"no working Python {version} (under {pyenv} or on PATH as "
                     f"python{version}); pass --python")


def cache_root() -> Path:
    env = os.environ.get("ATTN_LIB_COLAB_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "attn-lib-colab"


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock on `path` (one build or run per venv at a time)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def pip(venv: Path, *args: str) -> None:
    """Run the venv's pip; its chatter goes to <venv>/pip.log, shown if it fails."""
    with open(venv / "pip.log", "a") as out:
        done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip",
                               "--disable-pip-version-check", *args],
                              env=clean_env(), stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = (venv / "pip.log").read_text().splitlines()[-40:]
        raise SystemExit("pip " + " ".join(args) + " failed:\n" + "\n".join(tail))


def clean_env() -> dict[str, str]:
    """The environment without this project's venv or checkout on any path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env


def installed_versions(venv: Path, names: list[str],
                       absent: list[str]) -> tuple[dict, list]:
    """({name: version or None}, [modules of `absent` that are importable])."""
    code = ("import importlib.metadata as m, importlib.util as u, json, sys\n"
            "def v(n):\n try: return m.version(n)\n"
            " except m.PackageNotFoundError: return None\n"
            "print(json.dumps([{n: v(n) for n in sys.argv[1].split(',')},"
            " [n for n in sys.argv[2].split(',') if n and u.find_spec(n)]]))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code, ",".join(names),
                          ",".join(absent)], check=True, capture_output=True, text=True,
                         env=clean_env(), cwd=tempfile.gettempdir())
    versions, present = json.loads(out.stdout)
    return versions, present


def build(stack: str, exe: str, rebuild: bool = False) -> Path:
    """The stack's venv, built once (a stamp marks a finished build; else redone)."""
    spec = STACKS[stack]
    version = python_version(exe)
    if not version.startswith(spec["python"] + "."):
        raise SystemExit(f"{exe} is Python {version}, "
                         f"stack {stack} wants {spec['python']}")
    key = stack_key(stack, version, spec["pins"])
    venv = cache_root() / key
    record = stamp_record(key, version, spec["pins"])
    log(f"stack {stack}: Python {version}, {' '.join(spec['pins'])}")
    log(f"venv {venv}")
    with locked(venv.with_name(key + ".lock")):
        if build_is_complete(venv, record) and not rebuild:
            log("venv cached (build complete)")
            return venv
        t0 = time.monotonic()
        shutil.rmtree(venv, ignore_errors=True)  # an interrupted or stale build
        subprocess.run([exe, "-m", "venv", str(venv)], check=True, env=clean_env())
        pip(venv, "install", "-q", "--progress-bar", "off", *spec["pins"])
        names = [p.split("==")[0] for p in spec["pins"]]
        versions, present = installed_versions(venv, names, spec["absent"])
        bad = version_mismatches(spec["pins"], versions)
        if bad or present:
            raise SystemExit(f"venv {venv} does not match its pins: {bad}; "
                             f"present but must be absent: {present}")
        (venv / STAMP).write_text(json.dumps(record))
        log(f"venv built in {time.monotonic() - t0:.0f} s")
    return venv


def install_attn_lib(venv: Path, repo: Path) -> None:
    """pip install --no-deps a copy of `repo`'s attn_lib and book/data (no build files in `repo`)."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="attn-lib-src-") as src:
        src = Path(src)
        shutil.copytree(repo / "attn_lib", src / "attn_lib",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copytree(repo / "book" / "data", src / "book" / "data")  # installs as package data
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(repo / name, src / name)
        pip(venv, "install", "-q", "--no-deps", "--no-build-isolation",
            "--no-cache-dir", "--force-reinstall", str(src))
    log(f"attn_lib from {repo} installed (--no-deps) in {time.monotonic() - t0:.1f} s")


# ----------------------------------------------------------------------------- the run
def kernel_spec_dir(venv: Path, into: Path) -> Path:
    """A Jupyter data dir whose one kernelspec runs ipykernel in `venv`."""
    spec = into / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher",
            "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": f"Colab mirror ({venv.name})",
         "language": "python",
         # ipykernel 6.17's debugger warns at every start about frozen modules: noise
         "env": {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}}))
    return into


#: Longest single wait on a kernel channel. A reply that lands while the driver's zmq
#: wake-up is missed would otherwise sit unread until the whole cell timeout runs out
#: (seen: ~300 s idle with kernel and driver both waiting); each new wait sees it.
POLL_SLICE_S = 1.0


def sliced(get_msg, slice_s: float = POLL_SLICE_S):
    """An async get_msg(timeout) that waits in slices of at most `slice_s` seconds."""
    async def get(timeout: float | None = None, **kw):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            step = slice_s if left is None else max(0.0, min(slice_s, left))
            try:
                return await get_msg(timeout=step, **kw)
            except queue.Empty:
                if left is not None and left <= slice_s:
                    raise
    return get


def slice_channel_waits(client) -> None:
    """Hook (on_notebook_start): every shell and IOPub wait of `client` goes in slices."""
    for channel in (client.kc.shell_channel, client.kc.iopub_channel):
        channel.get_msg = sliced(channel.get_msg)


def execute(notebook: Path, workdir: Path) -> tuple[dict, str | None]:
    """Run `notebook` top to bottom in the stack's kernel: (executed nb, run error)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    logger = logging.getLogger("check-colab.nbclient")  # shows IOPub timeouts
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler())
        logger.setLevel(logging.WARNING)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT_S,
                            log=logger, allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}})
    client.on_notebook_start = lambda **_: slice_channel_waits(client)
    try:
        client.execute()
    except Exception as exc:  # a dead kernel or a timeout: report it, go on
        return nb, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return nb, None


def probe(venv: Path, workdir: Path) -> None:
    """Print what the kernel will import; fail if attn_lib comes from a checkout."""
    code = ("import attn_lib, numpy, torch, sys\n"
            "try:\n import triton; tv = triton.__version__\n"
            "except Exception as e: tv = repr(e)\n"
            "print(sys.version.split()[0], 'torch', torch.__version__, 'triton', tv,"
            " 'numpy', numpy.__version__)\nprint(attn_lib.__file__)")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code],
                         capture_output=True, text=True, env=clean_env(), cwd=workdir)
    if out.returncode:
        raise SystemExit(f"the stack's Python cannot import its stack:\n{out.stderr}")
    versions, where = out.stdout.strip().splitlines()[-2:]
    log(f"kernel: Python {versions}")
    if not Path(where).resolve().is_relative_to(venv.resolve()):
        raise SystemExit(f"kernel imports attn_lib from {where}, not from {venv}")


def run(stack: str, repo: Path, exe: str | None, rebuild: bool,
        out: Path | None = None) -> int:
    t_start = time.monotonic()
    spec = STACKS[stack]
    venv = build(stack, exe or find_python(spec["python"]), rebuild)
    notebooks = toc_notebooks(repo)
    with locked(venv.with_name(venv.name + ".lock")), \
            tempfile.TemporaryDirectory(prefix="attn-lib-colab-") as tmp:
        install_attn_lib(venv, repo)
        workdir = Path(tmp) / "content"  # like Colab's /content: no checkout beside it
        workdir.mkdir()
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [str(kernel_spec_dir(venv, Path(tmp) / "jupyter"))]
            + [p for p in [os.environ.get("JUPYTER_PATH")] if p])
        for name in ("PYTHONPATH", "VIRTUAL_ENV"):
            os.environ.pop(name, None)  # the kernel inherits this process's environment
        probe(venv, workdir)
        failures, timings = [], {}
        for path in notebooks:
            name = str(path.relative_to(repo))
            t0 = time.monotonic()
            nb, fatal = execute(path, workdir)
            if fatal:  # a hung or dead kernel, not a cell that raised: one more try
                log(f"{name}: run stopped ({fatal}); retrying once in a fresh kernel")
                nb, fatal = execute(path, workdir)
            timings[name] = time.monotonic() - t0
            if out is not None:  # the executed notebook, for a look at what went wrong
                import nbformat

                (out / name).parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, out / name)
            errors = [str(e) for e in cell_errors(nb, name)]
            if fatal:
                errors.append(f"{name}: run stopped: {fatal}")
            for e in errors:
                log(f"FAIL {e}")
            slow = slowest_cell(nb)
            slow = f" (slowest: code cell {slow[0]}, {slow[1]:.1f} s)" if slow else ""
            log(f"{name}: {'ok' if not errors else f'{len(errors)} failing'} "
                f"in {timings[name]:.1f} s{slow}")
            failures += errors
    print(report(failures, timings, stack))
    log(f"total {time.monotonic() - t_start:.0f} s")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stack", choices=sorted(STACKS), default="colab")
    ap.add_argument("--repo", type=Path, default=ROOT,
                    help="checkout whose attn_lib and notebooks to check (read only)")
    ap.add_argument("--python", help="the stack's interpreter (default: by version)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached venv")
    ap.add_argument("--build-only", action="store_true",
                    help="build the venv, run nothing")
    ap.add_argument("--out", type=Path, help="write the executed notebooks here")
    args = ap.parse_args(argv)
    if args.build_only:
        build(args.stack, args.python or find_python(STACKS[args.stack]["python"]),
              args.rebuild)
        return 0
    return run(args.stack, args.repo.resolve(), args.python, args.rebuild, args.out)


if __name__ == "__main__":
    sys.exit(main())
