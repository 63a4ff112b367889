"""The SearchBackend seam: a second engine plugs into the indexer, retriever and answerer.

``MemoryBackend`` is a small engine of the test's own (brute-force cosine, token-count keyword
scores, all in memory): if indexing, searching and answering work through it unchanged, the
seam carries everything a cluster backend would need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from qa.answer import Answerer
from qa.errors import IndexMismatch, IndexNotFound
from qa.index.embed import HashEmbedder
from qa.index.folder import check_model, open_store
from qa.index.indexer import Indexer
from qa.index.keywords import tokenize
from qa.index.store import Store
from qa.reader.sentence import SentenceReader
from qa.search.backend import Filters, PassageRecord, SearchBackend, SearchView
from qa.search.local import LocalBackend, date_key
from qa.search.retriever import Retriever
from qa.types import Passage
from tests.unit.index.test_indexer import article_text, write


@dataclass
class MemoryView:
    generation: int
    vectors: npt.NDArray[np.float32]
    tokens: list[list[str]]
    recs: list[PassageRecord]
    clusters: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.recs)

    def _allowed(self, f: Filters | None) -> list[bool]:
        def ok(r: PassageRecord) -> bool:
            if f is None:
                return True
            day = date_key(r.date)
            return (
                (not f.since or day >= date_key(f.since))
                and (not f.until or 0 < day <= date_key(f.until))
                and f.source.lower() in r.source.lower()
            )

        return [ok(r) for r in self.recs]

    def dense(
        self, vector: npt.NDArray[np.float32], k: int, filters: Filters | None
    ) -> dict[int, float]:
        scores = self.vectors @ vector[0]
        allowed = self._allowed(filters)
        order = [int(i) for i in np.argsort(-scores) if allowed[int(i)]]
        return {i: float(scores[i]) for i in order[:k]}

    def keyword(self, query: str, k: int, filters: Filters | None) -> dict[int, float]:
        terms = set(tokenize(query))
        allowed = self._allowed(filters)
        scores = {
            i: float(sum(t in terms for t in toks))
            for i, toks in enumerate(self.tokens)
            if allowed[i]
        }
        best = sorted((i for i, s in scores.items() if s > 0), key=lambda i: -scores[i])
        return {i: scores[i] for i in best[:k]}

    def doc_freq(self, term: str) -> int:
        stems = set(tokenize(term))
        return sum(bool(stems & set(toks)) for toks in self.tokens)

    def records(self, docs: Sequence[int]) -> dict[int, PassageRecord]:
        return {d: self.recs[d] for d in docs if 0 <= d < len(self.recs)}

    def cluster(self, article_id: str) -> str | None:
        return self.clusters.get(article_id)

    def copies(self, article_id: str, filters: Filters | None) -> dict[str, list[str]]:
        cluster = self.clusters.get(article_id)
        allowed = self._allowed(filters)
        out: dict[str, list[str]] = {}
        for r, ok in zip(self.recs, allowed, strict=True):
            other = r.passage.article_id
            if ok and other != article_id and cluster and self.clusters.get(other) == cluster:
                out.setdefault(other, []).append(r.passage.text)
        return out

    def urls(self, article_ids: Sequence[str]) -> dict[str, list[str]]:
        wanted = set(article_ids)
        return {r.passage.article_id: [r.url] for r in self.recs if r.passage.article_id in wanted}


class MemoryBackend:
    """Holds the published generations in memory; never writes a file."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.published: list[int] = []
        self._views: dict[int, MemoryView] = {}

    def check_model(self, name: str, dim: int) -> None:
        store = open_store(self.index_dir)
        try:
            check_model(store, name, dim)
        finally:
            store.close()

    def publish(self, store: Store, gen: int) -> None:
        rows = list(store.visible_passages(gen))
        by_rowid = store.passages_by_rowid([r[0] for r in rows])
        recs, vectors = [], []
        for rowid, _tokens, vec in rows:
            r = by_rowid[rowid]
            passage = Passage(
                r["id"],
                r["article_id"],
                r["paragraph"],
                r["start"],
                r["end"],
                r["text"],
                r["title"],
            )
            recs.append(PassageRecord(passage, r["date"], r["url"], r["source"]))
            vectors.append(np.frombuffer(vec, dtype=np.float16).astype(np.float32))
        tokens = [t for _, t, _ in rows]
        self._views[gen] = MemoryView(gen, np.vstack(vectors), tokens, recs)
        self.published.append(gen)

    def view(self) -> SearchView:
        store = open_store(self.index_dir)
        try:
            return self._views[store.current_gen]
        finally:
            store.close()

    def close(self) -> None:
        pass


