"""Follow-up rewriting bench: does the rewritten follow-up retrieve the gold article?

Usage: python bench/followups.py INDEX_DIR [INDEX_DIR ...] [--pairs bench/followups.jsonl]
       [-k 5] [--detail]

Each line of the pairs file is ``{"kind": "follow_up" | "new_topic", "first": ...,
"follow_up": ..., "gold_url": ...}``. The first question is asked for real (its answer feeds
the rewriter, as in the chat); then the follow-up is retrieved as typed ("raw") and as
rewritten by ``qa.followup.QueryRewriter`` with the index's document frequencies. A pair is
scored on the index (of those given) that holds its gold article; pairs whose gold article is
in none of them are counted as skipped. ``new_topic`` pairs must not be rewritten.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from qa.answer import Answerer
from qa.chats import Turn
from qa.eval.metrics import max_over_truths
from qa.followup import QueryRewriter, RetrieverStats, answer_rewritten
from qa.index.embed import Embedder
from qa.index.folder import open_store
from qa.types import Hit, Response

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    """One pair: the query searched and the gold article's rank, raw and as searched."""

    kind: str
    corpus: str
    follow_up: str
    query: str
    rewritten: bool
    raw_rank: int  # 1-based rank of the gold article in the top k; 0 when absent
    used_rank: int
    # --read: F1 of the answer against the pair's note, reading the rewritten query vs the
    # question as typed (both retrieved with the rewritten query); None: not measured.
    f1_read_query: float | None = None
    f1_read_typed: float | None = None
    f1_read_default: float | None = None  # qa.followup.answer_rewritten, what the chat does


def index_urls(index_dir: Path) -> set[str]:
    """URLs of the articles visible in an index."""
    with open_store(index_dir) as store:
        gen = store.current_gen
        q = (
            "SELECT url FROM articles WHERE added_gen <= ? AND "
            "(deleted_gen IS NULL OR deleted_gen > ?)"
        )
        urls = {r[0] for r in store.db.execute(q, (gen, gen)) if r[0]}
        # Other URLs of duplicate articles (indexes built since article_urls exists).
        with contextlib.suppress(sqlite3.OperationalError):
            urls |= {r[0] for r in store.db.execute("SELECT url FROM article_urls")}
        return urls


def rank_of(url: str, hits: list[Hit]) -> int:
    """1-based rank of the first hit from ``url`` (or a duplicate of it); 0 when none."""
    return next((i + 1 for i, h in enumerate(hits) if url in getattr(h, "urls", (h.url,))), 0)


def read_f1(answerer: Answerer, question: str, query: str, note: str, k: int) -> float:
    """F1 against ``note`` of the answer shown (0 when none) for ``question`` read as given,
    retrieved with ``query``."""
    return note_f1(answerer.ask(question, k=k, search_query=query), note)


def note_f1(resp: Response, note: str) -> float:
    """F1 of the answer shown against ``note`` (0 when none)."""
    return max_over_truths("f1", resp.answer.text, [note]) if resp.answer else 0.0


def run_index(
    index_dir: Path, pairs: list[dict[str, str]], embedder: Embedder, k: int, read: bool = False
) -> list[Result]:
    """Ask each first question, rewrite its follow-up, retrieve both ways."""
    answerer = Answerer(index_dir, embedder=embedder)
    rewriter = QueryRewriter(RetrieverStats(answerer.retriever))
    out = []
    for p in pairs:
        first = Turn.from_response(answerer.ask(p["first"], k=k))
        rw = rewriter.rewrite(p["follow_up"], [first.exchange()])
        raw = answerer.retriever.search(p["follow_up"], k=k)
        used = answerer.retriever.search(rw.query, k=k) if rw.rewritten else raw
        note = p.get("note")
        f1s = (
            (
                read_f1(answerer, rw.query, rw.query, note, k),
                read_f1(answerer, p["follow_up"], rw.query, note, k),
                note_f1(answer_rewritten(answerer.ask, rw, k), note),
            )
            if read and note and p["kind"] == "follow_up"
            else (None, None, None)
        )
        out.append(
            Result(
                p["kind"],
                p.get("corpus", ""),
                p["follow_up"],
                rw.query,
                rw.rewritten,
                rank_of(p["gold_url"], raw),
                rank_of(p["gold_url"], used),
                *f1s,
            )
        )
    return out


