"""The default search backend: FAISS + BM25 files per generation beside the SQLite store.

Each committed generation has a folder of search files (a full build or a delta over a base,
see :mod:`qa.index.generation`). A :class:`LocalView` holds one of them loaded, with the date,
source and article id of every document number for filtering; a newer generation is loaded
when one is committed, reusing the base when only a delta changed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa.errors import CorruptIndex
from qa.index.build import build_generation
from qa.index.folder import check_model, open_store, read_head
from qa.index.generation import Generation, gen_dir, load_generation
from qa.index.headlines import article_meta, shared, title_keys
from qa.index.neardup import NearDupIndex
from qa.index.store import Store
from qa.search.backend import Filters, PassageRecord
from qa.search.uri import EMBEDDED, BackendURI, check_published
from qa.text import printable
from qa.types import Passage

_META = ("date", "url", "source")

__all__ = [
    "LocalBackend",
    "LocalView",
    "cluster_copies",
    "date_key",
    "first_passages",
    "store_records",
]


def date_key(iso: str) -> int:
    """``YYYYMMDD`` as an int for comparisons; 0 for an undated article."""
    digits = iso.replace("-", "")[:8]
    return int(digits) if digits.isdigit() and len(digits) == 8 else 0


def store_records(store: Store, rowids: dict[int, int]) -> dict[int, PassageRecord]:
    """Passage rows by store rowid, keyed by their document numbers (``rowids``: rowid -> doc).

    An index written before ingest cleaned control characters may hold terminal escapes: they
    are made visible here, for every output (one character for one, so that offsets hold).
    """
    out: dict[int, PassageRecord] = {}
    for rowid, r in store.passages_by_rowid(list(rowids)).items():
        passage = Passage(
            id=r["id"],
            article_id=r["article_id"],
            paragraph=r["paragraph"],
            start=r["start"],
            end=r["end"],
            text=printable(r["text"]),
            title=printable(r["title"], single_line=True),
        )
        date, url, source = (printable(r[k], single_line=True) for k in _META)
        out[rowids[rowid]] = PassageRecord(passage, date, url, source)
    return out


@dataclass
class LocalView:
    """One loaded generation and the metadata of its document numbers."""

    store: Store
    gen: Generation
    dates: npt.NDArray[np.int64]
    sources: list[str]
    article_ids: list[str]
    clusters: dict[str, str]
    head_articles: list[str] = field(default_factory=list)
    head_dates: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    head_sources: list[str] = field(default_factory=list)
    head_shared: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    head_keys: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def generation(self) -> int:
        """The generation this view searches."""
        return self.gen.gen

    @property
    def size(self) -> int:
        """Searchable passages."""
        return self.gen.passages

    def mask(self, f: Filters | None) -> npt.NDArray[np.bool_] | None:
        """Document numbers allowed by ``f`` (None: all)."""
        return _mask(self.dates, self.sources, f)

    def dense(
        self, vector: npt.NDArray[np.float32], k: int, filters: Filters | None
    ) -> dict[int, float]:
        """Top-``k`` documents by inner product, among those the filters allow."""
        mask = self.mask(filters)
        allowed = None if mask is None else np.flatnonzero(mask).astype(np.int64)
        if allowed is not None and not len(allowed):
            return {}
        # Filtered search per index type (flat, IVF, HNSW) keeps recall: see qa.index.dense.
        return dict(self.gen.dense_search(vector, k, allowed))

    def keyword(self, query: str, k: int, filters: Filters | None) -> dict[int, float]:
        """Top-``k`` documents by BM25 score above 0, among those the filters allow."""
        scores = self.gen.keyword_scores(query)
        mask = self.mask(filters)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        if k <= 0:
            return {}
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        return {int(i): float(scores[i]) for i in top if scores[i] > 0}

    def headlines(
        self, vector: npt.NDArray[np.float32], k: int, filters: Filters | None
    ) -> dict[str, float]:
        """The ``k`` articles whose headlines are nearest ``vector``, by article id, filtered
        as passages are; {} for a generation written without headlines.

        Only an article's own headline is searched: a title other articles share too (the
        paragraphs of one encyclopedia article, a site's generic video title) says which
        articles are about a subject, not which one answers, and their passages carry it
        already (passages are embedded under their title).
        """
        if not self.gen.heads:
            return {}
        mask = _mask(self.head_dates, self.head_sources, filters)
        if self.head_shared.any():
            mask = ~self.head_shared if mask is None else mask & ~self.head_shared
        allowed = None if mask is None else np.flatnonzero(mask).astype(np.int64)
        if allowed is not None and not len(allowed):
            return {}
        found = self.gen.headline_search(vector, k, allowed)
        return {self.head_articles[d]: s for d, s in found if self.head_articles[d]}

    def lead(self, article_ids: Sequence[str]) -> dict[str, int]:
        """The document number of each article's first searchable passage: its lowest rowid
        visible at this generation (the store's index by article), found among the
        generation's documents. Nothing is built per view: a few index lookups a question."""
        rowids = first_passages(self.store, article_ids, self.generation)
        docs = self.gen.docs_of(np.asarray(list(rowids.values()), dtype=np.int64))
        return {a: int(d) for a, d in zip(rowids, docs, strict=True) if d >= 0}

    def doc_freq(self, term: str) -> int:
        """Passages where ``term`` scores above 0 in BM25."""
        return int(np.count_nonzero(self.gen.keyword_scores(term)))

    def records(self, docs: Sequence[int]) -> dict[int, PassageRecord]:
        """Passage rows of document numbers, joined with their article's metadata."""
        return store_records(self.store, {int(self.gen.ids[d]): d for d in docs})

    def cluster(self, article_id: str) -> str | None:
        """Near-duplicate cluster of the article, when it has copies."""
        return self.clusters.get(article_id)

    def copies(self, article_id: str, filters: Filters | None) -> dict[str, list[str]]:
        """Passage texts of the article's near-duplicate copies that ``filters`` allow."""
        return cluster_copies(self.store, self.clusters, self.generation, article_id, filters)

    def urls(self, article_ids: Sequence[str]) -> dict[str, list[str]]:
        """Every URL known for each article (its own first)."""
        urls = self.store.urls(article_ids)
        return {a: [printable(u, single_line=True) for u in us] for a, us in urls.items()}


class LocalBackend:
    """FAISS + BM25 generation files in an index folder.

    Args:
        index_dir: The index folder.
    """

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._store: Store | None = None
        self._view: LocalView | None = None
        self._lock = threading.Lock()

    def check_model(self, name: str, dim: int) -> None:
        """Raise IndexMismatch when the index was built with another model, or its current
        generation was published to another backend."""
        with self._lock:
            store = self._open()
            check_model(store, name, dim)
            check_published(store, BackendURI(EMBEDDED))

    def publish(self, store: Store, gen: int) -> None:
        """Write the search files of generation ``gen`` (a delta or a full build)."""
        build_generation(store, self.index_dir, gen, int(store.get_meta("embed_dim", "0") or 0))

    def view(self) -> LocalView:
        """The current generation, reloaded when a newer one (or a new store) was committed."""
        with self._lock:
            store = self._open()
            if read_head(self.index_dir) != store.path.name:  # `index --rebuild` replaced it
                store.close()
                self._store = None
                store = self._open()
            view = self._view
            if view is None or view.store is not store or view.generation != store.current_gen:
                self._view = self._load_retrying(store)
            assert self._view is not None
            return self._view

    def close(self) -> None:
        """Close the store (a later search opens it again)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store, self._view = None, None

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(self.index_dir, readonly=True)
        return self._store

    def _load_retrying(self, store: Store, attempts: int = 3) -> LocalView:
        """Load the current generation; retry when a writer replaced it while we loaded."""
        for attempt in range(attempts):
            gen = store.current_gen
            try:
                return self._load(store)
            except CorruptIndex:
                # Only a generation that is no longer current may vanish under us.
                if attempt == attempts - 1 or store.current_gen == gen:
                    raise
        raise AssertionError("unreachable")

    def _load(self, store: Store) -> LocalView:
        gen_no = store.current_gen
        old = self._view if self._view is not None and self._view.store is store else None
        generation = load_generation(
            gen_dir(self.index_dir, store.path.name, gen_no), old.gen.base if old else None
        )
        if old is not None and old.gen.base is generation.base:
            # Same base (a delta was committed): only the delta's rows are read again.
            nb = generation.base.size
            dates, sources, aids = old.dates[:nb], old.sources[:nb], old.article_ids[:nb]
        else:
            dates, sources, aids = _doc_meta(store, generation.base.ids, generation.base_gen)
        if generation.delta is not None:
            d_dates, d_sources, d_aids = _doc_meta(
                store, generation.delta.ids, gen_no, since=generation.base_gen
            )
            dates = np.concatenate([dates, d_dates])
            sources, aids = sources + d_sources, aids + d_aids
        clusters = NearDupIndex(store.db).clusters(gen_no)
        view = LocalView(store, generation, dates, sources, aids, clusters)
        if generation.heads:
            _head_meta(view, old)
        return view


def cluster_copies(
    store: Store, clusters: dict[str, str], gen: int, article_id: str, filters: Filters | None
) -> dict[str, list[str]]:
    """Passage texts of the other articles in ``article_id``'s cluster, by article id, for
    those passages ``filters`` allow (a copy published after the as-of day is left out)."""
    cluster = clusters.get(article_id)
    if cluster is None:
        return {}
    members = [a for a, c in clusters.items() if c == cluster and a != article_id]
    q = (
        "SELECT p.article_id AS article_id, p.text AS text, a.date AS date, a.source AS source "
        "FROM passages p JOIN articles a ON a.id = p.article_id "
        f"WHERE p.article_id IN ({','.join('?' * len(members))}) AND p.added_gen <= ? "
        "AND (p.deleted_gen IS NULL OR p.deleted_gen > ?)"
    )
    rows = list(store.db.execute(q, [*members, gen, gen])) if members else []
    dates = np.asarray([date_key(r["date"] or "") for r in rows], dtype=np.int64)
    mask = _mask(dates, [r["source"] or "" for r in rows], filters)
    out: dict[str, list[str]] = {}
    for i, r in enumerate(rows):
        if mask is None or mask[i]:
            out.setdefault(str(r["article_id"]), []).append(str(r["text"]))
    return out


def _head_meta(view: LocalView, old: LocalView | None) -> None:
    """The headline documents' articles, dates, sources and titles: the base's kept from
    ``old`` when only a delta changed (as passages' are), only the delta's read."""
    generation = view.gen
    ids, nb = generation.head_ids, generation.heads[0].size if generation.heads else 0
    if old is not None and old.gen.base is generation.base and len(old.head_keys) >= nb:
        articles, sources = old.head_articles[:nb], old.head_sources[:nb]
        dates, keys, fresh = old.head_dates[:nb], old.head_keys[:nb], ids[nb:]
    else:
        articles, sources, fresh = [], [], ids
        dates, keys = np.zeros(0, np.int64), np.zeros(0, np.int64)
    new_articles, new_dates, new_sources, hashes = article_meta(view.store, fresh)
    view.head_articles, view.head_sources = articles + new_articles, sources + new_sources
    view.head_dates = np.concatenate(
        [dates, np.asarray([date_key(d) for d in new_dates], np.int64)]
    )
    view.head_keys = np.concatenate([keys, title_keys(hashes)])
    alive = np.ones(len(ids), dtype=bool)
    alive[generation.head_deleted] = False
    view.head_shared = shared(view.head_keys, alive)


def first_passages(store: Store, article_ids: Sequence[str], gen: int) -> dict[str, int]:
    """The lowest passage rowid of each article visible at ``gen`` (its first passage)."""
    out: dict[str, int] = {}
    ids = list(dict.fromkeys(article_ids))
    for lo in range(0, len(ids), 500):
        page = ids[lo : lo + 500]
        q = (
            f"SELECT article_id, MIN(rowid) FROM passages WHERE article_id IN "
            f"({','.join('?' * len(page))}) AND added_gen <= ? "
            "AND (deleted_gen IS NULL OR deleted_gen > ?) GROUP BY article_id"
        )
        out.update((str(r[0]), int(r[1])) for r in store.db.execute(q, [*page, gen, gen]))
    return out


def _mask(
    dates: npt.NDArray[np.int64], sources: list[str], f: Filters | None
) -> npt.NDArray[np.bool_] | None:
    """Documents (of the given dates and sources) allowed by ``f`` (None: all)."""
    if f is None or not f.active():
        return None
    mask = np.ones(len(dates), dtype=bool)
    if f.since:
        mask &= dates >= date_key(f.since)
    if f.until:
        mask &= (dates <= date_key(f.until)) & (dates > 0)
    if f.as_of:
        mask &= dates <= date_key(f.as_of)  # undated (0) kept
    if f.dated_since:
        mask &= (dates >= date_key(f.dated_since)) | (dates == 0)
    if f.source:
        needle = f.source.lower()
        mask &= np.asarray([needle in s.lower() for s in sources], dtype=bool)
    # Every question has an as-of date; when it excludes nothing, search unfiltered.
    return None if mask.all() else mask


def _doc_meta(
    store: Store, ids: npt.NDArray[np.int64], gen: int, since: int = -1
) -> tuple[npt.NDArray[np.int64], list[str], list[str]]:
    """(date keys, sources, article ids) of the passages ``ids``, stored after ``since``.

    A delta passes its base's generation as ``since``: the generation index then reads only
    the delta's rows instead of scanning every passage.
    """
    q = (
        "SELECT p.rowid, a.date, a.source, a.id FROM passages p JOIN articles a "
        "ON a.id = p.article_id WHERE p.added_gen > :since AND p.added_gen <= :gen"
    )
    meta = {r[0]: (r[1], r[2], r[3]) for r in store.db.execute(q, {"gen": gen, "since": since})}
    rows = [meta.get(int(i), ("", "", "")) for i in ids]
    dates = np.asarray([date_key(r[0]) for r in rows], dtype=np.int64)
    return dates, [r[1] for r in rows], [r[2] for r in rows]
