"""Write a random slice of SQuAD v1.1 *train* articles (for tuning retrieval, never dev).

Usage: python bench/squad_slice.py OUT.json [--articles 50] [--seed 7]

The fusion weight and sentence-reader calibration (docs/benchmarks.md) were chosen on
``--articles 50 --seed 7`` (2,272 paragraphs, 10,605 questions), imported with
``newsqa import OUT.json --index-dir bench/out/idx-squad-tune``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

TRAIN = Path(__file__).resolve().parents[1].parent / "shared/data/squad/train-v1.1.json.gz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--articles", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with gzip.open(TRAIN) as f:
        data = json.load(f)["data"]
    random.seed(args.seed)
    picked = random.sample(data, args.articles)
    args.out.write_text(json.dumps({"version": "train-slice", "data": picked}))
    paragraphs = sum(len(a["paragraphs"]) for a in picked)
    questions = sum(len(p["qas"]) for a in picked for p in a["paragraphs"])
    print(f"wrote {args.articles} articles, {paragraphs} paragraphs, {questions} questions")


if __name__ == "__main__":
    main()
