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

import numpy as np

from qa.eval.questions import load_questions
from qa.search.retriever import Retriever


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--limit", type=int, default=3000)
    args = ap.parse_args()
    qs = load_questions(args.questions)[: args.limit]
    r = Retriever(args.index_dir, candidates=100)
    snap = r.view()
    n = min(r.candidates, snap.gen.size)
    urls = doc_urls(r, snap.gen.ids)
    # Batch the query embeddings (the product embeds one query at a time; same vectors).
    qvecs = r.embedder.embed([q.question for q in qs], batch_size=256)
    # A freshly built index is one full segment: search it directly, batched.
    assert snap.gen.delta is None, "run on a freshly built index (newsqa index --rebuild)"
    scores, idx = snap.gen.base.dense.search(qvecs, n)
    sides = []
    for i, q in enumerate(qs):
        dense = {int(d): float(s) for d, s in zip(idx[i], scores[i], strict=True) if d >= 0}
        sides.append((dense, r._sparse(snap, q.question, n, None)))
    settings = [("bm25", None), ("dense", None), ("rrf", None)] + [
        ("linear", w) for w in (0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
    ]
    print(f"{'fusion':<14}{'r@1':>7}{'r@5':>7}{'r@20':>7}{'mrr':>7}   ({len(qs)} questions)")
    for fusion, w in settings:
        r.fusion = fusion
        if w is not None:
            r.bm25_weight = w
        hits = {1: 0, 5: 0, 20: 0}
        mrr = 0.0
        for q, (dense, sparse) in zip(qs, sides, strict=True):
            ranked = [urls[d] for d, _ in r._fuse(dense, sparse)[:20]]
            rank = next((i + 1 for i, u in enumerate(ranked) if u in q.gold_urls), None)
            for k in hits:
                hits[k] += bool(rank and rank <= k)
            mrr += 1 / rank if rank else 0.0
        name = fusion if w is None else f"linear w={w}"
        print(
            f"{name:<14}"
            + "".join(f"{hits[k] / len(qs):7.3f}" for k in (1, 5, 20))
            + f"{mrr / len(qs):7.3f}"
        )


def doc_urls(r: Retriever, ids: np.ndarray) -> list[str]:
    """URL of every document number of the generation (one query)."""
    q = "SELECT p.rowid, a.url FROM passages p JOIN articles a ON a.id = p.article_id"
    by_row = dict(r.view().store.db.execute(q).fetchall())
    return [by_row.get(int(i), "") for i in ids]


if __name__ == "__main__":
    main()
