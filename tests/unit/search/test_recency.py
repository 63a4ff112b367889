"""The as-of day and the recency prior in the ranking (fast embedder, real FAISS and BM25)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from qa import settings
from qa.search.retriever import Retriever
from qa.search.when import Scope, scope_for
from qa.types import Hit
from tests.unit.index.test_indexer import article_text, make_indexer, write

AS_OF = date(2022, 6, 16)
QUERY = "When did the harbour ferry service resume on the northern route?"
FERRY = "The harbour ferry service resumed on the northern route after repairs to the pier."


def undated(title: str, paragraphs: list[str], url: str) -> str:
    """A plain-text article without a date line."""
    return f"{title}\n\n" + "\n\n".join(paragraphs) + f"\n\nOriginal url:\n<{url}>\n"


@pytest.fixture()
def index(tmp_path: Path) -> Path:
    """Ferry stories of different days (one after the as-of day, one undated) and others."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    # The January story is a little *more* relevant (the query's own words, nothing else).
    write(folder / "old.txt", article_text("Ferry", [FERRY], "2022-01-10", "https://a.example/old"))
    recent = FERRY.replace("repairs to the pier", "the long repairs to its old wooden pier")
    write(
        folder / "new.txt", article_text("Ferry", [recent], "2022-06-14", "https://a.example/new")
    )
    later = FERRY.replace("the pier", "the pier, said the mayor")
    write(folder / "later.txt", article_text("Ferry", [later], "2022-06-20", "https://a.example/x"))
    write(
        folder / "undated.txt",
        undated("Ferry timetable", [FERRY.replace("after", "soon after")], "https://a.example/u"),
    )
    write(
        folder / "bridge.txt",
        article_text("Bridge", ["The council approved the bridge budget."], "2022-06-15"),
    )
    root = tmp_path / "index"
    make_indexer(root).update([folder])
    return root


@pytest.fixture()
def retriever(index: Path) -> Iterator[Retriever]:
    from qa.index.embed import HashEmbedder

    r = Retriever(index, HashEmbedder(64))
    yield r
    r.backend.close()


def urls(hits: list[Hit]) -> list[str]:
    return [h.url for h in hits]


def test_an_article_after_the_as_of_day_is_never_returned(retriever: Retriever) -> None:
    def every_url(hits: list[Hit]) -> set[str]:
        return {u for h in hits for u in h.urls}  # copies folded into a hit included

    assert "https://a.example/x" in every_url(retriever.search(QUERY, k=10))  # without a scope
    for day in (AS_OF, date(2022, 6, 19)):
        hits = retriever.search(QUERY, k=10, scope=Scope(day))
        assert "https://a.example/x" not in every_url(hits)
        assert all(h.date <= day.isoformat() for h in hits if h.date)
    on_the_day = retriever.search(QUERY, k=10, scope=Scope(date(2022, 6, 20)))
    assert "https://a.example/x" in every_url(on_the_day)


def test_a_recent_article_outranks_an_equally_relevant_old_one(retriever: Retriever) -> None:
    retriever.recency_weight = 0.0
    plain = retriever.search(QUERY, k=10, scope=Scope(AS_OF))
    order = [u for u in urls(plain) if u in ("https://a.example/old", "https://a.example/new")]
    assert order == ["https://a.example/old", "https://a.example/new"]
    retriever.recency_weight = settings.RECENCY_WEIGHT
    ranked = retriever.search(QUERY, k=10, scope=Scope(AS_OF))
    order = [u for u in urls(ranked) if u in ("https://a.example/old", "https://a.example/new")]
    assert order == ["https://a.example/new", "https://a.example/old"]


def test_an_undated_article_is_neither_boosted_nor_buried(retriever: Retriever) -> None:
    def undated_score(weight: float) -> float:
        retriever.recency_weight = weight
        hits = retriever.search(QUERY, k=10, scope=Scope(AS_OF))
        return next(h.score for h in hits if h.url == "https://a.example/u")

    assert undated_score(0.5) == undated_score(0.0)
    # Dated ones move: the recent one up, the old one down.
    retriever.recency_weight = 0.0
    flat = {h.url: h.score for h in retriever.search(QUERY, k=10, scope=Scope(AS_OF))}
    retriever.recency_weight = 0.5
    prior = {h.url: h.score for h in retriever.search(QUERY, k=10, scope=Scope(AS_OF))}
    assert prior["https://a.example/new"] > flat["https://a.example/new"]
    assert prior["https://a.example/old"] < flat["https://a.example/old"]


def test_time_words_narrow_dated_articles_and_keep_undated_ones(retriever: Retriever) -> None:
    hits = retriever.search(QUERY, k=10, scope=scope_for(QUERY + " this week", AS_OF))
    assert set(urls(hits)) == {
        "https://a.example/new",
        "https://a.example/u",
        "https://www.example.com/a",
    }


def test_an_undated_corpus_ranks_exactly_as_without_the_prior(tmp_path: Path) -> None:
    from qa.index.embed import HashEmbedder

    folder = tmp_path / "corpus"
    folder.mkdir()
    bodies = (
        "The harbour ferry was repainted in 2019 by volunteers from the rowing club.",
        "A new northern route for buses opened beside the station in the spring.",
        "Service on the ferry resumed once the storm had passed over the bay.",
        "The pier was rebuilt with oak beams after the winter floods damaged it.",
    )
    for i, body in enumerate(bodies):
        write(folder / f"{i}.txt", undated(f"Story {i}", [body], f"https://u.example/{i}"))
    make_indexer(tmp_path / "index").update([folder])
    r = Retriever(tmp_path / "index", HashEmbedder(64))
    try:
        question = QUERY + " in 2019"
        before = [(h.passage.id, h.score) for h in r.search(question, k=10)]
        after = r.search(question, k=10, scope=scope_for(question, AS_OF))
        assert len(before) == 4
        assert [(h.passage.id, h.score) for h in after] == before
    finally:
        r.backend.close()


def test_the_prior_halves_with_each_half_life_and_is_flat_inside_a_named_period() -> None:
    r = Retriever(Path("unused"), embedder=object(), recency_weight=0.2, half_life_days=7)  # type: ignore[arg-type]
    today, week_ago = 20220616, 20220609
    assert r.prior(0, today, today) == 0.0  # undated
    assert r.prior(today, today, today) == pytest.approx(0.1)
    assert r.prior(week_ago, today, today) == pytest.approx(0.0)
    assert r.prior(20220602, today, today) == pytest.approx(0.2 * (0.25 - 0.5))
    # "in 2019": flat inside the year, ageing after its end.
    start, end = 20190101, 20191231
    assert r.prior(20190105, start, end) == r.prior(20191230, start, end) == pytest.approx(0.1)
    assert r.prior(20200107, start, end) == pytest.approx(0.0)
    r.recency_weight = 0.0
    assert r.prior(today, today, today) == 0.0
