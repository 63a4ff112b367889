"""Headline vectors on Milvus: the headline route's second collection, one row per headline.

The store's ``headlines`` table (:mod:`qa.index.headlines`) is mirrored into a collection of
its own beside the passages' (named after it, ``_heads`` appended). A second collection, not
a second vector field on the passage rows: a headline belongs to an article, not to any one
passage, and one row per article keeps the route's top-k a top-k of articles (a field on every
passage would return one article several times and store its vector once per passage). It has
its own index type by size, and searching it is one request with its own filter.

=================  ======================================================================
``id``             the article id (primary key: a title that changes upserts the row)
``rowid``          the store's headline row number
``title_key``      the title's embed hash as a number
``source_key``     the article's source as a number, as on the passage rows
``day``            the publish date as ``YYYYMMDD`` (0: undated), as on the passage rows
``added_gen``      generation the headline was written in; ``deleted_gen`` the one its
                   article was removed in (0: live), as on the passage rows
``shared_now``     1 when another headline visible at ``shared_gen`` has the same title;
``shared_before``  the same one generation earlier, so that a reader of ``shared_gen - 1``
``shared_gen``     still sees its own generation while ``shared_gen`` is published
``vec``            the headline vector, inner product
=================  ======================================================================

A title several articles share is not searched (:meth:`qa.search.local.LocalView.headlines`
says why): the ``shared_*`` fields carry that inside the search request. Publishing
generation g upserts the headlines written at g and those whose article was removed at g,
plus every row of a title whose shared state flips at g (it has one article at g - 1 and two
at g, or back); rows removed before g are deleted. So each generation touches its own changes,
never every headline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.index.headlines import JOIN as _JOIN
from qa.index.headlines import title_keys
from qa.search.local import date_key
from qa.search.milvus_view import batches, query_rows, source_key, visible_expr

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from qa.index.store import Store

SUFFIX = "_heads"
META = "milvus_heads_index"
_ROWS = (
    "SELECT h.rowid, h.article_id, h.embed_hash, h.vec, h.added_gen, a.deleted_gen, a.date, "
    f"a.source {_JOIN}"
)
# The collection's rows carry the generation that wrote the headline row (``added_gen``), and
# searches filter on it: a headline backfilled at a later generation than its article is
# visible from that generation here, as in the collection.
_VISIBLE = "h.added_gen <= :gen AND (a.deleted_gen IS NULL OR a.deleted_gen > :gen)"
_PAGE = 500

__all__ = ["META", "SUFFIX", "heads_name", "problems", "publish_delta", "publish_full"]


def heads_name(collection: str) -> str:
    """The headline collection beside the passage collection ``collection``."""
    return collection + SUFFIX


def publish_full(
    client: MilvusClient, store: Store, name: str, gen: int, spec: dict[str, Any], batch: int
) -> None:
    """A new headline collection holding every headline visible at ``gen``."""
    if client.has_collection(name):
        client.drop_collection(name)
    _create(client, name, int(store.get_meta("embed_dim", "0") or 0), spec)
    q = f"SELECT h.embed_hash {_JOIN} WHERE {_VISIBLE} GROUP BY h.embed_hash HAVING COUNT(*) > 1"
    shared = {str(r[0]) for r in store.db.execute(q, {"gen": gen})}
    rows = store.db.execute(f"{_ROWS} WHERE {_VISIBLE}", {"gen": gen})
    for page in batches(rows, batch):
        # Rows removed after ``gen`` count as live here: this collection starts at ``gen``.
        flags = {str(r[2]): (str(r[2]) in shared,) * 2 for r in page}
        client.insert(name, [_entity(r, gen, flags, live=True) for r in page])
    store.set_meta(META, json.dumps(spec))


def publish_delta(client: MilvusClient, store: Store, name: str, gen: int, batch: int) -> None:
    """Upsert the headlines that changed at ``gen``; delete those readers of ``gen - 1`` no
    longer see."""
    g = int(gen)
    client.delete(name, filter=f"deleted_gen > 0 and deleted_gen < {g}")
    # Rows that a killed attempt at this generation wrote: made to match the store again.
    leftover = {
        str(r["id"])
        for r in query_rows(
            client, name, f"added_gen >= {g} or deleted_gen >= {g} or shared_gen >= {g}", ["id"]
        )
    }
    q = f"SELECT h.article_id {_JOIN} WHERE h.added_gen = :gen OR a.deleted_gen = :gen"
    ids = {str(r[0]) for r in store.db.execute(q, {"gen": g})} | leftover
    rows = {str(r[1]): r for r in _by_article(store, sorted(ids))}
    touched = sorted({str(r[2]) for r in rows.values()})
    now, before = _counts(store, touched, g), _counts(store, touched, g - 1)
    flipped = [h for h in touched if (now.get(h, 0) > 1) != (before.get(h, 0) > 1)]
    for lo in range(0, len(flipped), _PAGE):
        page = flipped[lo : lo + _PAGE]
        marks = ",".join("?" * len(page))
        q = (
            f"{_ROWS} WHERE h.embed_hash IN ({marks}) AND h.added_gen <= ? "
            "AND (a.deleted_gen IS NULL OR a.deleted_gen >= ?)"
        )
        rows.update((str(r[1]), r) for r in store.db.execute(q, [*page, g, g]))
    flags = {h: (now.get(h, 0) > 1, before.get(h, 0) > 1) for h in touched}
    for page in batches(rows.values(), batch):
        client.upsert(name, [_entity(r, g, flags) for r in page])
    gone = sorted(leftover - set(rows))
    for lo in range(0, len(gone), batch):
        client.delete(name, ids=gone[lo : lo + batch])


def problems(client: MilvusClient, store: Store, passages: str, gen: int) -> list[str]:
    """Disagreements between the headlines visible at ``gen`` and the headline collection
    beside the passage collection ``passages``."""
    name = heads_name(passages)
    if not client.has_collection(name):
        return [f"no headline collection {name}: run `newsqa index` to write it"]
    client.load_collection(name)
    q = f"SELECT h.article_id {_JOIN} WHERE {_VISIBLE}"
    want = {str(r[0]) for r in store.db.execute(q, {"gen": gen})}
    have = {str(r["id"]) for r in query_rows(client, name, visible_expr(gen), ["id"])}
    out = []
    if want - have:
        out.append(f"{len(want - have)} headline(s) of generation {gen} missing from {name}")
    if have - want:
        out.append(f"{len(have - want)} headline row(s) in {name} that generation {gen} lacks")
    return out


def _by_article(store: Store, ids: list[str]) -> Iterator[Any]:
    for lo in range(0, len(ids), _PAGE):
        page = ids[lo : lo + _PAGE]
        yield from store.db.execute(
            f"{_ROWS} WHERE h.article_id IN ({','.join('?' * len(page))})", page
        )


def _counts(store: Store, hashes: list[str], gen: int) -> dict[str, int]:
    """Headlines visible at ``gen`` per title (embed hash), for ``hashes``."""
    out: dict[str, int] = {}
    for lo in range(0, len(hashes), _PAGE):
        page = hashes[lo : lo + _PAGE]
        q = (
            f"SELECT h.embed_hash, COUNT(*) {_JOIN} WHERE h.embed_hash IN "
            f"({','.join('?' * len(page))}) AND h.added_gen <= ? "
            "AND (a.deleted_gen IS NULL OR a.deleted_gen > ?) GROUP BY h.embed_hash"
        )
        out.update((str(r[0]), int(r[1])) for r in store.db.execute(q, [*page, gen, gen]))
    return out


def _create(client: MilvusClient, name: str, dim: int, spec: dict[str, Any]) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
    for scalar in ("rowid", "title_key", "source_key", "day", "added_gen", "deleted_gen"):
        schema.add_field(scalar, DataType.INT64)
    for flag in ("shared_now", "shared_before", "shared_gen"):
        schema.add_field(flag, DataType.INT64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index("vec", index_type=spec["type"], metric_type="IP", params=spec["build"])
    for scalar in ("day", "source_key", "added_gen", "deleted_gen", "shared_gen"):
        index.add_index(scalar, index_type="INVERTED")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def _entity(
    row: Any, gen: int, flags: dict[str, tuple[bool, bool]], live: bool = False
) -> dict[str, Any]:
    """A store headline row (``_ROWS``) as a collection row, its title's shared state at
    ``gen`` and ``gen - 1`` from ``flags``."""
    rowid, article_id, embed_hash, vec, added, deleted, date, source = row
    now, before = flags.get(str(embed_hash), (False, False))
    return {
        "id": str(article_id),
        "rowid": int(rowid),
        "title_key": int(title_keys([str(embed_hash)])[0]),
        "source_key": source_key(str(source)),
        "day": date_key(str(date)),
        "added_gen": int(added),
        "deleted_gen": 0 if live or deleted is None else int(deleted),
        "shared_now": int(now),
        "shared_before": int(before),
        "shared_gen": int(gen),
        "vec": np.frombuffer(vec, dtype=np.float16).astype(np.float32).tolist(),
    }
