"""Glue for the book's notebooks: myst-nb's `glue` when it is installed, a no-op otherwise.

The HTML book inserts glued values into the prose ({glue:text}`name`); on Colab, where
myst-nb is absent, the notebook still runs and prints what it needs.
"""
from __future__ import annotations


def glue(name: str, value, display: bool = False):
    """Record `value` under `name` for the prose; return the value for further use."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # Colab / plain Jupyter: nothing to record into
        return value
    _glue(name, value, display=display)
    return value
