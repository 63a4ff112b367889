"""FallbackReader: the exact span when it is confident, else the best sentence, else nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from qa.answer import Answerer, make_reader
from qa.index.embed import HashEmbedder
from qa.index.indexer import Indexer
from qa.reader import span as span_module
from qa.reader.base import FallbackReader
from qa.reader.sentence import SentenceReader
from qa.reader.span import SpanReader
from qa.types import Answer, Hit, Passage, Span

TEXT = "The mayor, Ann Lee, opened the bridge on Monday."


def _hit() -> Hit:
    p = Passage(id="p1", article_id="a1", paragraph=0, start=0, end=len(TEXT), text=TEXT)
    return Hit(passage=p, score=1.0, rank=1, title="Bridge", date="", url="", source="")


class _Fixed:
    """A reader that returns one answer of a given kind and confidence."""

    def __init__(self, kind: str, confidence: float, threshold: float) -> None:
        self.kind = kind
        self.confidence = confidence
        self.threshold = threshold
        self.calls = 0

    def read(self, question: str, passages: Sequence[Hit]) -> list[Answer]:
        self.calls += 1
        hit = passages[0]
        span = Span(11, 18) if self.kind == "span" else Span(0, len(TEXT))
        return [
            Answer(
                text=TEXT[span.start : span.end],
                sentence=TEXT,
                confidence=self.confidence,
                hit=hit,
                span=span,
                sentence_span=Span(0, len(TEXT)),
                kind=self.kind,
            )
        ]


@pytest.mark.parametrize(
    ("span_conf", "sentence_conf", "shown", "sentence_read"),
    [
        (0.9, 0.9, "span", False),  # a confident span wins; the sentence reader is not run
        (0.1, 0.8, "sentence", True),  # an unsure span falls back to a confident sentence
        (0.1, 0.2, None, True),  # neither clears: no answer, the span's guess is reported
    ],
)
def test_fallback_order(
    span_conf: float, sentence_conf: float, shown: str | None, sentence_read: bool
) -> None:
    primary = _Fixed("span", span_conf, threshold=0.35)
    fallback = _Fixed("sentence", sentence_conf, threshold=0.5)
    reader = FallbackReader(primary, fallback)
    answers = reader.read("Who opened the bridge?", [_hit()])
    assert (fallback.calls == 1) is sentence_read
    best = answers[0]
    clears = best.confidence >= reader.threshold_for(best)
    assert (best.kind if clears else None) == shown
    if shown is None:
        assert best.kind == "span" and best.confidence == span_conf


def test_each_kind_keeps_its_own_threshold() -> None:
    reader = FallbackReader(_Fixed("span", 0.3, 0.35), _Fixed("sentence", 0.45, 0.5))
    span, sentence = (reader.primary.read("q", [_hit()])[0], reader.fallback.read("q", [_hit()])[0])
    assert reader.threshold_for(span) == 0.35 and reader.threshold_for(sentence) == 0.5
    assert reader.threshold == 0.35


def test_answerer_uses_the_threshold_of_the_answer_kind(tmp_path: Path) -> None:
    corpus = tmp_path / "a.txt"
    corpus.write_text(
        f"Bridge opens\n\nMarch 1, 2024\n\n{TEXT}\n\nOriginal url:\n<https://x.example/b>\n",
        encoding="utf-8",
    )
    Indexer(tmp_path / "idx", HashEmbedder()).update([corpus])
    # 0.45 is over the span threshold (0.35) but under the sentence reader's own (0.5).
    reader = FallbackReader(_Fixed("span", 0.3, 0.35), _Fixed("sentence", 0.45, 0.5))
    resp = Answerer(tmp_path / "idx", embedder=HashEmbedder(), reader=reader).ask("Who?")
    assert resp.answer is None
    reader = FallbackReader(_Fixed("span", 0.3, 0.35), _Fixed("sentence", 0.55, 0.5))
    resp = Answerer(tmp_path / "idx", embedder=HashEmbedder(), reader=reader).ask("Who?")
    assert resp.answer is not None and resp.answer.kind == "sentence"
    assert resp.to_json()["answer"]["kind"] == "sentence"
    # An explicit threshold overrides both.
    resp = Answerer(tmp_path / "idx", embedder=HashEmbedder(), reader=reader, threshold=0.9).ask(
        "Who?"
    )
    assert resp.answer is None


def test_auto_is_the_span_reader_with_the_sentence_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(span_module, "shipped_reader_available", lambda: True)
    auto = make_reader("auto")
    assert isinstance(auto, FallbackReader)
    assert isinstance(auto.primary, SpanReader) and auto.primary.spec is None
    assert isinstance(auto.fallback, SentenceReader)


def test_auto_without_a_shipped_reader_is_the_sentence_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(span_module, "shipped_reader_available", lambda: False)
    assert type(make_reader("auto")) is SentenceReader


@pytest.mark.parametrize("available", [True, False])
def test_named_readers_do_not_depend_on_the_shipped_reader(
    available: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(span_module, "shipped_reader_available", lambda: available)
    span = make_reader("span")
    assert type(span) is SpanReader and span.spec is None
    assert type(make_reader("sentence")) is SentenceReader
    folder = make_reader("some/reader-folder")
    assert type(folder) is SpanReader and folder.spec == "some/reader-folder"
