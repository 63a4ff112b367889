"""Ingest: find article files, read them, and turn every record into an ``Article``.

Supported inputs (by extension, then by content where the extension is not enough):
plain-text articles (``.txt``), markdown (``.md``, ``.markdown``), JSON / JSONL, optionally
gzipped (``.json``, ``.jsonl``, ``.json.gz``, ``.jsonl.gz``; SQuAD files included) and HTML
(``.html``, ``.htm``). Parsers live in :mod:`qa.ingest.formats`.

Bad input never stops a run: each unusable file or record becomes a ``Skipped`` that says why,
unless the ``Ingestor`` is strict, in which case the first problem raises ``BadArticle``.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import re
import stat
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

__all__ = [
    "KNOWN_SUFFIXES",
    "Ingestor",
    "Skipped",
    "file_kind",
    "file_problem",
    "open_regular",
    "parse_date",
]

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
_HTML_START = re.compile(r"^\s*(?:<!doctype\s+html|<html[\s>])", re.IGNORECASE)
# Read errors of plain and gzipped files: OSError covers BadGzipFile; truncated streams raise
# EOFError and corrupt deflate data zlib.error.
_READ_ERRORS = (OSError, EOFError, zlib.error)
_NOT_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
# Ingestor's default when no limit is given and NEWSQA_MAX_ARTICLE_MB is unset.
_MB = 1 << 20
# JSONL files are streamed: their head says whether the whole file is binary; a NUL later
# makes its line a skipped one.
_HEAD_BYTES = 8192


class FileProblem(Exception):
    """A file that cannot be read as an article file (not regular, unreadable, a bad link).

    Attributes:
        reason: What is wrong, for a skip line (the path is not repeated).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _os_reason(path: Path, exc: OSError) -> str:
    """One short reason for an ``OSError`` about ``path``, without the path again."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f"broken symbolic link (to {os.readlink(path)})"
    return f"cannot read file: {exc.strerror or exc}"


def _kind_problem(mode: int) -> str | None:
    for test, what in _NOT_REGULAR:
        if test(mode):
            return f"not a regular file ({what})"
    return None if stat.S_ISREG(mode) else "not a regular file"


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as an article file, or None when it is a regular file.

    Looks only at the file's status (symbolic links followed), never opens it: opening a
    named pipe would wait for a writer, and a device may never end.

    Args:
        path: A file path.

    Returns:
        The reason (e.g. "not a regular file (a named pipe)", "symbolic link loop"), or None.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return _os_reason(path, exc)
    except ValueError as exc:  # a NUL in the name
        return f"cannot read file: {exc}"
    return _kind_problem(mode)


def open_regular(path: Path) -> io.BufferedReader:
    """Open a regular file for reading bytes; anything else is refused without waiting.

    The file's status is checked before opening (see :func:`file_problem`), and the open file
    again (it may have been swapped meanwhile), with ``O_NONBLOCK`` so that a named pipe put
    in its place cannot block the open.

    Raises:
        FileProblem: The path is not a readable regular file.
    """
    problem = file_problem(path)
    if problem:
        raise FileProblem(problem)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise FileProblem(_os_reason(path, exc)) from exc
    problem = _kind_problem(os.fstat(fd).st_mode)
    if problem:
        os.close(fd)
        raise FileProblem(problem)
    return os.fdopen(fd, "rb")


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
        max_article_bytes: Articles whose text is longer (UTF-8 bytes) are skipped with a
            reason; default: the ``NEWSQA_MAX_ARTICLE_MB`` setting.
    """

    def __init__(self, *, strict: bool = False, max_article_bytes: int | None = None) -> None:
        self.strict = strict
        if max_article_bytes is None:
            from qa import settings

            max_article_bytes = int(settings.load().max_article_mb * _MB)
        self.max_article_bytes = max_article_bytes

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
            result = self._finish(item, origin) if isinstance(item, Draft) else item
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

    def skip(self, origin: str, reason: str, line: int | None = None) -> Skipped:
        """A ``Skipped`` for a file or record (the caller reports it).

        Raises:
            BadArticle: When strict.
        """
        return self._skip(origin, Problem(reason, line))

    def _skip(self, origin: str, problem: Problem) -> Skipped:
        if self.strict:
            raise BadArticle(origin, problem.reason, problem.line)
        return Skipped(origin=origin, line=problem.line, reason=problem.reason)

    def _finish(self, draft: Draft, origin: str) -> Article | Problem:
        size = len(draft.text.encode("utf-8", "surrogatepass"))
        if size > self.max_article_bytes:
            return Problem(
                f"article text is {size / _MB:.3g} MB, over the limit of "
                f"{self.max_article_bytes / _MB:.3g} MB (NEWSQA_MAX_ARTICLE_MB)",
                draft.line,
            )
        return _finish(draft, origin)


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
    raw = open_regular(path)
    if path.name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


def _sniff(data: bytes) -> Problem | None:
    """File-level problems: empty, or binary (a NUL byte anywhere; text never holds one)."""
    if not data.strip():
        return Problem("empty file")
    if b"\x00" in data:
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
        if kind in (".jsonl", ".jsonl.gz"):
            yield from _read_jsonl(path)
        else:
            yield from _read_document(path, kind)
    except FileProblem as exc:
        yield Problem(exc.reason)
    except _READ_ERRORS as exc:
        yield Problem(f"cannot read file: {exc}")


def _read_document(path: Path, kind: str) -> Iterator[Parsed]:
    """Whole-file formats: JSON documents, HTML, markdown and plain text."""
    with _open_binary(path) as stream:
        data = stream.read()
    problem = _sniff(data)
    text = problem or _decode(data)
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


_TOO_DEEP = "invalid JSON: nested too deeply"


def _parse_json_document(text: str) -> Iterator[Parsed]:
    try:
        value = json.loads(text)
    except RecursionError:
        yield Problem(_TOO_DEEP)
        return
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
        problem = _sniff(stream.read(_HEAD_BYTES))
    if problem:  # binary from the start: one skip line, not one per line
        yield problem
        return
    with _open_binary(path) as stream:
        yield from _parse_json_lines(_decoded_lines(stream))


def _decoded_lines(stream: io.BufferedIOBase) -> Iterator[tuple[int, str | Problem]]:
    for number, raw in enumerate(stream, start=1):
        if b"\x00" in raw:
            yield number, Problem("binary data (a NUL byte)", number)
        else:
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
        except RecursionError:
            yield Problem(_TOO_DEEP, number)
            continue
        except json.JSONDecodeError as exc:
            yield Problem(f"invalid JSON: {exc.msg} (column {exc.colno})", number)
            continue
        yield parse_record(value, line=number)
    if not seen_any:
        yield Problem("empty file")
