"""Which reading of a follow-up question answers best: as typed, rewritten, or both?

Usage: python bench/followup_policies.py INDEX_DIR PAIRS.jsonl [PAIRS.jsonl ...]
       [--records bench/out/followup-records.jsonl] [-k 5] [--limit N] [--shorter 2,4]
       python bench/followup_policies.py --score RECORDS.jsonl [RECORDS.jsonl ...]

Pairs come from ``bench/followup_pairs.py`` (``first``, ``follow_up``, gold ``answers``,
``part``). For each pair, as in the chat: the first question is asked for real and its turn
feeds ``qa.followup.QueryRewriter`` (with the index's document frequencies); the follow-up is
then retrieved with the rewrite and read twice, as typed and as rewritten. Both answers are
recorded (text shown, calibrated confidence), so every policy is scored from one run:

* ``typed``: the question as typed;
* ``rewrite``: the rewrite whenever the rewriter changed the question;
* ``old chat``: as typed, the rewrite only when a leaning-back question got no answer;
* ``leans back``: the rewrite when the question leans back (pronoun, ellipsis), else typed;
* ``leans back, else typed``: as ``leans back``, the typed reading when the rewrite gets none;
* ``max conf``: both, the answer with the higher calibrated confidence (either when only one
  answers);
* ``rewrite, else typed``: the rewrite, the typed reading when the rewrite gets none;
* with ``--shorter N`` records merged in: ``leans back, rewrite N words, else typed``, the
  question read with only the first N appended words.

Per part: F1/EM over all pairs (no answer scores 0), share answered, and the precision of what
is answered (share of answered pairs with F1 >= 0.5); then paired F1 differences with a
bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from qa.eval.metrics import max_over_truths
from qa.followup import PRONOUNS, Exchange, QueryRewriter, words
from qa.types import Response

Reading = dict[str, Any]  # {"text": str | None, "conf": float}
Policy = Callable[[dict[str, Any]], Reading]


class _PronounRewriter(QueryRewriter):
    """The chat's rewriter, but every question with a pronoun is a follow-up."""

    def is_follow_up(self, question: str, previous: Exchange | None = None) -> tuple[bool, str]:
        follow, reason = super().is_follow_up(question, previous)
        if not follow and {w.lower() for w in words(question)} & PRONOUNS:
            return True, "pronoun"
        return follow, reason


def reading(resp: Response) -> Reading:
    """The answer shown (None when none cleared the threshold) and its confidence."""
    top = resp.answers[0] if resp.answers else None
    return {
        "text": resp.answer.text if resp.answer else None,
        "conf": resp.answer.confidence if resp.answer else (top.confidence if top else 0.0),
        "kind": resp.answer.kind if resp.answer else None,
    }


def _max_conf(r: dict[str, Any]) -> Reading:
    t, w = r["typed"], r["rewrite"]
    if t["text"] is None or w["text"] is None:
        return t if w["text"] is None else w
    return w if w["conf"] > t["conf"] else t


def _leaning(key: str) -> Policy:
    def policy(r: dict[str, Any]) -> Reading:
        read: Reading = r.get(key, r["typed"])
        return read if r["leans_back"] and read["text"] is not None else r["typed"]

    return policy


def _pronoun(r: dict[str, Any]) -> Reading:
    if "pronoun rewrite" not in r:
        return POLICIES["leans back, else typed"](r)
    read: Reading = r["pronoun rewrite"]
    return read if read["text"] is not None else r["pronoun typed"]


POLICIES: dict[str, Policy] = {
    "typed": lambda r: r["typed"],
    "rewrite": lambda r: r["rewrite"],
    "old chat": lambda r: (
        r["rewrite"] if r["typed"]["text"] is None and r["leans_back"] else r["typed"]
    ),
    "leans back": lambda r: r["rewrite"] if r["leans_back"] else r["typed"],
    "leans back, else typed": lambda r: (
        r["rewrite"] if r["leans_back"] and r["rewrite"]["text"] is not None else r["typed"]
    ),
    "max conf": _max_conf,
    "rewrite, else typed": lambda r: (
        r["rewrite"] if r["rewrite"]["text"] is not None else r["typed"]
    ),
}


