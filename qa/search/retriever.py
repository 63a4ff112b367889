"""Hybrid retrieval: dense (FAISS) + keyword (BM25) fused, with date/source filters.

Fusion (measured in bench/retrieval.py, table in docs/benchmarks.md): each side's top candidates are
scored on a common scale, the BM25 score divided by the query's best BM25 score and the cosine
taken as is, and combined as ``w * bm25_norm + (1 - w) * cosine``; reciprocal rank fusion is
kept as an option for comparison.

Hits are collapsed before the top k are taken: identical passages of different articles into
one hit (``Hit.duplicates``), and the matching passages of near-duplicate copies of one story
(same cluster in :mod:`qa.index.neardup`) into the best-ranked one (``Hit.copies``), so that k
distinct passages come back and each cites every URL that carries it: a copy whose passage
ranked too low to be met is looked up in the store (within the filters) and cited too.

Every search has a time scope (:class:`qa.search.when.Scope`: the as-of day and what the
question's time words ask for). Dated articles outside it are never returned, and a recency
prior is added to each candidate's fused score::

    score + weight * best * (0.5 ** (age / half_life) - 0.5)

where ``best`` is the query's best fused score (so the weight means the same for every fusion)
and ``age`` the days from the article's date to the scope's as-of day (or to the period its
time words name; 0 inside it). An undated article gets nothing added: it counts as an article
one half-life old, neither boosted nor buried, and a corpus without dates ranks exactly as
without the prior. Weight and half-life were chosen on the dated news questions
(docs/benchmarks.md).

One article fills a top k easily: a long article has many passages that match, each a little
below the last. The first passages (those the reader reads) stay in order of relevance: the
reader answers best from several passages of the best article (measured: EM drops when they are
spread). Below them, so that the top k reach more articles, every passage loses a share of the
query's best score for each better-ranked passage of the same article::

    score - penalty * best * (passages of its article ranked above it)

The best passage of each article keeps its score; an article's next passage still outranks
another article's weaker first one when it is clearly more relevant. Near-duplicate clusters
are not counted as one article here: pages whose text is only a site's boilerplate (a video
page's ad survey) form one large cluster although their headlines tell different stories.

Headline route: many pages (video pages, galleries, short briefs) tell their story only in
their headline, and their passages (a title over boilerplate) never reach the candidates. The
question's vector is also searched among the articles' own headline vectors; the nearest
lift their articles' best candidate passages, or bring in an article's first passage, by
``headline_weight * best * cosine`` (:mod:`qa.search.headline_route`). Weight and hits were
chosen on the news and SQuAD-open dev questions (docs/benchmarks.md). A generation written
without headline vectors, a fusion other than ``linear`` or weight 0 rank as before.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from qa import settings
from qa.errors import UsageError
from qa.index.embed import EmbedderLike, Vectors
from qa.index.folder import embedder_for
from qa.index.neardup import PASSAGE_OVERLAP, overlap
from qa.search import FUSIONS, headline_route
from qa.search.backend import Filters, PassageRecord, SearchBackend, SearchView
from qa.search.engines import open_backend
from qa.search.local import date_key
from qa.search.when import Scope
from qa.types import Hit, content_id

__all__ = ["FUSIONS", "Filters", "Retriever"]


@dataclass
class _Chosen:
    """A passage kept as a hit while collapsing, with what was folded into it."""

    doc: int
    score: float
    record: PassageRecord
    duplicates: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)


class Retriever:
    """Finds the passages most likely to answer a question.

    Args:
        index_dir: Index folder.
        embedder: Query embedder (default: the model the index was built with).
        fusion: ``linear`` (default), ``rrf``, ``dense``, ``bm25``, or Milvus's own rankers
            ``milvus-rrf`` and ``milvus-weighted`` (a Milvus backend only).
        bm25_weight: Weight of the normalised BM25 score in linear fusion.
        candidates: Candidates taken from each side before fusion.
        rrf_k: Constant of reciprocal rank fusion.
        backend: The search engine (default: the one ``index_dir`` was published to).
        recency_weight: Weight of the recency prior (0: dates only filter).
        half_life_days: Days after which the prior of an article has halved.
        article_penalty: Share of the best score a passage loses for each better-ranked passage
            of its article (0: none).
        spread_from: Passages ranked above this are left in order of relevance (the ones the
            reader reads); the penalty reorders those below.
        headline_weight: Weight of the headline route (0: off; default
            :data:`qa.settings.HEADLINE_WEIGHT`, 0 when ``NEWSQA_HEADLINES=off``).
        headline_hits: Headlines searched per question.

    Raises:
        ValueError: ``fusion`` is not one of :data:`FUSIONS`.
    """

    def __init__(
        self,
        index_dir: Path,
        embedder: EmbedderLike | None = None,
        fusion: str = "linear",
        bm25_weight: float = 0.25,
        candidates: int = 100,
        rrf_k: int = 60,
        backend: SearchBackend | None = None,
        recency_weight: float = settings.RECENCY_WEIGHT,
        half_life_days: float = settings.RECENCY_HALF_LIFE_DAYS,
        article_penalty: float = settings.SAME_ARTICLE_PENALTY,
        spread_from: int = settings.SPREAD_FROM,
        headline_weight: float | None = None,
        headline_hits: int = settings.HEADLINE_HITS,
    ) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"fusion {fusion!r} is not one of {', '.join(FUSIONS)}")
        self.index_dir = index_dir
        self.embedder: EmbedderLike = embedder or embedder_for(index_dir)
        self.fusion = fusion
        self.bm25_weight = bm25_weight
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.backend: SearchBackend = backend or open_backend(index_dir)
        self.recency_weight = recency_weight
        self.half_life_days = half_life_days
        self.article_penalty = article_penalty
        self.spread_from = spread_from
        if headline_weight is None:
            on = settings.load().headlines == "on"
            headline_weight = settings.HEADLINE_WEIGHT if on else 0.0
        self.headline_weight = headline_weight
        self.headline_hits = headline_hits
        self._checked = False
        self.timings: dict[str, float] = {}

    def view(self) -> SearchView:
        """The generation searched now (checks the embedding model on first use)."""
        if not self._checked:
            self.backend.check_model(self.embedder.name, self.embedder.dim)
            self._checked = True
        return self.backend.view()

    @property
    def generation(self) -> int:
        """The generation searched now."""
        return self.view().generation

    def search(
        self, query: str, k: int = 10, filters: Filters | None = None, scope: Scope | None = None
    ) -> list[Hit]:
        """Top-k passages for a question.

        Args:
            query: The question (or rewritten query).
            k: Number of hits.
            filters: Optional date/source filters.
            scope: The question's time scope (default: every date, no recency prior).

        Returns:
            Hits best first; identical passages from duplicate articles, and the same
            passage of near-duplicate copies, collapsed into one.
        """
        view = self.view()
        t0 = time.perf_counter()
        n = min(self.candidates, view.size)
        if n == 0:
            return []
        filters = _scoped(filters, scope)
        dense: dict[int, float] = {}
        sparse: dict[int, float] = {}
        heads: dict[str, float] = {}
        if self.fusion.startswith("milvus-"):
            fused = self._ranked_by_engine(view, query, n, filters)
            t1 = t2 = time.perf_counter()
        else:
            if self.fusion != "bm25":
                vector = self.embedder.embed([query])
                dense = view.dense(vector, n, filters)
                heads = self._headlines(view, vector, filters)
            t1 = time.perf_counter()
            sparse = view.keyword(query, n, filters) if self.fusion != "dense" else {}
            t2 = time.perf_counter()
            fused = self._fuse(dense, sparse)
        fused, records = self._reranked(view, fused, heads, dense, scope)
        chosen = self._collapse(view, fused, k, records)
        _add_copies(view, chosen, filters)
        hits = [_hit(c, rank, dense.get(c.doc), sparse.get(c.doc)) for rank, c in enumerate(chosen)]
        hits = _with_urls(view, hits)
        self.timings = {
            "embed_dense_ms": (t1 - t0) * 1000,
            "bm25_ms": (t2 - t1) * 1000,
            "fuse_ms": (time.perf_counter() - t2) * 1000,
        }
        return hits

    def _reranked(
        self,
        view: SearchView,
        fused: list[tuple[int, float]],
        heads: dict[str, float],
        dense: dict[int, float],
        scope: Scope | None,
    ) -> tuple[list[tuple[int, float]], dict[int, PassageRecord] | None]:
        """The ranking after the headline route, recency prior and article spread; records read."""
        records = None
        rankings = [fused]  # without the headline route, then with it
        if heads:
            lifted, records = self._lift(view, fused, heads, dense)
            rankings.append(lifted)
        if scope is not None or self.article_penalty:
            known = records if records is not None else view.records([d for d, _ in fused])
            if scope is not None:
                rankings = [self._rescore(r, known, scope) for r in rankings]
            if self.article_penalty:
                rankings = [self._spread(r, known) for r in rankings]
            records = known
        return headline_route.below(rankings[0], rankings[-1], self.spread_from), records

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

    def _headlines(
        self, view: SearchView, vector: Vectors, filters: Filters | None
    ) -> dict[str, float]:
        """Cosine of the nearest headlines by article id ({} when the route is off)."""
        search = getattr(view, "headlines", None)  # engines without headline vectors: none
        # The other fusions are kept as the passage routes' own, for comparison.
        if self.fusion != "linear" or not self.headline_weight or self.headline_hits <= 0:
            return {}
        if search is None:
            return {}
        found: dict[str, float] = search(vector, self.headline_hits, filters)
        return found

    def _lift(
        self,
        view: SearchView,
        fused: list[tuple[int, float]],
        heads: dict[str, float],
        dense: dict[int, float],
    ) -> tuple[list[tuple[int, float]], dict[int, PassageRecord]]:
        """Fuse the headline hits into the candidates (:func:`headline_route.lift`)."""
        # What a passage found by neither side scores: the dense floor, as in ``_fuse``.
        low = min(dense.values(), default=0.0)
        floor = (1 - self.bm25_weight) * low
        return headline_route.lift(view, fused, heads, self.headline_weight, floor)

    def _ranked_by_engine(
        self, view: SearchView, query: str, n: int, filters: Filters | None
    ) -> list[tuple[int, float]]:
        """Candidates fused by the engine's own ranker (Milvus's RRF or weighted)."""
        hybrid = getattr(view, "hybrid", None)
        if hybrid is None:
            raise UsageError(f"fusion {self.fusion} needs a Milvus backend (--backend milvus:...)")
        ranker = self.fusion.removeprefix("milvus-")
        vector = self.embedder.embed([query])
        fused: dict[int, float] = hybrid(
            vector, query, n, filters, ranker, self.bm25_weight, self.rrf_k
        )
        return sorted(fused.items(), key=lambda x: -x[1])

    def _rescore(
        self, fused: list[tuple[int, float]], records: dict[int, PassageRecord], scope: Scope
    ) -> list[tuple[int, float]]:
        """Drop dated passages outside the scope (whatever the backend did) and add the prior."""
        as_of = date_key(scope.as_of.isoformat())
        since = date_key(scope.since.isoformat()) if scope.since else 0
        start, end = (date_key(d.isoformat()) for d in scope.age_from())
        best = max((s for _, s in fused), default=0.0)
        out = []
        for doc, score in fused:
            rec = records.get(doc)
            day = date_key(rec.date) if rec is not None else 0
            if day and (day > as_of or day < since):
                continue
            out.append((doc, score + best * self.prior(day, start, end)))
        return sorted(out, key=lambda x: -x[1])

    def prior(self, day: int, start: int, end: int) -> float:
        """The recency prior of an article dated ``day`` (``YYYYMMDD``; 0: undated), relative
        to the period ``start``-``end`` it is counted from, as a share of the best score."""
        if not day or self.recency_weight == 0:
            return 0.0
        age = _days(day, end) if day > end else _days(start, day) if day < start else 0
        return self.recency_weight * (float(0.5 ** (age / self.half_life_days)) - 0.5)

    def _spread(
        self, fused: list[tuple[int, float]], records: dict[int, PassageRecord]
    ) -> list[tuple[int, float]]:
        """Below ``spread_from``, lower each passage by the penalty for every better-ranked
        passage of its article (those above ``spread_from`` counted too)."""
        best = max(max((s for _, s in fused), default=0.0), 0.0)
        above: Counter[str] = Counter()
        out = []
        for rank, (doc, score) in enumerate(fused):  # best first
            rec = records.get(doc)
            if rec is None:
                out.append((doc, score))
                continue
            article = rec.passage.article_id
            if rank >= self.spread_from:
                score -= self.article_penalty * best * above[article]
            out.append((doc, score))
            above[article] += 1
        # Scores only fall, so the first ``spread_from`` keep their places.
        return sorted(out, key=lambda x: -x[1])

    @staticmethod
    def _collapse(
        view: SearchView,
        fused: list[tuple[int, float]],
        k: int,
        known: dict[int, PassageRecord] | None = None,
    ) -> list[_Chosen]:
        """The first k distinct passages; rows are read a page at a time until k are found."""
        chosen: list[_Chosen] = []
        by_text: dict[str, _Chosen] = {}
        page = max(k * 4, k + 20)
        for start in range(0, len(fused), page):
            part = fused[start : start + page]
            records = known if known is not None else view.records([d for d, _ in part])
            for doc, score in part:
                rec = records.get(doc)
                if rec is None:
                    continue
                key = content_id(" ".join(rec.passage.text.split()))
                if key in by_text:
                    by_text[key].duplicates.append(rec.passage.article_id)
                    continue
                twin = _copy_of(view, rec, chosen)
                if twin is not None:
                    twin.copies.append(rec.passage.article_id)
                    continue
                by_text[key] = _Chosen(doc, score, rec)
                chosen.append(by_text[key])
                if len(chosen) >= k:
                    return chosen
        return chosen


def _scoped(filters: Filters | None, scope: Scope | None) -> Filters | None:
    """The filters with the scope's as-of day and lower bound added."""
    if scope is None:
        return filters
    since = scope.since.isoformat() if scope.since else ""
    return replace(filters or Filters(), as_of=scope.as_of.isoformat(), dated_since=since)