def two_article_corpus(folder: Path) -> Path:
    """Two dated articles (a tungsten mine, a ferry strike) in a new corpus folder."""
    folder.mkdir()
    write(
        folder / "tungsten.txt",
        article_text(
            "Tungsten mine reopens",
            ["The tungsten mine in Cumbria reopened on Monday after a decade."],
            date="2023-03-01",
            url="https://example.com/tungsten",
        ),
    )
    write(
        folder / "ferry.txt",
        article_text(
            "Ferry strike ends",
            ["Ferry workers in Calais ended their strike after nine days of talks."],
            date="2023-05-01",
            url="https://example.com/ferry",
        ),
    )
    return folder


def test_a_second_backend_serves_index_search_and_answers(tmp_path: Path) -> None:
    corpus = two_article_corpus(tmp_path / "corpus")
    root = tmp_path / "idx"
    memory = MemoryBackend(root)
    assert isinstance(memory, SearchBackend)
    Indexer(root, HashEmbedder(64), backend=memory).update([corpus])
    assert memory.published == [1]
    assert not (root / "gens").exists()  # the local engine's files were never written

    retriever = Retriever(root, HashEmbedder(64), backend=memory)
    hits = retriever.search("Which mine reopened in Cumbria?", k=1)
    assert [h.title for h in hits] == ["Tungsten mine reopens"]
    assert hits[0].url == "https://example.com/tungsten"
    dated = retriever.search("strike mine", k=5, filters=Filters(since="2023-04-01"))
    assert [h.title for h in dated] == ["Ferry strike ends"]

    answerer = Answerer(root, reader=SentenceReader(), retriever=retriever)
    response = answerer.ask("How many days did the ferry strike last?")
    assert response.answer is not None
    assert "nine days" in response.answer.sentence
    assert response.citations[0].url == "https://example.com/ferry"


def test_a_second_backend_sees_deletions(tmp_path: Path) -> None:
    corpus = two_article_corpus(tmp_path / "corpus")
    root = tmp_path / "idx"
    memory = MemoryBackend(root)
    indexer = Indexer(root, HashEmbedder(64), backend=memory)
    indexer.update([corpus])
    (corpus / "ferry.txt").unlink()
    indexer.update([corpus])
    assert memory.published == [1, 2]
    hits = Retriever(root, HashEmbedder(64), backend=memory).search("ferry strike Calais", k=5)
    assert [h.title for h in hits] == ["Tungsten mine reopens"]


def test_dense_ranking_agrees_with_the_local_engine(tmp_path: Path) -> None:
    corpus = two_article_corpus(tmp_path / "corpus")
    memory = MemoryBackend(tmp_path / "mem")
    Indexer(tmp_path / "mem", HashEmbedder(64), backend=memory).update([corpus])
    Indexer(tmp_path / "local", HashEmbedder(64)).update([corpus])
    query = "tungsten Cumbria mine"
    got = Retriever(tmp_path / "mem", HashEmbedder(64), fusion="dense", backend=memory)
    want = Retriever(tmp_path / "local", HashEmbedder(64), fusion="dense")
    assert isinstance(want.backend, LocalBackend)
    assert [h.passage.id for h in got.search(query, k=2)] == [
        h.passage.id for h in want.search(query, k=2)
    ]


def test_the_model_check_goes_through_the_backend(tmp_path: Path) -> None:
    root = tmp_path / "idx"
    with pytest.raises(IndexNotFound):
        Retriever(root, HashEmbedder(64), backend=MemoryBackend(root)).search("x")
    Indexer(root, HashEmbedder(64), backend=MemoryBackend(root)).update(
        [two_article_corpus(tmp_path / "c")]
    )
    with pytest.raises(IndexMismatch):
        Retriever(root, HashEmbedder(32), backend=MemoryBackend(root)).search("x")


def test_an_unknown_fusion_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rff"):
        Retriever(tmp_path, HashEmbedder(64), fusion="rff")
