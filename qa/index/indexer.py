"""Incremental indexing: files -> articles -> passages -> vectors -> a new generation.

The index folder's layout is described in :mod:`qa.index.folder`. The store's
``current_gen`` is committed only after the generation folder is complete, so a crash at any
point leaves the previous generation usable; the next run resumes (rows already written for
the unfinished generation are kept and reused).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from qa.errors import CorruptIndex, DamagedStore, QAError
from qa.index import headlines
from qa.index.build import atomic_write_text, build_generation, remove_old_generations
from qa.index.chunk import Chunker
from qa.index.database import integrity_problems
from qa.index.embed import EmbedderLike, Vectors
from qa.index.folder import check_model, check_runtime, read_head, writer_lock
from qa.index.generation import gen_dir, keywords_outdated, load_generation
from qa.index.neardup import NearDupIndex
from qa.index.report import IndexReport
from qa.index.sources import estimate_records, file_sha, next_store_number, readable_files
from qa.index.store import FileState, Store
from qa.ingest.files import FileProblem, Ingestor, Skipped, file_problem
from qa.search.uri import EMBEDDED, META_KEY, behind, switches_backend
from qa.types import Article, Passage, content_id

__all__ = ["IndexReport", "Indexer", "Progress", "Publisher"]

# progress(articles_done, articles_total_or_None)
Progress = Callable[[int, int | None], None]


class Publisher(Protocol):
    """Makes a generation of the store searchable (what the indexer needs of a backend)."""

    def publish(self, store: Store, gen: int) -> None:
        """Publish generation ``gen`` of ``store`` before the store commits it."""
        ...


class Indexer:
    """Keeps an index folder in step with a set of article files.

    Args:
        root: Index folder.
        embedder: Embedder (real or fake); its name and dimension are recorded in the index.
        chunker: Passage splitter.
        strict: Fail on the first bad article instead of skipping it.
        batch_passages: Passages embedded (and committed) per batch.
        backend: Where each new generation is published for search (a
            :class:`qa.search.backend.SearchBackend`); default: FAISS + BM25 files in ``root``.
        max_article_bytes: Longer articles are skipped (default: ``NEWSQA_MAX_ARTICLE_MB``).
    """

    def __init__(
        self,
        root: Path,
        embedder: EmbedderLike,
        chunker: Chunker | None = None,
        strict: bool = False,
        batch_passages: int = 512,
        backend: Publisher | None = None,
        max_article_bytes: int | None = None,
    ) -> None:
        self.root = root
        self.backend = backend
        self.embedder = embedder
        self.chunker = chunker or Chunker()
        self.strict = strict
        self.batch_passages = batch_passages
        # Article text gathered before a batch is chunked and embedded (~900 chars a passage).
        self.window_chars = batch_passages * 900
        self.ingestor = Ingestor(strict=strict, max_article_bytes=max_article_bytes)
        self._sound: set[str] = set()  # store files that passed SQLite's check
        self._loaded: set[tuple[str, int]] = set()  # generations whose files loaded
        self._progress: Progress | None = None
        self._total: int | None = None
        self._done = 0

    def warm_up(self) -> None:
        """Load the embedding model and the chunker's tokenizers now, not in the first run.

        ``newsqa watch`` calls this at start: the first change is then indexed as fast as
        the later ones (loading the wordpiece tokenizer alone took 2 s).
        """
        self.embedder.embed(["warm up"])
        self.chunker.split(Article(title="Warm up", text="Warm up."))

    def update(
        self,
        paths: Sequence[Path],
        rebuild: bool = False,
        progress: Progress | None = None,
        prune: bool = True,
    ) -> IndexReport:
        """Bring the index in line with the files under ``paths``.

        Args:
            paths: Files and folders to index.
            rebuild: Start a fresh store (new model, damaged index); swapped in at the end.
            progress: Called as ``progress(articles_done, articles_total)`` (total may be None).
            prune: Remove articles of remembered files that are no longer under ``paths``.

        Returns:
            Counts of what changed.
        """
        t0 = time.perf_counter()
        with writer_lock(self.root):
            store, fresh = self._open_for_write(rebuild)
            try:
                report = self._run(store, paths, progress, prune)
                if fresh is not None:
                    atomic_write_text(self.root / "HEAD", json.dumps({"store": fresh}))
                # The previous generation stays on disk: a reader that resolved it just before
                # this commit may still be loading its files.
                remove_old_generations(
                    self.root, store.path.name, {store.current_gen, store.current_gen - 1}
                )
                self._remove_stale_stores(store.path.name)
            finally:
                store.close()
        report.seconds = time.perf_counter() - t0
        return report

    def _open_for_write(self, rebuild: bool) -> tuple[Store, str | None]:
        try:
            name = read_head(self.root)
        except CorruptIndex:
            if not rebuild:
                raise
            name = None  # a damaged HEAD: the rebuild writes a new one
        first = self.root / "store-1.sqlite"
        if name is None and not rebuild and first.exists():
            # The very first run was interrupted before it wrote HEAD: resume its batches
            # (readers still see no index until this run commits and writes HEAD).
            store = Store(first)
            check_model(store, self.embedder.name, self.embedder.dim)
            check_runtime(store, self.embedder)
            if not store.get_meta("embed_model"):  # killed before the first commit
                self._record_model(store)
            return store, first.name
        if name is None or rebuild or not (self.root / name).exists():
            fresh = f"store-{next_store_number(self.root, name)}.sqlite"
            (self.root / fresh).unlink(missing_ok=True)
            store = Store(self.root / fresh)
            self._record_model(store)
            return store, fresh
        store = Store(self.root / name, create=False)
        try:
            self._check_sound(store)
            check_model(store, self.embedder.name, self.embedder.dim)
            check_runtime(store, self.embedder)
        except QAError:
            store.close()
            raise
        return store, None

    def _record_model(self, store: Store) -> None:
        """The model, dimension and runtime (which vectors queries must match) of the index."""
        store.set_meta("embed_model", self.embedder.name)
        store.set_meta("embed_dim", str(self.embedder.dim))
        store.set_meta("embed_runtime", str(getattr(self.embedder, "runtime", "")))
        store.db.commit()

    def _check_sound(self, store: Store) -> None:
        """SQLite's integrity check of a store, once per store file and indexer (``watch``).

        A damaged page that this run would not touch still fails the run, so that it never
        commits a new generation onto a damaged store. Damage to indexes alone (their entries
        disagree with the tables) is repaired by rebuilding them from the tables.

        Raises:
            DamagedStore: The check found damage that rebuilding the indexes cannot repair.
        """
        if store.path.name in self._sound:
            return
        problems = integrity_problems(store.db)
        if problems and all(" index " in p for p in problems):
            store.db.execute("REINDEX")
            store.db.commit()
            problems = integrity_problems(store.db)
        if problems:
            raise DamagedStore(str(store.path), problems[0])
        self._sound.add(store.path.name)

    def _generation_damaged(self, store: Store) -> bool:
        """True when the current generation's search files do not load (once per indexer):
        the run then writes a full generation from the store instead of leaving them."""
        gen = store.current_gen
        if gen == 0 or (store.path.name, gen) in self._loaded:
            return False
        try:
            load_generation(gen_dir(self.root, store.path.name, gen))
        except QAError:
            return True
        self._loaded.add((store.path.name, gen))
        return False

    def _remove_stale_stores(self, keep: str) -> None:
        for f in self.root.glob("store-*.sqlite*"):
            if not f.name.startswith(Path(keep).stem + ".sqlite"):
                if f.is_dir() and not f.is_symlink():  # a folder left where a store was
                    shutil.rmtree(f, ignore_errors=True)
                else:
                    f.unlink(missing_ok=True)

    def _run(
        self, store: Store, paths: Sequence[Path], progress: Progress | None, prune: bool
    ) -> IndexReport:
        report = IndexReport()
        current = store.current_gen
        target = current + 1
        store.garbage_collect(current)
        store.backfill_tokens()
        NearDupIndex(store.db).backfill()  # stores written before near-duplicates were kept
        report.headlines_added += headlines.backfill(store, self.embedder, target)
        store.db.commit()
        files, skips = readable_files(self.ingestor, paths, self.root)
        for skipped in skips:
            self._report_skip(report, skipped)
        known = store.file_states()
        seen: set[str] = set()
        self._progress = progress
        self._total = estimate_records([f for f, _ in files]) if progress else None
        self._done = 0
        for path, key in files:
            seen.add(key)
            try:
                self._index_file(store, path, key, known.get(key), target, report)
            except (FileProblem, OSError) as exc:  # swapped or made unreadable meanwhile
                reason = exc.reason if isinstance(exc, FileProblem) else None
                reason = reason or file_problem(path) or f"cannot read file: {exc}"
                self._report_skip(report, self.ingestor.skip(str(path), reason))
                seen.discard(key)
        if prune:
            self._prune(store, [str(p.resolve()) for p in paths], known, seen, target, report)
        store.db.commit()
        self._finish(store, target, report)
        return report

    @staticmethod
    def _report_skip(report: IndexReport, skipped: Skipped) -> None:
        report.skipped += 1
        report.skips.append(skipped.message())

    def _index_file(
        self,
        store: Store,
        path: Path,
        key: str,
        old: FileState | None,
        target: int,
        report: IndexReport,
    ) -> None:
        stat = path.stat()
        if old and old.size == stat.st_size and old.mtime_ns == stat.st_mtime_ns:
            n = len(store.file_article_ids(key))
            report.unchanged += n
            self._still_skipped(store, key, report)
            self._tick(max(n, 1))
            return
        sha = file_sha(path)
        state = FileState(key, stat.st_size, stat.st_mtime_ns, sha)
        if old and old.sha == sha:
            same = store.file_article_ids(key)
            store.set_file(state, same, store.file_skips(key))
            report.unchanged += len(same)
            self._still_skipped(store, key, report)
            self._tick(max(len(same), 1))
            store.db.commit()
            return
        self._reindex_file(store, path, state, old is not None, target, report)

    def _reindex_file(
        self,
        store: Store,
        path: Path,
        state: FileState,
        known: bool,
        target: int,
        report: IndexReport,
    ) -> None:
        """Read a new or changed file; add its new articles, drop the ones it lost."""
        before = store.file_article_ids(state.path)
        ids: list[str] = []
        skips: list[str] = []
        pending: list[Article] = []
        added = chars = 0
        for item in self.ingestor.read_file(path):
            self._tick()
            if isinstance(item, Skipped):
                self._report_skip(report, item)
                skips.append(item.message())
                continue
            ids.append(item.id)
            if item.id in before or store.live_article(item.id):
                # Same content already indexed: this file before (or an interrupted run of
                # it, which had not recorded the file yet), or another file.
                same = item.id in before or store.article_origin(item.id) == item.origin
                report.unchanged += same
                report.duplicates += not same
                store.add_url(item.id, item.url)
                continue
            if store.revive_article(item.id):
                added += 1  # removed earlier in this unfinished run, back again
                continue
            pending.append(item)
            chars += len(item.text)
            if chars > self.window_chars:
                added += self._add_batch(store, pending, target, report)
                pending, chars = [], 0
        added += self._add_batch(store, pending, target, report)
        store.set_file(state, ids, skips)
        removed = 0
        for gone in before - set(ids):
            if not store.referenced(gone):
                store.delete_article(gone, target)
                removed += 1
        # A changed file that swaps articles reports them as updated.
        updated = min(added, removed) if known else 0
        report.updated += updated
        report.added += added - updated
        report.removed += removed - updated
        store.db.commit()

    def _still_skipped(self, store: Store, key: str, report: IndexReport) -> None:
        """Report again what an unchanged file had skipped: it is still not indexed."""
        for message in store.file_skips(key):
            report.skipped += 1
            report.skips.append(message)

    def _add_batch(
        self, store: Store, articles: list[Article], target: int, report: IndexReport
    ) -> int:
        """Chunk, embed (reusing vectors of identical passages) and insert articles."""
        unique = self._unique(store, articles, report)
        if not unique:
            return 0
        chunks = [self.chunker.split(a) for a in unique]
        texts = [p.embed_text() for ps in chunks for p in ps]
        hashes = [content_id(self.embedder.name, t) for t in texts]
        cached = store.cached_vectors(hashes)
        todo = [i for i, h in enumerate(hashes) if h not in cached]
        import numpy as np

        vecs = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        if todo:
            before = getattr(self.embedder, "truncated", 0)
            vecs[todo] = self.embedder.embed([texts[i] for i in todo])
            report.truncated += getattr(self.embedder, "truncated", 0) - before
        for i, h in enumerate(hashes):
            if h in cached:
                vecs[i] = cached[h]
        report.passages_embedded += len(todo)
        report.passages_reused += len(texts) - len(todo)
        self._write(store, unique, chunks, vecs, hashes, target, report)
        return len(unique)

    def _unique(self, store: Store, articles: list[Article], report: IndexReport) -> list[Article]:
        """The articles of a batch once each (a repeat only adds its URL)."""
        by_id: dict[str, Article] = {}
        for a in articles:
            if a.id in by_id:
                store.add_url(a.id, a.url)  # same content again in this batch
            else:
                by_id[a.id] = a
        report.duplicates += len(articles) - len(by_id)
        return list(by_id.values())

    def _write(
        self,
        store: Store,
        articles: Sequence[Article],
        chunks: Sequence[list[Passage]],
        vecs: Vectors,
        hashes: list[str],
        target: int,
        report: IndexReport,
        heads: Sequence[Vectors | None] | None = None,
    ) -> None:
        """Insert articles (``vecs``, ``hashes``: their passages'; ``heads``: their headlines')."""
        offset = 0
        neardup = NearDupIndex(store.db)
        for article, passages in zip(articles, chunks, strict=True):
            n = len(passages)
            store.add_article(
                article, passages, vecs[offset : offset + n], hashes[offset : offset + n], target
            )
            # A few indexed band lookups; copies added in this batch see each other.
            report.near_duplicates += neardup.add(article.id, article.text) != article.id
            offset += n
        pairs = [(a.id, a.title) for a in articles]
        report.headlines_added += headlines.add_headlines(
            store, self.embedder, pairs, target, heads
        )
        store.db.commit()  # each batch is durable: an interrupted run resumes from here

    def _tick(self, n: int = 1) -> None:
        self._done += n
        if self._progress:
            self._progress(self._done, self._total)

    def _prune(
        self,
        store: Store,
        roots: list[str],
        known: dict[str, FileState],
        seen: set[str],
        target: int,
        report: IndexReport,
    ) -> None:
        """Forget files under the indexed roots that are gone, and their articles."""
        for key in known:
            under = any(key == r or key.startswith(r.rstrip("/") + "/") for r in roots)
            if key in seen or not under:
                continue
            ids = store.file_article_ids(key)
            store.forget_file(key)
            for gone in ids:
                if not store.referenced(gone):
                    store.delete_article(gone, target)
                    report.removed += 1

    def _finish(self, store: Store, target: int, report: IndexReport) -> None:
        """Build the new generation if anything changed, then commit it as current."""
        outdated = keywords_outdated(self.root, store.path.name, store.current_gen)
        # A store last published to another backend is published in full, never mixed.
        damaged = self.backend is None and self._generation_damaged(store)
        full = damaged or switches_backend(store, self.backend)
        changed = store.pending_changes(target) or headlines.pending(store, target)
        if store.current_gen == 0 or outdated or full or changed or behind(store, self.backend):
            # Same transaction as the new current_gen: readers never see half-done clusters.
            NearDupIndex(store.db).recluster_after_deletions(target)
            if self.backend is None:
                build_generation(store, self.root, target, self.embedder.dim, full=full)
                store.set_meta(META_KEY, EMBEDDED)
            else:
                self.backend.publish(store, target)  # records itself in the store
            store.set_meta("current_gen", str(target))
            store.set_meta("updated_at", time.strftime("%Y-%m-%dT%H:%M:%S"))
            store.db.commit()
        report.generation = store.current_gen
        report.articles, report.passages = store.counts(store.current_gen)
