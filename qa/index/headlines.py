"""Headline vectors: one per titled article, its title embedded by the index's embedder.

Many news pages (video pages, galleries, short briefs) tell their story only in the headline:
their body is boilerplate shared by many pages. The retriever searches these vectors beside the
passage vectors and lifts the passages of the articles whose headlines match
(:mod:`qa.search.retriever`).

Rows live in the store's ``headlines`` table (``article_id``, ``embed_hash``: the content hash
of model and title, ``vec``: float16, ``added_gen``). A headline is visible exactly when its
article is, so deleting or reviving an article needs nothing here; rows go when their article
is physically dropped. ``added_gen`` is the generation that wrote the row: with a new article,
or later by :func:`backfill` for an index written before headlines were kept.

A generation folder holds ``headlines.faiss`` and ``headline-ids.npy`` (headline rowids): every
visible headline in a full generation, those added since the base in a delta, which also lists
the base's headlines deleted since (``headlines-deleted.npy``, document numbers). A generation
whose manifest has no ``headlines`` entry (written before headlines were kept) has no headline
route; the next ``newsqa index`` embeds the missing titles and builds a full generation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from qa.index.dense import DenseSpec, build_dense, choose_kind, configure
from qa.index.store import visible
from qa.types import content_id

if TYPE_CHECKING:
    from qa.index.embed import EmbedderLike
    from qa.index.store import Store

FILE = "headlines.faiss"
IDS = "headline-ids.npy"
DELETED = "headlines-deleted.npy"
# Titles embedded per batch during a backfill (each batch committed).
BACKFILL_BATCH = 512

JOIN = "FROM headlines h JOIN articles a ON a.id = h.article_id"
# A headline is visible exactly when its article is.
VISIBLE = visible("a.")

Ids = npt.NDArray[np.int64]


def headline_hash(model: str, title: str) -> str:
    """Content hash of a headline vector: the model and the title text."""
    return content_id(model, "headline", title)


def embed_titles(
    store: Store, embedder: EmbedderLike, titles: Sequence[str]
) -> npt.NDArray[np.float32]:
    """Vectors of ``titles``, reusing those the store holds for the same title and model."""
    hashes = [headline_hash(embedder.name, t) for t in titles]
    vecs = np.zeros((len(titles), embedder.dim), dtype=np.float32)
    cached: dict[str, npt.NDArray[np.float32]] = {}
    for i in range(0, len(hashes), 500):
        chunk = list(dict.fromkeys(hashes[i : i + 500]))
        marks = ",".join("?" * len(chunk))
        q = f"SELECT embed_hash, vec FROM headlines WHERE embed_hash IN ({marks})"
        for h, blob in store.db.execute(q, chunk):
            cached[h] = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
    todo = [i for i, h in enumerate(hashes) if h not in cached]
    if todo:
        # The same title twice in one batch is embedded once.
        unique = list(dict.fromkeys(titles[i] for i in todo))
        fresh = dict(zip(unique, embedder.embed(unique), strict=True))
        for i in todo:
            vecs[i] = fresh[titles[i]]
    for i, h in enumerate(hashes):
        if h in cached:
            vecs[i] = cached[h]
    return vecs


def add_headlines(
    store: Store,
    embedder: EmbedderLike,
    articles: Sequence[tuple[str, str]],
    gen: int,
    vectors: Sequence[npt.NDArray[np.float32] | None] | None = None,
) -> int:
    """Embed and store the headlines of ``(article id, title)`` pairs (untitled ones skipped).

    Args:
        store: The store (the caller commits).
        embedder: The index's embedder.
        articles: ``(article id, title)`` pairs.
        gen: The generation being written.
        vectors: Headline vectors already computed (the Ray import's actors), aligned with
            ``articles``; those missing are embedded here.

    Returns:
        How many headlines were written.
    """
    given = list(vectors) if vectors is not None else [None] * len(articles)
    titled = [(aid, t.strip(), v) for (aid, t), v in zip(articles, given, strict=True) if t.strip()]
    if not titled:
        return 0
    todo = [i for i, (_, _, v) in enumerate(titled) if v is None]
    vecs = np.stack(
        [v if v is not None else np.zeros(embedder.dim, np.float32) for *_, v in titled]
    )
    if todo:
        vecs[todo] = embed_titles(store, embedder, [titled[i][1] for i in todo])
    store.db.executemany(
        "INSERT OR IGNORE INTO headlines(article_id, embed_hash, vec, added_gen) "
        "VALUES(?, ?, ?, ?)",
        [
            (aid, headline_hash(embedder.name, t), v.astype(np.float16).tobytes(), gen)
            for (aid, t, _), v in zip(titled, vecs, strict=True)
        ],
    )
    return len(titled)


def backfill(store: Store, embedder: EmbedderLike, gen: int) -> int:
    """Embed the headlines that live titled articles lack (an index from before headlines).

    Committed in batches, so an interrupted run resumes. Once every live article has its
    headline the store remembers it, and later runs skip the scan.

    Returns:
        How many headlines were written.
    """
    if store.get_meta("headlines_kept"):
        return 0
    q = (
        "SELECT a.id, a.title FROM articles a LEFT JOIN headlines h ON h.article_id = a.id "
        "WHERE h.article_id IS NULL AND a.deleted_gen IS NULL AND trim(a.title) != '' "
        "ORDER BY a.rowid"
    )
    missing = [(str(r[0]), str(r[1])) for r in store.db.execute(q)]
    done = 0
    for i in range(0, len(missing), BACKFILL_BATCH):
        done += add_headlines(store, embedder, missing[i : i + BACKFILL_BATCH], gen)
        store.db.commit()
    store.set_meta("headlines_kept", "1")
    store.db.commit()
    return done


def count_visible(store: Store, gen: int) -> int:
    """Headlines visible at ``gen``."""
    q = f"SELECT COUNT(*) {JOIN} WHERE {VISIBLE}"
    return int(store.db.execute(q, {"gen": gen}).fetchone()[0])


def any_stored(store: Store) -> bool:
    """True when the store holds any headline."""
    return store.db.execute("SELECT 1 FROM headlines LIMIT 1").fetchone() is not None


def pending(store: Store, gen: int) -> bool:
    """True when headlines were written at ``gen`` (a backfill or new articles)."""
    q = "SELECT 1 FROM headlines WHERE added_gen = ? LIMIT 1"
    return store.db.execute(q, (gen,)).fetchone() is not None


def _rows(store: Store, where: str, params: dict[str, int], dim: int) -> tuple[Ids, Any]:
    q = f"SELECT h.rowid, h.vec {JOIN} WHERE {where} ORDER BY h.rowid"
    rows = store.db.execute(q, params).fetchall()
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16).reshape(-1, dim)
    return ids, vecs


# ---------------------------------------------------------------------------------- writing
def write_full(store: Store, gen: int, dim: int, folder: Path) -> dict[str, Any]:
    """Write every headline visible at ``gen``; returns the manifest's ``headlines`` entry."""
    import faiss

    ids, vecs = _rows(store, VISIBLE, {"gen": gen}, dim)
    index, spec = build_dense(vecs, choose_kind(len(ids)))
    faiss.write_index(index, str(folder / FILE))
    np.save(folder / IDS, ids)
    return {"count": len(ids), "dense": spec.to_json()}


def write_delta(
    store: Store, base: Path, previous: Path, base_gen: int, gen: int, dim: int, folder: Path
) -> dict[str, Any] | None:
    """Write the headlines added since ``base_gen`` and the base's deleted since.

    Returns:
        The manifest's ``headlines`` entry; None when the base has no headlines (a full build
        is needed).
    """
    import faiss

    base_entry = json.loads((base / "manifest.json").read_text()).get("headlines")
    if base_entry is None:
        return None
    params = {"base": base_gen, "gen": gen}
    ids, vecs = _rows(store, f"h.added_gen > :base AND {VISIBLE}", params, dim)
    index = faiss.IndexFlatIP(dim)
    if len(ids):
        index.add(np.ascontiguousarray(vecs, dtype=np.float32))
    faiss.write_index(index, str(folder / FILE))
    np.save(folder / IDS, ids)
    q = (
        f"SELECT h.rowid {JOIN} WHERE h.added_gen <= :base AND a.deleted_gen > :base "
        "AND a.deleted_gen <= :gen"
    )
    gone = np.asarray([r[0] for r in store.db.execute(q, params)], dtype=np.int64)
    base_ids = np.load(base / IDS)
    pos = np.searchsorted(base_ids, gone)
    hit = (pos < len(base_ids)) & (base_ids[np.minimum(pos, len(base_ids) - 1)] == gone)
    # Rows dropped since the previous delta are carried forward from its list.
    prev = previous / DELETED
    carried = np.load(prev) if previous != base and prev.exists() else np.zeros(0, np.int64)
    deleted = np.union1d(carried, pos[hit]).astype(np.int64)
    np.save(folder / DELETED, deleted)
    return {"count": len(ids), "deleted": len(deleted)}


# ---------------------------------------------------------------------------------- reading
@dataclass
class HeadlineSegment:
    """The headline vectors of one generation folder: FAISS ids are positions in ``ids``."""

    ids: Ids
    dense: Any
    spec: DenseSpec

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])


