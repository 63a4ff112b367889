"""The corpus side of an indexing run: which files can be read, their digests, and cheap
estimates for the progress bar.

Only regular files are ever opened: a named pipe would wait for a writer forever (with the
writer lock held), a device may never end, and a link may loop or point nowhere. Each such
file becomes one ``Skipped`` line; the rest of the corpus is indexed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

from qa.ingest.files import FileProblem, Ingestor, Skipped, file_problem, open_regular

__all__ = ["estimate_records", "file_sha", "next_store_number", "readable_files"]


def readable_files(
    ingestor: Ingestor, paths: Sequence[Path], own: Path
) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """The regular files under ``paths`` with their keys (resolved paths), and a skip for
    every other one.

    Named pipes, sockets, devices, broken links and link loops are reported and never
    opened. The index folder ``own`` may sit inside the corpus: its files are left out.

    Raises:
        BadArticle: At the first skip when the ingestor is strict.
    """
    own = own.resolve()
    files, skips = [], []
    for path in ingestor.discover(paths):
        problem = file_problem(path)
        if problem is None:
            try:
                resolved = path.resolve(strict=True)
            except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop (< 3.13)
                problem = f"cannot resolve the path: {exc}"
        if problem is not None:
            skips.append(ingestor.skip(str(path), problem))
        elif own not in resolved.parents:
            files.append((path, str(resolved)))
    return files, skips


def file_sha(path: Path) -> str:
    """sha256 of a regular file's bytes.

    Raises:
        FileProblem: The path is not a regular file (a pipe would block, a device not end).
        OSError: The file cannot be read.
    """
    h = hashlib.sha256()
    with open_regular(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def next_store_number(root: Path, head: str | None) -> int:
    """A store number above every store file in ``root`` and the one HEAD names."""
    names = [p.name for p in root.glob("store-*.sqlite")] + ([head] if head else [])
    found = (re.fullmatch(r"store-([0-9]{1,9})\.sqlite", n) for n in names)
    return max((int(m[1]) for m in found if m), default=0) + 1


def estimate_records(files: Sequence[Path]) -> int:
    """Roughly how many articles the files hold (JSONL lines are counted; cheap)."""
    total = 0
    for f in files:
        name = f.name.lower()
        try:
            total += _count_lines(f, name.endswith(".gz")) if ".jsonl" in name else 1
        except (FileProblem, OSError, EOFError, zlib.error):
            total += 1  # read (and reported) as a bad file later
    return total


def _count_lines(path: Path, gzipped: bool) -> int:
    with open_regular(path) as raw:
        fh: io.BufferedIOBase = gzip.GzipFile(fileobj=raw) if gzipped else raw
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
