"""Figures and ipywidgets explorers for the chapters, one module per chapter topic.

Every explorer has a static twin (a figure or table) for the HTML book, which has no kernel.
matplotlib and ipywidgets are imported inside the functions that need them. What every
chapter shares (markdown tables, byte units, log ticks) lives in :mod:`._common` and is
imported from here: ``from attn_lib.viz import format_bytes, markdown_table``.
"""
from ._common import DPI, FONT, format_bytes, markdown_table, plain_ticks, source_markdown

__all__ = ["DPI", "FONT", "format_bytes", "markdown_table", "plain_ticks",
           "source_markdown"]
