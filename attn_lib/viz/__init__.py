"""Figures and ipywidgets explorers for the chapters, one module per chapter topic.

Every explorer has a static twin (a figure or table) for the HTML book, which has no kernel.
matplotlib and ipywidgets are imported inside the functions that need them.
"""
