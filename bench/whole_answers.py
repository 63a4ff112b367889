"""Whole answers: EM/F1 of the span reader with and without widening conjuncts to coordinations.

Usage:
    python bench/whole_answers.py choose [--margins 0,1,2,3,4,6,8,100]
    python bench/whole_answers.py measure [--file dev-v1.1.json.gz] [--limit N] [--margin M]

``choose`` picks the logit margin on the reader's held-out SQuAD *train* articles (never seen
in training; the dev files are not read). ``measure`` scores the gold paragraph of every
question (reader alone, top span always, as ``newsqa eval --reader-only``) once without and
once with widening, from one forward pass: on the questions that ask for several things
(selected by the rule below, independent of the reader's own detector) and on all questions.
Output: tables on stdout and bench/out/whole_answers-*.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.eval.metrics import max_over_truths  # noqa: E402
from qa.ingest.squad import flatten, load_articles  # noqa: E402
from qa.reader.coordination import DEFAULT_MARGIN, asks_for_several  # noqa: E402
from qa.reader.span import SpanReader  # noqa: E402
from qa.reader.spans import predict_candidates  # noqa: E402
from qa.train.config import DEFAULT_DATA  # noqa: E402
from qa.train.data import split_articles  # noqa: E402

OUT = ROOT / "bench" / "out"
DEV = Path("/work/shared/data/squad/dev-v1.1.json.gz")
_NUM = r"(?:two|three|four|five|six|seven|eight|nine|ten|both|several)"
# The benchmark's own selection of questions that ask for several things: a number word in
# the wh-phrase, "who were/are", "what are/were the", "name the", or which/what + a word
# ending in -s (countries, teams) right after it.
SEVERAL = re.compile(
    rf"\b(?:which|what|who|name)\s+(?:(?:are|were|the)\s+){{0,2}}{_NUM}\b"
    r"|^(?:who (?:were|are)|what (?:are|were) the|name the)\b"
    r"|\b(?:which|what)\s+(?!(?:do|does|did|is|are|was|were|has|have|had)\b)(?:[a-z]+\s+)?"
    r"[a-z]{3,}[^su\W]s\b",
    re.IGNORECASE,
)


def several(question: str) -> bool:
    """The benchmark's rule: does the question ask for several things?"""
    return bool(SEVERAL.search(question)) and not re.search(r"\bhow many\b", question, re.I)


def read(
    questions: list[Any], margins: list[float | None], batch: int = 32
) -> list[dict[str, Any]]:
    """Top span of every question under each margin (None: no widening), one forward pass."""
    model, tokenizer = SpanReader().load()
    rows = []
    t0 = time.time()
    for lo in range(0, len(questions), batch):
        part = questions[lo : lo + batch]
        found = predict_candidates(model, tokenizer, [(q.question, q.context) for q in part])
        for q, cands in zip(part, found, strict=True):
            row: dict[str, Any] = {
                "id": q.id,
                "question": q.question,
                "several": several(q.question),
            }
            for m in margins:
                top = cands.top(5, q.question, m)
                text = top[0].text if top else ""
                key = "off" if m is None else f"{m:g}"
                row[key] = {
                    "text": text,
                    "em": max_over_truths("em", text, q.answer_texts),
                    "f1": max_over_truths("f1", text, q.answer_texts),
                }
            rows.append(row)
        print(f"\r{len(rows)}/{len(questions)} {time.time() - t0:.0f}s", end="", file=sys.stderr)
    print(file=sys.stderr)
    return rows


def score(rows: list[dict[str, Any]], key: str) -> tuple[float, float]:
    """EM and F1 (percent) of one variant."""
    n = len(rows) or 1
    return (
        round(100 * sum(r[key]["em"] for r in rows) / n, 2),
        round(100 * sum(r[key]["f1"] for r in rows) / n, 2),
    )


def changed(rows: list[dict[str, Any]], key: str) -> int:
    """Questions whose top span the variant changed."""
    return sum(1 for r in rows if r[key]["text"] != r["off"]["text"])


def choose(margins: list[float]) -> None:
    """Score every margin on the held-out train questions that ask for several things."""
    _, heldout = split_articles(load_articles(DEFAULT_DATA), 15)
    questions = [q for q in flatten(heldout) if several(q.question) and q.answer_texts]
    print(f"held-out train questions of that kind: {len(questions)}")
    rows = read(questions, [None, *margins])
    print("| margin | EM | F1 | top span changed |\n|---|---|---|---|")
    print(f"| off | {score(rows, 'off')[0]} | {score(rows, 'off')[1]} | 0 |")
    for m in margins:
        em, f1 = score(rows, f"{m:g}")
        print(f"| {m:g} | {em} | {f1} | {changed(rows, f'{m:g}')} |")
    (OUT / "whole_answers-choose.json").write_text(json.dumps(rows, indent=1))


def measure(path: Path, limit: int | None, margin: float) -> None:
    """Before/after on the questions of that kind and on all questions of ``path``.

    Widening never touches a question the reader's detector does not flag (it returns the
    picks unchanged), so only the questions of the bench rule and the flagged ones are read;
    the change over all questions is their summed difference over the total.
    """
    every = [q for q in flatten(load_articles(path)) if q.answer_texts][:limit]
    questions = [q for q in every if several(q.question) or asks_for_several(q.question)]
    rows = read(questions, [None, margin])
    key = f"{margin:g}"
    kind = [r for r in rows if r["several"]]
    detected = sum(1 for r in rows if asks_for_several(r["question"]))
    print(f"{path.name}: {len(every)} questions, {len(kind)} of that kind (bench rule), ")
    print(f"{detected} asking for several by the reader's own detector; margin {margin:g}")
    print("| questions | n | EM before | F1 before | EM after | F1 after | changed |")
    print("|---|---|---|---|---|---|---|")
    (e0, f0), (e1, f1) = score(kind, "off"), score(kind, key)
    print(
        f"| asking for several (bench rule) | {len(kind)} | {e0} | {f0} | {e1} | {f1} | "
        f"{changed(kind, key)} |"
    )
    d_em, d_f1 = (
        round(100 * sum(r[key][m] - r["off"][m] for r in rows) / len(every), 3)
        for m in ("em", "f1")
    )
    print(f"| all | {len(every)} | | | EM {d_em:+} | F1 {d_f1:+} | {changed(rows, key)} |")
    (OUT / "whole_answers-measure.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("choose")
    c.add_argument("--margins", default="0,1,2,3,4,6,8,100")
    m = sub.add_parser("measure")
    m.add_argument("--file", type=Path, default=DEV)
    m.add_argument("--limit", type=int)
    m.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.cmd == "choose":
        choose([float(x) for x in args.margins.split(",")])
    else:
        measure(args.file, args.limit, args.margin)


if __name__ == "__main__":
    main()
