"""SQLite store: articles, passages (with their vectors), file state and index metadata.

Versioning (MVCC by generation): every article and passage row carries ``added_gen`` and
``deleted_gen``. An indexing run works on generation ``current + 1``: it inserts rows with that
``added_gen`` and marks removals with that ``deleted_gen``, committing in small batches so that
an interrupted run can resume without redoing work. Readers only ever use the rows visible at
the committed ``current_gen`` (added <= gen and not deleted <= gen), together with the derived
FAISS/BM25 files of that same generation, so a crash at any moment leaves the previous
generation complete and correct.

Near-duplicate signatures, band buckets and clusters live in ``neardup``/``neardup_bands``
(see :mod:`qa.index.neardup`); their rows go when their article is physically dropped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np

from qa.errors import DamagedStore
from qa.index import keywords
from qa.index.database import connect
from qa.index.keywords import tokenize
from qa.index.neardup import NearDupIndex
from qa.types import Article, Passage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT NOT NULL, url TEXT NOT NULL,
    source TEXT NOT NULL, text TEXT NOT NULL, origin TEXT NOT NULL,
    added_gen INTEGER NOT NULL, deleted_gen INTEGER
);
CREATE TABLE IF NOT EXISTS passages (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, article_id TEXT NOT NULL,
    paragraph INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    text TEXT NOT NULL, embed_hash TEXT NOT NULL, vec BLOB NOT NULL,
    added_gen INTEGER NOT NULL, deleted_gen INTEGER, tokens TEXT
);
CREATE INDEX IF NOT EXISTS passages_article ON passages(article_id);
-- Generation bookkeeping reads rows by generation: without these every commit scans the
-- whole table (about a second per scan at 400k passages).
CREATE INDEX IF NOT EXISTS passages_gens ON passages(added_gen, deleted_gen);
CREATE INDEX IF NOT EXISTS passages_deleted ON passages(deleted_gen);
CREATE INDEX IF NOT EXISTS articles_gens ON articles(added_gen, deleted_gen);
CREATE INDEX IF NOT EXISTS articles_deleted ON articles(deleted_gen);
CREATE INDEX IF NOT EXISTS passages_embed ON passages(embed_hash);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha TEXT NOT NULL
);
-- What a file had to skip (one line each), reported again while the file is unchanged.
CREATE TABLE IF NOT EXISTS file_skips (path TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS file_skips_path ON file_skips(path);
CREATE TABLE IF NOT EXISTS file_articles (
    path TEXT NOT NULL, article_id TEXT NOT NULL, PRIMARY KEY (path, article_id)
);
CREATE INDEX IF NOT EXISTS file_articles_article ON file_articles(article_id);
CREATE TABLE IF NOT EXISTS article_urls (
    article_id TEXT NOT NULL, url TEXT NOT NULL, PRIMARY KEY (article_id, url)
);
CREATE TABLE IF NOT EXISTS neardup (
    seq INTEGER PRIMARY KEY, article_id TEXT NOT NULL UNIQUE, sig BLOB NOT NULL,
    cluster TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS neardup_cluster ON neardup(cluster);
CREATE TABLE IF NOT EXISTS neardup_bands (
    band INTEGER NOT NULL, hash INTEGER NOT NULL, article_id TEXT NOT NULL,
    PRIMARY KEY (band, hash, article_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS neardup_pending (cluster TEXT PRIMARY KEY);
-- One headline vector per titled article (qa.index.headlines), visible with its article.
CREATE TABLE IF NOT EXISTS headlines (
    rowid INTEGER PRIMARY KEY, article_id TEXT NOT NULL UNIQUE, embed_hash TEXT NOT NULL,
    vec BLOB NOT NULL, added_gen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS headlines_gen ON headlines(added_gen);
CREATE INDEX IF NOT EXISTS headlines_embed ON headlines(embed_hash);
"""


def visible(p: str = "") -> str:
    """SQL condition: the rows visible at generation ``:gen`` (``p``: a table prefix, "a.")."""
    return f"{p}added_gen <= :gen AND ({p}deleted_gen IS NULL OR {p}deleted_gen > :gen)"


VISIBLE = visible()
LIVE = "deleted_gen IS NULL"
# Visible at :gen and added after the base generation :base (a delta generation's rows).
ADDED_SINCE = f"added_gen > :base AND {VISIBLE}"


@dataclass(frozen=True)
class FileState:
    """What the store remembers of one input file."""

    path: str
    size: int
    mtime_ns: int
    sha: str


