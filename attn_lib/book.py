"""The book's glue and readers: myst-nb's `glue` (a no-op without myst-nb), _config.yml, _toc.yml.

:func:`repo_url_from_config`, :func:`book_repository` and :func:`toc_pages` read the book's
configuration (tools/ and the notebook tests use them; the repository URL lives in one
place, `repository.url` of _config.yml).

The HTML book inserts glued values into the prose ({glue:text}`name`); on Colab, where
myst-nb is absent, the notebook still runs and prints what it needs.

One precision rule for every glued number (chapter notebooks, the claims appendix): a
float is stored rounded to `sig` significant digits, 3 unless the caller asks for more
(at most :data:`MAX_SIG`), as a plain Python float; a float holding a whole number
(a count such as 16384.0) is exact and kept whole. The last bits of a float depend on
the BLAS kernel, the CPU and library patch versions; three digits do not, and they are
what the prose shows. tests/test_portable_outputs.py checks the stored notebooks.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Mapping

from ._checks import check_type

#: The repository root when attn_lib is used from a checkout (editable install).
_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_SIG = 3  # significant digits of a glued float unless the caller passes sig=
MAX_SIG = 6  # more digits than this would carry round-off into the stored notebook


def _round_sig(x: float, sig: int = DEFAULT_SIG) -> float:
    """x rounded to `sig` significant digits, as a Python float (whole numbers unchanged)."""
    if isinstance(sig, bool) or not isinstance(sig, int) or not 1 <= sig <= MAX_SIG:
        raise ValueError(f"sig must be an int in [1, {MAX_SIG}], got {sig!r}")
    x = float(x)
    if not math.isfinite(x) or (x.is_integer() and abs(x) < 2**53):
        return x  # inf, nan and whole numbers (counts held in a float) are exact already
    return float(f"{x:.{sig}g}")


def portable(value, sig: int = DEFAULT_SIG):
    """`value` as glue stores it: floats rounded by :func:`_round_sig`, NumPy scalars made
    Python ones, lists/tuples/dicts converted element by element; ints, bools, strings and
    anything else unchanged."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # np.float64 / np.int64 / np.bool_ -> float / int / bool
        if isinstance(value, bool):
            return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _round_sig(value, sig)
    if isinstance(value, (list, tuple)):
        return type(value)(portable(v, sig) for v in value)
    if isinstance(value, dict):
        return {k: portable(v, sig) for k, v in value.items()}
    return value


def glue(name: str, value, display: bool = False, *, sig: int = DEFAULT_SIG):
    """Record `value` under `name` for the prose, rounded by the glue rule; return it rounded.

    `sig`: significant digits kept for floats (default 3; pass more only where the prose
    shows more, e.g. ``sig=4`` for a ratio printed as 4.002).
    """
    value = portable(value, sig)
    try:
        from myst_nb import glue as _glue
    except ImportError:  # Colab / plain Jupyter: nothing to record into
        return value
    _glue(name, value, display=display)
    return value


def glue_many(mapping: Mapping | None = None, /, *, sig: int = DEFAULT_SIG, **values) -> dict:
    """Glue several values in one call: ``glue_many({"a": 1.5, "b": n})`` or ``glue_many(a=1.5)``.

    Every value follows the same rule as :func:`glue` (floats to `sig` digits); returns the
    glued values by name.
    """
    items = dict(mapping or {})
    overlap = items.keys() & values.keys()
    if overlap:
        raise ValueError(f"names given twice: {sorted(overlap)}")
    items.update(values)
    return {name: glue(name, v, sig=sig) for name, v in items.items()}


# ----------------------------------------------------------------------------- config and TOC
def _find_config(config_path: str | Path = "_config.yml") -> Path:
    """The book's _config.yml: `config_path` if it exists, else the one at the checkout root."""
    check_type("config_path", config_path, (str, Path), "a str or Path")
    path = Path(config_path)
    if path.is_file():
        return path
    fallback = _CHECKOUT_ROOT / path.name
    if not path.is_absolute() and fallback.is_file():
        return fallback
    raise FileNotFoundError(f"config_path {str(config_path)!r} not found (also looked in {_CHECKOUT_ROOT})")


def repo_url_from_config(config_path: str | Path = "_config.yml") -> str:
    """The repository URL, kept in one place: `repository.url` of the book's _config.yml."""
    return book_repository(config_path)[0]


def toc_pages(toc_path: str | Path = "_toc.yml") -> list[str]:
    """Every `file:` (the root first) of the book's _toc.yml, in reading order, without suffix."""
    import yaml

    check_type("toc_path", toc_path, (str, Path), "a str or Path")
    toc = yaml.safe_load(_find_config(toc_path).read_text())
    pages = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                pages.append(item["file"])
            walk(item.get("sections"))

    for part in toc.get("parts", [toc]):
        walk(part.get("chapters"))
    return pages


def book_repository(config_path: str | Path = "_config.yml") -> tuple[str, str]:
    """(repository URL, branch) from the book's _config.yml; the branch defaults to 'main'."""
    import yaml

    with open(_find_config(config_path)) as f:
        repo = yaml.safe_load(f)["repository"]
    return repo["url"], repo.get("branch", "main")
