"""The trained extractive reader: exact answer spans from the top passages.

Reads the top passages of the hybrid retriever in one batch with the QA model of
:mod:`qa.reader_model`, scores every candidate span, merges the same answer found in several
passages (syndicated copies, overlapping passages) into one answer that cites all of them, and
turns scores into a confidence with a softmax over the candidates plus a "no answer" option
(the model's null score), so that off-topic questions come out low.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.metrics import normalize_answer
from qa.text import sentence_spans
from qa.types import Answer, Hit, Span


def shipped_reader_available() -> bool:
    """True when the trained reader's weights ship with this install."""
    from qa.reader_model import DEFAULT_READER_DIR, WEIGHTS_FILE

    return (DEFAULT_READER_DIR / WEIGHTS_FILE).is_file()


class SpanReader:
    """Extractive span reader.

    Args:
        model: None for the shipped reader, a folder, or a Hugging Face model id (online).
        max_passages: Top passages read per question.
        retrieval_weight: Weight of the passage's fused retrieval score (relative to the best
            hit) added to the span logit score.
        spans_per_passage: Candidate spans kept per passage.
        threshold: Confidence under which the pipeline answers "no answer in the corpus".
    """

    def __init__(self, model: str | Path | None = None, max_passages: int = 5,
                 retrieval_weight: float = 2.0, spans_per_passage: int = 5,
                 threshold: float = 0.3) -> None:
        self.spec = model
        self.max_passages = max_passages
        self.retrieval_weight = retrieval_weight
        self.spans_per_passage = spans_per_passage
        self.threshold = threshold
        self._loaded: tuple[Any, Any] | None = None

    def load(self) -> tuple[Any, Any]:
        """Load (once) and return ``(model, tokenizer)``.

        Raises:
            ReaderLoadError: when the weights are missing or corrupt.
        """
        if self._loaded is None:
            from qa.reader_model import load_qa_model

            self._loaded = load_qa_model(self.spec)
        return self._loaded

    def read(self, question: str, passages: Sequence[Hit]) -> list[Answer]:
        """Answers for ``question`` from the top passages, best first.

        Args:
            question: The question.
            passages: Retrieved hits, best first.

        Returns:
            Distinct answers (merged across passages), confidence in [0, 1].
        """
        from qa.reader_model import extract_spans

        hits = list(passages[: self.max_passages])
        if not hits:
            return []
        model, tokenizer = self.load()
        preds = extract_spans(model, tokenizer, question, [h.passage.text for h in hits],
                              top_n=self.spans_per_passage)
        top = max(h.score for h in hits) or 1.0
        null = min((p.null_score for ps in preds for p in ps), default=0.0)
        merged: dict[str, list[tuple[float, Hit, Span]]] = {}
        for hit, spans in zip(hits, preds, strict=True):
            prior = self.retrieval_weight * (hit.score / top - 1.0)
            for sp in spans:
                key = normalize_answer(sp.text) or sp.text
                merged.setdefault(key, []).append((sp.score + prior, hit, Span(sp.start, sp.end)))
        return self._rank(merged, null)

    def _rank(self, merged: dict[str, list[tuple[float, Hit, Span]]],
              null: float) -> list[Answer]:
        """One Answer per distinct text; softmax confidence against the null option."""
        best = {k: max(v, key=lambda x: x[0]) for k, v in merged.items()}
        peak = max([null, *(b[0] for b in best.values())])
        mass = {k: sum(math.exp(s - peak) for s, _, _ in v) for k, v in merged.items()}
        total = sum(mass.values()) + math.exp(null - peak)
        answers = []
        for key, (score, hit, span) in best.items():
            text = hit.passage.text
            s_start, s_end = _sentence_around(text, span)
            others = tuple(dict.fromkeys(h for _, h, _ in merged[key] if h is not hit))
            answers.append(Answer(
                text=text[span.start : span.end], sentence=text[s_start:s_end],
                confidence=mass[key] / total, hit=hit, span=span,
                sentence_span=Span(s_start, s_end), score=score, extra_hits=others))
        answers.sort(key=lambda a: -a.score)
        return answers


def _sentence_around(text: str, span: Span) -> tuple[int, int]:
    """The sentence(s) of ``text`` that contain the span."""
    sents = sentence_spans(text)
    first = next((a for a, b in sents if a <= span.start < b), span.start)
    last = next((b for a, b in sents if a < span.end <= b), span.end)
    return min(first, span.start), max(last, span.end)