def load_segment(folder: Path, entry: dict[str, Any] | None) -> HeadlineSegment | None:
    """The headline segment of a generation folder (None: written without headlines).

    Raises:
        ValueError: The files disagree with the manifest (the caller reports the index).
    """
    import faiss

    if entry is None:
        return None
    ids = np.load(folder / IDS)
    dense = faiss.read_index(str(folder / FILE))
    spec = DenseSpec.from_json(entry.get("dense"))
    configure(dense, spec)
    if ids.shape[0] != int(entry["count"]) or dense.ntotal != ids.shape[0]:
        raise ValueError(f"{FILE} holds {dense.ntotal} vectors, {IDS} {ids.shape[0]} ids")
    return HeadlineSegment(ids, dense, spec)


def load_deleted(folder: Path, entry: dict[str, Any] | None) -> Ids:
    """A delta's deleted base headline documents (none for a full generation)."""
    if entry is None or "deleted" not in entry:
        return np.zeros(0, dtype=np.int64)
    deleted: Ids = np.load(folder / DELETED).astype(np.int64)
    if len(deleted) != int(entry["deleted"]):
        raise ValueError(f"{DELETED} lists {len(deleted)} documents, the manifest {entry}")
    return deleted


def article_meta(store: Store, rowids: Ids) -> tuple[list[str], list[str], list[str], list[str]]:
    """(article ids, dates, sources, embed hashes) of headline rowids (rows gone: "")."""
    out: dict[int, tuple[str, str, str, str]] = {}
    wanted = [int(i) for i in rowids]
    for lo in range(0, len(wanted), 10_000):
        page = wanted[lo : lo + 10_000]
        marks = ",".join("?" * len(page))
        q = (
            f"SELECT h.rowid, a.id, a.date, a.source, h.embed_hash {JOIN} "
            f"WHERE h.rowid IN ({marks})"
        )
        out.update(
            (int(r[0]), (str(r[1]), str(r[2]), str(r[3]), str(r[4])))
            for r in store.db.execute(q, page)
        )
    rows = [out.get(i, ("", "", "", "")) for i in wanted]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]


def title_keys(hashes: Sequence[str]) -> Ids:
    """Embed hashes (hex) as 60-bit integers, for comparing titles in arrays ("" -> 0)."""
    return np.asarray([int(h[:15], 16) if h else 0 for h in hashes], dtype=np.int64)


def shared(keys: Ids, alive: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Which headline documents (their :func:`title_keys`) hold a title that another live
    document holds too; ``alive``: the documents not deleted."""
    titles, counts = np.unique(keys[alive], return_counts=True)
    return np.isin(keys, titles[counts > 1])
