"""The seam between search and the engine that holds the vectors and keywords.

The SQLite store (:mod:`qa.index.store`) is the source of truth for articles, passages and
their vectors; a search backend is a searchable projection of one committed generation of it.
The indexer writes the store, then hands each new generation to the backend's
:meth:`SearchBackend.publish`, which adds what the generation added and deletes what it
deleted (a backend reads the difference from the store, so publishing again after a crash
converges). Searching goes through a :class:`SearchView`: one generation, fixed for as long as
a caller holds it, so that one question's dense hits, keyword hits and passage rows agree even
while a writer commits the next generation.

Today's engine is :class:`qa.search.local.LocalBackend` (FAISS + bm25s files per generation
beside the store). Another engine (a search cluster) implements these two protocols; ingest,
the readers, answering and the UI do not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from qa.types import Passage

if TYPE_CHECKING:
    from qa.index.store import Store

__all__ = ["Filters", "PassageRecord", "SearchBackend", "SearchView"]


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to articles by date (ISO, inclusive) and source substring.

    ``since`` and ``until`` leave undated articles out; ``as_of`` and ``dated_since`` (the
    question's time scope, :mod:`qa.search.when`) leave out only dated articles outside them.
    """

    since: str = ""
    until: str = ""
    source: str = ""
    as_of: str = ""
    dated_since: str = ""

    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.since or self.until or self.source or self.as_of or self.dated_since)


@dataclass(frozen=True)
class PassageRecord:
    """A passage with its article's metadata, as search returns it."""

    passage: Passage
    date: str
    url: str
    source: str


@runtime_checkable
class SearchView(Protocol):
    """One generation of the index, searchable. Documents are numbered within the view."""

    @property
    def generation(self) -> int:
        """The generation this view searches."""
        ...

    @property
    def size(self) -> int:
        """Searchable passages."""
        ...

    def dense(
        self, vector: npt.NDArray[np.float32], k: int, filters: Filters | None
    ) -> dict[int, float]:
        """Top-``k`` documents by inner product with ``vector`` (shape (1, dim)), filtered."""
        ...

    def keyword(self, query: str, k: int, filters: Filters | None) -> dict[int, float]:
        """Top-``k`` documents by BM25 score for ``query`` (only scores above 0), filtered."""
        ...

    def doc_freq(self, term: str) -> int:
        """Passages holding ``term`` (after the keyword index's stemming); 0 when unknown."""
        ...

    def records(self, docs: Sequence[int]) -> dict[int, PassageRecord]:
        """The passages of document numbers ``docs`` (missing ones left out)."""
        ...

    def cluster(self, article_id: str) -> str | None:
        """The near-duplicate cluster of an article with copies in the index, else None."""
        ...

    def copies(self, article_id: str, filters: Filters | None) -> dict[str, list[str]]:
        """Passage texts of the other articles in ``article_id``'s near-duplicate cluster
        that ``filters`` allow, by article id ({} when it has no copies)."""
        ...

    def urls(self, article_ids: Sequence[str]) -> dict[str, list[str]]:
        """Every URL known for each article (its own first)."""
        ...


@runtime_checkable
class SearchBackend(Protocol):
    """An engine holding the index's vectors and keywords."""

    def check_model(self, name: str, dim: int) -> None:
        """Refuse to search with another embedding model than the index was built with.

        Raises:
            IndexNotFound: The index folder holds no index.
            IndexMismatch: It was built with another model or dimension.
        """
        ...

    def view(self) -> SearchView:
        """The current generation (reloaded when a newer one was committed)."""
        ...

    def publish(self, store: Store, gen: int) -> None:
        """Make generation ``gen`` of ``store`` searchable (before the store commits it)."""
        ...

    def close(self) -> None:
        """Release files and connections; a later :meth:`view` opens them again."""
        ...
