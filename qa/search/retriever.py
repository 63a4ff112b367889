"""Hybrid retrieval: dense (FAISS) + keyword (BM25) fused, with date/source filters.

Fusion (measured in bench/retrieval.py, table in docs/benchmarks.md): each side's top candidates are
scored on a common scale, the BM25 score divided by the query's best BM25 score and the cosine
taken as is, and combined as ``w * bm25_norm + (1 - w) * cosine``; reciprocal rank fusion is
kept as an option for comparison.

Hits are collapsed before the top k are taken: identical passages of different articles into
one hit (``Hit.duplicates``), and the matching passages of near-duplicate copies of one story
(same cluster in :mod:`qa.index.neardup`) into the best-ranked one (``Hit.copies``), so that k
distinct passages come back and each cites every URL that carries it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa.errors import CorruptIndex
from qa.index.embed import EmbedderLike
from qa.index.generation import Generation, gen_dir, load_generation
from qa.index.indexer import check_model, embedder_for, open_store
from qa.index.neardup import PASSAGE_OVERLAP, NearDupIndex, overlap
from qa.index.store import Store
from qa.types import Hit, Passage, content_id

FUSIONS = ("linear", "rrf", "dense", "bm25")


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to articles by date (ISO, inclusive) and source substring."""

    since: str = ""
    until: str = ""
    source: str = ""

    def active(self) -> bool:
        return bool(self.since or self.until or self.source)


@dataclass
class _Snapshot:
    store_name: str
    gen: Generation
    dates: npt.NDArray[np.int64]
    sources: list[str]
    article_ids: list[str]
    clusters: dict[str, str] = field(default_factory=dict)


@dataclass
class _Chosen:
    """A passage kept as a hit while collapsing, with what was folded into it."""

    doc: int
    score: float
    row: sqlite3.Row
    duplicates: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)


def _date_key(iso: str) -> int:
    digits = iso.replace("-", "")[:8]
    return int(digits) if digits.isdigit() and len(digits) == 8 else 0


