"""Passage embedding per runtime: speed, indexing speed and dense recall@5 on SQuAD-open.

Usage: python bench/embed_runtimes.py [--squad ../shared/data/squad/dev-v1.1.json.gz]
           [--variants fp32,bf16,onnx-int8,onnx-fp32] [--questions N] [--no-index]

SQuAD-open as in docs/benchmarks.md: every dev-v1.1 paragraph is an article, chunked as the
indexer chunks it; a question's gold is its paragraph. For each variant, in one process:

- ``encode passages/s``: the variant's ``embed`` over every passage (the ``st-fp32`` row is plain
  float32 ``SentenceTransformer.encode``, batches of 64 sorted by characters, the baseline of
  the ratios when listed, else ``fp32``: the product's torch embedder in float32);
- ``index passages/s``: ``newsqa index`` (ingest, chunk, embed, SQLite, near-dup, FAISS, BM25)
  of the same file into a fresh index with that embedder;
- ``dense recall@5``: exact inner-product search of every question's vector (embedded by the
  same runtime) over the passage vectors; the gold paragraph among the top 5 passages. The
  product embeds questions in float32 for every index: with ``onnx-fp32`` listed before
  ``onnx-int8``, the int8 row also gives the recall of float32 questions against its passages.

Variants: ``st-fp32`` (plain ``SentenceTransformer.encode``), ``fp32`` and ``bf16`` (the
product's torch embedder; bf16 only where the CPU has it), ``onnx-int8``, ``onnx-int8-fused`` and
``onnx-fp32`` (the ONNX Runtime copies of qa.index.embed_onnx, built when absent).
Output: a table and bench/out/embed_runtimes.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import plain_encode  # noqa: E402

from qa import hardware  # noqa: E402
from qa.eval.questions import EvalQuestion, load_questions  # noqa: E402
from qa.index.chunk import Chunker  # noqa: E402
from qa.index.embed import Embedder, _normalize  # noqa: E402
from qa.index.embed_onnx import OnnxEmbedder, build  # noqa: E402
from qa.index.indexer import Indexer  # noqa: E402
from qa.ingest.files import Ingestor, Skipped  # noqa: E402
from qa.types import Article  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json.gz"
OUT = ROOT / "bench" / "out"


class StEncode(Embedder):
    """Plain ``SentenceTransformer.encode`` (batches of 64 sorted by characters): the baseline
    a user of sentence-transformers gets, whatever the product's own batching does."""

    def embed(self, texts: Any, batch_size: int = 64) -> np.ndarray:
        return _normalize(plain_encode(self, texts))


def make(variant: str) -> Any:
    """The embedder of a variant."""
    if variant == "st-fp32":
        return StEncode(bf16=False)
    if variant in ("fp32", "bf16"):
        return Embedder(bf16=variant == "bf16")
    precision = variant.removeprefix("onnx-")
    # int8 passages without spinning threads, as the product embeds them.
    return OnnxEmbedder(build(precision), precision, spin=not precision.startswith("int8"))


def squad_open(
    squad: Path, paragraphs: int = 0
) -> tuple[list[Article], list[str], list[int], list[EvalQuestion], list[int]]:
    """SQuAD-open from a SQuAD file: ``(paragraphs as articles, passage texts, each passage's
    paragraph number, questions whose paragraph is kept, each question's paragraph number)``;
    the first ``paragraphs`` paragraphs when given."""
    articles = [a for a in Ingestor().read_file(squad) if not isinstance(a, Skipped)]
    articles = articles[:paragraphs] if paragraphs else articles
    chunker = Chunker()
    passages = [(a.url, p.embed_text()) for a in articles for p in chunker.split(a)]
    url_ids = {u: i for i, u in enumerate(dict.fromkeys(u for u, _ in passages))}
    texts = [t for _, t in passages]
    purls = [url_ids[u] for u, _ in passages]
    qs = [q for q in load_questions(squad) if q.gold_urls[0] in url_ids]
    return articles, texts, purls, qs, [url_ids[q.gold_urls[0]] for q in qs]


