"""Compare retrieval methods (BM25, dense, RRF, linear fusion at several weights).

Tune on a SQuAD *train* slice; report on dev with the chosen setting.

Usage: python bench/retrieval.py INDEX_DIR QUESTIONS.json [--limit N]

Prints recall@1/5/20 and MRR for BM25 only, dense only, RRF and linear fusion at several BM25
weights. Embeddings and BM25 scores are computed once per question and re-fused for each
setting, so the sweep costs one retrieval per question.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qa.evaluate import load_questions
from qa.retrieve import Retriever


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--limit", type=int, default=3000)
    args = ap.parse_args()
    qs = load_questions(args.questions)[: args.limit]
    r = Retriever(args.index_dir, candidates=100)
    snap = r._refresh()
    n = min(r.candidates, snap.gen.size)
    sides = [
        (r._dense(snap, q.question, n, None), r._sparse(snap, q.question, n, None)) for q in qs
    ]
    settings = [("bm25", None), ("dense", None), ("rrf", None)] + [
        ("linear", w) for w in (0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)]
    print(f"{'fusion':<14}{'r@1':>7}{'r@5':>7}{'r@20':>7}{'mrr':>7}   ({len(qs)} questions)")
    for fusion, w in settings:
        r.fusion = fusion
        if w is not None:
            r.bm25_weight = w
        hits = {1: 0, 5: 0, 20: 0}
        mrr = 0.0
        for q, (dense, sparse) in zip(qs, sides, strict=True):
            ranked = [snap.gen.ids[d] for d, _ in r._fuse(dense, sparse)[:20]]
            rows = r.store.passages_by_rowid([int(x) for x in ranked])
            urls = [rows[int(x)]["url"] for x in ranked if int(x) in rows]
            rank = next((i + 1 for i, u in enumerate(urls) if u in q.gold_urls), None)
            for k in hits:
                hits[k] += bool(rank and rank <= k)
            mrr += 1 / rank if rank else 0.0
        name = fusion if w is None else f"linear w={w}"
        print(f"{name:<14}" + "".join(f"{hits[k] / len(qs):7.3f}" for k in (1, 5, 20))
              + f"{mrr / len(qs):7.3f}")


if __name__ == "__main__":
    main()
