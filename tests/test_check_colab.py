"""tools/check_colab.py: pure parts (key, stamp, toc, failure report); no install."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_colab",
                                               ROOT / "tools" / "check_colab.py")
check_colab = importlib.util.module_from_spec(_spec)
sys.modules["check_colab"] = check_colab  # dataclasses look their module up there
_spec.loader.exec_module(check_colab)

PINS = ["torch==2.11.0", "numpy==2.1.3"]


# ------------------------------------------------------------------ the stacks as data
@pytest.mark.parametrize("stack", sorted(check_colab.STACKS))
def test_stacks_pin_exact_versions_and_exclude_myst_nb(stack):
    spec = check_colab.STACKS[stack]
    assert all(pin.count("==") == 1 for pin in spec["pins"])
    names = {pin.split("==")[0] for pin in spec["pins"]}
    assert {"torch", "triton", "numpy", "ipykernel", "ipywidgets", "ipython"} <= names
    assert "myst_nb" in spec["absent"]


def test_colab_stack_is_colabs_runtime():
    spec = check_colab.STACKS["colab"]
    assert spec["python"] == "3.13"
    assert {"torch==2.11.0", "triton==3.6.0", "numpy==2.1.3", "ipywidgets==7.7.1",
            "ipython==7.34.0", "ipykernel==6.17.1"} <= set(spec["pins"])


# ------------------------------------------------------------------ cache key and stamp
def test_key_is_stable_and_order_free():
    key = check_colab.stack_key("colab", "3.13.0", PINS)
    assert key == check_colab.stack_key("colab", "3.13.0", PINS[::-1])
    assert key.startswith("colab-py3.13.0-") and len(key.rsplit("-", 1)[1]) == 12


@pytest.mark.parametrize("change", [
    ("old", "3.13.0", PINS), ("colab", "3.13.1", PINS),
    ("colab", "3.13.0", ["torch==2.11.1", "numpy==2.1.3"]),
    ("colab", "3.13.0", PINS[:1])])
def test_key_changes_with_any_pin(change):
    base = check_colab.stack_key("colab", "3.13.0", PINS)
    assert check_colab.stack_key(*change) != base


def test_only_a_finished_matching_build_is_reused(tmp_path):
    record = check_colab.stamp_record("k", "3.13.0", PINS)
    assert not check_colab.build_is_complete(tmp_path, record)  # interrupted: no stamp
    (tmp_path / check_colab.STAMP).write_text("{trunc")
    assert not check_colab.build_is_complete(tmp_path, record)  # torn stamp
    (tmp_path / check_colab.STAMP).write_text(json.dumps(record))
    assert check_colab.build_is_complete(tmp_path, record)
    other = check_colab.stamp_record("k", "3.13.0", ["torch==2.10.0"])
    assert not check_colab.build_is_complete(tmp_path, other)


def test_version_mismatches():
    installed = {"torch": "2.11.0+cu128", "numpy": "2.1.2"}
    assert check_colab.version_mismatches(PINS, installed) == [
        "numpy: want 2.1.3, got 2.1.2"]
    assert check_colab.version_mismatches(["triton==3.6.0"], {}) == [
        "triton: want 3.6.0, got None"]


# ------------------------------------------------------------------ toc reading
def _book(tmp_path, chapters):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n    chapters:\n"
        + "".join(f"      - file: {c}\n" for c in chapters))
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# intro\n")


def test_toc_notebooks_in_reading_order_skipping_markdown(tmp_path):
    _book(tmp_path, ["book/b", "book/notes", "book/a.ipynb"])
    for name in ("a.ipynb", "b.ipynb", "notes.md"):
        (tmp_path / "book" / name).write_text("{}")
    assert check_colab.toc_notebooks(tmp_path) == [
        tmp_path / "book" / "b.ipynb", tmp_path / "book" / "a.ipynb"]


def test_toc_notebook_missing_is_an_error(tmp_path):
    _book(tmp_path, ["book/gone.ipynb"])
    with pytest.raises(FileNotFoundError, match="gone"):
        check_colab.toc_notebooks(tmp_path)


def test_the_books_toc_lists_every_chapter():
    names = [p.name for p in check_colab.toc_notebooks(ROOT)]
    assert names and all(n.endswith(".ipynb") for n in names)
    assert "ch4_flash_attention.ipynb" in names


# ------------------------------------------------------------------ failure reporting
def _error(ename, evalue, traceback=()):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=list(traceback))


# IPython 7's traceback of a cell, as the kernel sends it (ANSI colours included)
_TB = ["\x1b[0;31m" + "-" * 75 + "\x1b[0m",
       "\x1b[0;31mRuntimeError\x1b[0m  Traceback (most recent call last)",
       "\x1b[0;32m<ipython-input-2-7c1f>\x1b[0m in "
       "\x1b[0;36m<module>\x1b[0;34m\x1b[0m\n"
       "\x1b[1;32m      1\x1b[0m \x1b[0;32mtry\x1b[0m\x1b[0;34m:\x1b[0m\n"
       "\x1b[0;32m----> 2\x1b[0;31m     \x1b[0;32mfrom\x1b[0m \x1b[0mattn_lib\x1b[0m "
       "\x1b[0;32mimport\x1b[0m \x1b[0mtriton_flash\x1b[0m\x1b[0;34m\x1b[0m\n",
       "\x1b[0;32m/venv/triton/runtime/driver.py\x1b[0m in \x1b[0;36m_create_driver\n"
       "\x1b[0;32m----> 9\x1b[0;31m     raise RuntimeError(...)\n"]


def _executed_notebook():
    v4 = nbformat.v4
    cells = [v4.new_markdown_cell("# t"),
             v4.new_code_cell("# comment\nimport attn_lib", execution_count=1),
             v4.new_code_cell("try:\n    from attn_lib import triton_flash\n"
                              "except ImportError:\n    pass", execution_count=2,
                              outputs=[_error("RuntimeError", "0 active drivers ([]).\n"
                                              "There should only be one.", _TB)]),
             v4.new_code_cell("1 / 0", execution_count=3,
                              metadata={"tags": ["raises-exception"]},
                              outputs=[_error("ZeroDivisionError", "by zero")]),
             v4.new_code_cell("print(x)", execution_count=4,
                              outputs=[_error("NameError", "name 'x' is not defined")])]
    return v4.new_notebook(cells=cells)


def test_cell_errors_name_notebook_and_cell():
    errors = check_colab.cell_errors(_executed_notebook(), "book/ch4.ipynb")
    assert [(e.cell, e.ename) for e in errors] == [
        (2, "RuntimeError"), (4, "NameError")]
    first = str(errors[0])
    assert first.startswith("book/ch4.ipynb: code cell 2 (In [2])")
    assert "`from attn_lib import triton_flash`" in first
    assert "RuntimeError: 0 active drivers ([]). There should only be one." in first
    assert "\n" not in first


def test_without_a_traceback_the_first_code_line_is_named():
    errors = check_colab.cell_errors(_executed_notebook(), "x.ipynb")
    assert errors[1].first_line == "print(x)"
    assert check_colab.raising_line("# c\n\n  y = 1\n", []) == "y = 1"


def test_clean_notebook_has_no_errors():
    cell = nbformat.v4.new_code_cell("1", execution_count=1)
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert check_colab.cell_errors(nb, "x.ipynb") == []


def test_report_verdict():
    ok = check_colab.report([], {"a.ipynb": 1.0}, "colab")
    assert ok.splitlines()[-1] == "check-colab [colab]: 1 notebooks, 0 failures: passed"
    failure = "a.ipynb: code cell 2 raised X: y"
    bad = check_colab.report([failure], {"a.ipynb": 1.0}, "old")
    assert f"FAIL {failure}" in bad
    assert bad.splitlines()[-1] == "check-colab [old]: 1 notebooks, 1 failures: FAILED"


def test_slowest_cell_from_timing_metadata():
    v4 = nbformat.v4

    def timed(start, end):
        return v4.new_code_cell("x", metadata={"execution": {
            "iopub.execute_input": f"2026-12-01T20:00:{start}Z",
            "shell.execute_reply": f"2026-12-01T20:00:{end}Z"}})
    nb = v4.new_notebook(cells=[timed("01.000", "01.500"), v4.new_code_cell("y"),
                                timed("02.000", "09.250")])
    assert check_colab.slowest_cell(nb) == (3, 7.25)
    untimed = v4.new_notebook(cells=[v4.new_code_cell("y")])
    assert check_colab.slowest_cell(untimed) is None


# ------------------------------------------------------------- waits on kernel channels
class _Channel:
    """A fake async channel: its message becomes readable `ready_after` s from now, but
    a wait only notices it if it was readable when the wait began (a missed wake-up)."""

    def __init__(self, ready_after: float):
        import time

        self.ready_at, self.waits = time.monotonic() + ready_after, []

    async def get_msg(self, timeout=None):
        import asyncio
        import queue
        import time

        self.waits.append(timeout)
        if time.monotonic() >= self.ready_at:
            return {"msg": "reply"}
        await asyncio.sleep(timeout)
        raise queue.Empty


def test_sliced_waits_see_a_reply_whose_wake_up_was_missed():
    import asyncio
    import time

    ch = _Channel(ready_after=0.05)
    t0 = time.monotonic()
    msg = asyncio.run(check_colab.sliced(ch.get_msg, slice_s=0.02)(timeout=30))
    assert msg == {"msg": "reply"} and time.monotonic() - t0 < 1  # not the 30 s timeout
    assert max(ch.waits) <= 0.02


def test_sliced_waits_still_time_out():
    import asyncio
    import queue

    ch = _Channel(ready_after=60)
    with pytest.raises(queue.Empty):
        asyncio.run(check_colab.sliced(ch.get_msg, slice_s=0.02)(timeout=0.1))
    assert 4 <= len(ch.waits) <= 8  # 0.1 s in slices of 0.02 s
