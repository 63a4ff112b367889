"""Reader-only evaluation: the gold paragraph is given, the reader picks the span.

Scores SQuAD v1.1 / v2.0 files with the official EM/F1. On a file with unanswerable
questions (v2.0) the reader abstains below its no-answer threshold, as the product does, and
HasAns / NoAns scores and a reliability table (confidence bins vs accuracy) are added. On
v1.1, where every question has an answer in its paragraph, the top span is always scored
(the standard v1.1 protocol) and the threshold's effect is reported on the side.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import UsageError
from qa.eval.metrics import expected_calibration_error, max_over_truths, percentile, reliability
from qa.ingest import squad
from qa.reader.span import SpanReader, context_hit


@dataclass(frozen=True)
class GoldQuestion:
    """A SQuAD question with its gold paragraph (answers empty when unanswerable)."""

    id: str
    question: str
    context: str
    title: str
    answers: tuple[str, ...]

    @property
    def answerable(self) -> bool:
        """Whether the paragraph holds an answer."""
        return bool(self.answers)


def load_gold_questions(path: Path) -> list[GoldQuestion]:
    """Questions of a SQuAD v1.1/v2.0 json file (optionally gzipped).

    Raises:
        UsageError: The file is not a SQuAD file.
    """
    try:
        questions = squad.flatten(squad.load_articles(path))
    except UsageError as exc:
        raise UsageError(
            f"{exc}; --reader-only needs SQuAD questions with their paragraphs"
        ) from exc
    return [
        GoldQuestion(
            q.id, q.question, q.context, q.title, () if q.is_impossible else q.answer_texts
        )
        for q in questions
    ]


class ReaderEvaluator:
    """Runs the span reader on gold paragraphs and aggregates EM/F1, calibration, latency.

    Args:
        reader: The span reader (its threshold decides abstention on v2.0 files).
    """

    def __init__(self, reader: SpanReader) -> None:
        self.reader = reader

    def run(
        self,
        questions: list[GoldQuestion],
        out: Path | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Evaluate all questions; optionally write one JSON line per question to ``out``."""
        self.reader.load()
        self.reader.read("warm up", [context_hit("Warm up the model.")])
        rows = []
        with ExitStack() as stack:
            sink = stack.enter_context(open(out, "w", encoding="utf-8")) if out else None
            for i, q in enumerate(questions):
                row = self._one(q)
                rows.append(row)
                if sink:
                    sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                if progress:
                    progress(i + 1, len(questions))
        cal = self.reader.calibration
        metrics = aggregate_reader(rows, self.reader.threshold, cal.target if cal else "em")
        metrics["reader_runtime"] = self.reader.runtime
        return metrics

    def _one(self, q: GoldQuestion) -> dict[str, Any]:
        t0 = time.perf_counter()
        answers = self.reader.read(q.question, [context_hit(q.context, q.title)])
        latency = (time.perf_counter() - t0) * 1000
        top = answers[0] if answers else None
        text = top.text if top else ""
        truths = q.answers or ("",)
        return {
            "id": q.id,
            "question": q.question,
            "answerable": q.answerable,
            "prediction": text,
            "confidence": top.confidence if top else 0.0,
            "em": max_over_truths("em", text, truths),
            "f1": max_over_truths("f1", text, truths),
            "latency_ms": latency,
        }


def aggregate_reader(
    rows: list[dict[str, Any]], threshold: float, target: str = "em"
) -> dict[str, Any]:
    """EM/F1 (overall, HasAns, NoAns), reliability and latency from per-question rows.

    The reliability table compares confidence with what it was calibrated to predict:
    exact match (``target`` "em") or the top span's F1 ("f1"); ``ece_em`` is always given.
    """
    conf = np.array([r["confidence"] for r in rows])
    has = np.array([r["answerable"] for r in rows], dtype=bool)
    em = np.array([r["em"] for r in rows]) * has  # a span is never right when there's none
    f1 = np.array([r["f1"] for r in rows]) * has
    keep = conf >= threshold
    # With abstention: an abstained answerable scores 0, an abstained unanswerable scores 1.
    em_t = np.where(keep, em, ~has).astype(float)
    f1_t = np.where(keep, f1, ~has).astype(float)
    v2 = bool((~has).any())
    out: dict[str, Any] = {
        "questions": len(rows),
        "has_ans": int(has.sum()),
        "no_ans": int((~has).sum()),
        "threshold": threshold,
        "protocol": "abstain below threshold" if v2 else "top span always",
    }
    out["em"] = _pct(em_t if v2 else em)
    out["f1"] = _pct(f1_t if v2 else f1)
    out["has_ans_em"] = _pct((em_t if v2 else em)[has])
    out["has_ans_f1"] = _pct((f1_t if v2 else f1)[has])
    out["no_ans_acc"] = _pct((~keep)[~has]) if v2 else None
    out["em_top_span_always"], out["f1_top_span_always"] = _pct(em), _pct(f1)
    out["f1_with_threshold"] = _pct(f1_t)
    out["answered"] = _pct(keep)
    bins = reliability(conf, f1 if target == "f1" else em)
    out["reliability_target"] = target
    out["reliability"] = bins
    out["ece"] = round(expected_calibration_error(bins), 4)
    out["ece_em"] = round(expected_calibration_error(reliability(conf, em)), 4)
    lat = [r["latency_ms"] for r in rows]
    out["latency_ms_p50"], out["latency_ms_p95"] = percentile(lat, 50), percentile(lat, 95)
    return out


def _pct(x: np.ndarray) -> float:
    return round(100 * float(x.mean()), 2) if x.size else 0.0
