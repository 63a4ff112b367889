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
    written = n_gold = seen = 0
    pool: list[str] = []  # with --gold: the records the distractors are sampled from
    with gzip.open(CORPUS, "rt", encoding="utf-8") as src, open(args.out, "w") as dst:
        for line in src:
            obj = json.loads(line)
            line = line if line.endswith("\n") else line + "\n"
            if obj.get("url") in gold:
                dst.write(line)
                n_gold += 1
                continue
            if args.year and not str(obj.get("publish_date", "")).startswith(args.year):
                continue
            seen += 1
            if seen <= args.skip:
                continue
            if gold:
                pool.append(line)
                continue
            dst.write(line)
            written += 1
            if args.first and written >= args.first:
                break
        if gold:
            picked = random.Random(args.seed).sample(pool, min(args.sample, len(pool)))
            dst.writelines(picked)
            written += len(picked)
    print(f"wrote {written + n_gold} articles ({n_gold} gold) to {args.out}")


if __name__ == "__main__":
    main()
