"""attn_lib.book's readers of _config.yml and _toc.yml (the glue rule: test_portable_outputs.py)."""
from __future__ import annotations

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
