"""Headline vectors in the store and the generation files: written, backfilled, deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.index import headlines
from qa.index.check import check_index
from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.index.generation import MANIFEST, describe, gen_dir
from qa.index.store import Store
from qa.search.retriever import Retriever
from tests.unit.index.test_indexer import TOPICS, corpus, make_indexer, topic_file

__all__ = ["corpus"]  # the fixture


def stored(root: Path) -> dict[str, int]:
    """Headline rows by article id (their ``added_gen``)."""
    with open_store(root) as store:
        rows = store.db.execute("SELECT article_id, added_gen FROM headlines").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}


def searched(root: Path, query: str = "anything at all") -> dict[str, float]:
    """The current generation's headline hits (every headline: k is large)."""
    r = Retriever(root, HashEmbedder(64))
    try:
        return r.view().headlines(HashEmbedder(64).embed([query]), 1000, None)
    finally:
        r.backend.close()


def vectors(root: Path) -> object:
    """What ``newsqa stats`` says of the current generation's headline vectors."""
    with open_store(root) as store:
        name, gen = store.path.name, store.current_gen
    return describe(root, name, gen)["headline_vectors"]


def manifest(root: Path) -> dict[str, object]:
    with open_store(root) as store:
        name, gen = store.path.name, store.current_gen
    out: dict[str, object] = json.loads((gen_dir(root, name, gen) / MANIFEST).read_text())
    return out


def test_every_titled_article_gets_one_headline_vector(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "idx"
    report = make_indexer(root).update([corpus])
    assert report.headlines_added == report.articles == len(TOPICS)
    assert len(stored(root)) == len(TOPICS)
    assert set(searched(root)) == set(stored(root))
    assert check_index(root) == []


def test_an_untitled_article_has_no_headline(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        n = headlines.add_headlines(store, HashEmbedder(8), [("a", ""), ("b", " "), ("c", "T")], 1)
        assert n == 1
        assert [r[0] for r in store.db.execute("SELECT article_id FROM headlines")] == ["c"]


def test_the_same_title_is_embedded_once(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    class Counting(HashEmbedder):
        def embed(self, texts, batch_size=64):  # type: ignore[no-untyped-def]
            calls.append(list(texts))
            return super().embed(texts, batch_size)

    with Store(tmp_path / "s.sqlite") as store:
        headlines.add_headlines(store, Counting(8), [("a", "Same"), ("b", "Same")], 1)
        headlines.add_headlines(store, Counting(8), [("c", "Same"), ("d", "Other")], 1)
    assert calls == [["Same"], ["Other"]]


def make_old(root: Path) -> None:
    """Make an index look as one written before headline vectors were kept."""
    with Store(root / "store-1.sqlite") as store:
        store.db.execute("DELETE FROM headlines")
        store.db.execute("DELETE FROM meta WHERE key='headlines_kept'")
        store.db.commit()
        folder = gen_dir(root, store.path.name, store.current_gen)
    data = json.loads((folder / MANIFEST).read_text())
    del data["headlines"]
    (folder / MANIFEST).write_text(json.dumps(data))
    for name in (headlines.FILE, headlines.IDS):
        (folder / name).unlink()


def ranked(root: Path, weight: float | None, query: str) -> list[tuple[str, float]]:
    r = Retriever(root, HashEmbedder(64), headline_weight=weight)
    try:
        return [(h.passage.id, round(h.score, 6)) for h in r.search(query, k=10)]
    finally:
        r.backend.close()


def test_an_old_index_ranks_as_before_and_gets_headlines_on_the_next_run(
    corpus: Path, tmp_path: Path
) -> None:
    root = tmp_path / "idx"
    make_indexer(root).update([corpus])
    query = "Who boycotted the Sochi conference?"
    make_old(root)
    assert searched(root) == {} and vectors(root) is None
    assert ranked(root, None, query) == ranked(root, 0.0, query)
    assert check_index(root) == []

    report = make_indexer(root).update([corpus])  # nothing changed in the corpus
    assert report.passages_embedded == 0  # only titles are embedded
    assert report.headlines_added == len(TOPICS)
    assert report.generation == 2
    assert "headlines" in manifest(root) and vectors(root) == len(TOPICS)
    assert set(searched(root)) == set(stored(root)) and len(stored(root)) == len(TOPICS)
    assert check_index(root) == []
    assert make_indexer(root).update([corpus]).generation == 2  # then nothing more to do


def test_a_backfill_killed_before_its_generation_is_finished_on_the_next_run(
    corpus: Path, tmp_path: Path
) -> None:
    root = tmp_path / "idx"
    make_indexer(root).update([corpus])
    make_old(root)
    with Store(root / "store-1.sqlite") as store:  # the rows committed, no generation built
        headlines.backfill(store, HashEmbedder(64), store.current_gen + 1)
    assert searched(root) == {}
    report = make_indexer(root).update([corpus])
    assert report.headlines_added == 0 and report.generation == 2
    assert len(searched(root)) == len(TOPICS)


@pytest.mark.parametrize("delta", [False, True])
def test_deleting_an_article_removes_its_headline(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delta: bool
) -> None:
    if delta:
        monkeypatch.setenv("NEWSQA_DELTA_MIN", "0")
        monkeypatch.setenv("NEWSQA_DELTA_SHARE", "10")
    root = tmp_path / "idx"
    make_indexer(root).update([corpus])
    before = stored(root)
    name = next(iter(TOPICS))
    (corpus / f"{name}.txt").unlink()
    make_indexer(root).update([corpus])
    assert (manifest(root)["kind"] == "delta") is delta
    gone = set(before) - set(searched(root))
    assert len(gone) == 1 and len(searched(root)) == len(TOPICS) - 1 == vectors(root)
    assert check_index(root) == []
    topic_file(corpus, "extra", name)  # a new article (another file) brings the same story back
    make_indexer(root).update([corpus])
    assert gone <= set(searched(root)) and check_index(root) == []
    (corpus / "extra.txt").unlink()
    make_indexer(root).update([corpus])
    make_indexer(root).update([corpus])  # the next run drops the deleted rows for good
    assert not gone & set(stored(root))
    assert set(searched(root)) == set(stored(root)) and check_index(root) == []


def test_check_reports_headline_vectors_the_store_does_not_hold(
    corpus: Path, tmp_path: Path
) -> None:
    root = tmp_path / "idx"
    make_indexer(root).update([corpus])
    with Store(root / "store-1.sqlite") as store:
        store.db.execute("DELETE FROM headlines WHERE rowid = (SELECT MIN(rowid) FROM headlines)")
        store.db.commit()
    problems = check_index(root)
    assert any("headline vectors" in p for p in problems)