def _days(later: int, earlier: int) -> int:
    """Days between two ``YYYYMMDD`` keys."""

    def day(key: int) -> date:
        return date(key // 10000, key // 100 % 100, key % 100)

    return (day(later) - day(earlier)).days


def _copy_of(view: SearchView, rec: PassageRecord, chosen: list[_Chosen]) -> _Chosen | None:
    """The kept hit from another copy of the same story that holds the same passage.

    Only passages that overlap are folded: another paragraph of a copy is new evidence and
    stays a hit of its own, as another paragraph of the same article would.
    """
    aid = rec.passage.article_id
    cluster = view.cluster(aid)
    if cluster is None:
        return None
    for c in chosen:
        other = c.record.passage.article_id
        if (
            other != aid
            and view.cluster(other) == cluster
            and overlap(c.record.passage.text, rec.passage.text) >= PASSAGE_OVERLAP
        ):
            return c
    return None


def _add_copies(view: SearchView, chosen: list[_Chosen], filters: Filters | None) -> None:
    """Fold in every copy of each hit's story that holds its passage, within the filters.

    Collapsing folds only the copies whose passage was among the candidates it walked, so
    without this a hit's URLs would depend on ``k`` and on how the copy's passage ranked.
    """
    for c in chosen:
        aid = c.record.passage.article_id
        if view.cluster(aid) is None:
            continue
        known = {aid, *c.copies, *c.duplicates}
        text = c.record.passage.text
        for other, texts in view.copies(aid, filters).items():
            if other not in known and any(overlap(t, text) >= PASSAGE_OVERLAP for t in texts):
                c.copies.append(other)


def _with_urls(view: SearchView, hits: list[Hit]) -> list[Hit]:
    """Attach the other URLs of each hit's article, its duplicates and its copies."""
    ids = {a for h in hits for a in (h.passage.article_id, *h.duplicates, *h.copies)}
    urls = view.urls(sorted(ids))
    out = []
    for h in hits:
        every = [
            u for a in (h.passage.article_id, *h.duplicates, *h.copies) for u in urls.get(a, [])
        ]
        others = tuple(dict.fromkeys(u for u in every if u and u != h.url))
        out.append(replace(h, other_urls=others) if others else h)
    return out


def _hit(c: _Chosen, rank: int, dense: float | None, bm25: float | None) -> Hit:
    r = c.record
    return Hit(
        passage=r.passage,
        score=c.score,
        rank=rank,
        title=r.passage.title,
        date=r.date,
        url=r.url,
        source=r.source,
        dense_score=dense,
        bm25_score=bm25,
        duplicates=tuple(c.duplicates),
        copies=tuple(dict.fromkeys(c.copies)),
    )