def read_table(results: list[Result]) -> str:
    """Markdown: answer F1 against the notes, reading the rewritten query or the typed one."""
    lines = [
        "| follow-ups | n | F1 reading the rewritten query | F1 reading the question as typed "
        "| F1 as the chat reads (qa.followup.answer_rewritten: the rewrite for a leaning-back "
        "question, as typed otherwise or when the rewrite gets none) |",
        "|---|---|---|---|---|",
    ]
    for corpus in [*sorted({r.corpus for r in results}), "all"]:
        rs = [r for r in results if r.f1_read_query is not None and corpus in (r.corpus, "all")]
        if rs:
            q = 100 * sum(r.f1_read_query or 0.0 for r in rs) / len(rs)
            t = 100 * sum(r.f1_read_typed or 0.0 for r in rs) / len(rs)
            d = 100 * sum(r.f1_read_default or 0.0 for r in rs) / len(rs)
            lines.append(f"| {corpus} | {len(rs)} | {q:.1f} | {t:.1f} | {d:.1f} |")
    return "\n".join(lines)


def _rate(xs: list[bool]) -> str:
    return f"{sum(xs)}/{len(xs)} ({100 * sum(xs) / len(xs):.0f}%)" if xs else "-"


def _mrr(ranks: list[int]) -> str:
    return f"{sum(1 / r for r in ranks if r) / len(ranks):.3f}" if ranks else "-"


def table(results: list[Result], k: int) -> str:
    """Markdown summary: follow-ups (raw vs rewritten) and new topics (left alone?)."""
    lines = [
        f"| pairs | n | rewritten | gold in top {k}: raw | gold in top {k}: as searched "
        "| MRR raw | MRR as searched |",
        "|---|---|---|---|---|---|---|",
    ]
    groups = [
        (k, c)
        for k in ("follow_up", "new_topic")
        for c in [*sorted({r.corpus for r in results}), "all"]
    ]
    for kind, corpus in groups:
        rs = [r for r in results if r.kind == kind and corpus in (r.corpus, "all")]
        if not rs or (corpus == "all" and len({r.corpus for r in rs}) < 2):
            continue
        label = f"{'follow-ups' if kind == 'follow_up' else 'new topics'} ({corpus})"
        lines.append(
            f"| {label} | {len(rs)} | {_rate([r.rewritten for r in rs])} | "
            f"{_rate([r.raw_rank > 0 for r in rs])} | {_rate([r.used_rank > 0 for r in rs])} | "
            f"{_mrr([r.raw_rank for r in rs])} | {_mrr([r.used_rank for r in rs])} |"
        )
    return "\n".join(lines)


def detail(results: list[Result]) -> str:
    """One row per pair."""
    lines = [
        "| kind | follow-up | rank raw | rank searched | searched for |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        q = r.query if r.rewritten else "(as typed)"
        lines.append(
            f"| {r.kind} | {r.follow_up} | {r.raw_rank or '-'} | {r.used_rank or '-'} | {q} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("index_dirs", nargs="+", type=Path)
    ap.add_argument("--pairs", type=Path, default=ROOT / "bench" / "followups.jsonl")
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--detail", action="store_true", help="Also print one row per pair.")
    ap.add_argument(
        "--read",
        action="store_true",
        help="Also answer each follow-up (default reader) reading the rewritten query or the "
        "question as typed, and score the answer's F1 against the pair's note.",
    )
    args = ap.parse_args()
    pairs = [json.loads(line) for line in args.pairs.read_text().splitlines() if line.strip()]
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    embedder = Embedder()
    t0 = time.perf_counter()
    results: list[Result] = []
    todo = list(pairs)
    for index_dir in args.index_dirs:
        urls = index_urls(index_dir)
        mine = [p for p in todo if p["gold_url"] in urls]
        todo = [p for p in todo if p["gold_url"] not in urls]
        results += run_index(index_dir, mine, embedder, args.k, args.read)
        print(f"{index_dir}: {len(mine)} pairs", flush=True)
    print()
    print(table(results, args.k))
    if args.read:
        print()
        print(read_table(results))
    if args.detail:
        print()
        print(detail(results))
    skipped = f"; {len(todo)} pairs skipped (gold article in none of the indexes)" if todo else ""
    print(f"\n{len(results)} pairs in {time.perf_counter() - t0:.1f} s{skipped}")


if __name__ == "__main__":
    main()
