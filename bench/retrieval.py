"""Compare retrieval methods (BM25, dense, RRF, linear fusion at several weights).

Tune on a SQuAD *train* slice; report on dev with the chosen setting.

Usage: python bench/retrieval.py INDEX_DIR QUESTIONS.json [--limit N]

Prints recall@1/5/20 and MRR of a gold URL in the top 20 for BM25 only, dense only, RRF and
linear fusion at several BM25 weights. Each question is searched through the product's
retriever (its other settings at their defaults, no as-of day) once per setting; its
embedding is computed once.
"""

from __future__ import annotations

from common import arguments, gold_ranks, open_bench, recall_mrr

SETTINGS: list[tuple[str, float | None]] = [("bm25", None), ("dense", None), ("rrf", None)] + [
    ("linear", w) for w in (0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
]


def main() -> None:
    args = arguments(__doc__, limit=3000, as_of=False).parse_args()
    r, qs = open_bench(args.index_dir, args.questions, args.limit)
    print(f"{'fusion':<14}{'r@1':>7}{'r@5':>7}{'r@20':>7}{'mrr':>7}   ({len(qs)} questions)")
    for fusion, w in SETTINGS:
        r.fusion = fusion
        if w is not None:
            r.bm25_weight = w
        scores = recall_mrr(gold_ranks(r, qs), ks=(1, 5, 20))
        name = fusion if w is None else f"linear w={w}"
        print(f"{name:<14}" + "".join(f"{v:7.3f}" for v in scores), flush=True)


if __name__ == "__main__":
    main()
