"""The backend contract with the real model: the reference question and a new article get the
same cited paragraphs from the embedded index, a Milvus Lite file and a Milvus Lite server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.answer import Answerer
from qa.index.embed import Embedder
from qa.index.indexer import Indexer
from qa.search.engines import open_backend, publisher_for
from qa.search.retriever import Retriever
from qa.types import Response
from tests.unit.index.test_indexer import article_text, write

pytestmark = [pytest.mark.integration, pytest.mark.milvus, pytest.mark.usefixtures("release_lite")]
QUESTION = "Who boycotted the Sochi conference?"
NEW_QUESTION = "How many years did the Fastnet lighthouse keeper serve?"


def _ask(root: Path, uri: str, embedder: Embedder, question: str) -> Response:
    retriever = Retriever(root, embedder, backend=open_backend(root, uri))
    return Answerer(root, embedder=embedder, retriever=retriever).ask(question)


def _cited(response: Response) -> tuple[str, int, str]:
    cite = response.answer_citation
    assert cite is not None
    return cite.url, cite.paragraph, cite.passage


@pytest.mark.parametrize("kind", ["lite", "server"])
def test_every_backend_cites_the_same_paragraphs(
    kind: str,
    tmp_path: Path,
    real_embedder: Embedder,
    reference_article: Path,
    request: pytest.FixtureRequest,
) -> None:
    pytest.importorskip("pymilvus")
    uri = (
        f"milvus:{tmp_path / 'm.db'}"
        if kind == "lite"
        else str(request.getfixturevalue("milvus_server"))
    )
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(reference_article, corpus / reference_article.name)
    roots = {"embedded": tmp_path / "emb", uri: tmp_path / "milvus"}
    for backend, root in roots.items():
        Indexer(root, real_embedder, backend=publisher_for(root, backend)).update([corpus])
    want = _ask(roots["embedded"], "embedded", real_embedder, QUESTION)
    got = _ask(roots[uri], uri, real_embedder, QUESTION)
    assert "main opposition faction" in want.answer.sentence if want.answer else False
    assert _cited(got) == _cited(want)
    assert [c.passage for c in got.citations] == [c.passage for c in want.citations]

    write(
        corpus / "lighthouse.txt",
        article_text(
            "Lighthouse keeper retires",
            ["The last lighthouse keeper of Fastnet retired after forty-one years on the rock."],
            date="2023-07-01",
            url="https://example.com/lighthouse",
        ),
    )
    for backend, root in roots.items():
        Indexer(root, real_embedder, backend=publisher_for(root, backend)).update([corpus])
    want = _ask(roots["embedded"], "embedded", real_embedder, NEW_QUESTION)
    got = _ask(roots[uri], uri, real_embedder, NEW_QUESTION)
    assert got.answer is not None and "forty-one years" in got.answer.sentence
    assert _cited(got) == _cited(want)
