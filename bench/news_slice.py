"""Write a slice of the shared news corpus as JSONL (by publish year, or the first N articles).

Usage: python bench/news_slice.py OUT.jsonl [--year 2022] [--first N] [--skip N]
       python bench/news_slice.py OUT.jsonl --year 2022 --gold QUESTIONS.jsonl --sample N

``--gold`` keeps every record whose URL is a gold URL of a question in QUESTIONS, plus a
seeded random sample of N other records (of ``--year``, when given) as distractors: a small
news index on which the readers can be compared where embedding the whole year takes hours
(a CPU without bf16).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared/data/news/realtimeqa-corpus.jsonl.gz"


def gold_urls(questions: Path) -> set[str]:
    """Every gold URL of a RealTime QA question file."""
    with open(questions, encoding="utf-8") as handle:
        return {u for line in handle if line.strip() for u in json.loads(line)["gold_urls"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--year", default="")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--gold", type=Path, default=None, help="keep the gold articles of these")
    ap.add_argument("--sample", type=int, default=0, help="with --gold: other records kept")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    gold = gold_urls(args.gold) if args.gold else set()
    kept: list[str] = []
    others: list[str] = []
    seen = 0
    with gzip.open(CORPUS, "rt", encoding="utf-8") as src:
        for line in src:
            obj = json.loads(line)
            line = line if line.endswith("\n") else line + "\n"
            if gold and obj.get("url") in gold:
                kept.append(line)
                continue
            if args.year and not str(obj.get("publish_date", "")).startswith(args.year):
                continue
            seen += 1
            if seen <= args.skip:
                continue
            others.append(line)
            if not gold and args.first and len(others) >= args.first:
                break
    if gold:
        others = random.Random(args.seed).sample(others, min(args.sample, len(others)))
    with open(args.out, "w", encoding="utf-8") as dst:
        dst.writelines(kept + others)
    print(f"wrote {len(kept) + len(others)} articles ({len(kept)} gold) to {args.out}")


if __name__ == "__main__":
    main()
