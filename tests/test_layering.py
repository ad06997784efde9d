"""attn_lib's import graph: no cycles, and the low modules import nothing above them.

Read from the source with `ast` (every import, including those inside functions), so a
lazy import that only runs on some path is caught too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "attn_lib"

#: The floor of the library: input checks, presets, hardware figures, closed forms.
#: Each may import only modules listed before it.
LOW = ["_checks", "models", "hardware", "counting"]


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"


def attn_lib_imports(path: Path) -> set[str]:
    """attn_lib modules that the file at `path` imports (relative or absolute)."""
    name = module_name(path)
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    package = [p for p in package if p != "__init__"]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("attn_lib"):
                target = node.module.removeprefix("attn_lib").lstrip(".")
            else:
                continue
            names = [a.name for a in node.names]
            for n in names:  # `from . import counting` names a module
                candidate = f"{target}.{n}".strip(".")
                if (PKG / f"{candidate.replace('.', '/')}.py").exists() or \
                        (PKG / candidate.replace(".", "/")).is_dir():
                    found.add(candidate)
            if target:
                found.add(target)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("attn_lib."):
                    found.add(a.name.removeprefix("attn_lib."))
    return {m for m in found if m and m != name}


def graph() -> dict[str, set[str]]:
    return {module_name(p): attn_lib_imports(p) for p in PKG.rglob("*.py")}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in the graph as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None and nxt in edges:
                if (cycle := visit(nxt)) is not None:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if state.get(node) is None and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_import_cycle_inside_attn_lib():
    edges = {m: {t for t in ts if t != "__init__"} for m, ts in graph().items()}
    assert find_cycle(edges) is None, f"import cycle: {' -> '.join(find_cycle(edges))}"


@pytest.mark.parametrize("low", LOW)
def test_low_modules_import_only_lower_ones(low):
    allowed = set(LOW[: LOW.index(low)])
    imported = graph()[low]
    assert imported <= allowed, f"{low} imports {sorted(imported - allowed)}"


def test_the_checker_sees_cycles_and_upward_imports(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # an upward lazy import inside a function is found
    src = tmp_path / "x.py"
    src.write_text("def f():\n    from .reference import IOCounter\n")
    global PKG
    saved, PKG = PKG, tmp_path
    try:
        (tmp_path / "reference.py").write_text("")
        assert attn_lib_imports(src) == {"reference"}
    finally:
        PKG = saved


def test_essay_figures_are_a_leaf():
    """claims/essays.py is data that the claims modules and chapter 2's viz read: it
    imports no attn_lib module, so either can import it."""
    assert graph()["claims.essays"] == set()
    assert "claims.essays" in graph()["viz.flops"]
