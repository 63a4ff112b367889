"""Choose the headline route's weight and hits (retrieval only).

Usage: python bench/headline_grid.py INDEX_DIR QUESTIONS [--limit N] [--as-of-question-date]
           [--weights 0.1,0.2,...] [--hits 10,20,...] [--forms cosine,relative]

For every setting (weight, headline hits, fusion form) each question is searched through the
product's retriever (as of its own date with ``--as-of-question-date``, RealTime QA files; as of
today otherwise, e.g. SQuAD-open), with its time words, and recall@1/5/10/20 and MRR of a gold
URL in the top 20 are printed. The first row is the route off (weight 0). Forms:

- ``cosine`` (the product's): a hit lifts by ``weight * best * cosine``;
- ``relative``: by ``weight * best * cosine / top cosine`` (the best headline gets the whole
  weight, whatever its cosine).

The index needs headline vectors (``newsqa index`` or ``import`` writes them).
"""

from __future__ import annotations

import sys

from common import Memo, arguments, metrics

from qa.eval.questions import load_questions
from qa.search.retriever import Retriever


class Relative(Retriever):
    """The ``relative`` form: headline cosines divided by the query's best headline cosine."""

    def _headlines(self, view, vector, filters):  # type: ignore[no-untyped-def]
        found = super()._headlines(view, vector, filters)
        top = max(found.values(), default=0.0)
        return {a: h / top for a, h in found.items()} if top > 0 else found


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--weights", default="0.1,0.2,0.3,0.5")
    ap.add_argument("--hits", default="10,20")
    ap.add_argument("--forms", default="cosine")
    args = ap.parse_args()
    qs = load_questions(args.questions)
    qs = qs[: args.limit] if args.limit else qs
    print(f"{len(qs)} questions; recall@1 @5 @10 @20, MRR")
    memo: Memo | None = None
    for form in args.forms.split(","):
        r = (Relative if form == "relative" else Retriever)(args.index_dir)
        memo = memo or Memo(r.embedder)
        r.embedder = memo
        grid = [(0.0, 0)] if form == args.forms.split(",")[0] else []
        grid += [(w, int(h)) for w in floats(args.weights) for h in floats(args.hits)]
        for weight, hits in grid:
            r.headline_weight, r.headline_hits = weight, hits
            result = metrics(r, qs, args.as_of_question_date, True)
            print(f"form={form:<8} weight={weight:<5g} hits={hits:<3} {result}")
            sys.stdout.flush()
        r.backend.close()


if __name__ == "__main__":
    main()