class Store:
    """Thin typed wrapper around the SQLite file; as a context manager it closes on exit.

    Args:
        path: The database file.
        readonly: Open read-only (queries); writers use WAL so readers are never blocked.
        create: Create the tables of a new store; False: the file must be a store already.
    """

    def __init__(self, path: Path, readonly: bool = False, create: bool = True) -> None:
        self.path = path
        self.db = connect(path, readonly)  # a damaged file raises DamagedStore
        if not readonly:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
            if not create and "meta" not in tables:  # emptied: never recreate it silently
                self.db.close()
                raise DamagedStore(str(path), "no such table: meta")
            signed = "neardup" in tables
            self.db.executescript(_SCHEMA)
            if not signed:  # an older store: its articles get signed on the next run
                self.db.execute("DELETE FROM meta WHERE key='neardup_signed'")
            self._migrate()
            self.db.commit()
        self.db.row_factory = sqlite3.Row

    def _migrate(self) -> None:
        """Bring stores written by older versions up to the current schema."""
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(passages)")}
        if "tokens" not in cols:
            self.db.execute("ALTER TABLE passages ADD COLUMN tokens TEXT")
            self.db.execute("DELETE FROM meta WHERE key='tokens_kept'")

    def backfill_tokens(self) -> int:
        """Store keyword tokens where they are missing or from an older tokenizer.

        Returns:
            How many passages were (re)tokenized; the caller commits.
        """
        version = str(keywords.TOKENIZER_VERSION)
        only_missing = self.get_meta("tokenizer", "1") == version
        if only_missing and self.get_meta("tokens_kept"):
            return 0  # every row since has current tokens: skip the full-table scan
        done, last = 0, -1
        while True:  # in rowid batches: 630k texts at once would take gigabytes
            rows = self.db.execute(
                "SELECT rowid, text FROM passages WHERE rowid > ? AND (? = 0 OR tokens IS NULL) "
                "ORDER BY rowid LIMIT 10000",
                (last, int(only_missing)),
            ).fetchall()
            if not rows:
                break
            self.db.executemany(
                "UPDATE passages SET tokens=? WHERE rowid=?",
                [(" ".join(tokenize(text)), rowid) for rowid, text in rows],
            )
            done += len(rows)
            last = rows[-1][0]
        self.set_meta("tokens_kept", "1")
        self.set_meta("tokenizer", version)
        return done

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str = "") -> str:
        """Read one metadata value."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        """Write one metadata value (in the current transaction)."""
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    @property
    def current_gen(self) -> int:
        """The committed generation readers use (0: nothing indexed yet)."""
        return int(self.get_meta("current_gen", "0"))

    # -- files ------------------------------------------------------------------------------
    def file_states(self) -> dict[str, FileState]:
        """All remembered files by path."""
        rows = self.db.execute("SELECT path, size, mtime_ns, sha FROM files")
        return {r[0]: FileState(r[0], r[1], r[2], r[3]) for r in rows}

    def file_article_ids(self, path: str) -> set[str]:
        """Article ids a file produced last time."""
        rows = self.db.execute("SELECT article_id FROM file_articles WHERE path=?", (path,))
        return {r[0] for r in rows}

    def set_file(
        self, state: FileState, article_ids: Iterable[str], skips: Sequence[str] = ()
    ) -> None:
        """Record a file, the articles it yields and what it skipped (replacing the old)."""
        self.db.execute("DELETE FROM file_articles WHERE path=?", (state.path,))
        self.db.execute("DELETE FROM file_skips WHERE path=?", (state.path,))
        self.db.executemany(
            "INSERT INTO file_skips(path, message) VALUES(?, ?)",
            [(state.path, m) for m in skips],
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO file_articles(path, article_id) VALUES(?, ?)",
            [(state.path, a) for a in article_ids],
        )
        self.db.execute(
            "INSERT OR REPLACE INTO files(path, size, mtime_ns, sha) VALUES(?, ?, ?, ?)",
            (state.path, state.size, state.mtime_ns, state.sha),
        )

    def file_skips(self, path: str) -> list[str]:
        """The skip lines of a file's last reading, in order."""
        q = "SELECT message FROM file_skips WHERE path=? ORDER BY rowid"
        return [str(r[0]) for r in self.db.execute(q, (path,))]

    def forget_file(self, path: str) -> None:
        """Drop a file that no longer exists."""
        self.db.execute("DELETE FROM file_articles WHERE path=?", (path,))
        self.db.execute("DELETE FROM file_skips WHERE path=?", (path,))
        self.db.execute("DELETE FROM files WHERE path=?", (path,))

    def referenced(self, article_id: str) -> bool:
        """True when any file still yields this article."""
        q = "SELECT 1 FROM file_articles WHERE article_id=? LIMIT 1"
        return self.db.execute(q, (article_id,)).fetchone() is not None

    # -- articles and passages ---------------------------------------------------------------
    def article_origin(self, article_id: str) -> str | None:
        """The file an article was first read from (None when not stored)."""
        row = self.db.execute("SELECT origin FROM articles WHERE id=?", (article_id,)).fetchone()
        return None if row is None else str(row[0])

    def live_article(self, article_id: str) -> bool:
        """True when the article is stored and not marked deleted."""
        q = f"SELECT 1 FROM articles WHERE id=? AND {LIVE}"
        return self.db.execute(q, (article_id,)).fetchone() is not None

    def revive_article(self, article_id: str) -> bool:
        """Undo a pending deletion of this run; True when the article is stored at all."""
        row = self.db.execute("SELECT 1 FROM articles WHERE id=?", (article_id,)).fetchone()
        if row is None:
            return False
        for table, key in (("articles", "id"), ("passages", "article_id")):
            self.db.execute(f"UPDATE {table} SET deleted_gen=NULL WHERE {key}=?", (article_id,))
        return True

    def add_article(
        self,
        article: Article,
        passages: Sequence[Passage],
        vecs: np.ndarray,
        embed_hashes: Sequence[str],
        gen: int,
    ) -> None:
        """Insert an article with its passages and their vectors."""
        self.db.execute(
            "INSERT INTO articles(id, title, date, url, source, text, origin, added_gen) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
            (
                article.id,
                article.title,
                article.date,
                article.url,
                article.source,
                article.text,
                article.origin,
                gen,
            ),
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO passages(id, article_id, paragraph, start, end, text, "
            "embed_hash, vec, added_gen, tokens) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                # Keyword tokens are kept so that each new generation's BM25 build need not
                # tokenise the whole corpus again.
                (
                    p.id,
                    p.article_id,
                    p.paragraph,
                    p.start,
                    p.end,
                    p.text,
                    h,
                    v.astype(np.float16).tobytes(),
                    gen,
                    " ".join(tokenize(p.text)),
                )
                for p, v, h in zip(passages, vecs, embed_hashes, strict=True)
            ],
        )

    def add_url(self, article_id: str, url: str) -> None:
        """Remember another URL under which the same article (same content) was found."""
        if url:
            self.db.execute(
                "INSERT OR IGNORE INTO article_urls(article_id, url) VALUES(?, ?)",
                (article_id, url),
            )

    def urls(self, article_ids: Sequence[str]) -> dict[str, list[str]]:
        """Every URL known for each article (its own first), by article id."""
        out: dict[str, list[str]] = {}
        if not article_ids:
            return out
        marks = ",".join("?" * len(article_ids))
        q = f"SELECT id, url FROM articles WHERE id IN ({marks})"
        for aid, url in self.db.execute(q, list(article_ids)):
            out.setdefault(aid, []).append(url)
        q = f"SELECT article_id, url FROM article_urls WHERE article_id IN ({marks})"
        try:
            aliases = self.db.execute(q, list(article_ids)).fetchall()
        except sqlite3.OperationalError:
            # A store written before article_urls existed (read-only here): no aliases yet;
            # the next `newsqa index` adds the table.
            aliases = []
        for aid, url in aliases:
            if url not in out.setdefault(aid, []):
                out[aid].append(url)
        return out

    def delete_article(self, article_id: str, gen: int) -> None:
        """Remove an article at generation ``gen`` (rows never visible are dropped at once)."""
        for table, key in (("articles", "id"), ("passages", "article_id")):
            cur = self.db.execute(
                f"DELETE FROM {table} WHERE {key}=? AND added_gen>=?", (article_id, gen)
            )
            if table == "articles" and cur.rowcount:
                NearDupIndex(self.db).drop([article_id], recluster=True)
                self.db.execute("DELETE FROM headlines WHERE article_id=?", (article_id,))
            self.db.execute(
                f"UPDATE {table} SET deleted_gen=? WHERE {key}=? AND {LIVE}", (gen, article_id)
            )

    def cached_vectors(self, embed_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already computed for identical passage text (reused across edits)."""
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(embed_hashes), 500):
            chunk = list(embed_hashes[i : i + 500])
            marks = ",".join("?" * len(chunk))
            q = f"SELECT embed_hash, vec FROM passages WHERE embed_hash IN ({marks})"
            for h, blob in self.db.execute(q, chunk):
                out[h] = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
        return out

    def visible_passages(self, gen: int) -> Iterator[tuple[int, list[str], bytes]]:
        """(rowid, keyword tokens, vec) of passages visible at ``gen``, in rowid order."""
        q = f"SELECT rowid, tokens, text, vec FROM passages WHERE {VISIBLE} ORDER BY rowid"
        for rowid, tokens, text, vec in self.db.execute(q, {"gen": gen}):
            yield rowid, (tokens.split() if tokens is not None else tokenize(text)), vec

    def passages_added_since(self, base: int, gen: int) -> Iterator[tuple[int, list[str], bytes]]:
        """(rowid, tokens, vec) of passages visible at ``gen`` added after ``base``."""
        q = f"SELECT rowid, tokens, text, vec FROM passages WHERE {ADDED_SINCE} ORDER BY rowid"
        for rowid, tokens, text, vec in self.db.execute(q, {"base": base, "gen": gen}):
            yield rowid, (tokens.split() if tokens is not None else tokenize(text)), vec

    def count_added_since(self, base: int, gen: int) -> int:
        """How many passages :meth:`passages_added_since` would yield."""
        q = f"SELECT COUNT(*) FROM passages WHERE {ADDED_SINCE}"
        return int(self.db.execute(q, {"base": base, "gen": gen}).fetchone()[0])

    def deleted_since(self, base: int, gen: int) -> list[int]:
        """Rowids of passages visible at ``base`` and deleted after it, up to ``gen``.

        Rows deleted before the last commit may be garbage-collected already: delta
        generations carry those forward from the previous generation.
        """
        q = (
            "SELECT rowid FROM passages WHERE deleted_gen > :base AND deleted_gen <= :gen "
            "AND added_gen <= :base ORDER BY rowid"
        )
        return [int(r[0]) for r in self.db.execute(q, {"base": base, "gen": gen})]

    def garbage_collect(self, gen: int) -> None:
        """Physically drop rows deleted at or before ``gen`` (invisible to it)."""
        q = "SELECT id FROM articles WHERE deleted_gen IS NOT NULL AND deleted_gen <= ?"
        gone = [r[0] for r in self.db.execute(q, (gen,)).fetchall()]
        NearDupIndex(self.db).drop(gone)
        self.db.executemany("DELETE FROM headlines WHERE article_id=?", [(a,) for a in gone])
        for table in ("articles", "passages"):
            self.db.execute(
                f"DELETE FROM {table} WHERE deleted_gen IS NOT NULL AND deleted_gen <= ?", (gen,)
            )

    def counts(self, gen: int) -> tuple[int, int]:
        """(articles, passages) visible at ``gen``."""
        a = self.db.execute(f"SELECT COUNT(*) FROM articles WHERE {VISIBLE}", {"gen": gen})
        p = self.db.execute(f"SELECT COUNT(*) FROM passages WHERE {VISIBLE}", {"gen": gen})
        return int(a.fetchone()[0]), int(p.fetchone()[0])

    def pending_changes(self, gen: int) -> bool:
        """True when rows were added or removed at ``gen`` (an unfinished or fresh run)."""
        for table in ("articles", "passages"):
            q = f"SELECT 1 FROM {table} WHERE added_gen=? OR deleted_gen=? LIMIT 1"
            if self.db.execute(q, (gen, gen)).fetchone():
                return True
        return False

    def near_duplicates(self, gen: int) -> tuple[int, int]:
        """(clusters of two or more articles, articles beyond the first in each) at ``gen``."""
        clusters = NearDupIndex(self.db).clusters(gen)
        groups = len(set(clusters.values()))
        return groups, len(clusters) - groups

    def passages_by_rowid(self, rowids: Sequence[int]) -> dict[int, sqlite3.Row]:
        """Passage rows joined with their article metadata, by rowid."""
        out: dict[int, sqlite3.Row] = {}
        # In pages: SQLite caps the variables of one statement (250,000 here, 32,766 in
        # other builds), and `stats --check` asks for every passage of a full index.
        for lo in range(0, len(rowids), 10_000):
            page = list(rowids[lo : lo + 10_000])
            marks = ",".join("?" * len(page))
            q = (
                "SELECT p.rowid AS rowid, p.id AS id, p.article_id AS article_id, "
                "p.paragraph AS paragraph, p.start AS start, p.end AS end, p.text AS text, "
                "a.title AS title, a.date AS date, a.url AS url, a.source AS source FROM "
                f"passages p JOIN articles a ON a.id = p.article_id WHERE p.rowid IN ({marks})"
            )
            out.update((int(r["rowid"]), r) for r in self.db.execute(q, page))
        return out

    def visible_rowids(self, gen: int, rowids: set[int]) -> set[int]:
        """Those of ``rowids`` whose passages are visible at ``gen``."""
        q = f"SELECT rowid FROM passages WHERE {VISIBLE}"
        return {int(r[0]) for r in self.db.execute(q, {"gen": gen}) if int(r[0]) in rowids}

    def article(self, article_id: str) -> sqlite3.Row | None:
        """One article row."""
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM articles WHERE id=?", (article_id,)
        ).fetchone()
        return row
