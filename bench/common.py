"""What the benchmarks share: the retrieval benchmarks' arguments, opening the index, loading the
questions, searching each question (as of its own date or today) and recall/MRR of a gold URL;
the embedding benchmarks' baseline, plain ``SentenceTransformer.encode``.

Imported by the scripts beside it (``python bench/recency_grid.py ...`` puts this folder on
the path).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa.eval.questions import EvalQuestion, load_questions
from qa.index.embed import Embedder, EmbedderLike
from qa.search.retriever import Retriever
from qa.search.when import Scope, scope_for


def plain_encode(embedder: Embedder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """``texts`` through plain ``SentenceTransformer.encode`` with the embedder's model (its own
    batches of 64 sorted by characters, unnormalised): what a user of sentence-transformers
    gets, the baseline of the embedding benchmarks whatever the product's own batching does."""
    import torch

    with torch.inference_mode():
        vecs = embedder.model.encode(list(texts), batch_size=64, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


class Memo:
    """An embedder that embeds each text once."""

    def __init__(self, inner: EmbedderLike) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.seen: dict[str, npt.NDArray[np.float32]] = {}

    def embed(self, texts: list[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        for t in texts:
            if t not in self.seen:
                self.seen[t] = self.inner.embed([t])[0]
        return np.stack([self.seen[t] for t in texts])


def arguments(doc: str | None, limit: int = 0, as_of: bool = True) -> argparse.ArgumentParser:
    """A parser with INDEX_DIR, QUESTIONS, ``--limit`` and (``as_of``) ``--as-of-question-date``."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--limit", type=int, default=limit, help="the first N questions (0: all)")
    if as_of:
        ap.add_argument(
            "--as-of-question-date",
            action="store_true",
            help="search each question as of its own date (default: today)",
        )
    return ap


def open_bench(
    index_dir: Path, questions: Path, limit: int
) -> tuple[Retriever, list[EvalQuestion]]:
    """The retriever of ``index_dir`` with its default settings (each query embedded once)
    and the first ``limit`` questions of ``questions`` (0: all)."""
    qs = load_questions(questions)
    qs = qs[:limit] if limit else qs
    r = Retriever(index_dir)
    r.embedder = Memo(r.embedder)
    return r, qs


def scope(q: EvalQuestion, as_of_question: bool, words: bool) -> Scope:
    """The question's scope: as of its date (or today), its time words on or off."""
    day = date.fromisoformat(q.date) if as_of_question and q.date else date.today()
    return scope_for(q.question, day) if words else Scope(day)


def gold_ranks(
    r: Retriever,
    qs: Sequence[EvalQuestion],
    scope_of: Callable[[EvalQuestion], Scope | None] = lambda q: None,
    k: int = 20,
) -> list[int | None]:
    """The rank (from 1) of the first hit with a gold URL in each question's top ``k``."""
    ranks = []
    for q in qs:
        hits = r.search(q.question, k=k, scope=scope_of(q))
        gold = set(q.gold_urls)
        ranks.append(next((i + 1 for i, h in enumerate(hits) if gold & set(h.urls)), None))
    return ranks


def recall_mrr(ranks: Sequence[int | None], ks: Sequence[int] = (1, 5, 10, 20)) -> list[float]:
    """Recall at each of ``ks``, then the mean reciprocal rank."""
    n = len(ranks) or 1
    rec = [sum(1 for x in ranks if x and x <= k) / n for k in ks]
    mrr = sum(1 / x for x in ranks if x) / n
    return [*rec, mrr]


def metrics(r: Retriever, qs: list[EvalQuestion], as_of_q: bool, words: bool) -> str:
    """Recall@1/5/10/20 and MRR, searched as of each question's date (or today)."""
    ranks = gold_ranks(r, qs, lambda q: scope(q, as_of_q, words))
    return " ".join(f"{v:6.3f}" for v in recall_mrr(ranks))
