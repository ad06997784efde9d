"""Every page in _toc.yml follows the book's notebook conventions (README, "Layout").

For each toc entry, in toc order: the file exists. For each notebook: its first code cell
is exactly the Colab set-up cell generated from _config.yml (tagged nbval-ignore-output);
it ends with at least three exercises, each followed by a hidden, executed solution cell;
every code cell was executed and stored with its outputs; no output is an error. For each
chapter in the toc (book/ch*), the Colab launch link of its HTML page points at a notebook
that exists and that git does not ignore. Each chapter chooses its device-dependent sizes
in one cell tagged nbval-ignore-output, and no compared cell glues a value that follows
from those sizes (nbval compares glue records as it compares printed text).
"""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from attn_lib import book, colab

ROOT = Path(__file__).resolve().parent.parent
MIN_EXERCISES = 3
EXERCISE = re.compile(r"^(:::+|```+)\{admonition\}\s*Exercise\b", re.MULTILINE)


def resolve(entry: str) -> Path | None:
    """The source file of a toc entry (.ipynb or .md), or None when it does not exist."""
    for suffix in ("", ".ipynb", ".md"):
        path = ROOT / f"{entry}{suffix}"
        if path.is_file():
            return path
    return None


ENTRIES = book.toc_pages(ROOT / "_toc.yml")
# Notebooks that exist, in toc order; a missing one fails test_toc_entry_exists.
NOTEBOOK_ENTRIES = [e for e in ENTRIES if resolve(e) is not None and resolve(e).suffix == ".ipynb"]


def _read(entry: str) -> nbformat.NotebookNode:
    return nbformat.read(resolve(entry), as_version=4)


def git_ignored(path: Path) -> bool:
    """True when git would keep `path` out of the repository (False outside a checkout)."""
    try:
        done = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, capture_output=True)
    except OSError:  # no git: nothing to say
        return False
    return done.returncode == 0


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_toc_lists_notebooks():
    assert ENTRIES[0].endswith("intro") and len(ENTRIES) > 1


@pytest.mark.parametrize("entry", ENTRIES)
def test_toc_entry_exists(entry):
    assert resolve(entry) is not None, f"_toc.yml lists {entry!r} but no such .ipynb/.md exists"


@pytest.mark.parametrize("entry", NOTEBOOK_ENTRIES)
def test_first_code_cell_is_the_colab_cell(entry):
    nb = _read(entry)
    first = _code_cells(nb)[0]
    expected = colab.colab_cell(book.repo_url_from_config(ROOT / "_config.yml"))
    assert first.source == expected, (
        f"{entry}: first code cell must be attn_lib.colab.colab_cell(book.repo_url_from_config()); "
        "regenerate it with tools/set_up_cells.py")
    assert "nbval-ignore-output" in _tags(first), f"{entry}: tag the set-up cell nbval-ignore-output"
    assert "remove-input" in _tags(first), f"{entry}: tag the set-up cell remove-input"


@pytest.mark.parametrize("entry", NOTEBOOK_ENTRIES)
def test_title_is_the_first_cell(entry):
    nb = _read(entry)
    # the title may carry a MyST target for cross-references: "(label)=" on the line above
    title = re.sub(r"\A\([\w-]+\)=\n", "", nb.cells[0].source)
    assert nb.cells[0].cell_type == "markdown" and title.startswith("# "), \
        f"{entry}: the first cell must be the markdown title '# ...'"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("entry", NOTEBOOK_ENTRIES)
def test_exercises_have_hidden_solutions_that_ran(entry):
    nb = _read(entry)
    positions = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and EXERCISE.search(c.source)]
    assert len(positions) >= MIN_EXERCISES, f"{entry}: {len(positions)} exercises, need >= {MIN_EXERCISES}"
    for i in positions:
        assert len(EXERCISE.findall(nb.cells[i].source)) == 1, f"{entry} cell {i}: one exercise per cell"
        solution = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        assert solution is not None and solution.cell_type == "code", \
            f"{entry} cell {i}: an exercise must be followed by its solution code cell"
        assert "hide-cell" in _tags(solution), f"{entry} cell {i + 1}: tag the solution hide-cell"
        assert solution.outputs, f"{entry} cell {i + 1}: the solution must print its answer"


@pytest.mark.parametrize("entry", NOTEBOOK_ENTRIES)
def test_outputs_stored_without_errors(entry):
    nb = _read(entry)
    for n, cell in enumerate(_code_cells(nb)):
        where = f"{entry} code cell {n}: {cell.source[:60]!r}"
        assert cell.get("execution_count") is not None, f"{where} was not executed (store outputs)"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{where} stored an error: {errors[0].get('ename')}: {errors[0].get('evalue')}"


CHAPTERS = [e for e in ENTRIES if re.fullmatch(r"book/ch[^/]*", e)]


