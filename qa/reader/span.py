"""The trained extractive reader: exact answer spans from the top passages.

Reads the top passages of the hybrid retriever in one batch with the QA model of
:mod:`qa.reader.model`, scores every candidate span, and merges the same answer found in
several passages (syndicated copies, overlapping passages) into one answer that cites all of
them.

Confidence is a logistic model of the span's F1 against the gold answer (its expected F1; "is
exactly right" for readers calibrated with ``--label em``) on features of the span that
are absolute, not relative to the other candidates (span logit, its log-probability in the
window, its margin over the no-answer logit, and the text features of
:mod:`qa.reader.decide` that helped on held-apart data), fitted on questions held apart from
SQuAD *train*, with unanswerable pairs made from paragraphs of the same articles
(``python -m qa.train calibrate``). The fitted feature names, weights and the no-answer
threshold live in the reader's ``reader.json`` (one without feature names weighs the three
logit features); a reader without them falls back to a softmax against the null option.

Over several passages, a reader whose ``reader.json`` also has an ``open`` block
(``python -m qa.train calibrate-open``) may decide with :class:`qa.reader.evidence.OpenDecision`
instead: the answer's agreement across the passages read, its passage's retrieval evidence and
its lead over the next distinct answer join its best span's confidence
(``NEWSQA_OPEN_DECISION``).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.errors import ReaderLoadError
from qa.eval.metrics import normalize_answer
from qa.reader.decide import FEATURES, LOGIT_FEATURES, SpanInContext, feature_vector
from qa.reader.evidence import Occurrence, OpenDecision, answer_evidence
from qa.text import sentence_spans
from qa.types import Answer, Hit, Passage, Span

if TYPE_CHECKING:
    from qa.reader.spans import SpanPrediction

# How the reader's span score and the retriever's fused score are combined to rank answers
# across passages. Chosen on held-out train questions (docs/benchmarks.md, "Ranking answers").
COMBINE_MODES = ("reader", "linear", "calibrated")


def shipped_reader_available() -> bool:
    """True when the trained reader's weights ship with this install."""
    from qa.reader.weights import DEFAULT_READER_DIR, WEIGHTS_FILE

    return (DEFAULT_READER_DIR / WEIGHTS_FILE).is_file()


@dataclass(frozen=True)
class Calibration:
    """Logistic confidence model of the top span and the no-answer threshold.

    Attributes:
        weights: Coefficients of ``features``.
        bias: Intercept.
        threshold: Confidence under which the product says "no answer".
        target: What the confidence predicts: ``f1`` (expected F1 of the span) or ``em``
            (exact match; readers calibrated with ``--label em``).
        features: Names of the features (:data:`qa.reader.decide.FEATURES`); readers
            calibrated before text features existed have the three logit features.
    """

    weights: tuple[float, ...]
    bias: float
    threshold: float
    target: str = "em"
    features: tuple[str, ...] = LOGIT_FEATURES

    def probability(self, score: float, log_prob: float, null_score: float) -> float:
        """Calibrated probability from the logit features alone (no text features).

        Raises:
            ValueError: The calibration also weighs text features (use :meth:`of_span`).
        """
        if self.features != LOGIT_FEATURES:
            raise ValueError(f"this calibration weighs {', '.join(self.features)}: use of_span")
        return self._squash((score, log_prob, score - null_score))

    def of_span(self, span: SpanInContext) -> float:
        """Calibrated probability that ``span`` answers its question."""
        return self._squash(feature_vector(span, self.features))

    def _squash(self, x: Sequence[float]) -> float:
        z = self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Calibration | None:
        """The calibration recorded in a reader's ``reader.json`` (None when absent).

        Raises:
            ReaderLoadError: It names a feature this version does not know, or its weights
                do not match its features.
        """
        cal = meta.get("calibration")
        if not isinstance(cal, dict):
            return None
        features = tuple(str(f) for f in cal.get("features", LOGIT_FEATURES))
        weights = tuple(float(v) for v in cal["weights"])
        unknown = [f for f in features if f not in FEATURES]
        if unknown or len(weights) != len(features):
            raise ReaderLoadError(
                "the reader's calibration does not fit this version of newsqa "
                f"(features {', '.join(features)}; {len(weights)} weights): recalibrate it "
                "with `python -m qa.train calibrate --reader DIR`"
            )
        return cls(
            weights=weights,
            bias=float(cal["bias"]),
            threshold=float(cal["threshold"]),
            target=str(cal.get("target", "em")),
            features=features,
        )


