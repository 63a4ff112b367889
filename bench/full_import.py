"""Import the whole shared news corpus into one index; throughput, memory, size, query latency.

Usage: python bench/full_import.py [--index bench/out/idx-full] [--raw-passages 2000]

In one process (model loaded once):
1. raw ``SentenceTransformer.encode`` throughput on the first passages of the corpus (the
   reference rate);
2. ``Indexer.update`` on realtimeqa-corpus.jsonl.gz (streamed; resumable: a re-run after a
   kill continues where the committed batches stopped, and its rates cover that run only);
3. peak RSS, index bytes on disk per passage;
4. query latency p50/p95 (and recall@10 of a gold URL) for the 75 RealTime QA questions,
   each searched as of its question date, on the full index.
Prints a markdown table and writes bench/out/full_import.txt.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import plain_encode  # noqa: E402

from qa.eval.metrics import percentile  # noqa: E402
from qa.index.chunk import Chunker  # noqa: E402
from qa.index.embed import BATCH, Embedder  # noqa: E402
from qa.index.indexer import Indexer  # noqa: E402
from qa.index.sources import estimate_records  # noqa: E402
from qa.ingest.files import Ingestor, Skipped  # noqa: E402
from qa.search.retriever import Filters, Retriever  # noqa: E402

SHARED = ROOT.parent / "shared/data/news"
CORPUS = SHARED / "realtimeqa-corpus.jsonl.gz"
QUESTIONS = SHARED / "realtimeqa-dev.jsonl"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_texts(n: int) -> list[str]:
    """The first ``n`` passages of the corpus, as the embedder sees them."""
    chunker, texts = Chunker(), []
    for article in Ingestor().read_file(CORPUS):
        if not isinstance(article, Skipped):
            texts += [p.embed_text() for p in chunker.split(article)]
        if len(texts) >= n:
            break
    return texts[:n]


def spread_texts(n: int, seed: int = 7) -> list[str]:
    """One random passage from each of ``n`` articles spread evenly over the whole corpus.

    The first passages of the file are not a fair reference: passage lengths (and so encode
    cost) drift through the corpus. This sample has the whole corpus's mix.
    """
    import random

    step = max(1, estimate_records([CORPUS]) // n)
    rng, chunker, texts = random.Random(seed), Chunker(), []
    for i, article in enumerate(Ingestor().read_file(CORPUS)):
        if i % step == 0 and not isinstance(article, Skipped):
            passages = chunker.split(article)
            if passages:
                texts.append(rng.choice(passages).embed_text())
    return texts[:n]


def rate(embedder: Embedder, texts: list[str]) -> float:
    """Passages/s of plain ``SentenceTransformer.encode`` on ``texts`` (its own batches of 64
    sorted by characters, in the embedder's precision; the product batches by word pieces)."""
    t = time.perf_counter()
    plain_encode(embedder, texts)
    return len(texts) / (time.perf_counter() - t)


def queries(index: Path, embedder: Embedder) -> tuple[float, float, float]:
    """p50/p95 ms and recall@10 of the news questions on the index."""
    retriever = Retriever(index, embedder)
    retriever.search("warm up", k=10)
    lat, found = [], 0
    qs = [json.loads(x) for x in QUESTIONS.read_text().splitlines() if x.strip()]
    for q in qs:
        until = q["question_date"].replace("/", "-")
        t = time.perf_counter()
        hits = retriever.search(q["question"], k=10, filters=Filters(until=until))
        lat.append((time.perf_counter() - t) * 1000)
        found += any(set(q["gold_urls"]) & set(h.urls) for h in hits)
    return percentile(lat, 50), percentile(lat, 95), found / len(qs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, default=ROOT / "bench/out/idx-full")
    ap.add_argument("--raw-passages", type=int, default=2000)
    ap.add_argument(
        "--raw-only",
        action="store_true",
        help="only the two raw encode rates (no import, no queries)",
    )
    args = ap.parse_args()
    embedder = Embedder()
    embedder.embed(["warm up"])
    raw = rate(embedder, first_texts(args.raw_passages))
    print(f"raw encode, first {args.raw_passages} passages: {raw:.1f} passages/s", flush=True)
    spread = rate(embedder, spread_texts(args.raw_passages))
    print(
        f"raw encode, {args.raw_passages} passages spread over the corpus: {spread:.1f}/s",
        flush=True,
    )
    if args.raw_only:
        return
    last = [0.0]
    t0 = time.perf_counter()

    indexer = Indexer(args.index, embedder)
    embedded = [0]
    real_embed = embedder.embed

    def counting_embed(texts: list[str], batch_size: int = BATCH) -> object:
        embedded[0] += len(texts)
        return real_embed(texts, batch_size)

    embedder.embed = counting_embed  # type: ignore[method-assign,assignment]

    def progress(done: int, total: int | None) -> None:
        now = time.perf_counter()
        if now - last[0] > 60:
            last[0] = now
            secs = now - t0
            print(
                f"{done}/{total} articles, {done / secs:.1f}/s, {embedded[0]} passages "
                f"embedded, {embedded[0] / secs:.1f}/s, RSS {rss_mb():.0f} MB",
                flush=True,
            )

    rep = indexer.update([CORPUS], prune=False, progress=progress)
    secs = time.perf_counter() - t0
    disk = sum(f.stat().st_size for f in args.index.rglob("*") if f.is_file())
    p50, p95, r10 = queries(args.index, embedder)
    run_rate = rep.passages_embedded / secs
    rows = [
        ("articles in index / added this run", f"{rep.articles} / {rep.added}"),
        ("passages in index / embedded this run", f"{rep.passages} / {rep.passages_embedded}"),
        (
            "duplicates / near-dup copies / skipped",
            f"{rep.duplicates} / {getattr(rep, 'near_duplicates', 0)} / {rep.skipped}",
        ),
        ("run time (s)", f"{secs:.0f}"),
        ("articles/s (this run)", f"{rep.added / secs:.1f}"),
        ("passages/s (this run)", f"{run_rate:.1f}"),
        (
            "raw encode passages/s: first passages / spread over the corpus",
            f"{raw:.1f} / {spread:.1f}",
        ),
        (
            "ratio to raw encode: first passages / spread",
            f"{run_rate / raw:.2f} / {run_rate / spread:.2f}",
        ),
        ("peak RSS (MB)", f"{rss_mb():.0f}"),
        (
            "index on disk (MB) / bytes per passage",
            f"{disk / 2**20:.0f} / {disk / max(1, rep.passages):.0f}",
        ),
        ("query p50 / p95 (ms), 75 news questions", f"{p50:.1f} / {p95:.1f}"),
        ("recall@10 (as of question date)", f"{r10:.3f}"),
    ]
    lines = ["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    print("\n".join(lines))
    (ROOT / "bench/out/full_import.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
