"""The store as a context manager: ``with open_store(root) as store:`` closes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from qa.index.store import Store


def test_a_with_block_closes_the_store(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        assert store.current_gen == 0  # open inside the block
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.db.execute("SELECT 1")


def test_an_error_in_the_block_closes_it_too(tmp_path: Path) -> None:
    with pytest.raises(KeyError), Store(tmp_path / "s.sqlite") as store:
        raise KeyError("boom")
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.db.execute("SELECT 1")
