"""Where the answers go wrong: every miss of the pipeline put in one bucket, as a markdown table.

Usage:
    python bench/error_analysis.py QUESTIONS --index-dir DIR [--limit N] [-k 20]
        [--as-of-question-date] [--reader auto] [--name NAME]

QUESTIONS is a SQuAD json(.gz) file (SQuAD-open: gold = the question's own paragraph) or a
RealTime QA jsonl file (gold = any passage of a gold article; only extractive questions carry
an answer, so only they are bucketed). Each question is asked through the real pipeline
(retrieve ``k`` passages, read the top ones, answer or abstain as the product does). A question
is a miss when its answer is not an exact match; each miss goes in the first bucket that
applies, in pipeline order:

1. gold not retrieved: no gold passage among the ``k`` retrieved;
2. retrieved, not read: a gold passage retrieved, but below the passages the reader reads;
3. abstained although the answer was there: a gold passage was read, no answer shown;
4. answered with a sentence: a gold passage was read, the best sentence shown, not a span;
5. read, wrong span: a gold passage was read and a span shown that is not the answer (split
   into partly right, F1 >= 0.5, and wrong).

"Answer text in the passages read" counts the misses whose gold answer string occurs in a
passage read (for news, where a gold article's passage may not hold the answer). Output: the
table on stdout, bench/out/errors-NAME.md and one JSON line per question in
bench/out/errors-NAME.jsonl (written as it goes; ``--table-only`` tabulates that file again,
e.g. the questions done so far of a run still going).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.answer import Answerer  # noqa: E402
from qa.eval.metrics import max_over_truths, normalize_answer  # noqa: E402
from qa.eval.questions import EvalQuestion, load_questions  # noqa: E402
from qa.search.retriever import Retriever  # noqa: E402

OUT = ROOT / "bench" / "out"
BUCKETS = (
    ("hit", "exact match (not a miss)"),
    ("not_retrieved", "gold not retrieved (top k)"),
    ("not_read", "retrieved, not among the passages read"),
    ("abstained", "gold read, abstained"),
    ("sentence", "gold read, answered with a sentence"),
    ("partial_span", "gold read, span partly right (F1 >= 0.5)"),
    ("wrong_span", "gold read, wrong span (F1 < 0.5)"),
)


def passages_read(answerer: Answerer) -> int:
    """How many top passages the pipeline's reader reads."""
    reader = getattr(answerer.reader, "primary", answerer.reader)
    return int(getattr(reader, "max_passages", 5))


def classify(row: dict[str, Any], n_read: int) -> str:
    """The bucket of one question's row (see the module docstring)."""
    if row["em"] >= 1.0:
        return "hit"
    rank = row["gold_rank"]
    if rank is None:
        return "not_retrieved"
    if rank > n_read:
        return "not_read"
    if row["kind"] is None:
        return "abstained"
    if row["kind"] == "sentence":
        return "sentence"
    return "partial_span" if row["f1"] >= 0.5 else "wrong_span"


def ask(answerer: Answerer, q: EvalQuestion, k: int, as_of: bool, n_read: int) -> dict[str, Any]:
    """One question through the pipeline: what was retrieved, read and answered."""
    # As `newsqa eval --as-of-question-date` asks: the as-of day, so the recency prior and the
    # question's time words apply and undated articles stay searchable.
    day = date.fromisoformat(q.date) if as_of and q.date else None
    resp = answerer.ask(q.question, k=k, as_of=day)
    gold = set(q.gold_urls)
    rank = next((i + 1 for i, h in enumerate(resp.hits) if gold.intersection(h.urls)), None)
    pred = resp.answer.text if resp.answer else ""
    read_text = " ".join(normalize_answer(h.passage.text) for h in resp.hits[:n_read])
    row: dict[str, Any] = {
        "id": q.id,
        "question": q.question,
        "answers": list(q.answers),
        "gold_rank": rank,
        "prediction": pred,
        "kind": resp.answer.kind if resp.answer else None,
        "em": max_over_truths("em", pred, q.answers),
        "f1": max_over_truths("f1", pred, q.answers),
        "answer_in_read": any(normalize_answer(a) in read_text for a in q.answers if a),
    }
    row["bucket"] = classify(row, n_read)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of bucket counts."""
    counts = Counter(r["bucket"] for r in rows)
    misses = len(rows) - counts["hit"]
    lines = [
        "| bucket | questions | share of questions | share of misses "
        "| answer text in passages read |",
        "|---|---|---|---|---|",
    ]
    for key, label in BUCKETS:
        n = counts[key]
        in_read = sum(1 for r in rows if r["bucket"] == key and r["answer_in_read"])
        miss_share = "" if key == "hit" else f"{100 * n / (misses or 1):.1f} %"
        lines.append(
            f"| {label} | {n} | {100 * n / (len(rows) or 1):.1f} % | {miss_share} | {in_read} |"
        )
    lines.append(f"| **all** | {len(rows)} | | misses: {misses} | |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    """EM and F1 of the rows."""
    em = 100 * sum(r["em"] for r in rows) / (len(rows) or 1)
    f1 = 100 * sum(r["f1"] for r in rows) / (len(rows) or 1)
    return f"EM {em:.1f}, F1 {f1:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--as-of-question-date", action="store_true")
    parser.add_argument("--reader", default="auto")
    parser.add_argument("--name", default="")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    name = args.name or args.questions.name.split(".")[0]
    if args.table_only:
        lines = (OUT / f"errors-{name}.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        print(f"{len(rows)} questions\n\n{summary(rows)}\n\n{table(rows)}")
        return
    questions = [q for q in load_questions(args.questions) if q.scored and q.answers]
    questions = questions[: args.limit]
    retriever = Retriever(args.index_dir)
    answerer = Answerer(
        args.index_dir, embedder=retriever.embedder, reader=args.reader, retriever=retriever
    )
    answerer.warm_up()
    n_read = passages_read(answerer)
    OUT.mkdir(parents=True, exist_ok=True)
    rows, t0 = [], time.time()
    with open(OUT / f"errors-{name}.jsonl", "w", encoding="utf-8") as sink:
        for i, q in enumerate(questions):
            rows.append(ask(answerer, q, args.k, args.as_of_question_date, n_read))
            sink.write(json.dumps(rows[-1], ensure_ascii=False) + "\n")
            sink.flush()  # so that --table-only can tabulate a run still going
            print(f"\r{i + 1}/{len(questions)} {time.time() - t0:.0f}s", end="", file=sys.stderr)
    print(file=sys.stderr)
    head = (
        f"{args.questions.name}, {len(rows)} questions with an answer, index {args.index_dir}, "
        f"k={args.k}, {n_read} passages read, reader {args.reader}: {summary(rows)}"
    )
    report = f"{head}\n\n{table(rows)}\n"
    (OUT / f"errors-{name}.md").write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