class SpanReader:
    """Extractive span reader.

    Args:
        model: None for the shipped reader, a folder, or a Hugging Face model id (online).
        max_passages: Top passages read per question.
        combine: How answers from different passages are ranked: ``reader`` (span score
            only), ``linear`` (span score + ``retrieval_weight`` x the passage's fused
            retrieval score relative to the best hit) or ``calibrated`` (the calibrated
            probability).
        retrieval_weight: Weight of the retrieval evidence for ``linear`` (16: best of
            0/1/2/4/8/16/32 and the calibrated ranking on held-out train questions,
            ``bench/reader_combine.py``).
        spans_per_passage: Candidate spans kept per passage.
        threshold: Confidence under which the pipeline answers "no answer in the corpus"
            (default: the reader's calibrated threshold, else 0.3).
        whole_answers: Widen a conjunct to its whole coordination ("Iran as well as Turkey")
            when the question asks for several things (:mod:`qa.reader.coordination`).
        open_decision: Whether the confidence weighs the answer's evidence across the
            passages read (:mod:`qa.reader.evidence`) when the reader has an ``open`` block
            (default: the ``NEWSQA_OPEN_DECISION`` setting).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        max_passages: int = 5,
        combine: str = "linear",
        retrieval_weight: float = 16.0,
        spans_per_passage: int = 5,
        threshold: float | None = None,
        whole_answers: bool = True,
        open_decision: bool | None = None,
    ) -> None:
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, not {combine!r}")
        self.spec = model
        self.max_passages = max_passages
        self.combine = combine
        self.retrieval_weight = retrieval_weight
        self.spans_per_passage = spans_per_passage
        self._threshold = threshold
        self.whole_answers = whole_answers
        self._open_decision = open_decision
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()  # load() may run in a preloading thread (qa.answer)

    @property
    def threshold(self) -> float:
        """The no-answer threshold (loads the reader's metadata on first use)."""
        if self._threshold is not None:
            return self._threshold
        if self.decision is not None:
            return self.decision.threshold
        cal = self.calibration
        return cal.threshold if cal else 0.3

    @functools.cached_property
    def calibration(self) -> Calibration | None:
        """The fitted confidence model, when the reader has one (read once, even when absent)."""
        from qa.reader.weights import load_reader_meta

        return Calibration.from_meta(load_reader_meta(self.spec))

    @functools.cached_property
    def decision(self) -> OpenDecision | None:
        """The open-setting decision, when it is on and the reader has one with its calibration."""
        from qa import settings
        from qa.reader.weights import load_reader_meta

        on = self._open_decision
        if on is None:
            on = settings.load().open_decision == "on"
        if not on or self.calibration is None:
            return None
        return OpenDecision.from_meta(load_reader_meta(self.spec))

    def load(self) -> tuple[Any, Any]:
        """Load (once) and return ``(model, tokenizer)``.

        Raises:
            ReaderLoadError: when the weights are missing or corrupt.
        """
        with self._lock:
            if self._loaded is None:
                from qa.reader.model import load_qa_model

                self._loaded = load_qa_model(self.spec)
            return self._loaded

    @property
    def runtime(self) -> str:
        """How the model runs: ``torch-bf16``, ``torch-fp32``, ``onnx-int8`` or ``onnx-fp32``."""
        from qa.reader.model import runs_bf16
        from qa.reader.onnx import OrtQAModel

        model, _ = self.load()
        if isinstance(model, OrtQAModel):
            return f"onnx-{model.precision}"
        return "torch-bf16" if runs_bf16(model) else "torch-fp32"

    def read(self, question: str, passages: Sequence[Hit]) -> list[Answer]:
        """Answers for ``question`` from the top passages, best first.

        Args:
            question: The question.
            passages: Retrieved hits, best first.

        Returns:
            Distinct answers (merged across passages), confidence in [0, 1].
        """
        return self.read_with_evidence(question, passages)[0]

    def read_with_evidence(
        self, question: str, passages: Sequence[Hit]
    ) -> tuple[list[Answer], list[dict[str, float]]]:
        """:meth:`read`, and each answer's open features (:mod:`qa.reader.evidence`).

        Returns:
            The answers, best first, and the open features of each (empty dicts when the
            reader has no calibration).
        """
        from qa.reader.coordination import DEFAULT_MARGIN
        from qa.reader.spans import extract_spans

        hits = list(passages[: self.max_passages])
        if not hits:
            return [], []
        model, tokenizer = self.load()
        preds = extract_spans(
            model,
            tokenizer,
            question,
            [h.passage.text for h in hits],
            top_n=self.spans_per_passage,
            whole_answer_margin=DEFAULT_MARGIN if self.whole_answers else None,
        )
        cal = self.calibration
        top = max(h.score for h in hits) or 1.0
        merged: dict[str, list[_Found]] = {}
        for position, (hit, spans) in enumerate(zip(hits, preds, strict=True)):
            prior = self.retrieval_weight * (hit.score / top - 1.0)
            for sp in spans:
                prob = cal.of_span(_in_context(question, hit, sp)) if cal else 0.0
                rank = {"reader": sp.score, "linear": sp.score + prior, "calibrated": prob}
                key = normalize_answer(sp.text) or sp.text
                merged.setdefault(key, []).append(
                    _Found(
                        rank[self.combine],
                        prob,
                        sp.score,
                        sp.null_score,
                        hit,
                        Span(sp.start, sp.end),
                        Occurrence(prob, position, hit.score / top),
                    )
                )
        return self._rank(merged, cal is not None)

    def _rank(
        self, merged: dict[str, list[_Found]], calibrated: bool
    ) -> tuple[list[Answer], list[dict[str, float]]]:
        """One Answer per distinct text, best occurrence first, with its confidence and its
        open features."""
        best = {k: max(v, key=lambda f: f.rank) for k, v in merged.items()}
        evidence = (
            answer_evidence({k: [f.seen for f in v] for k, v in merged.items()})
            if calibrated
            else {}
        )
        decision = self.decision if calibrated else None
        if decision is not None:
            conf = {k: decision.probability(e) for k, e in evidence.items()}
        elif calibrated:
            conf = {k: max(f.prob for f in v) for k, v in merged.items()}
        else:
            conf = _softmax_confidence(merged)
        answers: list[tuple[Answer, dict[str, float]]] = []
        for key, found in best.items():
            text = found.hit.passage.text
            s_start, s_end = _sentence_around(text, found.span)
            others = tuple(dict.fromkeys(f.hit for f in merged[key] if f.hit is not found.hit))
            answer = (
                Answer(
                    text=text[found.span.start : found.span.end],
                    sentence=text[s_start:s_end],
                    confidence=conf[key],
                    hit=found.hit,
                    span=found.span,
                    sentence_span=Span(s_start, s_end),
                    score=found.rank,
                    extra_hits=others,
                ),
                evidence.get(key, {}),
            )
            answers.append(answer)
        answers.sort(key=lambda a: -a[0].score)
        return [a for a, _ in answers], [e for _, e in answers]


@dataclass(frozen=True)
class _Found:
    """One occurrence of a candidate answer in one passage."""

    rank: float
    prob: float
    score: float
    null: float
    hit: Hit
    span: Span
    seen: Occurrence


def _in_context(question: str, hit: Hit, sp: SpanPrediction) -> SpanInContext:
    return SpanInContext(
        question=question,
        context=hit.passage.text,
        start=sp.start,
        end=sp.end,
        score=sp.score,
        log_prob=sp.log_prob,
        null_score=sp.null_score,
    )


def _softmax_confidence(merged: dict[str, list[_Found]]) -> dict[str, float]:
    """Uncalibrated fallback: softmax over all candidates plus the null option."""
    null = min((f.null for v in merged.values() for f in v), default=0.0)
    peak = max([null, *(f.score for v in merged.values() for f in v)])
    mass = {k: sum(math.exp(f.score - peak) for f in v) for k, v in merged.items()}
    total = sum(mass.values()) + math.exp(null - peak)
    return {k: m / total for k, m in mass.items()}


def _sentence_around(text: str, span: Span) -> tuple[int, int]:
    """The sentence(s) of ``text`` that contain the span."""
    sents = sentence_spans(text)
    first = next((a for a, b in sents if a <= span.start < b), span.start)
    last = next((b for a, b in sents if a < span.end <= b), span.end)
    return min(first, span.start), max(last, span.end)


def context_hit(context: str, title: str = "", ident: str = "gold") -> Hit:
    """A stand-in hit for a given paragraph (reader-only evaluation: gold paragraph given)."""
    passage = Passage(
        id=ident,
        article_id=ident,
        paragraph=0,
        start=0,
        end=len(context),
        text=context,
        title=title,
    )
    return Hit(passage=passage, score=1.0, rank=1, title=title, date="", url="", source="")
