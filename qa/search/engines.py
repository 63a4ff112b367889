"""Opening the search backend an index uses (see :mod:`qa.search.uri` for the URIs)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import QAError
from qa.search.uri import EMBEDDED, BackendURI, parse_backend, published_to

if TYPE_CHECKING:
    from qa.index.summary import IndexSummary
    from qa.search.backend import SearchBackend

__all__ = ["backend_check", "backend_layout", "open_backend", "publisher_for", "resolve"]


def resolve(index_dir: Path, uri: str | BackendURI | None) -> BackendURI:
    """The backend named (a URI), else the one the index was published to, else embedded."""
    if isinstance(uri, BackendURI):
        return uri
    if uri:
        return parse_backend(uri)
    from qa.index.folder import open_store

    try:
        with open_store(index_dir) as store:
            recorded = published_to(store)
    except (QAError, OSError):  # no index yet; a damaged one is reported where it is opened
        return BackendURI(EMBEDDED)
    return parse_backend(recorded)


def open_backend(index_dir: Path, uri: str | BackendURI | None = None) -> SearchBackend:
    """The search backend of ``index_dir`` named by ``uri`` (see :func:`resolve`)."""
    spec = resolve(index_dir, uri)
    if spec.kind == EMBEDDED:
        from qa.search.local import LocalBackend

        return LocalBackend(index_dir)
    from qa.search.milvus import MilvusBackend

    return MilvusBackend(index_dir, spec)


def publisher_for(index_dir: Path, uri: str | BackendURI | None = None) -> SearchBackend | None:
    """What the indexer publishes to: None for the embedded files (its built-in default)."""
    spec = resolve(index_dir, uri)
    return None if spec.kind == EMBEDDED else open_backend(index_dir, spec)


def backend_check(index_dir: Path, uri: str | None) -> list[str]:
    """``newsqa stats --check``: problems of the store and of the backend's copy of it."""
    from qa.index.check import check_index
    from qa.index.database import integrity_problems
    from qa.index.folder import open_store

    spec = resolve(index_dir, uri)
    try:
        with open_store(index_dir) as store:
            published = published_to(store)
            problems = [] if spec.kind == EMBEDDED else integrity_problems(store.db)
    except QAError:
        if spec.kind != EMBEDDED:
            raise
        published = EMBEDDED  # the embedded check reports a damaged store in its own words
    if published != spec.identity:
        return [f"the index is published to {published}, not {spec.identity}"]
    if spec.kind == EMBEDDED:
        return check_index(index_dir)
    from qa.search.milvus import MilvusBackend

    problems = [f"SQLite: {p}" for p in problems]
    backend = MilvusBackend(index_dir, spec)
    try:
        return problems + backend.problems()
    finally:
        backend.close()


def backend_layout(summary: IndexSummary, index_dir: Path, uri: str | None) -> IndexSummary:
    """The summary with the layout of the backend's copy (``newsqa stats``)."""
    spec = resolve(index_dir, uri)
    if spec.kind == EMBEDDED:
        return summary
    from qa.search.milvus import MilvusBackend

    backend = MilvusBackend(index_dir, spec)
    try:
        return replace(summary, layout=backend.describe())
    finally:
        backend.close()