def run(
    index_dir: Path,
    pairs: list[dict[str, Any]],
    k: int,
    out: Path,
    shorter: list[int],
    pronoun_follow_up: bool = False,
) -> None:
    """Ask every pair as the chat would and write one record a pair to ``out``.

    With ``shorter`` only the readings of the question with its first N added words (each N
    given) are recorded, retrieved with the whole rewrite: ``rewrite N`` in the record, merged
    with a full record by id when scored. With ``pronoun_follow_up`` the rewriter takes every
    question with a pronoun for a follow-up, and only the pairs that changes are recorded
    (``pronoun typed``, ``pronoun rewrite``).
    """
    from qa.answer import Answerer
    from qa.chats import Turn
    from qa.followup import RetrieverStats
    from qa.index.embed import Embedder

    answerer = Answerer(index_dir, embedder=Embedder())
    rewriter = QueryRewriter(RetrieverStats(answerer.retriever))
    forced = _PronounRewriter(RetrieverStats(answerer.retriever))
    t0 = time.perf_counter()
    with out.open("w") as f:
        for i, p in enumerate(pairs):
            first = Turn.from_response(answerer.ask(p["first"], k=k))
            rw = rewriter.rewrite(p["follow_up"], [first.exchange()])
            search = rw.query if rw.rewritten else None
            rec: dict[str, Any] = {"id": p["id"], "query": rw.query}
            if pronoun_follow_up:
                fw = forced.rewrite(p["follow_up"], [first.exchange()])
                if fw.rewritten == rw.rewritten:
                    continue
                typed = answerer.ask(fw.question, k=k, search_query=fw.query)
                rec |= {
                    "pronoun query": fw.query,
                    "pronoun typed": reading(typed),
                    "pronoun rewrite": reading(answerer.ask(fw.query, k=k)),
                }
            elif shorter:
                for n in shorter:
                    # Not rewritten: nothing added, so the typed reading (in the full record).
                    if rw.rewritten:
                        read = " ".join([rw.question, *rw.added[:n]])
                        rec[f"rewrite {n}"] = reading(answerer.ask(read, k=k, search_query=search))
            else:
                typed = answerer.ask(rw.question, k=k, search_query=search)
                rewrite = answerer.ask(rw.query, k=k) if rw.rewritten else typed
                rec |= {
                    "part": p["part"],
                    "follow_up": p["follow_up"],
                    "rewritten": rw.rewritten,
                    "leans_back": rw.leans_back,
                    "reason": rw.reason,
                    "answers": p["answers"],
                    "first_shown": first.answer,
                    "typed": reading(typed),
                    "rewrite": reading(rewrite),
                }
            f.write(json.dumps(rec) + "\n")
            f.flush()
            if (i + 1) % 25 == 0:
                print(f"{i + 1}/{len(pairs)} pairs, {time.perf_counter() - t0:.0f} s", flush=True)


