"""The Reader protocol, and the fallback that chains a span reader with the sentence reader.

Every reader implements ``read(question, passages) -> list[Answer]`` (best first): the span
reader (:mod:`qa.reader.span`), the sentence reader (:mod:`qa.reader.sentence`) and
:class:`FallbackReader`, which shows the span when it is confident, else the best sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from qa.types import Answer, Hit


class Reader(Protocol):
    """What the pipeline needs from a reader."""

    def read(self, question: str, passages: Sequence[Hit]) -> list[Answer]:
        """Answers found in ``passages`` for ``question``, best first."""
        ...


class ThresholdReader(Reader, Protocol):
    """A reader whose confidence has its own calibrated no-answer threshold."""

    @property
    def threshold(self) -> float:
        """Confidence under which its best answer is not shown."""
        ...


class FallbackReader:
    """The span reader's exact answer, else the sentence reader's best sentence.

    The exact span is shown when its confidence clears the span reader's threshold. When it
    does not, the best sentence is shown if its confidence clears the sentence reader's own
    threshold (each reader's confidence is calibrated on its own scale, so each keeps its own
    threshold), marked ``kind="sentence"`` so that the user sees it is not an exact answer.
    When neither clears, the span reader's answers come back (its best guess is reported as
    below threshold). This keeps the crisp span where the small reader is sure and the
    baseline's evidence sentence where it is not (e.g. a paraphrase the reader misreads).

    Args:
        primary: The span reader.
        fallback: The sentence reader.
    """

    def __init__(self, primary: ThresholdReader, fallback: ThresholdReader) -> None:
        self.primary = primary
        self.fallback = fallback

    @property
    def threshold(self) -> float:
        """The span reader's threshold (the sentence answers have their own)."""
        return self.primary.threshold

    def threshold_for(self, answer: Answer) -> float:
        """The threshold that applies to ``answer``, by the reader it came from."""
        return self.fallback.threshold if answer.kind == "sentence" else self.primary.threshold

    def read(self, question: str, passages: Sequence[Hit]) -> list[Answer]:
        """Span answers when the best clears; else sentence answers when theirs does.

        Args:
            question: The question.
            passages: Retrieved hits, best first.

        Returns:
            The answers of the reader whose best answer is shown, best first.
        """
        spans = self.primary.read(question, passages)
        if spans and spans[0].confidence >= self.primary.threshold:
            return spans
        sentences = self.fallback.read(question, passages)
        if sentences and sentences[0].confidence >= self.fallback.threshold:
            return sentences
        return spans or sentences
