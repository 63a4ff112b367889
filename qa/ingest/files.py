"""Ingest: find article files, read them, and turn every record into an ``Article``.

Supported inputs (by extension, then by content where the extension is not enough):
plain-text articles (``.txt``), markdown (``.md``, ``.markdown``), JSON / JSONL, optionally
gzipped (``.json``, ``.jsonl``, ``.json.gz``, ``.jsonl.gz``; SQuAD files included) and HTML
(``.html``, ``.htm``). Parsers live in :mod:`qa.ingest.formats`.

Bad input never stops a run: each unusable file or record becomes a ``Skipped`` that says why,
unless the ``Ingestor`` is strict, in which case the first problem raises ``BadArticle``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.errors import BadArticle, UsageError
from qa.ingest.dates import parse_date
from qa.ingest.formats import (
    Draft,
    Parsed,
    Problem,
    normalize_text,
    parse_json_value,
    parse_markdown,
    parse_plain,
    parse_record,
    source_from_url,
    tidy_body,
)
from qa.ingest.html import parse_html
from qa.types import Article

__all__ = ["KNOWN_SUFFIXES", "Ingestor", "Skipped", "file_kind", "parse_date"]

# Longest first, so that "x.jsonl.gz" is not taken for a plain ".gz" or ".jsonl".
KNOWN_SUFFIXES = (
    ".jsonl.gz",
    ".json.gz",
    ".markdown",
    ".jsonl",
    ".json",
    ".html",
    ".htm",
    ".txt",
    ".md",
)
_SNIFF_BYTES = 8192
_HTML_START = re.compile(r"^\s*(?:<!doctype\s+html|<html[\s>])", re.IGNORECASE)
# Read errors of plain and gzipped files: OSError covers BadGzipFile; truncated streams raise
# EOFError and corrupt deflate data zlib.error.
_READ_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class Skipped:
    """A file, or one record of a file, that was not ingested.

    Attributes:
        origin: The file path.
        line: Line number for JSONL records, else None.
        reason: Why it was skipped, e.g. "empty file" or "invalid JSON: ...".
    """

    origin: str
    line: int | None
    reason: str

    def message(self) -> str:
        """One line for a person: ``path[:line]: reason``."""
        where = f"{self.origin}:{self.line}" if self.line is not None else self.origin
        return f"{where}: {self.reason}"


def file_kind(path: Path | str) -> str | None:
    """The known suffix of a file name (lower case), e.g. ``.jsonl.gz``; None when unsupported.

    Args:
        path: A file path or name.

    Returns:
        One of ``KNOWN_SUFFIXES`` or None.
    """
    name = Path(path).name.lower()
    return next((suffix for suffix in KNOWN_SUFFIXES if name.endswith(suffix)), None)


class Ingestor:
    """Reads article files of every supported format.

    Args:
        strict: Raise ``BadArticle`` on the first unusable file or record instead of yielding
            a ``Skipped`` for it.
    """

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict

    def discover(self, paths: Sequence[Path]) -> list[Path]:
        """List the article files under the given files and folders.

        Folders are searched recursively for files with a known extension; hidden files and
        folders (name starting with ".") are left out. Files named explicitly are kept as they
        are, so that ``read_file`` can say why an unsupported one is skipped.

        Args:
            paths: Files and folders.

        Returns:
            The files, sorted, each once.

        Raises:
            UsageError: A path does not exist.
        """
        found: set[Path] = set()
        for path in paths:
            if path.is_dir():
                found.update(_walk(path))
            elif path.exists():
                found.add(path)
            else:
                raise UsageError(f"{path}: no such file or directory")
        return sorted(found)

    def read_file(self, path: Path) -> Iterator[Article | Skipped]:
        """Read the articles of one file.

        Args:
            path: The file; its extension picks the format.

        Yields:
            An ``Article`` per usable record and a ``Skipped`` per unusable file or record.

        Raises:
            BadArticle: Only when strict, at the first unusable file or record.
        """
        origin = str(path)
        for item in _parse_file(path):
            result = _finish(item, origin) if isinstance(item, Draft) else item
            if isinstance(result, Problem):
                yield self._skip(origin, result)
            else:
                yield result

    def read(self, paths: Sequence[Path]) -> Iterator[Article | Skipped]:
        """Read every file that ``discover`` finds under ``paths``, in order.

        Args:
            paths: Files and folders.

        Yields:
            Articles and ``Skipped`` records, file by file.
        """
        for path in self.discover(paths):
            yield from self.read_file(path)

    def _skip(self, origin: str, problem: Problem) -> Skipped:
        if self.strict:
            raise BadArticle(origin, problem.reason, problem.line)
        return Skipped(origin=origin, line=problem.line, reason=problem.reason)


def _walk(root: Path) -> Iterator[Path]:
    """Supported, non-hidden files under ``root`` (symlinked folders not followed: no loops)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and file_kind(name):
                yield Path(dirpath) / name


def _finish(draft: Draft, origin: str) -> Article | Problem:
    """Validate and normalise parsed fields into an ``Article``."""
    text = tidy_body(draft.text)
    if not draft.title.strip():
        return Problem("no title", draft.line)
    if not text:
        return Problem("no article body", draft.line)
    return Article(
        title=draft.title.strip(),
        text=text,
        date=draft.date,
        url=draft.url,
        source=draft.source or source_from_url(draft.url),
        origin=f"{origin}:{draft.line}" if draft.line is not None else origin,
    )


# ---------------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------------


def _open_binary(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def _sniff(head: bytes) -> Problem | None:
    """File-level problems visible in the first bytes: empty or binary."""
    if not head.strip():
        return Problem("empty file")
    if b"\x00" in head[:_SNIFF_BYTES]:
        return Problem("binary file")
    return None


def _decode(data: bytes, line: int | None = None) -> str | Problem:
    """UTF-8 text (a leading BOM dropped), or a problem that points at the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        return Problem(f"not UTF-8 text (byte 0x{bad:02x} at offset {exc.start})", line)
    return text.removeprefix("\ufeff")


def _parse_file(path: Path) -> Iterator[Parsed]:
    kind = file_kind(path)
    if kind is None:
        yield Problem(f"unsupported file type (known: {', '.join(sorted(KNOWN_SUFFIXES))})")
        return
    try:
        with _open_binary(path) as stream:
            problem = _sniff(stream.read(_SNIFF_BYTES))
        if problem:
            yield problem
        elif kind in (".jsonl", ".jsonl.gz"):
            yield from _read_jsonl(path)
        else:
            yield from _read_document(path, kind)
    except _READ_ERRORS as exc:
        yield Problem(f"cannot read file: {exc}")


def _read_document(path: Path, kind: str) -> Iterator[Parsed]:
    """Whole-file formats: JSON documents, HTML, markdown and plain text."""
    with _open_binary(path) as stream:
        text = _decode(stream.read())
    if isinstance(text, Problem):
        yield text
    elif kind in (".json", ".json.gz"):
        yield from _parse_json_document(text)
    elif kind in (".html", ".htm") or _HTML_START.match(text):
        yield parse_html(text)
    elif kind in (".md", ".markdown"):
        yield parse_markdown(normalize_text(text))
    else:
        yield parse_plain(normalize_text(text))


def _parse_json_document(text: str) -> Iterator[Parsed]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            # Several top-level values: JSONL content behind a .json name.
            yield from _parse_json_lines(enumerate(text.split("\n"), start=1))
        else:
            yield Problem(f"invalid JSON: {exc}")
        return
    yield from parse_json_value(value)


def _read_jsonl(path: Path) -> Iterator[Parsed]:
    """Stream a JSONL file line by line: large corpora never sit in memory whole."""
    with _open_binary(path) as stream:
        yield from _parse_json_lines(_decoded_lines(stream))


def _decoded_lines(stream: io.BufferedIOBase) -> Iterator[tuple[int, str | Problem]]:
    for number, raw in enumerate(stream, start=1):
        yield number, _decode(raw, number)


def _parse_json_lines(lines: Iterable[tuple[int, str | Problem]]) -> Iterator[Parsed]:
    """One record per non-blank line; a bad line is a problem for that line alone."""
    seen_any = False
    for number, line in lines:
        if isinstance(line, Problem):
            seen_any = True
            yield line
            continue
        if not line.strip():
            continue
        seen_any = True
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Problem(f"invalid JSON: {exc.msg} (column {exc.colno})", number)
            continue
        yield parse_record(value, line=number)
    if not seen_any:
        yield Problem("empty file")
