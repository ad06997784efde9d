"""Every public name of attn_lib is used by a notebook or a test (issue: one home per
concept; a public name nobody calls is dead code or belongs behind an underscore).

"Used" means: the name appears as a word in a user text that also names the defining
module. Users are the notebooks' code cells, tests/*.py, and the repo's checked scripts
benchmarks/*.py and tools/*.py. The tests that merely list every callable (bad-input rows,
layering, import side effects, this one) do not count as a use.

A function decorated with the ledger's ``@claim(...)`` (attn_lib/claims/*.py) counts as
used: the registry calls it (``claims.run_all()`` in book/appendix_claims.ipynb), no user
names it.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "attn_lib"
#: Tests that enumerate names rather than use them.
LISTING_TESTS = {"test_bad_inputs.py", "test_layering.py", "test_import_side_effects.py",
                 "test_public_names.py"}


def is_claim(node: ast.AST) -> bool:
    """True for a def decorated with ``@claim(...)``: the ledger's registry runs it."""
    return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Name)
               and d.func.id == "claim" for d in node.decorator_list)


def public_names(source: str) -> set[str]:
    """Top-level defs, classes and assignments of a module whose names have no '_';
    ``@claim`` checks are left out (used through the registry)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not is_claim(node):
                names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def module_name(path: Path) -> str:
    """attn_lib/viz/kv.py -> 'attn_lib.viz.kv'; a package's __init__ -> the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unused(modules: dict[str, str], users: list[str]) -> dict[str, list[str]]:
    """{module: [public names no user text mentions]}; a user must name the module too."""
    found = {}
    for mod, source in modules.items():
        short = mod.rsplit(".", 1)[-1]
        mine = [t for t in users if re.search(rf"\b{re.escape(short)}\b", t)]
        missing = sorted(n for n in public_names(source)
                         if not any(re.search(rf"\b{re.escape(n)}\b", t) for t in mine))
        if missing:
            found[mod] = missing
    return found


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def user_texts() -> list[str]:
    """Notebooks' code, tests (less the listing ones), benchmarks and tools scripts."""
    tests = [p.read_text() for p in sorted((ROOT / "tests").glob("*.py"))
             if p.name not in LISTING_TESTS]
    scripts = [p.read_text() for folder in ("benchmarks", "tools")
               for p in sorted((ROOT / folder).glob("*.py"))]
    notebooks = [notebook_code(p) for p in sorted((ROOT / "book").glob("*.ipynb"))]
    return tests + scripts + notebooks


def test_every_public_name_is_used_by_a_notebook_or_a_test():
    modules = {module_name(p): p.read_text() for p in sorted(PACKAGE.rglob("*.py"))
               if not p.name.startswith("_") or p.name == "__init__.py"}
    found = unused(modules, user_texts())
    assert not found, ("public names no notebook or test uses (delete them, or make "
                       f"them private): {found}")


@pytest.mark.parametrize("user, expect", [
    ("from pkg import mod\nmod.used()", {"pkg.mod": ["LIMIT", "Idle", "spare"]}),
    ("mod.used(); mod.spare(mod.Idle, mod.LIMIT)", {}),
    ("used(); spare(); Idle; LIMIT", {"pkg.mod": ["Idle", "LIMIT", "spare", "used"]}),
])
def test_the_check_fails_on_a_name_nobody_uses(user, expect):
    source = ("LIMIT = 3\n_PRIVATE = 1\nclass Idle: pass\n"
              "def used(): pass\ndef spare(): pass\ndef _helper(): pass\n")
    got = unused({"pkg.mod": source}, [user])
    assert {m: sorted(v) for m, v in got.items()} == {m: sorted(v) for m, v in expect.items()}


def test_a_claim_check_counts_as_used_through_the_registry():
    source = ('@claim("a title", "A", source="essay")\ndef checked(): pass\n'
              "@other\ndef decorated(): pass\n"
              "def plain(): pass\n")
    got = unused({"pkg.mod": source}, ["from pkg import mod"])
    assert got == {"pkg.mod": ["decorated", "plain"]}


def test_users_are_notebooks_tests_and_checked_scripts_not_listings():
    texts = user_texts()
    for script in ("benchmarks/cpu_attention.py", "tools/check_colab.py",
                   "tests/test_counting.py"):
        assert (ROOT / script).read_text() in texts, script
    assert notebook_code(ROOT / "book/appendix_claims.ipynb") in texts
    assert all((ROOT / "tests" / name).read_text() not in texts for name in LISTING_TESTS)
