"""Unit tests for near-duplicate detection (qa.index.neardup) and its answer-time collapse."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from qa.index.chunk import Chunker
from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.index.indexer import Indexer
from qa.index.neardup import (
    THRESHOLD,
    MinHasher,
    NearDupIndex,
    band_keys,
    jaccard,
    overlap,
    shingles,
    similarity,
)
from qa.index.store import Store
from qa.search.backend import Filters
from qa.search.retriever import Retriever
from qa.types import Article, Hit


def article_text(title: str, paragraphs: list[str], date: str, url: str) -> str:
    """An article in the plain format: title, date line, paragraphs, Original url trailer."""
    body = "\n\n".join(paragraphs)
    return f"{title}\n\n{date}\n\n{body}\n\nOriginal url:\n<{url}>\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def make_indexer(root: Path) -> Indexer:
    return Indexer(root, HashEmbedder(64), chunker=Chunker(model_max_tokens=None))


_VOCAB = (
    "harbour council bridge volcano market river budget school hospital court trade "
    "energy water station police report city minister election judge airport runway "
    "museum fossil storm tunnel ferry mayor union strike farmer drought grain port "
    "cargo tariff senator vote ballot"
).split()


def paragraphs(seed: int, n: int, words: int = 45) -> list[str]:
    """``n`` paragraphs of pseudo-random prose (distinct for each seed)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_VOCAB) for _ in range(words)).capitalize() + "." for _ in range(n)]


# A wire story about a ferry strike; "ferry strike" words are planted in its third paragraph.
STORY = paragraphs(1, 5)
STORY[2] = "Ferry crews walked out at dawn in a strike over pay. " + STORY[2]
A_URL = "https://wire.example/ferry-strike"
B_URL = "https://localpaper.example/2023/ferries-halted"


def lightly_edited(paras: list[str]) -> list[str]:
    """A syndicated copy: a few words changed and a trailing paragraph added."""
    out = list(paras)
    out[0] = out[0].replace(" ", " the ", 1)
    out[2] = out[2].replace("at dawn", "at first light")
    words = out[3].split()
    words[5] = "governor"
    out[3] = " ".join(words)
    out[4] = out[4].replace(".", ", officials said.")
    return [*out, "This story was first published by the Wire news agency."]


