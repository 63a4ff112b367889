"""Near-duplicate (syndicated copy) detection: word shingles -> MinHash -> LSH bands.

A wire story republished under several URLs with light edits (another headline, a changed
word, an added paragraph) gets a different content hash, so exact de-duplication misses it.
Each article body is turned into its set of 5-word shingles (lower-cased words), hashed to 64
bits; a MinHash signature of 128 values estimates the Jaccard similarity of two such sets.
Banding (32 bands of 4 values) finds candidate pairs through equal band hashes; a candidate is
a copy when its estimated Jaccard is at least :data:`THRESHOLD`. Measured by bench/neardup.py
on the 26,343 distinct texts of the shared news corpus, 0.5 finds 460 pairs, 95.9% of them with
an exact Jaccard >= 0.5 and 96.7% of all such pairs; 0.6 is exact-Jaccard-precise but finds
only 84% (docs/benchmarks.md, "Near-duplicates").

Persistence (:class:`NearDupIndex`): table ``neardup`` holds each article's signature and its
cluster, ``neardup_bands`` its band hashes keyed by ``(band, hash)``. A new article joins the
cluster of its most similar earlier live article (or starts its own), so the cluster id is the
id of the group's earliest article. Deleting an article recomputes the clusters it belonged to
from the live articles only, in the transaction that commits the deletion's generation, so a
removed article never holds others together and readers never see half-updated clusters.
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SHINGLE = 5
NUM_PERM = 128
BANDS = 32
ROWS = NUM_PERM // BANDS
THRESHOLD = 0.5
# Word 3-shingle containment at which two passages of copies count as the same passage
# (chunk boundaries of lightly edited copies shift by a sentence or a paragraph).
PASSAGE_OVERLAP = 0.5
SEED = 20240611

U64 = npt.NDArray[np.uint64]
Signature = npt.NDArray[np.uint32]

_WORD = re.compile(r"\w+")
_MASK64 = (1 << 64) - 1
# Odd multipliers that spread each word of a shingle over all 64 bits (from splitmix64).
_POSITION = np.asarray(
    [(0x9E3779B97F4A7C15 * (2 * j + 1)) & _MASK64 for j in range(16)], dtype=np.uint64
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (punctuation and spacing edits do not change shingles)."""
    return _WORD.findall(text.lower())


def mix64(x: U64) -> U64:
    """The splitmix64 finaliser: a fast, well-mixed 64-bit hash of 64-bit values."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def shingles(text: str, n: int = SHINGLE) -> U64:
    """Sorted distinct 64-bit hashes of the text's ``n``-word shingles.

    Args:
        text: Article body.
        n: Words per shingle; a text shorter than ``n`` words is one shingle.

    Returns:
        The hashes (empty for a text without words).
    """
    toks = words(text)
    if not toks:
        return np.zeros(0, dtype=np.uint64)
    # crc32 is deterministic across processes, unlike hash(); mixing widens it to 64 bits.
    w = mix64(np.fromiter((zlib.crc32(t.encode()) for t in toks), np.uint64, len(toks)))
    n = min(n, len(toks))
    m = len(toks) - n + 1
    acc = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            acc += w[j : j + m] * _POSITION[j]
    return np.unique(mix64(acc))


def jaccard(a: U64, b: U64) -> float:
    """Exact Jaccard similarity of two shingle sets (sorted distinct arrays)."""
    if not len(a) and not len(b):
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


class MinHasher:
    """MinHash signatures with ``num_perm`` hash functions ``a * x + b`` (mod 2**64).

    Args:
        num_perm: Signature length.
        seed: Seed of the multipliers (fixed: stored signatures must stay comparable).
    """

    def __init__(self, num_perm: int = NUM_PERM, seed: int = SEED) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.integers(0, 2**63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
        self.num_perm = num_perm

    def signature(self, hashes: U64, chunk: int = 4096) -> Signature:
        """Signature of a shingle set: the high 32 bits of each permutation's minimum.

        Args:
            hashes: Shingle hashes (see :func:`shingles`).
            chunk: Shingles per step (bounds memory for very long articles).
        """
        low = np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for i in range(0, len(hashes), chunk):
                part = hashes[i : i + chunk, None] * self.a[None, :] + self.b[None, :]
                np.minimum(low, part.min(axis=0), out=low)
        return (low >> np.uint64(32)).astype(np.uint32)


def similarity(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity: the share of equal signature values."""
    return float(np.mean(a == b))


