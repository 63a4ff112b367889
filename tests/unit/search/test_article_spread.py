"""One article does not fill the top k: below the passages the reader reads, each passage loses
a share of the best score for every better-ranked passage of its article."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import settings
from qa.search.backend import PassageRecord
from qa.search.retriever import Retriever
from qa.types import Passage
from tests.unit.index.test_indexer import article_text, make_indexer, write


def record(article: str, paragraph: int) -> PassageRecord:
    text = f"paragraph {paragraph} of {article}"
    passage = Passage(f"{article}-{paragraph}", article, paragraph, 0, len(text), text, article)
    return PassageRecord(passage, "2022-06-14", f"https://a.example/{article}", "example")


def spread(
    hits: list[tuple[str, int, float]],
    penalty: float,
    spread_from: int = 0,
) -> list[tuple[str, int, float]]:
    """(article, paragraph, score) best first, re-ranked by the penalty."""
    records = {i: record(a, p) for i, (a, p, _) in enumerate(hits)}
    fused = [(i, s) for i, (_, _, s) in enumerate(hits)]
    r = Retriever.__new__(Retriever)  # only the penalty is read: no index needed
    r.article_penalty, r.spread_from = penalty, spread_from
    out = r._spread(fused, records)
    return [(hits[d][0], hits[d][1], round(s, 6)) for d, s in out]


LONG = [("long", 0, 1.0), ("long", 1, 0.97), ("long", 2, 0.95), ("short", 0, 0.9)]


def test_an_article_s_later_passages_make_room_for_another_article() -> None:
    out = spread(LONG, 0.1)
    # long/1 loses 0.1 (one passage above it), long/2 loses 0.2: short moves up to second.
    assert out == [("long", 0, 1.0), ("short", 0, 0.9), ("long", 1, 0.87), ("long", 2, 0.75)]


def test_the_best_passage_of_every_article_keeps_its_score() -> None:
    out = spread(LONG, 0.1)
    assert dict(((a, p), s) for a, p, s in out)[("long", 0)] == 1.0
    assert dict(((a, p), s) for a, p, s in out)[("short", 0)] == 0.9


def test_a_clearly_better_second_passage_still_outranks_a_weak_article() -> None:
    hits = [("long", 0, 1.0), ("long", 1, 0.99), ("weak", 0, 0.5)]
    assert [(a, p) for a, p, _ in spread(hits, 0.1)] == [("long", 0), ("long", 1), ("weak", 0)]


def test_the_passages_above_spread_from_keep_their_order_and_count_for_those_below() -> None:
    hits = [*LONG[:3], ("long", 3, 0.93), ("short", 0, 0.9)]
    out = spread(hits, 0.1, spread_from=2)
    # long/0 and long/1 stay first; long/2 and long/3 lose 0.2 and 0.3 (two and three above).
    assert out == [
        ("long", 0, 1.0),
        ("long", 1, 0.97),
        ("short", 0, 0.9),
        ("long", 2, 0.75),
        ("long", 3, 0.63),
    ]
    assert spread(hits, 0.1, spread_from=len(hits)) == hits


def test_no_penalty_changes_nothing() -> None:
    assert spread(LONG, 0.0) == LONG


def test_the_penalty_is_a_share_of_the_best_score_so_its_scale_does_not_matter() -> None:
    scaled = [(a, p, s * 30) for a, p, s in LONG]  # e.g. BM25 alone
    assert [(a, p) for a, p, _ in spread(scaled, 0.1)] == [(a, p) for a, p, _ in spread(LONG, 0.1)]


# Through a real index (hash embedder, FAISS, BM25): a long article about the ferry whose
# paragraphs all match, and another article that matches a little less.
QUERY = "harbour ferry northern route pier repairs timetable"
FERRY = (
    "The harbour ferry on the northern route returns after the pier repairs, with a new "
    "timetable for the summer and more crossings on weekends, the operator said in a "
    "statement that also thanked the crews who rebuilt the landing stage over the winter"
)


@pytest.fixture()
def retriever(tmp_path: Path) -> Iterator[Retriever]:
    from qa.index.embed import HashEmbedder

    folder = tmp_path / "corpus"
    folder.mkdir()
    long = [f"{FERRY}, part {i} of a series." for i in range(7)]
    write(folder / "long.txt", article_text("Ferry", long, "2022-06-14", "https://a.example/l"))
    short = f"{FERRY}, the council said."
    write(folder / "short.txt", article_text("Boats", [short], "2022-06-14", "https://a.example/s"))
    root = tmp_path / "index"
    make_indexer(root).update([folder])
    r = Retriever(root, HashEmbedder(64))
    yield r
    r.backend.close()


def test_search_reaches_another_article_before_a_long_one_s_later_passages(
    retriever: Retriever,
) -> None:
    retriever.article_penalty = 0.0
    before = [h.passage.id for h in retriever.search(QUERY, k=7)]
    assert [h.url for h in retriever.search(QUERY, k=7)] == ["https://a.example/l"] * 7
    retriever.article_penalty = settings.SAME_ARTICLE_PENALTY
    after = retriever.search(QUERY, k=7)
    n = settings.SPREAD_FROM
    assert [h.passage.id for h in after[:n]] == before[:n]  # what the reader reads: unchanged
    assert after[n].url == "https://a.example/s"