@pytest.fixture()
def copies(tmp_path: Path) -> Path:
    """A corpus with a story, its lightly edited copy, and three unrelated articles."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    write(folder / "a.txt", article_text("Ferry crews strike over pay", STORY, "2023-03-01", A_URL))
    write(
        folder / "b.txt",
        article_text(
            "Ferries halted as crews walk out", lightly_edited(STORY), "2023-03-02", B_URL
        ),
    )
    for seed in (11, 12, 13):
        write(
            folder / f"other-{seed}.txt",
            article_text(
                f"Unrelated story {seed}",
                paragraphs(seed, 3),
                "2023-01-01",
                f"https://other.example/{seed}",
            ),
        )
    return folder


def search(root: Path, query: str, k: int = 10) -> list[Hit]:
    r = Retriever(root, HashEmbedder(64))
    try:
        return r.search(query, k=k)
    finally:
        r.backend.close()


def clusters(root: Path) -> dict[str, str]:
    with open_store(root) as store:
        return NearDupIndex(store.db).clusters(store.current_gen)


# -- shingles and MinHash ---------------------------------------------------------------------


def test_shingles_ignore_case_and_punctuation() -> None:
    assert np.array_equal(
        shingles("The cat sat on the mat, today."), shingles("the CAT sat -- on the mat today")
    )
    assert len(shingles("one two three four five six")) == 2
    assert len(shingles("too short")) == 1  # fewer words than a shingle: one shingle
    assert len(shingles("  ... ")) == 0
    # Stored signatures must stay comparable across processes and versions.
    assert int(shingles("a b c d e")[0]) == 6016129474201421218


def test_minhash_estimates_jaccard() -> None:
    hasher = MinHasher()
    base = " ".join(paragraphs(7, 8))
    for cut in (0.2, 0.5, 0.8):
        words = base.split()
        edited = " ".join(words[: int(len(words) * cut)] + paragraphs(8, 4))
        a, b = shingles(base), shingles(edited)
        est = similarity(hasher.signature(a), hasher.signature(b))
        assert abs(est - jaccard(a, b)) < 0.12


def test_lightly_edited_copy_is_detected_unrelated_is_not() -> None:
    hasher = MinHasher()
    a = hasher.signature(shingles("\n\n".join(STORY)))
    b = hasher.signature(shingles("\n\n".join(lightly_edited(STORY))))
    other = hasher.signature(shingles("\n\n".join(paragraphs(2, 5))))
    assert similarity(a, b) >= THRESHOLD
    assert similarity(a, other) < 0.1
    assert set(band_keys(a)) & set(band_keys(b)), "the copy shares an LSH bucket"
    assert overlap(STORY[2], lightly_edited(STORY)[2]) > 0.9
    assert overlap(STORY[2], STORY[3]) < 0.1


# -- clusters in the index --------------------------------------------------------------------


def test_copy_joins_the_cluster_of_the_earliest_article(copies: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    report = make_indexer(root).update([copies])
    assert report.articles == 5 and report.near_duplicates == 1
    found = clusters(root)
    assert len(found) == 2 and len(set(found.values())) == 1
    with open_store(root) as store:
        (a_id,) = [r[0] for r in store.db.execute("SELECT id FROM articles WHERE url=?", (A_URL,))]
        assert set(found.values()) == {a_id}  # the cluster id is the earliest article's id
        assert store.near_duplicates(store.current_gen) == (1, 1)


def test_query_matching_both_copies_returns_one_hit_citing_both(
    copies: Path, tmp_path: Path
) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([copies])
    hits = search(root, "ferry crews strike over pay", k=5)
    assert len(hits) == 5, "collapsing still returns k hits"
    top = hits[0]
    assert "Ferry crews walked out" in top.passage.text
    assert set(top.urls) == {A_URL, B_URL} and len(top.copies) == 1
    same = [h for h in hits[1:] if overlap(h.passage.text, top.passage.text) >= 0.5]
    assert not same, "the copy's passage is not returned again"


def test_a_hit_cites_its_copy_even_when_k_stops_before_the_copys_passage(
    copies: Path, tmp_path: Path
) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([copies])
    (top,) = search(root, "ferry crews strike over pay", k=1)
    assert "Ferry crews walked out" in top.passage.text
    assert set(top.urls) == {A_URL, B_URL}, "the copy is cited whatever k is"


def test_a_copy_outside_the_filters_is_not_cited(copies: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([copies])
    r = Retriever(root, HashEmbedder(64))
    try:
        # The copy (B) was published a day after the story (A): as of A's day it does not exist.
        (top,) = r.search("ferry crews strike over pay", k=1, filters=Filters(as_of="2023-03-01"))
        assert top.urls == (A_URL,)
        hits = r.search("ferry crews strike over pay", k=5, filters=Filters(source="localpaper"))
        assert hits and all(h.urls == (B_URL,) for h in hits if "crews" in h.passage.text)
    finally:
        r.backend.close()


def test_deleted_copy_leaves_the_other_answerable_and_alone(copies: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([copies])
    (copies / "a.txt").unlink()  # the earliest article, the cluster's id
    report = make_indexer(root).update([copies])
    assert report.removed == 1 and report.articles == 4
    assert clusters(root) == {}
    top = search(root, "ferry crews strike over pay", k=5)[0]
    assert "Ferry crews walked out" in top.passage.text
    assert top.urls == (B_URL,) and top.copies == ()


def test_removed_middle_article_no_longer_chains_the_others(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    p = paragraphs(3, 6)
    for name, part in (("a", p[0:4]), ("b", p[1:5]), ("c", p[2:6])):  # a~b, b~c, a!~c
        write(
            folder / f"{name}.txt",
            article_text(f"Story {name}", part, "2023-05-01", f"https://{name}.example/story"),
        )
    root = tmp_path / "index"
    make_indexer(root).update([folder])
    assert len(clusters(root)) == 3 and len(set(clusters(root).values())) == 1
    (folder / "b.txt").unlink()
    make_indexer(root).update([folder])
    assert clusters(root) == {}


def test_reindexing_the_same_files_changes_nothing(copies: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"

    def snapshot() -> tuple[list[tuple[object, ...]], int, int]:
        with open_store(root) as store:
            rows = store.db.execute(
                "SELECT seq, article_id, sig, cluster FROM neardup ORDER BY seq"
            ).fetchall()
            bands = store.db.execute("SELECT COUNT(*) FROM neardup_bands").fetchone()[0]
            return [tuple(r) for r in rows], int(bands), store.current_gen

    make_indexer(root).update([copies])
    before = snapshot()
    again = make_indexer(root).update([copies])
    assert (again.added, again.removed, again.near_duplicates) == (0, 0, 0)
    assert snapshot() == before


def test_store_without_neardup_tables_is_searched_then_backfilled(
    copies: Path, tmp_path: Path
) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([copies])
    with open_store(root, readonly=False) as store:
        store.db.execute("DROP TABLE neardup")
        store.db.execute("DROP TABLE neardup_bands")
        store.db.commit()
    hits = search(root, "ferry crews strike over pay", k=5)  # an older store, read-only
    assert hits[0].copies == ()
    make_indexer(root).update([copies])  # the next run adds the tables and signs the articles
    hits = search(root, "ferry crews strike over pay", k=5)
    assert set(hits[0].urls) == {A_URL, B_URL}


def test_band_lookup_uses_the_index(tmp_path: Path) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([tmp_path])
    with open_store(root) as store:
        q = (
            "EXPLAIN QUERY PLAN SELECT article_id FROM neardup_bands "
            "WHERE (band=? AND hash=?) OR (band=? AND hash=?)"
        )
        try:
            plan = " ".join(str(r[-1]) for r in store.db.execute(q, (0, 1, 2, 3)))
        except sqlite3.OperationalError as exc:  # pragma: no cover
            pytest.fail(str(exc))
        assert "SEARCH" in plan and "SCAN" not in plan


def test_article_added_and_dropped_in_one_run_releases_its_copies(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        index = NearDupIndex(store.db)
        a = Article("Ferry crews strike", "\n\n".join(STORY), url=A_URL)
        b = Article("Ferries halted", "\n\n".join(lightly_edited(STORY)), url=B_URL)
        for art in (a, b):
            store.add_article(art, [], np.zeros((0, 4), dtype=np.float32), [], 1)
            index.add(art.id, art.text)
        assert index.clusters(1) == {a.id: a.id, b.id: a.id}
        store.delete_article(a.id, 1)  # never visible: its rows go at once
        assert store.db.execute("SELECT COUNT(*) FROM neardup").fetchone()[0] == 1
        assert index.recluster_after_deletions(1) == 1
        cluster = store.db.execute("SELECT cluster FROM neardup WHERE article_id=?", (b.id,))
        assert cluster.fetchone()[0] == b.id


def test_texts_without_words_are_nobodys_copy() -> None:
    empty = MinHasher().signature(shingles(" -- ... "))
    assert band_keys(empty) == []
