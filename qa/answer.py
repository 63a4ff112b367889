"""Question -> retrieve -> read -> a cited response. The one entry point the CLI and TUI use."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

from qa.index.embed import EmbedderLike
from qa.index.folder import embedder_for
from qa.reader.base import FallbackReader, Reader
from qa.reader.sentence import SentenceReader
from qa.search.engines import open_backend
from qa.search.retriever import Filters, Retriever
from qa.search.when import Scope, scope_for
from qa.types import (
    Answer,
    Citation,
    Hit,
    Response,
)


def make_reader(name: str) -> Reader:
    """Reader by name.

    ``span`` is the trained extractive reader (``qa/models/reader``) alone; ``sentence`` the
    baseline; ``auto`` the span reader with the baseline as its fallback when no span is
    confident (:class:`qa.reader.base.FallbackReader`), or the baseline alone when no span reader
    ships with this install. Any other value naming an existing folder or a Hugging Face model
    id loads that QA model.
    """
    from qa.reader.span import SpanReader, shipped_reader_available

    if name == "sentence" or (name == "auto" and not shipped_reader_available()):
        return SentenceReader()
    if name == "auto":
        return FallbackReader(SpanReader(), SentenceReader())
    if name == "span":
        return SpanReader()
    return SpanReader(model=name)


class Answerer:
    """Answers questions from an index folder.

    Args:
        index_dir: Index folder.
        embedder: Query embedder (default: the model the index was built with).
        reader: A Reader or a reader name.
        threshold: Confidence under which the response says there is no answer (default:
            the reader's own calibrated threshold).
        retriever: The retriever (default: one on ``index_dir`` with ``embedder``).
        time_words: Whether the question's time words ("last week", "in 2019") narrow the
            search (:mod:`qa.search.when`); the as-of day always applies.
        backend: The search backend's URI (default: the one the index was published to).
    """

    def __init__(
        self,
        index_dir: Path,
        embedder: EmbedderLike | None = None,
        reader: Reader | str = "auto",
        threshold: float | None = None,
        retriever: Retriever | None = None,
        time_words: bool = True,
        backend: str | None = None,
    ) -> None:
        self.embedder = embedder or embedder_for(index_dir)
        self.retriever = retriever or Retriever(
            index_dir, self.embedder, backend=open_backend(index_dir, backend)
        )
        self.reader = make_reader(reader) if isinstance(reader, str) else reader
        # Each reader's confidence has its own calibration, hence its own threshold.
        self.fixed_threshold = threshold
        self.time_words = time_words
        self.threshold = (
            threshold if threshold is not None else float(getattr(self.reader, "threshold", 0.5))
        )
        self._preloading = _preload(self.reader)

    def clears(self, answer: Answer) -> bool:
        """Whether ``answer`` is confident enough to show (else: "no answer in the corpus")."""
        per_answer = getattr(self.reader, "threshold_for", None)
        if self.fixed_threshold is None and per_answer is not None:
            return answer.confidence >= float(per_answer(answer))
        return answer.confidence >= self.threshold

    def warm_up(self) -> None:
        """Load models and index now instead of on the first question."""
        self.retriever.search("warm up", k=1)

    def ask(
        self,
        question: str,
        k: int = 5,
        filters: Filters | None = None,
        search_query: str | None = None,
        as_of: date | None = None,
    ) -> Response:
        """Answer one question.

        Args:
            question: The question, as the reader reads it.
            k: Passages retrieved (and cited).
            filters: Date/source filters.
            search_query: What to retrieve with, when not the question itself (a follow-up
                rewritten with the conversation's subject: the added words help retrieval,
                but a reader given them reads a question nobody asked).
            as_of: The day the question is asked (default: today): later articles are never
                returned, and recent ones rank first.

        Returns:
            The response; ``answer`` is None when nothing clears the threshold.
        """
        t0 = time.perf_counter()
        day = as_of or date.today()
        scope = scope_for(question, day) if self.time_words else Scope(day)
        try:
            hits = self.retriever.search(
                search_query or question, k=k, filters=filters, scope=scope
            )
        except BaseException:
            # The process may exit on this error: ONNX Runtime aborts it (std::terminate) when
            # the interpreter ends while the preloading thread is still creating a session.
            if self._preloading is not None:
                self._preloading.join()
            raise
        t1 = time.perf_counter()
        answers = self.reader.read(question, hits)
        t2 = time.perf_counter()
        best = answers[0] if answers and self.clears(answers[0]) else None
        citations = [citation_for(i + 1, h, best) for i, h in enumerate(hits)]
        timings = {
            "retrieve": (t1 - t0) * 1000,
            "read": (t2 - t1) * 1000,
            "total": (t2 - t0) * 1000,
        }
        searched = search_query or question
        return Response(
            question, best, answers, citations, hits, timings, searched, scope.describe()
        )


def _preload(reader: Reader) -> threading.Thread | None:
    """Load the span reader's model in a thread while the question is embedded and searched.

    Creating the ONNX Runtime session takes about a quarter of a second and mostly runs outside
    the GIL, beside retrieval; a one-shot ``newsqa ask`` is that much faster. A failure is
    left for the reader's own load to report, on the first question.
    """
    span = getattr(reader, "primary", reader)
    load = getattr(span, "load", None)
    if load is None:
        return None

    def run() -> None:
        try:
            load()
        except Exception:  # reported by read(), which loads again
            return

    thread = threading.Thread(target=run, name="reader-preload", daemon=True)
    thread.start()
    return thread


def citation_for(n: int, hit: Hit, answer: Answer | None) -> Citation:
    """Citation for a hit; offsets are the answer's when the answer came from this hit."""
    p = hit.passage
    holds = answer is not None and answer.hit.passage.id == p.id
    start = answer.span.start if holds and answer else None
    end = answer.span.end if holds and answer else None
    return Citation(
        n=n,
        article_id=p.article_id,
        title=hit.title,
        date=hit.date,
        url=hit.url,
        source=hit.source,
        paragraph=p.paragraph,
        passage_id=p.id,
        passage=p.text,
        start=start,
        end=end,
        article_start=p.start + (start or 0),
        article_end=p.start + (end or 0),
        urls=hit.urls,
    )
