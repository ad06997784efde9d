"""Conventions of the test suite itself.

A hypothesis test with very few examples checks almost nothing: hypothesis tries the
simplest example first, so ``max_examples=1`` checks the same trivial case on every run
(issue 24: ring attention was "tested" on one head, d = 1, float64, non-causal, for every
seed). Any ``max_examples`` below MIN_EXAMPLES in tests/ must carry a comment saying why,
on its line or the line above (e.g. each example starts processes; the cases that matter
are explicit elsewhere).
"""
from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
MIN_EXAMPLES = 10
MIN_COMMENT_WORDS = 3  # "# slow" says nothing; "# each example starts 4 processes" does


def _comments(source: str) -> dict[int, str]:
    """Line number -> the text of the comment on that line."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _constants(tree: ast.Module) -> dict[str, object]:
    """Module-level NAME = <literal> assignments (e.g. N_CASES = 500)."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _value(node: ast.expr, constants: dict):
    """The int a max_examples expression stands for, or None where it cannot be told."""
    if isinstance(node, ast.Name):
        value = constants.get(node.id)
    else:
        try:
            value = ast.literal_eval(node)
        except ValueError:
            return None
    return value if isinstance(value, int) else None


def few_examples_without_reason(source: str, name: str = "<source>") -> list[str]:
    """Each `max_examples=` below MIN_EXAMPLES (or not a readable int) with no comment of
    MIN_COMMENT_WORDS words on its line or the line above: 'name:line: max_examples=...'."""
    tree = ast.parse(source)
    comments, constants = _comments(source), _constants(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg != "max_examples":
                continue
            value = _value(kw.value, constants)
            if value is not None and value >= MIN_EXAMPLES:
                continue
            lines = {node.lineno - 1, node.lineno, kw.value.lineno, kw.value.lineno - 1}
            if any(len(comments.get(n, "").split()) >= MIN_COMMENT_WORDS for n in lines):
                continue
            found.append(f"{name}:{kw.value.lineno}: max_examples={ast.unparse(kw.value)}")
    return found


def test_no_hypothesis_test_draws_fewer_than_ten_examples_without_saying_why():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        offenders += few_examples_without_reason(path.read_text(), str(path.relative_to(TESTS)))
    assert offenders == [], (
        f"max_examples below {MIN_EXAMPLES} needs a comment saying why (its line or the one "
        f"above), or more examples, or explicit cases instead: {offenders}")


@pytest.mark.parametrize("source, bad", [
    ("@settings(max_examples=1)\ndef t(): pass\n", True),
    ("@settings(max_examples=9, deadline=None)\ndef t(): pass\n", True),
    ("N = 3\n@settings(max_examples=N)\ndef t(): pass\n", True),
    ("@settings(max_examples=f())\ndef t(): pass\n", True),  # cannot tell: say why
    ("@settings(max_examples=1)  # slow\ndef t(): pass\n", True),  # not a reason
    ("@settings(max_examples=10)\ndef t(): pass\n", False),
    ("N = 500\n@settings(max_examples=N)\ndef t(): pass\n", False),
    ("@settings(max_examples=2)  # each example starts four processes\ndef t(): pass\n", False),
    ("# each example starts four processes\n@settings(max_examples=2)\ndef t(): pass\n", False),
    ("settings.register_profile('x', max_examples=5)\n", True),
])
def test_the_check_itself(source, bad):
    assert bool(few_examples_without_reason(source)) == bad
