"""Choose how the span reader combines reader and retrieval evidence, on held-out *train*.

Usage: python bench/reader_combine.py [--questions 800] [--distractors 35] [--k 5]

Builds an open-retrieval index of the reader's held-out SQuAD *train* articles (never seen
in training) plus distractor train articles, asks the held-out questions through the real
retriever, reads the top passages once, and scores each way of ranking answers across
passages: the reader's span score alone, span score + w x relative retrieval score, and
the calibrated probability. The dev files are never read. Output: a table and
bench/out/reader_combine.txt.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qa.reader.model as reader_model  # noqa: E402
from qa.eval.metrics import max_over_truths  # noqa: E402
from qa.index.embed import Embedder  # noqa: E402
from qa.index.indexer import Indexer  # noqa: E402
from qa.ingest.squad import load_articles  # noqa: E402
from qa.reader.sentence import SentenceReader  # noqa: E402
from qa.reader.span import SpanReader  # noqa: E402
from qa.search.retriever import Retriever  # noqa: E402
from qa.train.config import DEFAULT_DATA  # noqa: E402
from qa.train.data import flatten, split_articles  # noqa: E402

OUT = ROOT / "bench" / "out"
VARIANTS: list[tuple[str, str, float]] = [
    ("reader score only", "reader", 0.0),
    ("span + 1 x retrieval", "linear", 1.0),
    ("span + 2 x retrieval", "linear", 2.0),
    ("span + 4 x retrieval", "linear", 4.0),
    ("span + 8 x retrieval", "linear", 8.0),
    ("span + 16 x retrieval", "linear", 16.0),
    ("span + 32 x retrieval", "linear", 32.0),
    ("calibrated probability", "calibrated", 0.0),
]


def build_index(index_dir: Path, distractors: int, seed: int) -> list[Any]:
    """Index held-out + distractor train articles; returns the held-out questions."""
    train, heldout = split_articles(load_articles(DEFAULT_DATA), 15)
    extra = random.Random(seed).sample(train, distractors)
    src = OUT / "reader-combine-articles.json"
    src.write_text(json.dumps({"version": "heldout+distractors", "data": heldout + extra}))
    if not (index_dir / "HEAD").exists():
        t0 = time.time()
        Indexer(index_dir, Embedder()).update([src], prune=False)
        print(f"indexed {len(heldout) + distractors} articles in {time.time() - t0:.0f}s")
    return flatten(heldout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=800)
    ap.add_argument("--distractors", type=int, default=35)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--reader", default=None, help="reader folder (default: shipped)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    questions = build_index(OUT / "idx-reader-combine", args.distractors, args.seed)
    questions = random.Random(args.seed).sample(questions, min(args.questions, len(questions)))
    retriever = Retriever(OUT / "idx-reader-combine")
    # Every variant reads the same passages: run the model once per question.
    reader_model.extract_spans = _cached(reader_model.extract_spans)
    readers = {
        name: SpanReader(args.reader, combine=mode, retrieval_weight=w)
        for name, mode, w in VARIANTS
    }
    shared = next(iter(readers.values())).load()
    for r in readers.values():
        r._loaded = shared
    scores: dict[str, list[float]] = {name: [0.0, 0.0] for name in [*readers, "sentence"]}
    sentence = SentenceReader()
    for q in questions:
        hits = retriever.search(q.question, k=args.k)
        for name, reader in [*readers.items(), ("sentence", sentence)]:
            answers = reader.read(q.question, hits)
            pred = answers[0].text if answers else ""
            scores[name][0] += max_over_truths("em", pred, q.answers)
            scores[name][1] += max_over_truths("f1", pred, q.answers)
    n = len(questions)
    lines = [
        f"held-out open retrieval: {n} questions, top {args.k} passages",
        f"{'ranking':28} {'EM':>6} {'F1':>6}",
    ]
    lines += [
        f"{name:28} {100 * em / n:6.1f} {100 * f1 / n:6.1f}" for name, (em, f1) in scores.items()
    ]
    print("\n".join(lines))
    (OUT / "reader_combine.txt").write_text("\n".join(lines) + "\n")


def _cached(fn: Any) -> Any:
    """extract_spans with hashable arguments, so lru_cache can memoise it."""

    def call(
        model: Any, tokenizer: Any, question: str, contexts: tuple[str, ...], **kw: Any
    ) -> Any:
        return fn(model, tokenizer, question, list(contexts), **kw)

    cached = functools.lru_cache(maxsize=4)(call)

    def wrapper(model: Any, tokenizer: Any, question: str, contexts: list[str], **kw: Any) -> Any:
        return cached(model, tokenizer, question, tuple(contexts), **kw)

    return wrapper


if __name__ == "__main__":
    main()
