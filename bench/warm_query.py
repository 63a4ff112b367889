"""Warm query latency with the reader: p50/p95 of retrieval + reading, models loaded once.

Usage: python bench/warm_query.py --index-dir bench/out/idx-news2022
           [--questions ../shared/data/news/realtimeqa-dev.jsonl] [--passes 2] [-k 5]
           [--reader auto]

What a person waits for in ``newsqa chat`` or a long-lived process: one ``Answerer`` (the
product's default query embedder and reader for this CPU, as ``newsqa ask`` picks them) is built
and warmed up, then every question is asked as of its own date (``question_date``: later
articles are never searched), ``--passes`` times over the whole file. Per ask: wall time of
retrieval, of reading and of both (``Answerer.ask``'s own timings), and the process CPU time
(user + system) of the ask, which a loaded machine inflates less than wall time. The index is
only read. Output: a table and bench/out/warm_query.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import hardware  # noqa: E402
from qa.answer import Answerer  # noqa: E402
from qa.eval.questions import load_questions  # noqa: E402

QUESTIONS = ROOT.parent / "shared" / "data" / "news" / "realtimeqa-dev.jsonl"
OUT = ROOT / "bench" / "out"


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("-k", type=int, default=5, help="passages retrieved and read (ask's default)")
    ap.add_argument("--reader", default="auto")
    args = ap.parse_args()
    qs = load_questions(args.questions)

    t = time.perf_counter()
    answerer = Answerer(args.index_dir, reader=args.reader)
    answerer.warm_up()
    first = qs[0]
    answerer.ask(first.question, k=args.k, as_of=date.fromisoformat(first.date))
    ready_s = time.perf_counter() - t
    timings: dict[str, list[float]] = {"retrieve": [], "read": [], "total": [], "cpu": []}
    answered = 0
    loads = [os.getloadavg()[0]]
    for _ in range(args.passes):
        for q in qs:
            as_of = date.fromisoformat(q.date) if q.date else None
            cpu = time.process_time()
            resp = answerer.ask(q.question, k=args.k, as_of=as_of)
            timings["cpu"].append((time.process_time() - cpu) * 1000)
            for key in ("retrieve", "read", "total"):
                timings[key].append(resp.timings_ms[key])
            answered += resp.answer is not None
        loads.append(os.getloadavg()[0])
    span = getattr(answerer.reader, "primary", answerer.reader)
    doc = {
        "cpu": hardware.probe().model,
        "index": str(args.index_dir),
        "asks": len(timings["total"]),
        "k": args.k,
        "embedder": str(getattr(answerer.embedder, "runtime", type(answerer.embedder).__name__)),
        "reader": f"{type(answerer.reader).__name__} ({getattr(span, 'runtime', '')})",
        "ready_s": ready_s,
        "answered": answered,
        "load_1min": loads,
        "ms": {
            k: {"p50": statistics.median(v), "p95": pct(v, 0.95), "max": max(v)}
            for k, v in timings.items()
        },
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "warm_query.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps({k: v for k, v in doc.items() if k != "ms"}))
    print("| ms | p50 | p95 | max |\n|---|---|---|---|")
    for key, row in doc["ms"].items():
        print(f"| {key} | {row['p50']:.1f} | {row['p95']:.1f} | {row['max']:.1f} |")


if __name__ == "__main__":
    main()
