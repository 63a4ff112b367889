"""``newsqa eval``: retrieval recall@k / MRR and answer EM/F1 on SQuAD or RealTime QA files.

Gold for SQuAD files: the question's own paragraph, which ``newsqa import`` stores as an article
with the URL ``squad://<title>#<paragraph index>``. Gold for RealTime QA: any passage of an
article in ``gold_urls``; EM/F1 only where ``extractive`` is true.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from qa import settings
from qa.answer import Answerer
from qa.errors import UsageError
from qa.eval.metrics import max_over_truths, percentile
from qa.ingest import squad
from qa.search.engines import open_backend
from qa.search.retriever import Retriever

RECALL_AT = (1, 5, 10, 20)


@dataclass(frozen=True)
class EvalQuestion:
    """One question with its gold passages/articles and answers."""

    id: str
    question: str
    gold_urls: tuple[str, ...]
    answers: tuple[str, ...] = ()
    scored: bool = True
    date: str = ""
    context: str = ""
    is_impossible: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read a SQuAD json(.gz) or a RealTime QA jsonl question file.

    Raises:
        UsageError: when the file is neither.
    """
    text = squad.read_text(path)
    stripped = text.lstrip()
    try:
        if stripped.startswith("{") and '"data"' in stripped[:200]:
            return _squad_questions(json.loads(text))
        return [_rtqa_question(json.loads(line)) for line in text.splitlines() if line.strip()]
    except (ValueError, KeyError, TypeError, UsageError) as exc:
        raise UsageError(f"{path}: not a SQuAD or RealTime QA question file ({exc})") from exc


def _squad_questions(doc: dict[str, Any]) -> list[EvalQuestion]:
    return [
        EvalQuestion(
            id=q.id,
            question=q.question,
            gold_urls=(q.url,),
            answers=q.answer_texts,
            context=q.context,
            is_impossible=q.is_impossible,
        )
        for q in squad.flatten(doc["data"])
    ]


def _rtqa_question(obj: dict[str, Any]) -> EvalQuestion:
    from qa.ingest.files import parse_date

    return EvalQuestion(
        id=str(obj["id"]),
        question=obj["question"],
        gold_urls=tuple(obj["gold_urls"]),
        answers=(obj["answer"],),
        scored=bool(obj.get("extractive")),
        date=parse_date(obj.get("question_date", "")),
    )


class Evaluator:
    """Runs questions through the pipeline and aggregates metrics.

    Args:
        index_dir: Index folder.
        k: Passages retrieved per question.
        fusion: Retrieval fusion method.
        reader: Reader name.
        as_of_question_date: Ask each question as of its own date (else today): later
            articles are not searched, and the recency prior counts from it.
        recency_weight: Weight of the retriever's recency prior (0: none).
        time_words: Whether time words in the questions narrow the search.
        backend: The search backend's URI (default: the one the index was published to).
    """

    def __init__(
        self,
        index_dir: Path,
        k: int = 20,
        fusion: str = "linear",
        reader: str = "auto",
        as_of_question_date: bool = False,
        recency_weight: float = settings.RECENCY_WEIGHT,
        time_words: bool = True,
        backend: str | None = None,
    ) -> None:
        self.k = k
        self.as_of = as_of_question_date
        retriever = Retriever(
            index_dir,
            fusion=fusion,
            recency_weight=recency_weight,
            backend=open_backend(index_dir, backend),
        )
        self.answerer = Answerer(
            index_dir,
            embedder=retriever.embedder,
            reader=reader,
            retriever=retriever,
            time_words=time_words,
        )

    def run(self, questions: list[EvalQuestion], out: Path | None = None) -> dict[str, Any]:
        """Evaluate all questions; optionally write one JSON line per question to ``out``."""
        self.answerer.warm_up()
        rows = []
        with ExitStack() as stack:
            sink = stack.enter_context(open(out, "w", encoding="utf-8")) if out else None
            for q in questions:
                row = self._one(q)
                rows.append(row)
                if sink:
                    sink.write(json.dumps(row, ensure_ascii=False) + "\n")
        return aggregate(rows)

    def _one(self, q: EvalQuestion) -> dict[str, Any]:
        as_of = date.fromisoformat(q.date) if self.as_of and q.date else None
        t0 = time.perf_counter()
        resp = self.answerer.ask(q.question, k=self.k, as_of=as_of)
        latency = (time.perf_counter() - t0) * 1000
        gold = set(q.gold_urls)
        rank = next((i + 1 for i, h in enumerate(resp.hits) if gold.intersection(h.urls)), None)
        pred = resp.answer.text if resp.answer else ""
        row: dict[str, Any] = {
            "id": q.id,
            "question": q.question,
            "gold_rank": rank,
            "prediction": pred,
            # span or sentence (the default reader falls back to a sentence), None: no answer.
            "kind": resp.answer.kind if resp.answer else None,
            "confidence": resp.answers[0].confidence if resp.answers else None,
            "latency_ms": latency,
            "scored": q.scored,
        }
        if q.scored and q.answers:
            row["em"] = max_over_truths("em", pred, q.answers)
            row["f1"] = max_over_truths("f1", pred, q.answers)
        return row


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """recall@k, MRR, EM, F1, answered shares, the precision of what is answered and latency
    percentiles over per-question rows."""
    n = len(rows)
    out: dict[str, Any] = {"questions": n}
    for k in RECALL_AT:
        out[f"recall@{k}"] = sum(1 for r in rows if r["gold_rank"] and r["gold_rank"] <= k) / (
            n or 1
        )
    out["mrr"] = sum(1 / r["gold_rank"] for r in rows if r["gold_rank"]) / (n or 1)
    scored = [r for r in rows if "em" in r]
    out["em"] = 100 * sum(r["em"] for r in scored) / (len(scored) or 1)
    out["f1"] = 100 * sum(r["f1"] for r in scored) / (len(scored) or 1)
    out["scored_questions"] = len(scored)
    # Shares of questions answered at all, and answered with a whole sentence.
    out["answered"] = sum(1 for r in rows if r.get("kind")) / (n or 1)
    out["answered_sentence"] = sum(1 for r in rows if r.get("kind") == "sentence") / (n or 1)
    # Precision of what is answered: share of the answered scored questions with F1 >= 0.5.
    answered = [r for r in scored if r.get("kind")]
    out["answered_precision"] = sum(1 for r in answered if r["f1"] >= 0.5) / (len(answered) or 1)
    lat = [r["latency_ms"] for r in rows]
    out["latency_ms_p50"] = percentile(lat, 50)
    out["latency_ms_p95"] = percentile(lat, 95)
    return out


__all__ = ["EvalQuestion", "Evaluator", "aggregate", "asdict", "load_questions"]
