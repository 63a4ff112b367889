"""Choose the recency prior (weight, half-life) and check the time words, retrieval only.

Usage: python bench/recency_grid.py INDEX_DIR QUESTIONS [--limit N] [--as-of-question-date]
           [--weights 0,0.05,...] [--half-lives 1,2,...] [--same]

Each question is searched as of its own date (``--as-of-question-date``; RealTime QA files)
or today, with the time words of the question on and off, for every weight and half-life of
the grid, and recall@1/5/10/20 and MRR of a gold URL in the top 20 are printed per setting.
The query embedding is computed once per question.

``--same`` checks instead that the default prior and time words change nothing at all on an
undated corpus (SQuAD slices): it compares every question's top 20 passages and their scores
with and without, and exits 1 on the first difference.
"""

from __future__ import annotations

import sys

from common import arguments, metrics, open_bench, scope

from qa.eval.questions import EvalQuestion
from qa.search.retriever import Retriever


def same(r: Retriever, qs: list[EvalQuestion]) -> int:
    """Exit status: 0 when the prior and time words change no question's top 20."""
    weight = r.recency_weight
    for i, q in enumerate(qs):
        r.recency_weight = weight
        on = r.search(q.question, k=20, scope=scope(q, False, True))
        r.recency_weight = 0.0
        off = r.search(q.question, k=20)
        a = [(h.passage.id, round(h.score, 6)) for h in on]
        b = [(h.passage.id, round(h.score, 6)) for h in off]
        if a != b:
            print(f"differs: question {i} {q.question!r}")
            return 1
    print(f"{len(qs)} questions: top 20 passages and scores identical with and without")
    return 0


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--weights", default="0,0.02,0.05,0.1,0.15,0.2,0.3,0.5")
    ap.add_argument("--half-lives", default="1,2,3,5,7,14,30")
    ap.add_argument("--same", action="store_true")
    args = ap.parse_args()
    r, qs = open_bench(args.index_dir, args.questions, args.limit)
    if args.same:
        sys.exit(same(r, qs))
    print(f"{len(qs)} questions; recall@1 @5 @10 @20, MRR")
    for words in (False, True):
        for w in (float(x) for x in args.weights.split(",")):
            for h in [float(x) for x in args.half_lives.split(",")] if w else [1.0]:
                r.recency_weight, r.half_life_days = w, h
                result = metrics(r, qs, args.as_of_question_date, words)
                print(f"time words {'on ' if words else 'off'} w={w:<5g} h={h:<4g} {result}")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