class Retriever:
    """Finds the passages most likely to answer a question.

    Args:
        index_dir: Index folder.
        embedder: Query embedder (default: the model the index was built with).
        fusion: ``linear`` (default), ``rrf``, ``dense`` or ``bm25``.
        bm25_weight: Weight of the normalised BM25 score in linear fusion.
        candidates: Candidates taken from each side before fusion.
        rrf_k: Constant of reciprocal rank fusion.
    """

    def __init__(
        self,
        index_dir: Path,
        embedder: EmbedderLike | None = None,
        fusion: str = "linear",
        bm25_weight: float = 0.25,
        candidates: int = 100,
        rrf_k: int = 60,
    ) -> None:
        self.index_dir = index_dir
        self.embedder: EmbedderLike = embedder or embedder_for(index_dir)
        self.fusion = fusion
        self.bm25_weight = bm25_weight
        self.candidates = candidates
        self.rrf_k = rrf_k
        self._store: Store | None = None
        self._snap: _Snapshot | None = None
        self._lock = threading.Lock()
        self.timings: dict[str, float] = {}

    # -- loading ----------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        self._refresh()
        assert self._store is not None
        return self._store

    def _refresh(self) -> _Snapshot:
        """Load the index, or reload it when a newer generation was committed."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.index_dir, readonly=True)
                check_model(self._store, self.embedder.name, self.embedder.dim)
            gen = self._store.current_gen
            if self._snap is None or self._snap.gen.gen != gen or not self._same_store():
                self._snap = self._load_snapshot_retrying()
            return self._snap

    def _load_snapshot_retrying(self, attempts: int = 3) -> _Snapshot:
        """Load the current generation; retry when a writer replaced it while we loaded."""
        assert self._store is not None
        for attempt in range(attempts):
            gen = self._store.current_gen
            try:
                return self._load_snapshot()
            except CorruptIndex:
                # Only a generation that is no longer current may vanish under us.
                if attempt == attempts - 1 or self._store.current_gen == gen:
                    raise
        raise AssertionError("unreachable")

    def _same_store(self) -> bool:
        from qa.index.indexer import read_head

        assert self._store is not None
        if read_head(self.index_dir) == self._store.path.name:
            return True
        self._store.close()
        self._store = open_store(self.index_dir, readonly=True)
        return False

    def _load_snapshot(self) -> _Snapshot:
        assert self._store is not None
        store = self._store
        gen_no = store.current_gen
        old = (
            self._snap
            if self._snap is not None and self._snap.store_name == store.path.name
            else None
        )
        generation = load_generation(
            gen_dir(self.index_dir, store.path.name, gen_no), old.gen.base if old else None
        )
        if old is not None and old.gen.base is generation.base:
            # Same base (a delta was committed): only the delta's rows are read again.
            nb = generation.base.size
            base_meta = (old.dates[:nb], old.sources[:nb], old.article_ids[:nb])
        else:
            base_meta = self._doc_meta(store, generation.base.ids, generation.base_gen)
        dates, sources, aids = base_meta
        if generation.delta is not None:
            d_dates, d_sources, d_aids = self._doc_meta(
                store, generation.delta.ids, gen_no, since=generation.base_gen
            )
            dates = np.concatenate([dates, d_dates])
            sources, aids = sources + d_sources, aids + d_aids
        return _Snapshot(
            store.path.name,
            generation,
            dates,
            sources,
            aids,
            NearDupIndex(store.db).clusters(gen_no),
        )

    @staticmethod
    def _doc_meta(
        store: Store, ids: npt.NDArray[np.int64], gen: int, since: int = -1
    ) -> tuple[npt.NDArray[np.int64], list[str], list[str]]:
        """(date keys, sources, article ids) of the passages ``ids``, stored after ``since``.

        A delta passes its base's generation as ``since``: the generation index then reads
        only the delta's rows instead of scanning every passage.
        """
        q = (
            "SELECT p.rowid, a.date, a.source, a.id FROM passages p JOIN articles a "
            "ON a.id = p.article_id WHERE p.added_gen > :since AND p.added_gen <= :gen"
        )
        meta = {r[0]: (r[1], r[2], r[3]) for r in store.db.execute(q, {"gen": gen, "since": since})}
        rows = [meta.get(int(i), ("", "", "")) for i in ids]
        dates = np.asarray([_date_key(r[0]) for r in rows], dtype=np.int64)
        return dates, [r[1] for r in rows], [r[2] for r in rows]

    def _loaded_store(self) -> Store:
        """The store ``search`` just refreshed (no second generation check per query)."""
        assert self._store is not None
        return self._store

    @property
    def generation(self) -> int:
        """The generation searched now."""
        return self._refresh().gen.gen

    # -- search -----------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        """Top-k passages for a question.

        Args:
            query: The question (or rewritten query).
            k: Number of hits.
            filters: Optional date/source filters.

        Returns:
            Hits best first; identical passages from duplicate articles, and the same
            passage of near-duplicate copies, collapsed into one.
        """
        snap = self._refresh()
        t0 = time.perf_counter()
        mask = self._mask(snap, filters) if filters and filters.active() else None
        n = min(self.candidates, snap.gen.passages)
        if n == 0:
            return []
        dense = self._dense(snap, query, n, mask) if self.fusion != "bm25" else {}
        t1 = time.perf_counter()
        sparse = self._sparse(snap, query, n, mask) if self.fusion != "dense" else {}
        t2 = time.perf_counter()
        fused = self._fuse(dense, sparse)
        hits = self._hits(snap, fused, dense, sparse, k)
        self.timings = {
            "embed_dense_ms": (t1 - t0) * 1000,
            "bm25_ms": (t2 - t1) * 1000,
            "fuse_ms": (time.perf_counter() - t2) * 1000,
        }
        return hits

    def _mask(self, snap: _Snapshot, f: Filters) -> npt.NDArray[np.bool_]:
        mask = np.ones(snap.gen.size, dtype=bool)
        if f.since:
            mask &= snap.dates >= _date_key(f.since)
        if f.until:
            mask &= (snap.dates <= _date_key(f.until)) & (snap.dates > 0)
        if f.source:
            needle = f.source.lower()
            mask &= np.asarray([needle in s.lower() for s in snap.sources], dtype=bool)
        return mask

    def _dense(
        self, snap: _Snapshot, query: str, n: int, mask: npt.NDArray[np.bool_] | None
    ) -> dict[int, float]:
        qv = self.embedder.embed([query])
        allowed = None if mask is None else np.flatnonzero(mask).astype(np.int64)
        if allowed is not None and not len(allowed):
            return {}
        # Filtered search per index type (flat, IVF, HNSW) keeps recall: see qa.index.dense.
        return dict(snap.gen.dense_search(qv, n, allowed))

    def _sparse(
        self, snap: _Snapshot, query: str, n: int, mask: npt.NDArray[np.bool_] | None
    ) -> dict[int, float]:
        scores = snap.gen.keyword_scores(query)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        return {int(i): float(scores[i]) for i in top if scores[i] > 0}

    def _fuse(self, dense: dict[int, float], sparse: dict[int, float]) -> list[tuple[int, float]]:
        if self.fusion == "rrf":
            fused: dict[int, float] = {}
            for side in (dense, sparse):
                for rank, doc in enumerate(sorted(side, key=lambda d: -side[d])):
                    fused[doc] = fused.get(doc, 0.0) + 1.0 / (self.rrf_k + rank + 1)
        else:
            top = max(sparse.values(), default=0.0) or 1.0
            w = {"dense": 0.0, "bm25": 1.0}.get(self.fusion, self.bm25_weight)
            floor = min(dense.values(), default=0.0)
            fused = {
                doc: w * sparse.get(doc, 0.0) / top + (1 - w) * dense.get(doc, floor)
                for doc in set(dense) | set(sparse)
            }
        return sorted(fused.items(), key=lambda x: -x[1])

    def _hits(
        self,
        snap: _Snapshot,
        fused: list[tuple[int, float]],
        dense: dict[int, float],
        sparse: dict[int, float],
        k: int,
    ) -> list[Hit]:
        """Turn fused document numbers into Hits, collapsing identical passages and copies."""
        chosen = self._collapse(snap, fused, k)
        hits = [
            self._hit(c, rank, dense.get(c.doc), sparse.get(c.doc)) for rank, c in enumerate(chosen)
        ]
        return self._with_urls(hits)

    def _collapse(self, snap: _Snapshot, fused: list[tuple[int, float]], k: int) -> list[_Chosen]:
        """The first k distinct passages; rows are read a page at a time until k are found."""
        chosen: list[_Chosen] = []
        by_text: dict[str, _Chosen] = {}
        page = max(k * 4, k + 20)
        for start in range(0, len(fused), page):
            part = fused[start : start + page]
            rows = self._loaded_store().passages_by_rowid([int(snap.gen.ids[d]) for d, _ in part])
            for doc, score in part:
                row = rows.get(int(snap.gen.ids[doc]))
                if row is None:
                    continue
                key = content_id(" ".join(str(row["text"]).split()))
                if key in by_text:
                    by_text[key].duplicates.append(str(row["article_id"]))
                    continue
                twin = self._copy_of(snap, row, chosen)
                if twin is not None:
                    twin.copies.append(str(row["article_id"]))
                    continue
                by_text[key] = _Chosen(doc, score, row)
                chosen.append(by_text[key])
                if len(chosen) >= k:
                    return chosen
        return chosen

    @staticmethod
    def _copy_of(snap: _Snapshot, row: sqlite3.Row, chosen: list[_Chosen]) -> _Chosen | None:
        """The kept hit from another copy of the same story that holds the same passage.

        Only passages that overlap are folded: another paragraph of a copy is new evidence and
        stays a hit of its own, as another paragraph of the same article would.
        """
        aid = str(row["article_id"])
        cluster = snap.clusters.get(aid)
        if cluster is None:
            return None
        for c in chosen:
            other = str(c.row["article_id"])
            if (
                other != aid
                and snap.clusters.get(other) == cluster
                and overlap(str(c.row["text"]), str(row["text"])) >= PASSAGE_OVERLAP
            ):
                return c
        return None

    def _with_urls(self, hits: list[Hit]) -> list[Hit]:
        """Attach the other URLs of each hit's article, its duplicates and its copies."""
        ids = {a for h in hits for a in (h.passage.article_id, *h.duplicates, *h.copies)}
        urls = self._loaded_store().urls(sorted(ids))
        out = []
        for h in hits:
            every = [
                u for a in (h.passage.article_id, *h.duplicates, *h.copies) for u in urls.get(a, [])
            ]
            others = tuple(dict.fromkeys(u for u in every if u and u != h.url))
            out.append(replace(h, other_urls=others) if others else h)
        return out

    @staticmethod
    def _hit(c: _Chosen, rank: int, dense: float | None, bm25: float | None) -> Hit:
        r = c.row
        passage = Passage(
            id=r["id"],
            article_id=r["article_id"],
            paragraph=r["paragraph"],
            start=r["start"],
            end=r["end"],
            text=r["text"],
            title=r["title"],
        )
        return Hit(
            passage=passage,
            score=c.score,
            rank=rank,
            title=r["title"],
            date=r["date"],
            url=r["url"],
            source=r["source"],
            dense_score=dense,
            bm25_score=bm25,
            duplicates=tuple(c.duplicates),
            copies=tuple(dict.fromkeys(c.copies)),
        )
