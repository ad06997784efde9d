"""Stamp every book notebook's first code cell with attn_lib.colab.colab_cell.

The cell keeps its place (Colab needs it first) and gets the tags `nbval-ignore-output`
(it prints the device) and `remove-input` (the HTML book hides it). Its output is left
as is: re-execute the notebook afterwards. Usage: python tools/set_up_cells.py [NB ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from attn_lib import book, colab

ROOT = Path(__file__).resolve().parent.parent
TAGS = ("nbval-ignore-output", "remove-input")


def stamp(path: Path, source: str) -> bool:
    """Rewrite the first code cell of the notebook at `path`; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    tags = cell.metadata.setdefault("tags", [])
    before = (cell.source, list(tags))
    cell.source = source
    tags.extend(t for t in TAGS if t not in tags)
    if (cell.source, list(tags)) == before:
        return False
    nbformat.write(nb, path)
    return True


def main(argv: list[str]) -> int:
    source = colab.colab_cell(book.repo_url_from_config(ROOT / "_config.yml"))
    pages = [ROOT / f"{p}.ipynb" for p in book.toc_pages(ROOT / "_toc.yml")]
    paths = [Path(a) for a in argv] or [p for p in pages if p.exists()]
    for path in paths:
        print(f"{path.name}: {'updated' if stamp(path, source) else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