def recall_at(
    qvecs: np.ndarray, pvecs: np.ndarray, gold: list[int], urls: list[int], k: int
) -> float:
    """Share of questions whose gold paragraph is among the top ``k`` passages."""
    hits = 0
    for lo in range(0, len(qvecs), 1024):
        scores = qvecs[lo : lo + 1024] @ pvecs.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for row, g in zip(top, gold[lo : lo + 1024], strict=True):
            hits += g in {urls[i] for i in row}
    return hits / len(qvecs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", type=Path, default=DEV)
    ap.add_argument("--variants", default="st-fp32,fp32,bf16,onnx-int8-fused,onnx-fp32")
    ap.add_argument("--questions", type=int, default=0, help="first N questions (0: all)")
    ap.add_argument(
        "--paragraphs", type=int, default=0, help="first N paragraphs and their questions (0: all)"
    )
    ap.add_argument("--no-index", action="store_true", help="skip the indexing runs")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v != "bf16" or hardware.probe().bf16]

    articles, texts, purls, qs, gold = squad_open(args.squad, args.paragraphs)
    if args.questions:
        qs, gold = qs[: args.questions], gold[: args.questions]
    print(f"{len(articles)} paragraphs, {len(texts)} passages, {len(qs)} questions")
    OUT.mkdir(parents=True, exist_ok=True)
    feed = OUT / "embed-runtimes-articles.jsonl"  # the same paragraphs, for the indexing runs
    with feed.open("w", encoding="utf-8") as fh:
        for a in articles:
            record = {"title": a.title, "text": a.text, "url": a.url, "publish_date": a.date}
            fh.write(json.dumps(record) + "\n")

    rows: dict[str, dict[str, float]] = {}
    qvec_by: dict[str, np.ndarray] = {}
    for variant in variants:
        emb = make(variant)
        emb.embed(["warm up"])
        t = time.perf_counter()
        pvecs = emb.embed(texts)
        enc_rate = len(texts) / (time.perf_counter() - t)
        qvec_by[variant] = emb.embed([q.question for q in qs], batch_size=256)
        row = {
            "encode_passages_s": enc_rate,
            "recall@5": recall_at(qvec_by[variant], pvecs, gold, purls, 5),
            "recall@20": recall_at(qvec_by[variant], pvecs, gold, purls, 20),
        }
        if variant.startswith("onnx-int8") and "onnx-fp32" in qvec_by:
            row["recall@5 (fp32 questions)"] = recall_at(
                qvec_by["onnx-fp32"], pvecs, gold, purls, 5
            )
        if not args.no_index:
            folder = OUT / f"idx-runtime-{variant}"
            shutil.rmtree(folder, ignore_errors=True)
            t = time.perf_counter()
            rep = Indexer(folder, emb).update([feed], prune=False)
            row["index_passages_s"] = rep.passages_embedded / (time.perf_counter() - t)
            shutil.rmtree(folder, ignore_errors=True)
        rows[variant] = row
        print(variant, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)

    base = rows.get("st-fp32", rows.get("fp32", {})).get("encode_passages_s")
    print(
        "\n| runtime | encode passages/s | x base encode | index passages/s | x base encode ",
        end="",
    )
    print("| recall@5 | recall@20 |")
    print("|---|---|---|---|---|---|---|")
    for variant, row in rows.items():
        idx = row.get("index_passages_s", float("nan"))
        ratio = (lambda x: f"{x / base:.2f}") if base else (lambda x: "")
        print(
            f"| {variant} | {row['encode_passages_s']:.1f} | {ratio(row['encode_passages_s'])} | "
            f"{idx:.1f} | {ratio(idx)} | {row['recall@5']:.3f} | {row['recall@20']:.3f} |"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    cpu = hardware.probe()
    doc = {"cpu": cpu.model, "bf16": cpu.bf16, "cores": cpu.cores, "rows": rows}
    (OUT / "embed_runtimes.json").write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
