"""The store's SQLite connection: a damaged file becomes one ``DamagedStore`` error.

A store can be damaged on disk (a bad sector, a copy cut short, a stray write). SQLite then
fails wherever a query touches the damaged pages, in any command, with
``sqlite3.DatabaseError: database disk image is malformed`` (or ``file is not a database``,
or ``no such table: meta`` for an emptied file). Every statement and every fetch of the
store's connection turns these into :class:`~qa.errors.DamagedStore`, whose one line says to
rebuild; other SQLite errors (a locked or read-only file) pass unchanged.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from qa.errors import DamagedStore

# Without these tables the file is no store (an emptied or foreign file); other tables may
# be missing from stores written by older versions.
_CORE_TABLES = ("meta", "articles", "passages", "files", "file_articles")


def is_damage(exc: sqlite3.Error) -> bool:
    """True when an SQLite error means a damaged store file or disk (not a locked or busy
    file, nor a full disk)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR")):
        return True
    text = str(exc)
    # A stored text that is no longer UTF-8: bytes of a row changed on disk.
    if "malformed" in text or "not a database" in text or "Could not decode to UTF-8" in text:
        return True
    return any(text == f"no such table: {table}" for table in _CORE_TABLES)


def _detail(exc: sqlite3.Error) -> str:
    """SQLite's reason, short: a decoding error would quote the whole damaged text."""
    text = str(exc)
    column = re.search(r"Could not decode to UTF-8 column '([^']*)'", text)
    if column:
        return f"column {column[1]!r} holds bytes that are not UTF-8"
    return text if len(text) <= 120 else text[:117] + "..."


def _raise(path: Path, exc: sqlite3.Error) -> NoReturn:
    if is_damage(exc):
        raise DamagedStore(str(path), _detail(exc)) from exc
    raise exc


class _Cursor(sqlite3.Cursor):
    """A cursor whose statements and fetches raise ``DamagedStore`` on a damaged file."""

    path = Path()

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            _raise(self.path, exc)

    def executemany(self, sql: str, seq: Iterable[Any], /) -> _Cursor:
        try:
            return super().executemany(sql, seq)
        except sqlite3.Error as exc:
            _raise(self.path, exc)

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            _raise(self.path, exc)

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(size)
        except sqlite3.Error as exc:
            _raise(self.path, exc)

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            _raise(self.path, exc)

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            _raise(self.path, exc)


class _Connection(sqlite3.Connection):
    """A connection whose statements and commits raise ``DamagedStore`` on a damaged file."""

    path = Path()

    def cursor(self, factory: Any = None) -> _Cursor:  # type: ignore[override]
        cur = super().cursor(factory or _Cursor)
        cur.path = self.path
        return cur

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq: Iterable[Any], /) -> _Cursor:
        return self.cursor().executemany(sql, seq)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.Error as exc:
            _raise(self.path, exc)

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as exc:
            _raise(self.path, exc)


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """Open the store file (read-only: never creates or changes it).

    Raises:
        DamagedStore: The file is not an SQLite database.
    """
    if path.exists() and not path.is_file():  # a folder or a pipe in the store's place
        raise DamagedStore(str(path), "not a regular file")
    target = f"file:{path}?mode=ro" if readonly else str(path)
    try:
        db = sqlite3.connect(target, uri=readonly, check_same_thread=False, factory=_Connection)
    except sqlite3.Error as exc:
        _raise(path, exc)
    assert isinstance(db, _Connection)
    db.path = path
    return db


def integrity_problems(db: sqlite3.Connection, quick: bool = False, limit: int = 5) -> list[str]:
    """SQLite's own check of every page (``quick``: without matching indexes to tables).

    Returns:
        Up to ``limit`` of SQLite's messages; empty when the file is sound.
    """
    pragma = "quick_check" if quick else "integrity_check"
    try:
        rows = [str(r[0]) for r in sqlite3.Connection.execute(db, f"PRAGMA {pragma}({limit})")]
    except sqlite3.DatabaseError as exc:  # too damaged to check at all
        return [str(exc)]
    if rows == ["ok"]:
        return []
    # Rows may hold several lines, headed "*** in database main ***": one message a line.
    lines = (line.strip() for row in rows for line in row.splitlines())
    return [line for line in lines if line and not line.startswith("***")][:limit]
