"""bf16 vs fp32 embeddings: speed, cosine agreement and dense recall on SQuAD-open.

Usage: python bench/precision.py INDEX_DIR QUESTIONS.json [--limit N]

INDEX_DIR is an index built by ``newsqa import`` of the same SQuAD file. Both precisions embed
the index's passages (title + text, as indexed) and the questions; recall@k of the gold
paragraph is computed by exact inner product. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from qa.eval.questions import load_questions
from qa.hardware import bf16_supported
from qa.index.embed import Embedder
from qa.index.folder import open_store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    with open_store(args.index_dir) as store:
        rows = store.db.execute(
            "SELECT a.title, p.text, a.url FROM passages p JOIN articles a ON a.id = p.article_id "
            "WHERE p.deleted_gen IS NULL ORDER BY p.rowid"
        ).fetchall()
    texts = [f"{t}\n{x}" for t, x, _ in rows]
    urls = np.array([u for _, _, u in rows])
    qs = load_questions(args.questions)
    if args.limit:
        qs = qs[: args.limit]
    questions = [q.question for q in qs]
    results = {}
    modes = [("fp32", False)] + ([("bf16", True)] if bf16_supported() else [])
    for name, bf16 in modes:
        emb = Embedder(bf16=bf16)
        emb.embed(["warm up"])
        t = time.perf_counter()
        pv = emb.embed(texts)
        rate = len(texts) / (time.perf_counter() - t)
        qv = emb.embed(questions, batch_size=256)
        top = np.argsort(-(qv @ pv.T), axis=1)[:, :20]
        ranks = [
            next((i + 1 for i, d in enumerate(row) if urls[d] in q.gold_urls), 99)
            for row, q in zip(top, qs, strict=True)
        ]
        results[name] = (pv, rate, [np.mean([r <= k for r in ranks]) for k in (1, 5, 20)])
    print("| precision | passages/s | recall@1 | recall@5 | recall@20 | min cosine to fp32 |")
    print("|---|---|---|---|---|---|")
    ref = results["fp32"][0]
    for name, (pv, rate, rec) in results.items():
        cos = float(np.min(np.sum(pv * ref, axis=1)))
        print(f"| {name} | {rate:.1f} | {rec[0]:.3f} | {rec[1]:.3f} | {rec[2]:.3f} | {cos:.4f} |")


if __name__ == "__main__":
    main()
