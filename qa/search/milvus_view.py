"""One generation of a Milvus collection, searchable (the :class:`SearchView` of Milvus).

Every row of the collection mirrors one passage row of the store, with the generation it was
added in and the one it was removed in (``deleted_gen``, 0 while live). A view of generation
``g`` searches only the rows visible at ``g``, so that a writer publishing ``g + 1`` (rows added
with ``added_gen = g + 1``, removed ones marked ``deleted_gen = g + 1``) changes nothing a
reader of ``g`` sees. That visibility and every filter (``--since``, ``--until``, ``--source``,
the as-of day, the time words' lower bound) are one boolean expression inside each search
request, never applied to the hits afterwards, so k filtered hits still come back.

Document numbers are the store's passage rowids; passage text, titles, URLs and clusters are
read from the store, as the embedded backend does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from qa.errors import BackendError
from qa.index.keywords import tokenize
from qa.search.backend import Filters, PassageRecord
from qa.search.local import cluster_copies, date_key, first_passages, store_records

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from qa.index.store import Store

_NOT_WORD = re.compile(r"[^a-z0-9_]")

__all__ = [
    "MilvusView",
    "analysed",
    "batches",
    "encode_terms",
    "query_rows",
    "shared_expr",
    "source_key",
    "visible_expr",
]


def analysed(text: str) -> str:
    """Text as the keyword route indexes it: newsqa's own stems, space-separated.

    Milvus's BM25 function then only splits on spaces, so both backends score the same
    terms: Milvus Lite's analyzer has no stemmer, and plain Snowball stems "boycotted" and
    "boycotts" apart (:mod:`qa.index.keywords`). An apostrophe inside a token ("don't")
    becomes ``_`` so that Milvus's word tokenizer keeps it one token.
    """
    return encode_terms(tokenize(text))


def encode_terms(tokens: Iterable[str]) -> str:
    """Stems (as the store keeps them) as the ``terms`` field holds them."""
    return " ".join(_NOT_WORD.sub("_", t) for t in tokens)


def source_key(source: str) -> int:
    """A source as a 60-bit integer: filters compare numbers, never quote strangers' text."""
    return int(hashlib.sha256(source.encode("utf-8")).hexdigest()[:15], 16)


def visible_expr(gen: int) -> str:
    """Rows visible at generation ``gen``."""
    return f"added_gen <= {int(gen)} and (deleted_gen == 0 or deleted_gen > {int(gen)})"


def shared_expr(gen: int) -> str:
    """Headline rows whose title no other headline visible at ``gen`` holds (the headline
    collection's ``shared_*`` fields, :mod:`qa.search.milvus_heads`)."""
    g = int(gen)
    return f"((shared_gen <= {g} and shared_now == 0) or (shared_gen > {g} and shared_before == 0))"


def batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``rows`` in lists of ``size`` (the last one shorter), for inserts of bounded size."""
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def query_rows(
    client: MilvusClient, name: str, expr: str, fields: list[str]
) -> Iterator[dict[str, Any]]:
    """Every row of collection ``name`` matching ``expr`` (its ``fields``), a page at a time."""
    it = client.query_iterator(name, batch_size=1000, filter=expr, output_fields=fields)
    try:
        while True:
            page = it.next()
            if not page:
                return
            yield from page
    finally:
        it.close()


@contextmanager
def milvus_calls(where: str) -> Iterator[None]:
    """Turn pymilvus's errors into one :class:`BackendError` line naming the backend."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as exc:
        message = getattr(exc, "message", "") or str(exc)
        raise BackendError(
            f"Milvus at {where} failed: {message}; check that it is running and reachable, "
            "or use --backend embedded"
        ) from exc


