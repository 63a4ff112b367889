"""One contract, three engines: the embedded files, a Milvus Lite file, a Milvus Lite server.

Every case runs unchanged against each backend (``backend`` fixture): articles added, changed
and deleted show in dense and keyword search alike; every hit satisfies its filters, and a
filtered search finds every passage the filters allow (filtering inside the search, never
after it); a new article is answerable. A fake embedder keeps these fast; the real model runs
the same contract in tests/integration/test_milvus_real.py.

The headline route holds on every backend too: a question near a headline lifts that article
(below the reader's passages), a deleted article's headline and a changed title's old words
are gone, its filters apply inside the headline search, and a title two live articles share
is not searched until it is one article's own again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from qa.answer import Answerer
from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.index.indexer import Indexer
from qa.reader.sentence import SentenceReader
from qa.search.backend import Filters
from qa.search.engines import open_backend, publisher_for
from qa.search.local import date_key
from qa.search.retriever import Retriever
from tests.unit.index.test_indexer import article_text, write
from tests.unit.search.test_backend import two_article_corpus as _corpus
from tests.unit.search.test_headline_fusion import HEADS, SURVEY, write_video_pages

pytestmark = [pytest.mark.milvus, pytest.mark.usefixtures("release_lite")]
DIM = 64
Uri = Callable[[Path], str]


@pytest.fixture(params=["embedded", "lite", "server"])
def backend(request: pytest.FixtureRequest) -> Uri:
    """A backend URI for an index folder (a Lite file beside it, or the session's server)."""
    if request.param == "embedded":
        return lambda root: "embedded"
    pytest.importorskip("pymilvus")
    if request.param == "lite":
        return lambda root: f"milvus:{root.parent / (root.name + '-lite.db')}"
    server: str = request.getfixturevalue("milvus_server")
    return lambda root: server


def index(root: Path, paths: list[Path], uri: str, prune: bool = True) -> None:
    Indexer(root, HashEmbedder(DIM), backend=publisher_for(root, uri)).update(paths, prune=prune)


def retriever(root: Path, uri: str, fusion: str = "linear", candidates: int = 100) -> Retriever:
    backend = open_backend(root, uri)
    return Retriever(root, HashEmbedder(DIM), fusion, candidates=candidates, backend=backend)


def titles(r: Retriever, query: str, k: int = 10, filters: Filters | None = None) -> list[str]:
    return [h.title for h in r.search(query, k=k, filters=filters)]


def test_added_changed_and_deleted_articles_show_in_both_routes(
    tmp_path: Path, backend: Uri
) -> None:
    corpus, root = _corpus(tmp_path / "corpus"), tmp_path / "idx"
    uri = backend(root)
    index(root, [corpus], uri)
    dense, bm25 = retriever(root, uri, "dense"), retriever(root, uri, "bm25")
    assert titles(dense, "tungsten mine Cumbria", k=1) == ["Tungsten mine reopens"]
    assert titles(bm25, "tungsten Cumbria") == ["Tungsten mine reopens"]
    assert titles(bm25, "ferry strike") == ["Ferry strike ends"]

    # Changed: the old words are gone from the keyword route, the new ones found by both.
    write(
        corpus / "tungsten.txt",
        article_text(
            "Molybdenum mine reopens",
            ["The molybdenum mine in Cumbria reopened on Monday after a decade."],
            date="2023-03-01",
            url="https://example.com/tungsten",
        ),
    )
    # Added.
    write(
        corpus / "bridge.txt",
        article_text(
            "Bridge closed for repairs",
            ["The suspension bridge over the Severn closed for three weeks of repairs."],
            date="2023-06-01",
            url="https://example.com/bridge",
        ),
    )
    # Deleted.
    (corpus / "ferry.txt").unlink()
    index(root, [corpus], uri)
    assert titles(bm25, "tungsten") == []
    assert titles(bm25, "molybdenum") == ["Molybdenum mine reopens"]
    assert titles(bm25, "Severn suspension bridge") == ["Bridge closed for repairs"]
    assert titles(bm25, "ferry strike Calais") == []
    assert titles(dense, "molybdenum mine Cumbria", k=1) == ["Molybdenum mine reopens"]
    every = titles(dense, "anything at all", k=10)
    assert sorted(every) == ["Bridge closed for repairs", "Molybdenum mine reopens"]
    assert retriever(root, uri).view().size == 2


def _records(folder: Path) -> Path:
    """Articles with and without dates, from three sources, in one JSONL file."""
    folder.mkdir()
    rows = []
    for i in range(24):
        date = "" if i % 4 == 0 else f"2023-0{1 + i % 6}-1{i % 10}"
        rows.append(
            {
                "title": f"Harbour report {i}",
                "text": f"The harbour council met about dredging number {i} and the quay.",
                "date": date,
                "url": f"https://news{i % 3}.example/{i}",
                "source": ["Harbour Gazette", "Quay Times", "Dock Weekly"][i % 3],
            }
        )
    path = folder / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _allowed(f: Filters, date: str, source: str) -> bool:
    """Filters' docstring, restated: since/until leave undated out, as_of/dated_since keep it."""
    day = date_key(date)
    return (
        (not f.since or (day and day >= date_key(f.since)))
        and (not f.until or (day and day <= date_key(f.until)))
        and (not f.as_of or not day or day <= date_key(f.as_of))
        and (not f.dated_since or not day or day >= date_key(f.dated_since))
        and f.source.lower() in source.lower()
    )


FILTERS = [
    Filters(since="2023-03-01"),
    Filters(until="2023-02-28"),
    Filters(since="2023-02-01", until="2023-04-30"),
    Filters(source="quay"),
    Filters(source="GAZETTE", since="2023-04-01"),
    Filters(as_of="2023-03-15"),
    Filters(dated_since="2023-05-01"),
    Filters(as_of="2023-05-31", dated_since="2023-02-01", source="Weekly"),
    Filters(source="no such source"),
]


@pytest.mark.parametrize("f", FILTERS, ids=str)
def test_filters_apply_inside_the_search(tmp_path: Path, backend: Uri, f: Filters) -> None:
    root = tmp_path / "idx"
    uri = backend(root)
    index(root, [_records(tmp_path / "in")], uri, prune=False)
    with open_store(root) as store:
        rows = store.db.execute("SELECT title, date, source FROM articles").fetchall()
    want = sorted(str(t) for t, d, s in rows if _allowed(f, str(d), str(s)))
    for fusion in ("dense", "bm25"):
        hits = retriever(root, uri, fusion).search("harbour dredging quay", k=50, filters=f)
        assert all(_allowed(f, h.date, h.source) for h in hits)
        # Every allowed passage holds the query's words: a filter applied after a top-k
        # search would lose some of them.
        assert sorted(h.title for h in hits) == want, fusion
        # Five candidates a side: a filter applied after the search would leave fewer hits.
        few = retriever(root, uri, fusion, candidates=5).search(
            "harbour dredging quay", k=5, filters=f
        )
        assert len(few) == min(5, len(want)) and {h.title for h in few} <= set(want), fusion


def test_a_new_article_is_answerable(tmp_path: Path, backend: Uri) -> None:
    corpus, root = _corpus(tmp_path / "corpus"), tmp_path / "idx"
    uri = backend(root)
    index(root, [corpus], uri)
    answerer = Answerer(root, reader=SentenceReader(), retriever=retriever(root, uri))
    write(
        corpus / "lighthouse.txt",
        article_text(
            "Lighthouse keeper retires",
            ["The last lighthouse keeper of Fastnet retired after forty-one years."],
            date="2023-07-01",
            url="https://example.com/lighthouse",
        ),
    )
    index(root, [corpus], uri)
    response = answerer.ask("How many years did the Fastnet lighthouse keeper serve?")
    assert response.answer is not None
    assert "forty-one years" in response.answer.sentence
    assert response.citations[0].url == "https://example.com/lighthouse"


# ----------------------------------------------------------------------------- headline route
SQUID = "Did Netflix green light a second season of Squid Game?"
GOLD = "https://www.example.com/video/0"


def headline_urls(r: Retriever, vector_of: str, k: int = 10, f: Filters | None = None) -> set[str]:
    """URLs of the articles whose headlines are nearest the text ``vector_of``."""
    view = r.view()
    heads = view.headlines(HashEmbedder(DIM).embed([vector_of]), k, f)  # type: ignore[attr-defined]
    leads = view.lead(list(heads))  # type: ignore[attr-defined]
    return {rec.url for rec in view.records(list(leads.values())).values()}


def test_a_question_near_a_headline_lifts_its_article(tmp_path: Path, backend: Uri) -> None:
    corpus, root = write_video_pages(tmp_path / "corpus"), tmp_path / "idx"
    uri = backend(root)
    index(root, [corpus], uri)
    off = Retriever(
        root, HashEmbedder(DIM), candidates=5, headline_weight=0.0, backend=open_backend(root, uri)
    )
    on = Retriever(
        root, HashEmbedder(DIM), candidates=5, headline_weight=0.5, backend=open_backend(root, uri)
    )
    before = [h.url for h in off.search(SQUID, k=8)]
    after = [h.url for h in on.search(SQUID, k=8)]
    # The page's only text is a survey: its headline brings it in, below the reader's five.
    assert GOLD not in before and GOLD in after
    assert after[:5] == before[:5] and after.index(GOLD) >= 5
    assert "https://www.example.com/video/1" not in after

    # A deleted article's headline is gone; a changed title is searched under its new words.
    (corpus / "video0.txt").unlink()
    write(
        corpus / "video1.txt",
        article_text(
            "Volcano erupts in Iceland", [SURVEY], "2022-06-10", "https://www.example.com/video/1"
        ),
    )
    index(root, [corpus], uri)
    assert GOLD not in [h.url for h in on.search(SQUID, k=8)]
    assert GOLD not in headline_urls(on, HEADS[0])
    assert headline_urls(on, "Volcano erupts in Iceland", k=1) == {
        "https://www.example.com/video/1"
    }
    assert headline_urls(on, HEADS[1], k=1) != {"https://www.example.com/video/1"}


def test_headline_filters_apply_inside_the_search(tmp_path: Path, backend: Uri) -> None:
    root = tmp_path / "idx"
    uri = backend(root)
    index(root, [_records(tmp_path / "in")], uri, prune=False)
    with open_store(root) as store:
        rows = store.db.execute("SELECT url, date, source FROM articles").fetchall()
    r = retriever(root, uri)
    for f in FILTERS:  # one index for every filter: a Milvus collection costs seconds
        want = {str(u) for u, d, s in rows if _allowed(f, str(d), str(s))}
        # All 24 titles are distinct: every allowed headline, and only those, come back.
        assert headline_urls(r, "Harbour report", k=50, f=f) == want, f
        # Five a search: a filter applied after the search would leave fewer.
        assert len(headline_urls(r, "Harbour report", k=5, f=f)) == min(5, len(want)), f


def test_a_title_two_live_articles_share_is_not_searched(tmp_path: Path, backend: Uri) -> None:
    folder, root = tmp_path / "corpus", tmp_path / "idx"
    folder.mkdir()
    uri = backend(root)
    bodies = ["The river rose overnight.", "Markets fell at the open.", "A new bridge opened."]
    for i, body in enumerate(bodies[:2]):
        write(
            folder / f"live{i}.txt",
            article_text("Live updates", [body], url=f"https://www.example.com/live/{i}"),
        )
    index(root, [folder], uri)
    r = retriever(root, uri)
    assert headline_urls(r, "Live updates") == set()
    # A third article with the same title (the title stays shared), then two of the three go:
    # the title is one article's own again and its headline is searched.
    write(
        folder / "live2.txt",
        article_text("Live updates", [bodies[2]], url="https://www.example.com/live/2"),
    )
    index(root, [folder], uri)
    assert headline_urls(r, "Live updates") == set()
    (folder / "live1.txt").unlink()
    (folder / "live2.txt").unlink()
    index(root, [folder], uri)
    assert headline_urls(r, "Live updates") == {"https://www.example.com/live/0"}
    # And shared again once another article takes the title.
    write(
        folder / "live3.txt",
        article_text(
            "Live updates", ["Rain is due at noon."], url="https://www.example.com/live/3"
        ),
    )
    index(root, [folder], uri)
    assert headline_urls(r, "Live updates") == set()
