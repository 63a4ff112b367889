"""The data that flows through the pipeline: ingest -> chunk -> embed -> index -> retrieve -> read.

All types are frozen dataclasses. IDs are content hashes so that re-ingesting the same corpus
changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from qa.text import printable


def content_id(*parts: str, length: int = 16) -> str:
    """Stable hex id from text parts (sha256, truncated)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:length]


@dataclass(frozen=True)
class Article:
    """One news article as ingested.

    Attributes:
        title: Headline.
        text: Body text; paragraphs separated by blank lines.
        date: ISO date ``YYYY-MM-DD`` or "" when unknown.
        url: Canonical URL or "".
        source: Publisher / feed name or "".
        origin: Where it came from (file path, plus ``:line`` for JSONL).
        id: Content hash of title and text.
    """

    title: str
    text: str
    date: str = ""
    url: str = ""
    source: str = ""
    origin: str = ""
    id: str = field(default="")

    def __post_init__(self) -> None:
        # Every article enters the system here, whatever its format or origin: control
        # characters (terminal escapes) are made visible before anything stores or shows them.
        for name in ("title", "date", "url", "source"):
            object.__setattr__(self, name, printable(getattr(self, name), single_line=True))
        object.__setattr__(self, "text", printable(self.text))
        if not self.id:
            object.__setattr__(self, "id", content_id(self.title.strip(), self.text.strip()))


@dataclass(frozen=True)
class Passage:
    """A chunk of an article: its own paragraphs, within the token budget.

    ``start``/``end`` are character offsets into ``Article.text``; ``text`` equals that slice.
    """

    id: str
    article_id: str
    paragraph: int
    start: int
    end: int
    text: str
    title: str = ""

    def embed_text(self) -> str:
        """Text given to the embedder: title then passage (the title carries the topic)."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its scores and its article's metadata.

    ``duplicates`` are articles holding the identical passage; ``copies`` are near-duplicate
    articles (syndicated copies of the same story, see :mod:`qa.index.neardup`) whose matching
    passage was collapsed into this hit. ``other_urls`` holds every URL of all of them.
    """

    passage: Passage
    score: float
    rank: int
    title: str
    date: str
    url: str
    source: str
    dense_score: float | None = None
    bm25_score: float | None = None
    duplicates: tuple[str, ...] = ()
    other_urls: tuple[str, ...] = ()
    copies: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """The hit's URL and every URL of its article, its duplicates and its copies."""
        return (self.url, *self.other_urls)


@dataclass(frozen=True)
class Span:
    """Character span inside a passage's text (end exclusive)."""

    start: int
    end: int


@dataclass(frozen=True)
class Citation:
    """A numbered pointer to where an answer comes from."""

    n: int
    article_id: str
    title: str
    date: str
    url: str
    source: str
    paragraph: int
    passage_id: str
    passage: str
    start: int | None
    end: int | None
    article_start: int
    article_end: int
    # Every URL carrying this passage: exact duplicates and near-duplicate copies included.
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class CitedArticle:
    """The citations of one article, in their order: one line of a list of sources.

    Passages keep their own numbers, so that an answer's ``[n]``, the key that opens citation
    n and ``--json`` all name one passage; the line shows them together (``[1, 3, 4]``).
    """

    citations: tuple[Citation, ...]

    @property
    def first(self) -> Citation:
        """The article's first (best ranked) citation; title, date, URL and source are its."""
        return self.citations[0]

    @property
    def numbers(self) -> tuple[int, ...]:
        """Numbers of the article's citations."""
        return tuple(c.n for c in self.citations)

    @property
    def label(self) -> str:
        """``[1, 3, 4]``: the numbers as the sources list shows them."""
        return "[" + ", ".join(str(n) for n in self.numbers) + "]"

    @property
    def paragraphs(self) -> tuple[int, ...]:
        """Paragraph of each citation, in the order of :attr:`numbers`."""
        return tuple(c.paragraph for c in self.citations)

    @property
    def other_urls(self) -> tuple[str, ...]:
        """Every other URL carrying any of the passages (duplicates, syndicated copies)."""
        every = (u for c in self.citations for u in c.urls)
        return tuple(dict.fromkeys(u for u in every if u and u != self.first.url))

    def holds(self, numbers: Collection[int]) -> bool:
        """Whether any of the article's citations is among ``numbers``."""
        return any(n in numbers for n in self.numbers)

    def opens(self, cited: int | None) -> Citation:
        """The citation to show for the whole line: ``cited`` when it is here, else the first."""
        return next((c for c in self.citations if c.n == cited), self.first)


def by_article(citations: Iterable[Citation]) -> list[CitedArticle]:
    """Citations grouped by article, the articles in the order of their first citation.

    Args:
        citations: Numbered citations, best first.

    Returns:
        One entry per article, each with its citations in their given order.
    """
    groups: dict[str, list[Citation]] = {}
    for c in citations:
        groups.setdefault(c.article_id, []).append(c)
    return [CitedArticle(tuple(cs)) for cs in groups.values()]


@dataclass(frozen=True)
class Answer:
    """An extractive answer: the span text, its sentence and where it sits in a hit's passage."""

    text: str
    sentence: str
    confidence: float
    hit: Hit
    span: Span
    sentence_span: Span
    score: float = 0.0
    extra_hits: tuple[Hit, ...] = ()
    # "span": an exact answer inside its sentence; "sentence": the whole sentence is the answer
    # (the baseline reader, or the fallback when no span cleared the span reader's threshold).
    kind: str = "span"


@dataclass(frozen=True)
class Response:
    """Everything shown for one question."""

    question: str
    answer: Answer | None
    answers: list[Answer]
    citations: list[Citation]
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    searched_for: str = ""
    # What was searched, by date: "articles up to 2022-06-16, recent first" (qa.search.when).
    scope: str = ""

    @property
    def answer_citation(self) -> Citation | None:
        """The citation of the passage the answer came from."""
        if self.answer is None:
            return None
        for c in self.citations:
            if c.passage_id == self.answer.hit.passage.id:
                return c
        return None

    def answer_citations(self) -> list[int]:
        """Numbers of every citation holding the answer (the same answer merged across
        passages and syndicated copies), the answer's own first."""
        if self.answer is None:
            return []
        held = [self.answer.hit.passage.id, *(h.passage.id for h in self.answer.extra_hits)]
        by_id = {c.passage_id: c.n for c in self.citations}
        return list(dict.fromkeys(by_id[p] for p in held if p in by_id))

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` shape documented in the README."""
        cite = self.answer_citation
        answer = None
        if self.answer is not None:
            answer = {
                "text": self.answer.text,
                "sentence": self.answer.sentence,
                "confidence": round(self.answer.confidence, 4),
                "citation": cite.n if cite else None,
                "citations": self.answer_citations(),
                "kind": self.answer.kind,
            }
        return {
            "question": self.question,
            "answer": answer,
            "citations": [
                {
                    "n": c.n,
                    "article_id": c.article_id,
                    "title": c.title,
                    "date": c.date,
                    "url": c.url,
                    "source": c.source,
                    "paragraph": c.paragraph,
                    "start": c.start,
                    "end": c.end,
                    "passage": c.passage,
                    "urls": list(c.urls),
                }
                for c in self.citations
            ],
            "scope": self.scope,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }
