"""Indexing throughput, memory and incremental costs on shared-corpus articles.

Usage: python bench/index_speed.py [--articles 2000] [--work DIR] [--rounds 1] [--torch]

In one process (model loaded once):
1. chunk the articles and time raw ``SentenceTransformer.encode`` on the same passage texts
   (its own batches of 64 sorted by characters; same precision as the product: bf16 where
   supported), the reference throughput; the product's embedder batches by word pieces, so
   the index can run faster than this reference;
2. index them with newsqa (ingest + chunk + embed + SQLite + FAISS + BM25 generation) into a
   fresh index, with the passage embedder ``newsqa index`` picks on this CPU (torch in bf16
   where the CPU has it, else the int8 ONNX Runtime copy when built; ``--torch`` forces the
   torch embedder); steps 1-2 alternate ``--rounds`` times (wall and CPU seconds of each);
3. re-index the unchanged corpus;
4. add one new article and re-index, then check it is the top hit for its own title.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from pathlib import Path

from common import plain_encode

from qa.index.chunk import Chunker
from qa.index.embed import Embedder, EmbedderLike
from qa.index.folder import embedder_for
from qa.index.indexer import Indexer
from qa.ingest.files import Ingestor, Skipped
from qa.search.retriever import Retriever

CORPUS = Path(__file__).resolve().parents[1].parent / "shared/data/news/realtimeqa-corpus.jsonl.gz"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_corpus(folder: Path, n: int) -> Path:
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "articles.jsonl"
    with gzip.open(CORPUS, "rt", encoding="utf-8") as src, open(out, "w") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            dst.write(line)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=2000)
    ap.add_argument("--work", type=Path, default=Path("bench/out/index-speed"))
    ap.add_argument("--rounds", type=int, default=1, help="raw encode / index pairs")
    ap.add_argument(
        "--incremental-only",
        action="store_true",
        help="Reuse the index of an earlier run; measure steps 3-4 only.",
    )
    ap.add_argument("--torch", action="store_true", help="index with the torch embedder")
    args = ap.parse_args()
    index_dir = args.work / "index"
    if args.incremental_only:  # the earlier run's index keeps its own runtime
        incremental(
            args.work, Embedder() if args.torch else embedder_for(index_dir, for_index=True)
        )
        return
    shutil.rmtree(args.work, ignore_errors=True)
    corpus = write_corpus(args.work / "corpus", args.articles)
    embedder = Embedder()  # raw encode's model, in the precision the product gives torch
    embedder.embed(["warm up"])
    # The passage embedder of a new index on this CPU, as `newsqa index` picks it.
    passages: EmbedderLike = embedder if args.torch else embedder_for(index_dir, for_index=True)
    passages.embed(["warm up"])
    rows: list[tuple[str, str]] = [
        ("articles", str(args.articles)),
        ("raw encode precision", "bf16" if embedder.bf16 else "fp32"),
        ("index embedder", getattr(passages, "runtime", "torch")),
    ]

    articles = [a for a in Ingestor().read_file(corpus) if not isinstance(a, Skipped)]
    chunker = Chunker()
    t = time.perf_counter()
    texts = [p.embed_text() for a in articles for p in chunker.split(a)]
    chunk_s = time.perf_counter() - t
    # Raw encode and the full index alternate (``--rounds``): a load that changes during the
    # run then weighs on both, and each round's ratio compares neighbours in time.
    raw_rates, rates, ratios, cpu_ratios = [], [], [], []
    indexer = Indexer(index_dir, passages)
    for _ in range(args.rounds):
        t, c = time.perf_counter(), time.process_time()
        plain_encode(embedder, texts)
        raw_s, raw_cpu = time.perf_counter() - t, time.process_time() - c
        shutil.rmtree(index_dir, ignore_errors=True)
        indexer = Indexer(index_dir, passages)
        t, c = time.perf_counter(), time.process_time()
        rep = indexer.update([corpus.parent])
        full_s, full_cpu = time.perf_counter() - t, time.process_time() - c
        raw_rates.append(len(texts) / raw_s)
        rates.append(rep.passages_embedded / full_s)
        ratios.append(rates[-1] / raw_rates[-1])
        cpu_ratios.append(raw_cpu / full_cpu * rep.passages_embedded / len(texts))
        print(
            f"raw {raw_rates[-1]:.1f}/s ({raw_cpu:.1f} CPU s), index {rates[-1]:.1f}/s "
            f"({full_cpu:.1f} CPU s), load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    rows += [
        ("passages", str(len(texts))),
        ("chunking (s)", f"{chunk_s:.1f}"),
        ("raw encode passages/s", " / ".join(f"{r:.1f}" for r in raw_rates)),
        ("truncated passages", str(embedder.count_truncated(texts))),
        ("newsqa index passages/s", " / ".join(f"{r:.1f}" for r in rates)),
        ("ratio to raw encode (wall), per round", " / ".join(f"{r:.2f}" for r in ratios)),
        (
            "ratio to raw encode (CPU seconds), per round",
            " / ".join(f"{r:.2f}" for r in cpu_ratios),
        ),
        ("full index (s), last round", f"{full_s:.1f}"),
        ("peak RSS (MB)", f"{peak_rss_mb():.0f}"),
    ]

    print_rows(rows + incremental(args.work, passages, indexer, echo=False))


def incremental(
    work: Path, embedder: EmbedderLike, indexer: Indexer | None = None, echo: bool = True
) -> list[tuple[str, str]]:
    """Steps 3-4: re-index the unchanged corpus, then add one new article."""
    corpus = work / "corpus"
    index_dir = work / "index"
    indexer = indexer or Indexer(index_dir, embedder)
    embedder.embed(["warm up"])
    indexer.update([corpus])  # settles anything left from an earlier run
    (corpus / "new-article.txt").unlink(missing_ok=True)
    indexer.update([corpus])
    t = time.perf_counter()
    rep = indexer.update([corpus])
    rows = [("re-index unchanged (s)", f"{time.perf_counter() - t:.2f}")]
    assert rep.passages_embedded == 0 and rep.added == 0
    new = corpus / "new-article.txt"
    new.write_text(
        "Zorblatt Quantum Glacier Melts Early\n\nMarch 3, 2022\n\n"
        "Scientists said the Zorblatt glacier in Patagonia lost a third of its ice "
        "in a single season, surprising researchers who expected decades of slow "
        "retreat.\n\nThe team blamed an unusual heat dome.\n",
        encoding="utf-8",
    )
    t = time.perf_counter()
    indexer.update([corpus])
    one_s = time.perf_counter() - t
    hits = Retriever(index_dir, embedder).search("Which glacier lost a third of its ice?", k=1)
    found = bool(hits) and "Zorblatt" in hits[0].title
    rows += [
        ("one new article indexed (s)", f"{one_s:.2f}"),
        ("new article answerable", str(found)),
    ]
    if echo:
        print_rows(rows)
    return rows


def print_rows(rows: list[tuple[str, str]]) -> None:
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
