"""The decision to answer, per-span confidence against the open-setting decision, in one pass.

Usage:
    python bench/open_decision.py QUESTIONS --index-dir DIR [-k 20] [--limit N]
        [--as-of-question-date] [--reader DIR] [--out FILE.jsonl] [--start N]
    python bench/open_decision.py --rows FILE.jsonl [--reader DIR]   # decide again, no reading

Each question goes through the product's pipeline once (retrieval as ``newsqa eval`` does it:
linear fusion, recency prior, time words, the question's date with ``--as-of-question-date``;
the span reader over the top passages, the sentence reader as its fallback). Both decisions
are then applied to the same answers: the per-span confidence against the reader's
calibrated threshold (the product with ``NEWSQA_OPEN_DECISION=off``) and the open decision
of the reader's ``open`` block against its threshold (``on``). Either shows the span when it
clears, else the best sentence when that clears the sentence reader's threshold, else nothing.
The rows written by ``--out`` hold what both decisions need, so ``--rows`` decides again from
them (e.g. after refitting the ``open`` block) without reading. Printed per decision: EM/F1 over
the scored questions, the share answered (and as a sentence), the precision of what is answered
(share of answered scored questions with F1 >= 0.5), and the expected calibration error of the
span confidence against the top span's F1.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.eval.metrics import expected_calibration_error, max_over_truths, reliability  # noqa: E402
from qa.eval.questions import EvalQuestion, Evaluator, load_questions  # noqa: E402
from qa.reader.evidence import OpenDecision  # noqa: E402
from qa.reader.sentence import SentenceReader  # noqa: E402
from qa.reader.span import SpanReader  # noqa: E402
from qa.reader.weights import load_reader_meta  # noqa: E402
from qa.search.when import scope_for  # noqa: E402

DECISIONS = ("per_span", "open")


def ask(
    ev: Evaluator, span: SpanReader, sentence: SentenceReader, q: EvalQuestion, as_of: bool
) -> dict[str, Any]:
    """One question: the top span, its two confidences, the best sentence, gold rank."""
    day = date.fromisoformat(q.date) if as_of and q.date else date.today()
    hits = ev.answerer.retriever.search(q.question, k=ev.k, scope=scope_for(q.question, day))
    answers, evidence = span.read_with_evidence(q.question, hits)
    sentences = sentence.read(q.question, hits)
    gold = set(q.gold_urls)
    row: dict[str, Any] = {
        "id": q.id,
        "question": q.question,
        "scored": bool(q.scored and q.answers),
        "gold_rank": next((i + 1 for i, h in enumerate(hits) if gold & set(h.urls)), None),
        "span": answers[0].text if answers else "",
        "span_conf": answers[0].confidence if answers else None,
        "evidence": evidence[0] if answers else None,
        "sentence": sentences[0].text if sentences else "",
        "sentence_conf": sentences[0].confidence if sentences else None,
    }
    if row["scored"]:
        row["span_f1"] = max_over_truths("f1", row["span"], q.answers)
        row["sentence_f1"] = max_over_truths("f1", row["sentence"], q.answers)
        row["span_em"] = max_over_truths("em", row["span"], q.answers)
        row["sentence_em"] = max_over_truths("em", row["sentence"], q.answers)
    return row


def decide(row: dict[str, Any], conf: float | None, t_span: float, t_sent: float) -> str | None:
    """What the product shows: ``span``, ``sentence`` or None."""
    if conf is not None and conf >= t_span:
        return "span"
    if row["sentence_conf"] is not None and row["sentence_conf"] >= t_sent:
        return "sentence"
    return None


def summary(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    """EM/F1, answered, as a sentence, precision of the answered, ECE of the span confidence."""
    shown = [r[key] for r in rows]
    scored = [r for r in rows if r["scored"]]
    f1 = [r[f"{r[key]}_f1"] if r[key] else 0.0 for r in scored]
    em = [r[f"{r[key]}_em"] if r[key] else 0.0 for r in scored]
    answered = [v for r, v in zip(scored, f1, strict=True) if r[key]]
    conf = np.array([r[f"{key}_conf"] for r in scored if r[f"{key}_conf"] is not None])
    right = np.array([r["span_f1"] for r in scored if r[f"{key}_conf"] is not None])
    return {
        "em": 100 * float(np.mean(em)) if em else 0.0,
        "f1": 100 * float(np.mean(f1)) if f1 else 0.0,
        "answered": float(np.mean([s is not None for s in shown])),
        "as_sentence": float(np.mean([s == "sentence" for s in shown])),
        "answered_scored": float(len(answered) / (len(scored) or 1)),
        "precision": float(np.mean([v >= 0.5 for v in answered])) if answered else 0.0,
        "ece": expected_calibration_error(reliability(conf, right)) if len(conf) else 0.0,
    }


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Ask every question once; write each row to ``args.out`` as it comes."""
    span = SpanReader(model=args.reader, open_decision=False)
    sentence = SentenceReader()
    ev = Evaluator(args.index_dir, k=args.k, reader="sentence")
    questions = load_questions(args.questions)
    questions = questions[args.start : args.limit or None]
    rows = []
    sink = open(args.out, "w", encoding="utf-8") if args.out else None  # noqa: SIM115
    for q in questions:
        row = ask(ev, span, sentence, q, args.as_of_question_date)
        row["span_threshold"] = span.threshold
        row["sentence_threshold"] = sentence.threshold
        rows.append(row)
        if sink:
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
    if sink:
        sink.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("questions", type=Path, nargs="?")
    ap.add_argument("--index-dir", type=Path)
    ap.add_argument("--rows", type=Path, default=None, help="decide again from these rows")
    ap.add_argument("-k", type=int, default=20)
    ap.add_argument("--limit", type=int, default=0, help="the first N questions (0: all)")
    ap.add_argument("--start", type=int, default=0, help="skip the first N (resume a run)")
    ap.add_argument("--as-of-question-date", action="store_true")
    ap.add_argument("--reader", type=Path, default=None, help="reader folder (default: shipped)")
    ap.add_argument("--out", type=Path, default=None, help="one JSON line per question")
    args = ap.parse_args()
    if args.rows is None and (args.questions is None or args.index_dir is None):
        ap.error("give QUESTIONS and --index-dir, or --rows")
    if args.rows is not None:
        lines = args.rows.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
    else:
        rows = collect(args)
    decision = OpenDecision.from_meta(load_reader_meta(args.reader))
    if decision is None:
        sys.exit("error: the reader has no open block: run python -m qa.train calibrate-open")
    for row in rows:
        t_span, t_sent = row["span_threshold"], row["sentence_threshold"]
        row["per_span_conf"] = row["span_conf"]
        row["open_conf"] = decision.probability(row["evidence"]) if row["evidence"] else None
        row["per_span"] = decide(row, row["span_conf"], t_span, t_sent)
        row["open"] = decide(row, row["open_conf"], decision.threshold, t_sent)
    print(f"{len(rows)} questions, {sum(r['scored'] for r in rows)} scored")
    print("| decision | EM | F1 | answered | as a sentence | precision of answered | ECE |")
    print("|---|---|---|---|---|---|---|")
    for key in DECISIONS:
        s = summary(rows, key)
        print(
            f"| {key} | {s['em']:.1f} | {s['f1']:.1f} | {100 * s['answered']:.1f} % | "
            f"{100 * s['as_sentence']:.1f} % | {100 * s['precision']:.1f} % "
            f"({100 * s['answered_scored']:.1f} % of scored answered) | {s['ece']:.3f} |"
        )

    print()
    print(
        "| confidence | per-span: questions | mean conf | mean span F1 | open: questions | "
        "mean conf | mean span F1 |"
    )
    print("|---|---|---|---|---|---|---|")
    tables = {key: reliability_of(rows, key) for key in DECISIONS}
    for lo in (0.0, 0.2, 0.4, 0.6, 0.8):
        cells = []
        for key in DECISIONS:
            bin_ = tables[key].get(lo)
            cells += (
                [str(bin_["n"]), f"{bin_['confidence']:.3f}", f"{bin_['accuracy']:.3f}"]
                if bin_
                else ["0", "", ""]
            )
        print(f"| {lo:.1f}-{lo + 0.2:.1f} | " + " | ".join(cells) + " |")


def reliability_of(rows: list[dict[str, Any]], key: str) -> dict[float, dict[str, float]]:
    """Five confidence bins of the span confidence against the top span's F1 (scored rows)."""
    scored = [r for r in rows if r["scored"] and r[f"{key}_conf"] is not None]
    conf = np.array([r[f"{key}_conf"] for r in scored])
    right = np.array([r["span_f1"] for r in scored])
    return {round(b["lo"], 1): b for b in reliability(conf, right, bins=5)}


if __name__ == "__main__":
    main()
