"""What only the Milvus backend has: its URIs, switching backends, a killed publish, its own
rankers, one-line errors for a bad URI or a server that is not there, and the headline
collection: the same headline route as the embedded index, a killed publish of it, and one
written for a collection published before headlines were kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qa.errors import BackendError, BadBackendURI, IndexMismatch, UsageError
from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.index.indexer import Indexer
from qa.search.engines import backend_check, open_backend, publisher_for
from qa.search.milvus import MilvusBackend, dense_index
from qa.search.retriever import Retriever
from qa.search.uri import parse_backend, published_to
from tests.conftest import NewsQA
from tests.milvus_fixtures import free_port
from tests.unit.index.test_indexer import article_text, write
from tests.unit.search.test_backend_contract import (
    DIM,
    SQUID,
    _corpus,
    index,
    retriever,
    titles,
)
from tests.unit.search.test_headline_fusion import HEADS, write_video_pages

pytestmark = [pytest.mark.milvus, pytest.mark.usefixtures("release_lite")]


def test_backend_uris_parse_to_one_spelling(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert parse_backend(" Embedded ").identity == "embedded"
    lite = parse_backend("milvus:sub/../x.db")
    assert lite.kind == "lite" and lite.target == str(tmp_path.resolve() / "x.db")
    assert parse_backend("milvus://db.example:19540").identity == "milvus://db.example:19540"
    assert parse_backend("milvus://db.example").identity == "milvus://db.example:19530"
    assert parse_backend("milvus://db.example:19540").client_uri == "http://db.example:19540"


@pytest.mark.parametrize(
    "bad",
    [
        "faiss",
        "milvus:x.sqlite",
        "milvus:.db",
        "milvus:nowhere/x.db",
        "milvus://:19530",
        "milvus://host:0",
        "milvus://host:port",
        "milvus://host:70000",
        "http://host:19530",
    ],
)
def test_bad_backend_uris_are_refused(bad: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadBackendURI, match=r"use embedded, milvus:PATH\.db"):
        parse_backend(bad)


def test_a_bad_uri_and_an_unreachable_server_are_one_line(tmp_path: Path, newsqa: NewsQA) -> None:
    corpus = _corpus(tmp_path / "corpus")
    run = newsqa("index", str(corpus), "--index-dir", str(tmp_path / "i"), "--backend", "faiss")
    assert run.code == 2 and len(run.err_lines) == 1
    assert "use embedded, milvus:PATH.db" in run.err
    run = newsqa("stats", "--index-dir", str(tmp_path / "i"), env={"NEWSQA_BACKEND": "x"})
    assert run.code == 2 and len(run.err_lines) == 1 and "NEWSQA_BACKEND" in run.err
    Indexer(tmp_path / "i", HashEmbedder(DIM)).update([corpus])
    port = free_port()  # nothing listens there
    run = newsqa(
        "stats", "--index-dir", str(tmp_path / "i"), "--backend", f"milvus://127.0.0.1:{port}"
    )
    assert run.code == 1 and len(run.err_lines) == 1, run.err
    assert f"cannot reach Milvus at 127.0.0.1:{port}" in run.err


def test_switching_backends_republishes_instead_of_mixing(tmp_path: Path) -> None:
    corpus, root = _corpus(tmp_path / "corpus"), tmp_path / "idx"
    lite = f"milvus:{tmp_path / 'm.db'}"
    index(root, [corpus], "embedded")
    index(root, [corpus], lite)  # nothing changed in the corpus: published there in full
    with open_store(root) as store:
        assert published_to(store) == parse_backend(lite).identity
        assert store.current_gen == 2
    assert titles(retriever(root, lite, "bm25"), "ferry strike") == ["Ferry strike ends"]
    with pytest.raises(IndexMismatch, match="published to milvus:"):
        retriever(root, "embedded").search("ferry")
    # A command that names no backend uses the index's own.
    assert isinstance(open_backend(root), MilvusBackend)

    (corpus / "ferry.txt").unlink()
    index(root, [corpus], "embedded")  # back: a full embedded generation, without the ferry
    assert titles(retriever(root, "embedded", "bm25"), "ferry strike") == []
    assert titles(retriever(root, "embedded", "dense"), "tungsten", k=5) == [
        "Tungsten mine reopens"
    ]
    with pytest.raises(IndexMismatch, match="published to embedded"):
        retriever(root, lite).search("ferry")
    index(root, [corpus], lite)  # and there again: the stale ferry row is not carried over
    assert titles(retriever(root, lite, "bm25"), "ferry strike") == []
    assert backend_check(root, lite) == []


class _Killed(Exception):
    pass


def test_a_killed_publish_leaves_the_collection_consistent_and_the_next_run_converges(
    tmp_path: Path, monkeypatch: Any
) -> None:
    corpus, root = _corpus(tmp_path / "corpus"), tmp_path / "idx"
    lite = f"milvus:{tmp_path / 'm.db'}"
    index(root, [corpus], lite)
    for i in range(6):
        write(
            corpus / f"extra{i}.txt",
            article_text(
                f"Extra story {i}",
                [f"Canal barge number {i} sank near Leeds."],
                url=f"https://example.com/extra{i}",
            ),
        )
    (corpus / "ferry.txt").unlink()
    backend = publisher_for(root, lite)
    assert isinstance(backend, MilvusBackend)
    backend.batch = 2
    client = backend.client()
    real_upsert, calls = client.upsert, []

    def upsert(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:  # the run dies halfway through publishing
            raise _Killed()
        return real_upsert(*args, **kwargs)

    monkeypatch.setattr(client, "upsert", upsert)
    with pytest.raises(_Killed):
        Indexer(root, HashEmbedder(DIM), backend=backend).update([corpus])
    # Readers still see generation 1 exactly, ferry included, none of the half-published rows.
    assert backend_check(root, lite) == []
    assert titles(retriever(root, lite, "bm25"), "ferry strike") == ["Ferry strike ends"]
    assert titles(retriever(root, lite, "bm25"), "canal barge Leeds") == []
    monkeypatch.undo()

    # Before the next run, one of the half-published articles goes again: its rows must go.
    (corpus / "extra0.txt").unlink()
    index(root, [corpus], lite)
    assert backend_check(root, lite) == []
    assert titles(retriever(root, lite, "bm25"), "ferry strike") == []
    found = titles(retriever(root, lite, "bm25"), "canal barge Leeds")
    assert sorted(found) == [f"Extra story {i}" for i in range(1, 6)]
    # The check can fail: a row missing from the collection is reported.
    with open_store(root) as store:
        name = backend.collection(store)
    one = client.query(name, filter="deleted_gen == 0", output_fields=["id"], limit=1)[0]["id"]
    client.delete(name, ids=[one])
    problems = backend_check(root, lite)
    assert len(problems) == 1 and "missing from" in problems[0]


def test_milvus_rankers_fuse_inside_the_engine(tmp_path: Path) -> None:
    corpus, root = _corpus(tmp_path / "corpus"), tmp_path / "idx"
    lite = f"milvus:{tmp_path / 'm.db'}"
    index(root, [corpus], lite)
    for fusion in ("milvus-rrf", "milvus-weighted"):
        assert titles(retriever(root, lite, fusion), "ferry strike Calais", k=1) == [
            "Ferry strike ends"
        ]
    index(tmp_path / "emb", [corpus], "embedded")
    with pytest.raises(UsageError, match="needs a Milvus backend"):
        retriever(tmp_path / "emb", "embedded", "milvus-rrf").search("ferry")


def test_a_lite_file_held_by_another_process_is_one_error(tmp_path: Path) -> None:
    backend = MilvusBackend(tmp_path, parse_backend(f"milvus:{tmp_path / 'm.db'}"))
    monkey = pytest.MonkeyPatch()
    from milvus_lite.server_manager import server_manager_instance

    monkey.setattr(server_manager_instance, "start_and_get_uri", lambda *a, **k: None)
    try:
        with pytest.raises(BackendError, match="one process at a time opens a Lite file"):
            backend.client()
    finally:
        monkey.undo()


def test_the_dense_index_is_exact_up_to_200000_passages_then_ivf_sq8() -> None:
    assert dense_index(200_000)["type"] == "FLAT"
    big = dense_index(3_000_000)
    assert big["type"] == "IVF_SQ8"
    assert big["build"]["nlist"] == 8192 and big["search"]["nprobe"] == 128


def test_stats_shows_and_checks_the_index_own_backend(tmp_path: Path, newsqa: NewsQA) -> None:
    corpus, root = _corpus(tmp_path / "corpus"), tmp_path / "idx"
    lite = f"milvus:{tmp_path / 'm.db'}"
    index(root, [corpus], lite)
    run = newsqa("stats", "--json", "--index-dir", str(root))  # no --backend: the index's own
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert doc["backend"] == parse_backend(lite).identity
    assert doc["collection_rows"] == doc["passages"] == 2
    assert doc["dense_index"] == "FLAT"
    assert doc["headline_vectors"] == 2  # both articles are titled
    assert newsqa("stats", "--check", "--index-dir", str(root)).code == 0
    # As a Lite file opened by a new process finds them: released; the check loads them.
    backend = MilvusBackend(root, parse_backend(lite))
    with open_store(root) as store:
        name = backend.collection(store)
    for collection in (name, name + "_heads"):
        backend.client().release_collection(collection)
    assert backend.problems() == []
    run = newsqa("stats", "--check", "--index-dir", str(root), "--backend", "embedded")
    assert run.code == 1 and "published to milvus:" in run.err


def _heads(root: Path, uri: str, text: str, k: int = 10) -> dict[str, float]:
    view = retriever(root, uri).view()
    found: dict[str, float] = view.headlines(HashEmbedder(DIM).embed([text]), k, None)  # type: ignore[attr-defined]
    return found


def test_the_headline_route_ranks_alike_on_both_backends(tmp_path: Path) -> None:
    corpus = write_video_pages(tmp_path / "corpus")
    roots = {"embedded": tmp_path / "emb", f"milvus:{tmp_path / 'm.db'}": tmp_path / "mil"}
    for uri, root in roots.items():
        index(root, [corpus], uri)
    (emb, e_root), (lite, m_root) = roots.items()
    for text in [SQUID, "Taco Bell pizza", "Senate budget", "Netflix season of the show"]:
        want, got = _heads(e_root, emb, text), _heads(m_root, lite, text)
        # The same headlines at the same cosines (equal cosines may come in either order).
        assert got == pytest.approx(want, abs=1e-4), text
        urls = []
        for uri, root in roots.items():
            r = Retriever(root, HashEmbedder(DIM), candidates=5, backend=open_backend(root, uri))
            urls.append([(h.url, round(h.score, 4)) for h in r.search(text, k=8)])
        assert sorted(urls[0]) == sorted(urls[1]), text
        assert [x for _, x in urls[0]] == [x for _, x in urls[1]], text


def test_a_killed_headline_publish_converges(tmp_path: Path, monkeypatch: Any) -> None:
    corpus, root = write_video_pages(tmp_path / "corpus"), tmp_path / "idx"
    lite = f"milvus:{tmp_path / 'm.db'}"
    index(root, [corpus], lite)
    for i in range(4):
        write(
            corpus / f"extra{i}.txt",
            article_text(
                f"Canal barge {i} sinks near Leeds", ["A barge sank."], url=f"https://x.example/{i}"
            ),
        )
    (corpus / "video2.txt").unlink()
    backend = publisher_for(root, lite)
    assert isinstance(backend, MilvusBackend)
    backend.batch = 1
    client = backend.client()
    real_upsert, calls = client.upsert, []

    def upsert(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.endswith("_heads"):
            calls.append(1)
            if len(calls) == 3:  # the run dies halfway through publishing the headlines
                raise _Killed()
        return real_upsert(name, *args, **kwargs)

    monkeypatch.setattr(client, "upsert", upsert)
    with pytest.raises(_Killed):
        Indexer(root, HashEmbedder(DIM), backend=backend).update([corpus])
    monkeypatch.undo()
    # Readers still see generation 1: the storm page's headline, none of the new ones.
    assert backend_check(root, lite) == []
    storm = "https://www.example.com/video/2"
    view = retriever(root, lite).view()
    found = _heads(root, lite, HEADS[2], k=1)
    assert [r.url for r in view.records(list(view.lead(list(found)).values())).values()] == [storm]  # type: ignore[attr-defined]
    assert max(_heads(root, lite, "Canal barge 1 sinks near Leeds").values()) < 0.9

    (corpus / "extra0.txt").unlink()  # one of the half-published articles goes again
    index(root, [corpus], lite)
    assert backend_check(root, lite) == []
    assert max(_heads(root, lite, HEADS[2]).values()) < 0.9
    assert max(_heads(root, lite, "Canal barge 0 sinks near Leeds").values()) < 0.99
    assert max(_heads(root, lite, "Canal barge 3 sinks near Leeds").values()) > 0.99
    # The check can fail: a headline row missing from its collection is reported.
    with open_store(root) as store:
        heads = backend.collection(store) + "_heads"
    one = client.query(heads, filter="deleted_gen == 0", output_fields=["id"], limit=1)[0]["id"]
    client.delete(heads, ids=[one])
    problems = backend_check(root, lite)
    assert len(problems) == 1 and "headline(s) of generation" in problems[0]


def test_a_collection_published_before_headlines_gets_them_from_the_next_index_run(
    tmp_path: Path,
) -> None:
    corpus, root = write_video_pages(tmp_path / "corpus"), tmp_path / "idx"
    lite = f"milvus:{tmp_path / 'm.db'}"
    index(root, [corpus], lite)
    backend = publisher_for(root, lite)
    assert isinstance(backend, MilvusBackend)
    with open_store(root) as store:
        heads, gen = backend.collection(store) + "_heads", store.current_gen
    backend.client().drop_collection(heads)  # as an index published before headlines were kept
    assert _heads(root, lite, HEADS[0]) == {}  # no route, as before
    assert backend.describe()["headline_vectors"] is None  # `stats` says so
    assert backend_check(root, lite) == [
        f"no headline collection {heads}: run `newsqa index` to write it"
    ]
    index(root, [corpus], lite)  # nothing changed in the corpus
    with open_store(root) as store:
        assert store.current_gen == gen + 1
    assert backend_check(root, lite) == []
    assert max(_heads(root, lite, HEADS[0]).values()) > 0.99
