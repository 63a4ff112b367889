"""Choose how one article is kept from filling the top k (retrieval only).

Usage: python bench/article_grid.py INDEX_DIR QUESTIONS [--limit N] [--as-of-question-date]
           [--penalties 0,0.05,...] [--spread-from 5,...] [--candidates 100,...]

For every setting of the grid (the same-article penalty, the rank below which it applies, and
the candidates taken from each side before fusion) each question is searched through the
product's retriever (as of its own date with ``--as-of-question-date``, RealTime QA files; as
of today otherwise, e.g. SQuAD-open), with its time words, and recall@1/5/10/20 and MRR of a
gold URL in the top 20 are printed per setting. The query embedding is computed once per
question. The first row is the setting without a penalty.
"""

from __future__ import annotations

import sys

from common import arguments, metrics, open_bench


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--penalties", default="0.05,0.1,0.2,0.5")
    ap.add_argument("--spread-from", default="5")
    ap.add_argument("--candidates", default="100")
    args = ap.parse_args()
    r, qs = open_bench(args.index_dir, args.questions, args.limit)
    print(f"{len(qs)} questions; recall@1 @5 @10 @20, MRR")
    for n in (int(x) for x in floats(args.candidates)):
        grid = [(0.0, 0)] + [
            (p, int(f)) for p in floats(args.penalties) for f in floats(args.spread_from)
        ]
        for penalty, spread_from in grid:
            r.candidates, r.article_penalty, r.spread_from = n, penalty, spread_from
            result = metrics(r, qs, args.as_of_question_date, True)
            print(f"candidates={n:<4} penalty={penalty:<5g} from={spread_from:<3} {result}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
