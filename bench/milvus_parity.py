"""Embedded index against Milvus on the same store: top-10 overlap, recall and fusions.

Usage:
    python bench/milvus_parity.py EMBEDDED_INDEX MILVUS_INDEX MILVUS_URI QUESTIONS [--limit N]

MILVUS_INDEX is a copy of EMBEDDED_INDEX published to MILVUS_URI (``cp -r`` it, then
``newsqa import FILE --index-dir COPY --backend URI`` with the file it was imported from: the
same passages and vectors,
published in full without embedding anything again). For the first N questions it prints the
mean overlap of the two backends' top-10 passages under newsqa's linear fusion, and
recall@1/5/20 and milliseconds per question of each backend and fusion: the embedded linear
fusion, and on Milvus the same client-side linear fusion and Milvus's own RRF and weighted
rankers (``hybrid_search``). Retrieval only (no reader), as ``newsqa eval`` ranks it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qa.eval.questions import EvalQuestion, load_questions
from qa.search.engines import open_backend
from qa.search.retriever import Retriever
from qa.types import Hit

K = (1, 5, 20)


def _rank(hits: list[Hit], q: EvalQuestion) -> int | None:
    gold = set(q.gold_urls)
    return next((i + 1 for i, h in enumerate(hits) if gold.intersection(h.urls)), None)


def _run(r: Retriever, qs: list[EvalQuestion]) -> tuple[list[list[Hit]], dict[str, float]]:
    r.search("warm up", k=1)
    out, t0 = [], time.perf_counter()
    for q in qs:
        out.append(r.search(q.question, k=20))
    ms = (time.perf_counter() - t0) * 1000 / max(len(qs), 1)
    ranks = [_rank(h, q) for h, q in zip(out, qs, strict=True)]
    metrics = {f"recall@{k}": sum(1 for x in ranks if x and x <= k) / len(qs) for k in K}
    metrics["ms_per_question"] = ms
    return out, metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("embedded", type=Path)
    ap.add_argument("milvus", type=Path)
    ap.add_argument("uri")
    ap.add_argument("questions", type=Path)
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()
    qs = load_questions(args.questions)[: args.limit]
    local = Retriever(args.embedded, backend=open_backend(args.embedded, "embedded"))
    results: dict[str, dict[str, float]] = {}
    base, results["embedded linear"] = _run(local, qs)
    for fusion in ("linear", "milvus-rrf", "milvus-weighted"):
        r = Retriever(
            args.milvus,
            embedder=local.embedder,
            fusion=fusion,
            backend=open_backend(args.milvus, args.uri),
        )
        hits, results[f"milvus {fusion}"] = _run(r, qs)
        if fusion == "linear":
            overlap = [
                len({h.passage.id for h in a[:10]} & {h.passage.id for h in b[:10]})
                / max(min(len(a[:10]), len(b[:10])), 1)
                for a, b in zip(base, hits, strict=True)
            ]
            results[f"milvus {fusion}"]["top10_overlap"] = sum(overlap) / len(overlap)
    print(json.dumps({"questions": len(qs), **results}, indent=1))


if __name__ == "__main__":
    main()