@pytest.mark.parametrize("entry", CHAPTERS)
def test_colab_launch_link_resolves(entry):
    url, branch = book.book_repository(ROOT / "_config.yml")
    link = colab.colab_url(url, branch, f"{entry}.ipynb")
    path_in_repo = ROOT / link.split(f"/blob/{branch}/", 1)[1]
    assert path_in_repo.is_file(), f"Colab link {link} names a file missing from the repository"
    assert not git_ignored(path_in_repo), f"Colab link {link} names a file git ignores"


SIZES_CELL = "# Sizes for this device"
DEVICE_BRANCH = re.compile(r"""\b(DEV|DEVICE|device\(\))\s*[!=]=\s*["'](cuda|cpu)["']""")


@pytest.mark.parametrize("entry", CHAPTERS)
def test_device_sizes_are_chosen_in_one_cell(entry):
    # One place per chapter decides what differs on a GPU: a sizes cell, tagged so nbval
    # never compares what it prints; elsewhere a device test may only set threads or pick
    # what an ignored cell measures (never a size that a compared line could print).
    cells = _code_cells(_read(entry))
    sizes = [c for c in cells if SIZES_CELL in c.source]
    assert len(sizes) == 1, f"{entry}: {len(sizes)} cells start with {SIZES_CELL!r}, want 1"
    assert not sizes[0].outputs or "nbval-ignore-output" in _tags(sizes[0]), \
        f"{entry}: the sizes cell prints device-chosen values; tag it nbval-ignore-output"
    for cell in cells:
        if cell is sizes[0] or "nbval-ignore-output" in _tags(cell):
            continue
        for line in cell.source.splitlines():
            if DEVICE_BRANCH.search(line):
                assert "set_num_threads" in cell.source, \
                    f"{entry}: a compared cell branches on the device: {line.strip()!r}"


# ------------------------------------------------ glue that follows the device's sizes
# nbval compares glue records like printed text, so a compared cell may glue nothing that
# the sizes cell chose. A name is device-chosen when the sizes cell assigns it, or when a
# later statement assigns it from a device-chosen name (followed statement by statement,
# into loop bodies; a name rebound from device-free values is free again). Mutating
# methods (x.append(...), x.update(...)) and item assignment count as assigning x.
GLUE_CALLS = {"glue", "glue_many"}
MUTATORS = {"update", "append", "extend", "add", "setdefault", "insert"}


def _names(node, ctx) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _local(node) -> set[str]:
    """Names bound inside `node` only: comprehension targets and parameters."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.comprehension):
            out |= _names(n.target, ast.Store)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
    return out


def _reads(node) -> set[str]:
    return _names(node, ast.Load) - _local(node)


def _writes(stmt) -> set[str]:
    out = _names(stmt, ast.Store) - _local(stmt)
    for n in ast.walk(stmt):
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
              and isinstance(n.func.value, ast.Name) and n.func.attr in MUTATORS):
            out.add(n.func.value.id)
        elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store) \
                and isinstance(n.value, ast.Name):
            out.add(n.value.id)
    return out


def _device_glue(stmts, chosen: set[str], found: list[str]) -> None:
    """Follow device-chosen names through `stmts`; append each glue call reading one."""
    for s in stmts:
        if isinstance(s, (ast.For, ast.While, ast.If, ast.With)):
            head = ([s.iter] if isinstance(s, ast.For) else s.items if isinstance(s, ast.With)
                    else [s.test])
            if any(_reads(h) & chosen for h in head):
                chosen |= _writes(s)  # the whole body follows a device-chosen value
            elif isinstance(s, ast.For):
                chosen -= _names(s.target, ast.Store)
            _device_glue(s.body + s.orelse if hasattr(s, "orelse") else s.body, chosen, [])
            _device_glue(s.body + s.orelse if hasattr(s, "orelse") else s.body, chosen, found)
            continue
        for n in ast.walk(s):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) \
                    and n.func.id in GLUE_CALLS:
                args = n.args + [k.value for k in n.keywords]
                used = set().union(*(_reads(a) for a in args)) & chosen
                if used:
                    found.append(f"{ast.unparse(n)[:60]}... reads {sorted(used)}")
        if _reads(s) & chosen:
            chosen |= _writes(s)
        else:
            chosen -= _names(s, ast.Store)


@pytest.mark.parametrize("entry", CHAPTERS)
def test_compared_cells_glue_nothing_the_sizes_chose(entry):
    chosen, found = set(), []
    for i, cell in enumerate(_code_cells(_read(entry))):
        lines = [ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        tree = ast.parse("\n".join(lines))
        if SIZES_CELL in cell.source:
            chosen |= set().union(*(_writes(s) for s in tree.body))
            continue
        here = []
        _device_glue(tree.body, chosen, here)
        if "nbval-ignore-output" not in _tags(cell):
            found += [f"code cell {i}: {h}" for h in here]
    assert not found, (f"{entry}: compared cells glue device-chosen values (move the glue "
                       "into an nbval-ignore-output cell):\n" + "\n".join(found))