@dataclass
class MilvusView:
    """Generation ``gen`` of the collection ``collection``.

    Attributes:
        store: The index's store (read-only), for passage rows, URLs and clusters.
        client: The connection.
        collection: The collection's name.
        gen: The generation searched.
        where: The backend's URI, for error messages.
        search_params: Dense search parameters of the collection's vector index.
        clusters: Near-duplicate clusters of the generation.
        size: Passages visible at ``gen``.
        heads: The headline collection (:mod:`qa.search.milvus_heads`); "" when the
            collection was published before headlines were kept (no headline route).
        head_params: Dense search parameters of the headline collection's vector index.
    """

    store: Store
    client: MilvusClient
    collection: str
    gen: int
    where: str
    search_params: dict[str, Any]
    clusters: dict[str, str]
    size: int
    heads: str = ""
    head_params: dict[str, Any] = field(default_factory=dict)
    _sources: dict[str, int] | None = field(default=None, repr=False)

    @property
    def generation(self) -> int:
        """The generation this view searches."""
        return self.gen

    def expr(self, f: Filters | None) -> str | None:
        """The boolean expression of ``f`` at this generation; None when nothing can match."""
        parts = [visible_expr(self.gen)]
        if f is not None:
            if f.since:
                parts.append(f"day >= {date_key(f.since)}")
            if f.until:
                parts.append(f"(day > 0 and day <= {date_key(f.until)})")
            if f.as_of:
                parts.append(f"day <= {date_key(f.as_of)}")  # undated (0) kept
            if f.dated_since:
                parts.append(f"(day == 0 or day >= {date_key(f.dated_since)})")
            if f.source:
                keys = self._source_keys(f.source)
                if not keys:
                    return None
                parts.append(f"source_key in [{', '.join(str(k) for k in keys)}]")
        return " and ".join(parts)

    def _source_keys(self, needle: str) -> list[int]:
        """Keys of the sources that hold ``needle`` (case-insensitive, as the embedded side)."""
        if self._sources is None:
            rows = self.store.db.execute("SELECT DISTINCT source FROM articles")
            self._sources = {str(r[0]): source_key(str(r[0])) for r in rows}
        low = needle.lower()
        return sorted({k for s, k in self._sources.items() if low in s.lower()})

    def dense(
        self, vector: npt.NDArray[np.float32], k: int, filters: Filters | None
    ) -> dict[int, float]:
        """Top-``k`` documents by inner product, among those the filters allow."""
        expr = self.expr(filters)
        if expr is None or k <= 0:
            return {}
        hits = self._nearest(self.collection, vector, k, expr, "rowid", self.search_params)
        return {int(h["entity"]["rowid"]): float(h["distance"]) for h in hits}

    def _nearest(
        self,
        collection: str,
        vector: npt.NDArray[np.float32],
        k: int,
        expr: str,
        field: str,
        params: dict[str, Any],
    ) -> list[Any]:
        """The ``k`` rows of ``collection`` nearest ``vector`` (field ``vec``) matching ``expr``."""
        with milvus_calls(self.where):
            res = self.client.search(
                collection,
                data=[np.asarray(vector, dtype=np.float32)[0].tolist()],
                anns_field="vec",
                limit=k,
                filter=expr,
                output_fields=[field],
                search_params=params,
            )
        return list(res[0])

    def keyword(self, query: str, k: int, filters: Filters | None) -> dict[int, float]:
        """Top-``k`` documents by BM25 score above 0, among those the filters allow."""
        terms = analysed(query)
        expr = self.expr(filters)
        if not terms or expr is None or k <= 0:
            return {}
        with milvus_calls(self.where):
            res = self.client.search(
                self.collection,
                data=[terms],
                anns_field="sparse",
                limit=k,
                filter=expr,
                output_fields=["rowid"],
                search_params={"metric_type": "BM25"},
            )
        # Milvus Lite returns BM25 scores negated (as distances); a server returns them as
        # they are. A BM25 score is never negative, so its magnitude is the score.
        scores = {int(h["entity"]["rowid"]): abs(float(h["distance"])) for h in res[0]}
        return {d: s for d, s in scores.items() if s > 0}

    def hybrid(
        self,
        vector: npt.NDArray[np.float32],
        query: str,
        k: int,
        filters: Filters | None,
        ranker: str,
        bm25_weight: float = 0.25,
        rrf_k: int = 60,
    ) -> dict[int, float]:
        """Top-``k`` documents fused by Milvus's own ranker (``rrf`` or ``weighted``).

        The filter goes into each request's ``expr``: pymilvus 3.0.2 ignored a top-level
        ``filter`` of ``hybrid_search`` without a word.
        """
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

        expr = self.expr(filters)
        if expr is None or k <= 0:
            return {}
        terms = analysed(query)
        dense = AnnSearchRequest(
            data=[np.asarray(vector, dtype=np.float32)[0].tolist()],
            anns_field="vec",
            param=self.search_params,
            limit=k,
            expr=expr,
        )
        requests = [dense]
        if terms:
            sparse = AnnSearchRequest(
                data=[terms], anns_field="sparse", param={"metric_type": "BM25"}, limit=k, expr=expr
            )
            requests.append(sparse)
        weights = (1 - bm25_weight, bm25_weight)[: len(requests)]
        rank = RRFRanker(rrf_k) if ranker == "rrf" else WeightedRanker(*weights)
        with milvus_calls(self.where):
            res = self.client.hybrid_search(
                self.collection, requests, rank, limit=k, output_fields=["rowid"]
            )
        return {int(h["entity"]["rowid"]): float(h["distance"]) for h in res[0]}

    def headlines(
        self, vector: npt.NDArray[np.float32], k: int, filters: Filters | None
    ) -> dict[str, float]:
        """The ``k`` articles whose headlines are nearest ``vector``, by article id, filtered
        as passages are, inside the request; a title other articles share too is not searched
        (as :meth:`qa.search.local.LocalView.headlines`)."""
        expr = self.expr(filters)
        if not self.heads or expr is None or k <= 0:
            return {}
        unshared = f"{expr} and {shared_expr(self.gen)}"
        hits = self._nearest(self.heads, vector, k, unshared, "id", self.head_params)
        return {str(h["id"]): float(h["distance"]) for h in hits}

    def lead(self, article_ids: Sequence[str]) -> dict[str, int]:
        """The document number (store rowid) of each article's first passage visible here."""
        return first_passages(self.store, article_ids, self.gen)

    def doc_freq(self, term: str) -> int:
        """Passages visible at this generation that hold a stem of ``term``."""
        terms = analysed(term)
        if not terms:
            return 0
        expr = f"{visible_expr(self.gen)} and text_match(terms, '{terms}')"
        with milvus_calls(self.where):
            res = self.client.query(self.collection, filter=expr, output_fields=["count(*)"])
        return int(res[0]["count(*)"]) if res else 0

    def records(self, docs: Sequence[int]) -> dict[int, PassageRecord]:
        """Passage rows of document numbers (store rowids), with their article's metadata."""
        return store_records(self.store, {int(d): int(d) for d in docs})

    def cluster(self, article_id: str) -> str | None:
        """Near-duplicate cluster of the article, when it has copies."""
        return self.clusters.get(article_id)

    def copies(self, article_id: str, filters: Filters | None) -> dict[str, list[str]]:
        """Passage texts of the article's near-duplicate copies that ``filters`` allow."""
        return cluster_copies(self.store, self.clusters, self.gen, article_id, filters)

    def urls(self, article_ids: Sequence[str]) -> dict[str, list[str]]:
        """Every URL known for each article (its own first)."""
        from qa.text import printable

        urls = self.store.urls(article_ids)
        return {a: [printable(u, single_line=True) for u in us] for a, us in urls.items()}