def band_keys(sig: Signature, bands: int = BANDS) -> list[tuple[int, int]]:
    """``(band, hash)`` of each band of a signature (hash as a signed 64-bit SQLite integer).

    A text without words has no bands: it is nobody's copy.
    """
    if bool(np.all(sig == np.iinfo(np.uint32).max)):
        return []
    rows = sig.reshape(bands, -1).astype(np.uint64)
    acc = np.arange(bands, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(rows.shape[1]):
            acc = mix64(acc ^ rows[:, j])
    return [(i, int(h)) for i, h in enumerate(acc.view(np.int64))]


def overlap(a: str, b: str, n: int = 3) -> float:
    """Share of the shorter text's ``n``-word shingles found in the other (containment).

    Used at answer time to tell whether two passages of copies hold the same paragraphs.
    """
    sa, sb = shingles(a, n), shingles(b, n)
    if not len(sa) or not len(sb):
        return 0.0
    return len(np.intersect1d(sa, sb, assume_unique=True)) / min(len(sa), len(sb))


@dataclass(frozen=True)
class Match:
    """An earlier live article similar to the one being placed."""

    seq: int
    article_id: str
    cluster: str
    similarity: float


class NearDupIndex:
    """Signatures, band buckets and clusters in the store's SQLite database.

    Args:
        db: The store's connection (tables created by :mod:`qa.index.store`).
        threshold: Estimated Jaccard at or above which two articles are copies.
    """

    def __init__(self, db: sqlite3.Connection, threshold: float = THRESHOLD) -> None:
        self.db = db
        self.threshold = threshold
        self.hasher = MinHasher()

    def add(self, article_id: str, text: str) -> str:
        """Store an article's signature and place it in a cluster; returns the cluster id."""
        sig = self.hasher.signature(shingles(text))
        keys = band_keys(sig)
        match = self._best(sig, keys, None) if keys else None
        cluster = match.cluster if match else article_id
        self.db.execute(
            "INSERT OR REPLACE INTO neardup(article_id, sig, cluster) VALUES(?, ?, ?)",
            (article_id, sig.tobytes(), cluster),
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO neardup_bands(band, hash, article_id) VALUES(?, ?, ?)",
            [(b, h, article_id) for b, h in keys],
        )
        return cluster

    def _best(
        self, sig: Signature, keys: Sequence[tuple[int, int]], before: int | None
    ) -> Match | None:
        """The most similar live article sharing a band (earlier than ``before`` if given)."""
        pairs = " OR ".join("(b.band=? AND b.hash=?)" for _ in keys)
        q = (
            "SELECT DISTINCT n.seq, n.article_id, n.cluster, n.sig FROM neardup_bands b "
            "JOIN neardup n ON n.article_id = b.article_id "
            "JOIN articles a ON a.id = n.article_id "
            f"WHERE ({pairs}) AND a.deleted_gen IS NULL"
        )
        best: Match | None = None
        for seq, aid, cluster, blob in self.db.execute(q, [v for k in keys for v in k]):
            if before is not None and seq >= before:
                continue
            s = similarity(sig, np.frombuffer(blob, dtype=np.uint32))
            if s >= self.threshold and (best is None or (s, -seq) > (best.similarity, -best.seq)):
                best = Match(int(seq), str(aid), str(cluster), s)
        return best

    def drop(self, article_ids: Iterable[str], recluster: bool = False) -> None:
        """Forget articles physically removed from the store.

        Args:
            article_ids: The removed articles.
            recluster: Their clusters still need re-placing (an article added and removed
                within one unfinished run); :meth:`recluster_after_deletions` does it.
        """
        for aid in article_ids:
            q = "SELECT sig, cluster FROM neardup WHERE article_id=?"
            row = self.db.execute(q, (aid,)).fetchone()
            if row is None:
                continue
            if recluster:
                self.db.execute(
                    "INSERT OR IGNORE INTO neardup_pending(cluster) VALUES(?)", (row[1],)
                )
            keys = band_keys(np.frombuffer(row[0], dtype=np.uint32))
            self.db.executemany(
                "DELETE FROM neardup_bands WHERE band=? AND hash=? AND article_id=?",
                [(b, h, aid) for b, h in keys],
            )
            self.db.execute("DELETE FROM neardup WHERE article_id=?", (aid,))

    def recluster_after_deletions(self, gen: int) -> int:
        """Re-place the live members of clusters that lose an article at ``gen``.

        A removed article must not keep holding others together: each member, in insertion
        order, joins the cluster of its most similar earlier live article, or starts its own.

        Returns:
            How many articles changed cluster.
        """
        q = (
            "SELECT n.seq, n.article_id, n.sig, n.cluster FROM neardup n "
            "JOIN articles a ON a.id = n.article_id WHERE a.deleted_gen IS NULL "
            "AND n.cluster IN (SELECT d.cluster FROM neardup d JOIN articles x "
            "ON x.id = d.article_id WHERE x.deleted_gen = ? "
            "UNION SELECT cluster FROM neardup_pending) ORDER BY n.seq"
        )
        changed = 0
        rows = self.db.execute(q, (gen,)).fetchall()
        self.db.execute("DELETE FROM neardup_pending")
        for seq, aid, blob, old in rows:
            sig = np.frombuffer(blob, dtype=np.uint32)
            keys = band_keys(sig)
            match = self._best(sig, keys, int(seq)) if keys else None
            cluster = match.cluster if match else str(aid)
            if cluster != old:
                self.db.execute("UPDATE neardup SET cluster=? WHERE seq=?", (cluster, seq))
                changed += 1
        return changed

    def backfill(self) -> int:
        """Sign live articles stored before near-duplicates were tracked; returns how many."""
        q = (
            "SELECT a.id, a.text FROM articles a LEFT JOIN neardup n ON n.article_id = a.id "
            "WHERE n.article_id IS NULL AND a.deleted_gen IS NULL ORDER BY a.rowid"
        )
        done = self.db.execute("SELECT value FROM meta WHERE key='neardup_signed'").fetchone()
        if done:
            return 0  # every article added since is signed on insert: skip the full scan
        rows = self.db.execute(q).fetchall()
        for aid, text in rows:
            self.add(str(aid), str(text))
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('neardup_signed', '1')")
        return len(rows)

    def clusters(self, gen: int) -> dict[str, str]:
        """Cluster of every article visible at ``gen`` that has a copy; {} for old stores."""
        q = (
            "SELECT n.article_id, n.cluster FROM neardup n JOIN articles a "
            "ON a.id = n.article_id WHERE a.added_gen <= :gen "
            "AND (a.deleted_gen IS NULL OR a.deleted_gen > :gen)"
        )
        try:
            every = {str(aid): str(c) for aid, c in self.db.execute(q, {"gen": gen})}
        except sqlite3.OperationalError:
            return {}  # a read-only store written before near-duplicates were tracked
        sizes: dict[str, int] = {}
        for c in every.values():
            sizes[c] = sizes.get(c, 0) + 1
        return {aid: c for aid, c in every.items() if sizes[c] > 1}
