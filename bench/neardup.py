"""Near-duplicate detection on the shared news corpus: pairs found, precision, recall, speed.

Usage: nice -n 10 python bench/neardup.py [--limit N] [--sample 30] [--seed 0]

1. Stream ``realtimeqa-corpus.jsonl.gz``; count exact-duplicate texts and keep the first of
   each distinct non-empty text.
2. Time shingling + MinHash (signatures/s), then the product's insert path
   (:meth:`qa.index.neardup.NearDupIndex.add` on a SQLite store: signature, band lookups, cluster).
3. Candidate pairs from the LSH bands (32 x 4); a pair is detected at estimated Jaccard >= T.
   Every candidate's exact 5-word-shingle Jaccard is computed on the full texts: a pair with
   exact Jaccard >= 0.5 counts as a true near-duplicate (precision). Recall is measured
   against the true pairs found by a much looser banding (64 bands x 2 rows, which misses a
   pair of Jaccard 0.5 with probability 1e-8).
4. Print a random sample of detected pairs (and of candidates just under the cut) to judge by
   eye. Everything goes to stdout and ``bench/out/neardup.txt``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import numpy as np

from qa.index.neardup import THRESHOLD, MinHasher, NearDupIndex, jaccard, shingles
from qa.index.store import Store

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared/data/news/realtimeqa-corpus.jsonl.gz"
OUT = ROOT / "bench/out"
TRUE_JACCARD = 0.5
Doc = dict[str, str]


def read_corpus(limit: int) -> tuple[list[Doc], int, int]:
    """Distinct non-empty texts (first occurrence), records read, exact-duplicate records."""
    docs: list[Doc] = []
    seen: set[str] = set()
    n = dups = 0
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for line in f:
            if limit and n >= limit:
                break
            r = json.loads(line)
            n += 1
            text = r["text"].strip()
            if text in seen:
                dups += 1
                continue
            seen.add(text)
            if text:
                docs.append({"url": r["url"], "title": r["title"], "text": text})
    return docs, n, dups


def sign_all(docs: list[Doc]) -> tuple[np.ndarray, float]:
    """Signatures of every text (rows) and the seconds it took."""
    hasher = MinHasher()
    t0 = time.perf_counter()
    sigs = np.stack([hasher.signature(shingles(d["text"])) for d in docs])
    return sigs, time.perf_counter() - t0


def insert_path(docs: list[Doc], work: Path) -> tuple[float, dict[str, list[int]]]:
    """Time NearDupIndex.add for every text in corpus order; returns seconds and clusters."""
    db_path = work / "neardup-bench.sqlite"
    db_path.unlink(missing_ok=True)
    with Store(db_path) as store:
        db: sqlite3.Connection = store.db
        db.executemany(
            "INSERT INTO articles(id, title, date, url, source, text, origin, added_gen) "
            "VALUES(?, '', '', '', '', '', '', 1)",
            [(str(i),) for i in range(len(docs))],
        )
        index = NearDupIndex(db)
        t0 = time.perf_counter()
        for i, d in enumerate(docs):
            index.add(str(i), d["text"])
        seconds = time.perf_counter() - t0
        groups: dict[str, list[int]] = defaultdict(list)
        for aid, cluster in db.execute("SELECT article_id, cluster FROM neardup"):
            groups[cluster].append(int(aid))
    db_path.unlink(missing_ok=True)
    return seconds, {c: m for c, m in groups.items() if len(m) > 1}


def candidates(sigs: np.ndarray, bands: int) -> set[tuple[int, int]]:
    """Pairs of rows sharing at least one band of ``bands`` equal slices."""
    pairs: set[tuple[int, int]] = set()
    for band in np.split(sigs, bands, axis=1):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for i, row in enumerate(band):
            buckets[row.tobytes()].append(i)
        for members in buckets.values():
            pairs.update(combinations(members, 2))
    return pairs


def exact_jaccards(docs: list[Doc], pairs: set[tuple[int, int]]) -> dict[tuple[int, int], float]:
    """Exact shingle Jaccard of each pair on the full texts."""
    cache: dict[int, np.ndarray] = {}

    def sh(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = shingles(docs[i]["text"])
        return cache[i]

    return {p: jaccard(sh(p[0]), sh(p[1])) for p in pairs}


def sweep(
    sigs: np.ndarray,
    exact: dict[tuple[int, int], float],
    strict: set[tuple[int, int]],
    truth: set[tuple[int, int]],
) -> Iterator[str]:
    """Markdown rows: detected pairs, precision and recall for a range of thresholds."""
    est = {p: float(np.mean(sigs[p[0]] == sigs[p[1]])) for p in strict}
    yield "| threshold (estimated J) | pairs detected | precision (exact J >= 0.5) | recall |"
    yield "|---|---|---|---|"
    for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        found = {p for p, e in est.items() if e >= t}
        good = sum(exact[p] >= TRUE_JACCARD for p in found)
        mark = " (chosen)" if t == THRESHOLD else ""
        yield (
            f"| {t:.1f}{mark} | {len(found)} | {good / max(len(found), 1):.3f} | "
            f"{len(found & truth) / max(len(truth), 1):.3f} |"
        )


def show_pairs(
    docs: list[Doc],
    sigs: np.ndarray,
    exact: dict[tuple[int, int], float],
    pairs: list[tuple[int, int]],
) -> Iterator[str]:
    """Each pair: estimated and exact Jaccard, then title, url and opening of both texts."""
    for n, (a, b) in enumerate(pairs, 1):
        est = float(np.mean(sigs[a] == sigs[b]))
        yield f"\n#{n} estimated J {est:.2f}, exact J {exact[(a, b)]:.2f}"
        for i in (a, b):
            d = docs[i]
            opening = " ".join(d["text"][:200].split())
            yield f"  - {d['title'][:100]} <{d['url']}>\n    {opening}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="Only the first N records (0: all).")
    ap.add_argument("--sample", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    docs, records, dups = read_corpus(args.limit)
    sigs, sign_s = sign_all(docs)
    add_s, groups = insert_path(docs, OUT)
    strict = candidates(sigs, 32)
    loose = candidates(sigs, 64)
    exact = exact_jaccards(docs, strict | loose)
    truth = {p for p in loose | strict if exact[p] >= TRUE_JACCARD}
    detected = sorted(p for p in strict if np.mean(sigs[p[0]] == sigs[p[1]]) >= THRESHOLD)
    biggest = max(groups.values(), key=len, default=[])
    lines = [
        f"records {records}; exact-duplicate texts {dups}; distinct non-empty texts {len(docs)}",
        f"signatures (5-word shingles + 128-value MinHash): {len(docs) / sign_s:.0f}/s "
        f"({sign_s:.1f} s)",
        f"insert path (signature + band lookups + cluster, SQLite): {len(docs) / add_s:.0f} "
        f"articles/s ({add_s:.1f} s)",
        f"candidate pairs (32 bands x 4): {len(strict)}; looser (64 x 2): {len(loose)}; "
        f"true pairs (exact J >= {TRUE_JACCARD}): {len(truth)}",
        f"clusters of 2+ articles: {len(groups)}, copies beyond the first: "
        f"{sum(len(m) - 1 for m in groups.values())}, largest: {len(biggest)} "
        f"({docs[biggest[0]]['title'][:60] if biggest else '-'})",
        "",
        *sweep(sigs, exact, strict, truth),
    ]
    rng = random.Random(args.seed)
    lines.append(f"\n## random sample of {args.sample} detected pairs (estimated J >= {THRESHOLD})")
    lines += show_pairs(docs, sigs, exact, rng.sample(detected, min(args.sample, len(detected))))
    under = sorted(p for p in strict if 0.3 <= exact[p] < TRUE_JACCARD)
    lines.append("\n## random sample of 10 candidates with exact J in [0.3, 0.5)")
    lines += show_pairs(docs, sigs, exact, rng.sample(under, min(10, len(under))))
    text = "\n".join(lines)
    print(text)
    (OUT / "neardup.txt").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
