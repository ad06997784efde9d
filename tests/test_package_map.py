"""The package's maps match the package: attn_lib/__init__'s chapter -> modules table, its
lazy-submodule set, and the README's layout table name every module, and nothing else."""
from __future__ import annotations

import re
from pathlib import Path

import attn_lib

ROOT = Path(attn_lib.__file__).resolve().parents[1]


def top_level_modules() -> set[str]:
    """Public modules and subpackages directly under attn_lib/ ('counting', 'viz', ...)."""
    pkg = ROOT / "attn_lib"
    mods = {p.stem for p in pkg.glob("*.py") if not p.name.startswith("_")}
    pkgs = {p.parent.name for p in pkg.glob("*/__init__.py")}
    return mods | pkgs


def test_lazy_submodules_are_exactly_the_modules():
    assert attn_lib._SUBMODULES == top_level_modules()


def test_the_chapter_table_names_every_module():
    table = attn_lib.__doc__.split("modules", 1)[1]
    named = set(re.findall(r"\b([a-z_]+)(?:\.[a-z_]+)?\b", table))
    assert top_level_modules() - named == set()


def test_the_readme_layout_table_names_every_module_and_no_other():
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`attn_lib/([a-z_]+)/?`", readme))
    private = {p.stem for p in (ROOT / "attn_lib").glob("_*.py")}
    assert named - private - {"data"} == top_level_modules()