def score(records: list[dict[str, Any]]) -> str:
    """Markdown table: each policy on each part."""
    lines = [
        "| part | policy | n | F1 | EM | answered | precision of answered (F1 >= 0.5) |",
        "|---|---|---|---|---|---|---|",
    ]
    extra = sorted({key for r in records for key in r if key.startswith("rewrite ")})
    policies = dict(POLICIES)
    if any("pronoun rewrite" in r for r in records):
        policies["every pronoun a follow-up, leans back, else typed"] = _pronoun
    for key in extra:
        if all(key in r for r in records if r["rewritten"]):
            policies[f"leans back, {key} words, else typed"] = _leaning(key)
    for part in [*sorted({r["part"] for r in records}), "all"]:
        rs = [r for r in records if part in (r["part"], "all")]
        for name, policy in policies.items():
            f1s, ems, answered = [], [], []
            for r in rs:
                text = policy(r)["text"]
                answered.append(text is not None)
                f1s.append(max_over_truths("f1", text, r["answers"]) if text else 0.0)
                ems.append(max_over_truths("em", text, r["answers"]) if text else 0.0)
            n, a = len(rs), sum(answered)
            good = sum(1 for f, x in zip(f1s, answered, strict=True) if x and f >= 0.5)
            prec = f"{100 * good / a:.1f}" if a else "-"
            lines.append(
                f"| {part} | {name} | {n} | {100 * sum(f1s) / n:.1f} | {100 * sum(ems) / n:.1f} "
                f"| {100 * a / n:.1f}% | {prec} |"
            )
    rewritten = sum(r["rewritten"] for r in records)
    leaning = sum(r["leans_back"] for r in records)
    lines.append(f"\n{len(records)} pairs; rewritten {rewritten}; leaning back {leaning}")
    return "\n".join(lines)


# Paired comparisons printed under the table: (policy, against).
PAIRED = [
    ("leans back, else typed", "old chat"),
    ("leans back, else typed", "typed"),
    ("max conf", "old chat"),
]


def _f1(policy: Policy, r: dict[str, Any]) -> float:
    text = policy(r)["text"]
    return max_over_truths("f1", text, r["answers"]) if text else 0.0


def paired(records: list[dict[str, Any]], resamples: int = 2000) -> str:
    """Mean paired F1 difference of each pair of policies in ``PAIRED``, per part, with a
    bootstrap 95% interval over pairs (seeded) and the pairs each policy wins."""
    out = []
    for part in [*sorted({r["part"] for r in records}), "all"]:
        rs = [r for r in records if part in (r["part"], "all")]
        for a, b in PAIRED:
            d = [_f1(POLICIES[a], r) - _f1(POLICIES[b], r) for r in rs]
            rng = random.Random(0)
            means = sorted(sum(rng.choices(d, k=len(d))) / len(d) for _ in range(resamples))
            lo, hi = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
            wins, losses = sum(x > 1e-9 for x in d), sum(x < -1e-9 for x in d)
            out.append(
                f"{part}: {a} minus {b}: {100 * sum(d) / len(d):+.1f} F1, 95% interval "
                f"[{100 * lo:+.1f}, {100 * hi:+.1f}], better on {wins}, worse on {losses}"
            )
    return "\n".join(out)


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--records", type=Path, default=Path("bench/out/followup-records.jsonl"))
    ap.add_argument("--score", action="store_true", help="Score records files only.")
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="The first N pairs of each file.")
    ap.add_argument(
        "--pronoun-follow-up",
        action="store_true",
        help="Record only pairs that a rewriter taking every pronoun question for a follow-up "
        "rewrites (and the chat's does not).",
    )
    ap.add_argument(
        "--shorter",
        default="",
        help="Comma-separated N: record only readings with the first N added words.",
    )
    args = ap.parse_args()

    def load(path: Path) -> list[dict[str, Any]]:
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        return rows[: args.limit] if args.limit else rows

    if not args.score:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        pairs = [p for path in args.paths[1:] for p in load(path)]
        shorter = [int(n) for n in args.shorter.split(",") if n]
        run(args.paths[0], pairs, args.k, args.records, shorter, args.pronoun_follow_up)
        if shorter or args.pronoun_follow_up:
            return
        paths = [args.records]
    else:
        paths = args.paths
    merged: dict[str, dict[str, Any]] = {}
    for path in paths:
        for r in load(path):
            merged.setdefault(r["id"], {}).update(r)
    records = [r for r in merged.values() if "typed" in r]
    print(score(records))
    print()
    print(paired(records))


if __name__ == "__main__":
    main()
