"""End-to-end tests with the real MiniLM embedder: index, ask, re-index, real news.

The CLI runs in tests/unit/cli (fake embedder) and tests/integration/cli (real one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import SHARED_DIR, needs_shared

from qa.answer import Answerer
from qa.chats import Turn
from qa.followup import QueryRewriter, RetrieverStats, answer_rewritten
from qa.index.chunk import Chunker, tiktoken_counter
from qa.index.embed import Embedder, HashEmbedder
from qa.index.folder import open_store
from qa.index.indexer import Indexer
from qa.reader.base import FallbackReader
from qa.reader.sentence import SentenceReader
from qa.reader.span import SpanReader, shipped_reader_available

pytestmark = pytest.mark.integration

REFERENCE_URL = (
    "https://www.themoscowtimes.com/2018/01/30/"
    "putin-stages-syria-peace-conference-boycotted-by-assad-opponents-a60333"
)


@pytest.fixture(scope="module")
def reference_index(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder, reference_article: Path
) -> Path:
    root = tmp_path_factory.mktemp("ref-index")
    report = Indexer(root, real_embedder).update([reference_article])
    assert report.added == 1 and report.skipped == 0 and report.passages > 0
    return root


def test_boycott_question(reference_index: Path, real_embedder: Embedder) -> None:
    response = Answerer(reference_index, embedder=real_embedder).ask(
        "Who boycotted the Sochi conference?"
    )
    answer = response.answer
    assert answer is not None
    assert "main opposition faction" in answer.sentence
    assert "wouldn't attend" in answer.sentence
    cite = response.answer_citation
    assert cite is not None
    assert cite.url == REFERENCE_URL
    assert cite.start is not None and cite.end is not None
    assert cite.passage[cite.start : cite.end] == answer.text
    assert answer.hit.passage.text == cite.passage
    # Article offsets point at the same text in the stored article.
    with open_store(reference_index) as store:
        article = store.article(cite.article_id)
    assert article["text"][cite.article_start : cite.article_end] == answer.text

    doc = json.loads(json.dumps(response.to_json()))
    assert {"question", "answer", "citations", "timings_ms"} <= set(doc)
    assert doc["question"] == "Who boycotted the Sochi conference?"
    assert {"text", "sentence", "confidence", "citation"} <= set(doc["answer"])
    assert doc["answer"]["text"] == answer.text
    assert doc["answer"]["confidence"] == round(answer.confidence, 4)
    assert doc["citations"]
    keys = {"n", "article_id", "title", "date", "url", "paragraph", "start", "end", "passage"}
    for n, c in enumerate(doc["citations"], start=1):
        assert keys <= set(c)
        assert c["n"] == n
        assert c["date"] == "2018-01-30"
    cited = doc["citations"][doc["answer"]["citation"] - 1]
    assert cited["url"] == REFERENCE_URL
    assert cited["passage"][cited["start"] : cited["end"]] == doc["answer"]["text"]
    assert {"retrieve", "read", "total"} <= set(doc["timings_ms"])


def test_unrelated_question_has_no_answer(reference_index: Path, real_embedder: Embedder) -> None:
    response = Answerer(reference_index, embedder=real_embedder).ask(
        "What is the boiling point of tungsten?"
    )
    observed = response.answers[0].confidence if response.answers else None
    assert response.answer is None, f"confidence {observed}"
    assert response.to_json()["answer"] is None


# The span reader alone (no sentence fallback), so that its own behaviour is tested.
SPAN_READER = "span"


def test_the_span_reader_ships() -> None:
    assert shipped_reader_available()


# Issue 3's acceptance test, not met yet. strict=True: the day the reader reads this paraphrase
# right, the XPASS fails the run, so that this mark and test_default_reader_falls_back_to_the_
# sentence (which relies on the reader being unsure here) are revisited together.
@pytest.mark.xfail(
    strict=True,
    reason="checks that the span reader alone answers 'Who boycotted the Sochi conference?' with "
    "an exact span naming the opposition; the shipped reader misreads the paraphrase ('said it "
    "wouldn't attend' for 'boycotted') and picks 'The Kremlin', under its threshold",
)
def test_span_reader_answers_with_the_exact_span(
    reference_index: Path, real_embedder: Embedder
) -> None:
    response = Answerer(reference_index, embedder=real_embedder, reader=SPAN_READER).ask(
        "Who boycotted the Sochi conference?"
    )
    answer = response.answer
    observed = [(a.text, round(a.confidence, 3)) for a in response.answers[:3]]
    assert answer is not None, observed
    assert "opposition" in answer.text
    # A span, not the whole sentence; the sentence is still shown around it.
    assert len(answer.text) < len(answer.sentence) and answer.text in answer.sentence
    assert answer.kind == "span"
    cite = response.answer_citation
    assert cite is not None and cite.url == REFERENCE_URL
    assert cite.passage[cite.start : cite.end] == answer.text


def test_span_reader_answers_a_plain_fact_with_its_span(
    reference_index: Path, real_embedder: Embedder
) -> None:
    response = Answerer(reference_index, embedder=real_embedder, reader=SPAN_READER).ask(
        "How many Syrians did the Kremlin invite to Sochi?"
    )
    answer = response.answer
    assert answer is not None
    assert "1,600" in answer.text and len(answer.text) < 30
    assert "main opposition faction" in answer.sentence
    cite = response.answer_citation
    assert cite is not None and cite.passage[cite.start : cite.end] == answer.text


@pytest.mark.parametrize("reader", [SPAN_READER, "auto"])
@pytest.mark.parametrize(
    "question",
    [
        "What is the boiling point of tungsten?",
        "Who won the 2018 FIFA World Cup final?",
    ],
)
def test_span_reader_says_no_answer_when_the_corpus_has_none(
    reference_index: Path, real_embedder: Embedder, question: str, reader: str
) -> None:
    response = Answerer(reference_index, embedder=real_embedder, reader=reader).ask(question)
    observed = [(a.text, round(a.confidence, 3)) for a in response.answers[:3]]
    assert response.answer is None, observed


def test_default_reader_gives_the_exact_span_when_it_is_confident(
    reference_index: Path, real_embedder: Embedder
) -> None:
    response = Answerer(reference_index, embedder=real_embedder).ask(
        "How many Syrians did the Kremlin invite to Sochi?"
    )
    assert response.answer is not None and response.answer.kind == "span"
    assert "1,600" in response.answer.text and len(response.answer.text) < 30


@pytest.mark.skipif(
    not shipped_reader_available(), reason="without the span reader, auto is the sentence reader"
)
def test_default_reader_falls_back_to_the_sentence(
    reference_index: Path, real_embedder: Embedder
) -> None:
    # The span reader is unsure on this paraphrase (the strict xfail above pins that); the
    # default shows the sentence that answers instead of "no answer", marked as a sentence.
    answerer = Answerer(reference_index, embedder=real_embedder)
    assert isinstance(answerer.reader, FallbackReader)
    response = answerer.ask("Who boycotted the Sochi conference?")
    answer = response.answer
    assert answer is not None
    assert answer.kind == "sentence" and answer.text == answer.sentence
    assert "main opposition faction" in answer.text
    assert response.answers[0].confidence >= answerer.reader.fallback.threshold
    assert response.to_json()["answer"]["kind"] == "sentence"


def test_fallback_shows_the_sentence_whenever_no_span_clears(
    reference_index: Path, real_embedder: Embedder
) -> None:
    # Forced: a span threshold over 1 is never cleared, whatever the reader's weights.
    reader = FallbackReader(SpanReader(threshold=1.01), SentenceReader())
    response = Answerer(reference_index, embedder=real_embedder, reader=reader).ask(
        "How many Syrians did the Kremlin invite to Sochi?"
    )
    answer = response.answer
    assert answer is not None and answer.kind == "sentence"
    assert answer.text == answer.sentence and "1,600" in answer.text


def test_a_rewritten_follow_up_is_retrieved_with_the_rewrite_and_read_as_typed(
    reference_index: Path, real_embedder: Embedder
) -> None:
    answerer = Answerer(reference_index, embedder=real_embedder)
    # A new topic the chat's rewriter took for a follow-up: the Sochi words find Sochi
    # passages, but the question read is about tungsten, so there is no answer (reading the
    # rewrite answered it with the Kremlin sentence, confidence 0.83).
    query = "What is the boiling point of tungsten? boycotted Sochi conference Kremlin Syrians"
    response = answerer.ask("What is the boiling point of tungsten?", search_query=query)
    assert response.searched_for == query
    assert response.hits and "Sochi" in " ".join(h.passage.text for h in response.hits)
    assert response.answer is None, [(a.text, a.confidence) for a in response.answers[:2]]
    # A real follow-up still gets its answer from the passages the rewrite found.
    response = answerer.ask(
        "Who read it?", search_query="Who read it? Putin opening message Sochi congress"
    )
    assert response.answer is not None and "Lavrov" in response.answer.text


def test_a_follow_up_that_leans_back_is_read_with_the_conversation(
    reference_index: Path, real_embedder: Embedder
) -> None:
    # As the chat does: the first answer feeds the rewriter, the follow-up is answered by
    # answer_rewritten. Read as typed, "Who boycotted it?" got the Kurds' sentence (0.96).
    answerer = Answerer(reference_index, embedder=real_embedder)
    rewriter = QueryRewriter(RetrieverStats(answerer.retriever))
    first = answerer.ask("How many Syrians did the Kremlin invite to Sochi?")
    assert first.answer is not None and "1,600" in first.answer.text
    rw = rewriter.rewrite("Who boycotted it?", [Turn.from_response(first).exchange()])
    assert rw.rewritten and rw.leans_back and "Sochi" in rw.added
    response = answer_rewritten(answerer.ask, rw)
    answer = response.answer
    assert answer is not None and response.question == "Who boycotted it?"
    assert "Kurds" not in answer.sentence
    assert "main opposition faction" in answer.sentence


def test_sentence_reader_stays_selectable(reference_index: Path, real_embedder: Embedder) -> None:
    response = Answerer(reference_index, embedder=real_embedder, reader="sentence").ask(
        "Who boycotted the Sochi conference?"
    )
    assert response.answer is not None
    assert response.answer.text == response.answer.sentence
    assert "main opposition faction" in response.answer.text


def _plain(title: str, date: str, paragraphs: list[str], url: str) -> str:
    return f"{title}\n\n{date}\n\n" + "\n\n".join(paragraphs) + f"\n\nOriginal url:\n<{url}>\n"


def _rewrite(path: Path, text: str) -> None:
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns <= old:
        os.utime(path, ns=(old + 1_000_000, old + 1_000_000))


def test_add_change_delete_with_real_model(
    tmp_path: Path, real_embedder: Embedder, reference_article: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / reference_article.name).write_bytes(reference_article.read_bytes())
    root = tmp_path / "index"
    first = Indexer(root, real_embedder).update([corpus])
    assert first.added == 1

    url = "https://www.rivertown.example/2023/04/11/lighthouse"
    article = corpus / "lighthouse.txt"
    _rewrite(
        article,
        _plain(
            "Rivertown restores its old lighthouse",
            "April 11, 2023",
            [
                "The Rivertown council restored the 1870 lighthouse on Gull Point after a storm "
                "damaged its lantern room.",
                "The restoration was paid for by a fishermen's cooperative, which raised 2 million "
                "dollars from its members over three years.",
            ],
            url,
        ),
    )
    added = Indexer(root, real_embedder).update([corpus])
    assert (added.added, added.unchanged, added.articles) == (1, 1, 2)
    assert added.passages_reused == 0 and added.passages_embedded > 0
    answerer = Answerer(root, embedder=real_embedder)
    response = answerer.ask("Who paid for the restoration of the Rivertown lighthouse?")
    assert response.answer is not None
    assert "fishermen's cooperative" in response.answer.sentence
    assert response.answer_citation is not None and response.answer_citation.url == url

    _rewrite(
        article,
        _plain(
            "Rivertown restores its old lighthouse",
            "April 12, 2023",
            [
                "The Rivertown council restored the 1870 lighthouse on Gull Point after a storm "
                "damaged its lantern room.",
                "The restoration was paid for by the regional heritage lottery, which granted 3 "
                "million dollars.",
            ],
            url,
        ),
    )
    changed = Indexer(root, real_embedder).update([corpus])
    assert (changed.added, changed.updated, changed.removed, changed.articles) == (0, 1, 0, 2)
    response = answerer.ask("Who paid for the restoration of the Rivertown lighthouse?")
    assert response.answer is not None
    assert "heritage lottery" in response.answer.sentence
    assert all("cooperative" not in h.passage.text for h in response.hits)
    assert response.answer_citation is not None and response.answer_citation.date == "2023-04-12"

    article.unlink()
    removed = Indexer(root, real_embedder).update([corpus])
    assert (removed.removed, removed.articles) == (1, 1)
    response = answerer.ask("Who paid for the restoration of the Rivertown lighthouse?")
    assert all(h.url != url for h in response.hits)
    assert all(c.url == REFERENCE_URL for c in response.citations)


# -- real news ------------------------------------------------------------------------------


@pytest.mark.shared
@needs_shared("news", "realtimeqa-corpus.jsonl.gz")
def test_real_news_passages_fit_the_model(tmp_path: Path, real_embedder: Embedder) -> None:
    """300 real articles: no passage over 200 tiktoken tokens or over the model window.

    Chunking uses the real model's word-piece tokenizer and the truncation check the real
    model; the vectors come from HashEmbedder because embedding the ~7k passages with MiniLM
    takes minutes on a small CPU and has no bearing on passage sizes.
    """
    import gzip

    news = tmp_path / "news300.jsonl"
    with gzip.open(
        SHARED_DIR / "news" / "realtimeqa-corpus.jsonl.gz", "rt", encoding="utf-8"
    ) as src:
        news.write_text(
            "".join(line for _, line in zip(range(300), src, strict=False)), encoding="utf-8"
        )
    chunker = Chunker()
    assert chunker.model_max_tokens == real_embedder.max_seq_length
    report = Indexer(tmp_path / "idx", HashEmbedder(64), chunker=chunker).update(
        [news], prune=False
    )
    assert report.articles >= 290 and report.passages > report.articles
    with open_store(tmp_path / "idx") as store:
        rows = store.db.execute(
            "SELECT a.title, p.text FROM passages p JOIN articles a ON a.id = p.article_id"
        ).fetchall()
    assert len(rows) == report.passages
    count = tiktoken_counter()
    over = [len(text) for _, text in rows if count(text) > 200]
    assert over == []
    embed_texts = [f"{title}\n{text}" for title, text in rows]
    assert real_embedder.count_truncated(embed_texts) == 0
