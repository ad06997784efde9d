"""attn_lib.book: the glue rule (rounding; over stored notebooks: test_portable_outputs.py) and
the readers of _config.yml and _toc.yml."""
from __future__ import annotations

import numpy as np
import pytest

from attn_lib import book


def test_repo_url_from_config_reads_the_one_place(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("repository:\n  url: https://github.com/o/r\n  branch: main\n")
    assert book.repo_url_from_config(cfg) == "https://github.com/o/r"


def test_repo_url_from_config_finds_the_checkout_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # e.g. a notebook running in book/
    assert book.repo_url_from_config().startswith("https://")
    with pytest.raises(FileNotFoundError, match="config_path"):
        book.repo_url_from_config(tmp_path / "missing.yml")


def test_book_repository_defaults_branch(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("repository:\n  url: https://github.com/o/r\n")
    assert book.book_repository(cfg) == ("https://github.com/o/r", "main")


def test_glue_rounds_floats_to_the_rule():
    assert book.glue("x", np.float64(2.0000000000000004)) == 2.0
    assert type(book.glue("x", np.float64(1.2345))) is float and book.glue("x", 1.2345) == 1.23
    assert book.glue("x", 4.002002002002002, sig=4) == 4.002
    assert book.glue("x", 16384.0) == 16384.0  # whole numbers are exact: kept
    assert book.glue("x", np.int64(7)) == 7 and type(book.glue("x", np.int64(7))) is int
    assert book.glue("x", "0.82") == "0.82" and book.glue("x", np.bool_(True)) is True
    assert book.glue("x", [0.00021491400002560113, 3]) == [0.000215, 3]
    assert book.glue_many({"a": 1.23456}, b=2) == {"a": 1.23, "b": 2}
    assert book.glue_many(a=1.23456, sig=5) == {"a": 1.2346}
    with pytest.raises(ValueError, match="sig"):
        book.glue("x", 1.0, sig=book.MAX_SIG + 1)
    with pytest.raises(ValueError, match="twice"):
        book.glue_many({"a": 1}, a=2)
