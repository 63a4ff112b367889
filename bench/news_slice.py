"""Write a slice of the shared news corpus as JSONL (by publish year, or the first N articles).

Usage: python bench/news_slice.py OUT.jsonl [--year 2022] [--first N] [--skip N]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared/data/news/realtimeqa-corpus.jsonl.gz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--year", default="")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--skip", type=int, default=0)
    args = ap.parse_args()
    n = 0
    seen = 0
    with gzip.open(CORPUS, "rt", encoding="utf-8") as src, open(args.out, "w") as dst:
        for line in src:
            obj = json.loads(line)
            if args.year and not str(obj.get("publish_date", "")).startswith(args.year):
                continue
            seen += 1
            if seen <= args.skip:
                continue
            dst.write(line if line.endswith("\n") else line + "\n")
            n += 1
            if args.first and n >= args.first:
                break
    print(f"wrote {n} articles to {args.out}")


if __name__ == "__main__":
    main()
