"""Search on Milvus: the index's passages, vectors and keywords in a Milvus collection.

One client (pymilvus's ``MilvusClient``) for a Milvus Lite file, Milvus Lite's loopback server,
and Milvus Standalone or Distributed; only the URI changes (:mod:`qa.search.uri`). The SQLite
store stays the source of truth; the collection is a projection of it, one row per passage:

=============  =========================================================================
``id``         the passage id (a content hash), primary key
``rowid``      the store's row number: the document number searches return
``article_id`` the article's id
``source_key`` the article's source as a number (filters never quote outside text)
``day``        the publish date as ``YYYYMMDD`` (0: undated), with a scalar index
``added_gen``  generation the row was added in; ``deleted_gen`` the one it was removed
               in (0: live), so that a reader of generation g sees exactly g
``terms``      the analysed text (newsqa's stems), input of Milvus's BM25 function
``sparse``     the BM25 function's output, a sparse inverted index scored as BM25
``vec``        the dense vector (384-d for MiniLM), inner product
=============  =========================================================================

Publishing generation g (:meth:`MilvusBackend.publish`) reads the difference from the store:
rows added at g are upserted, rows removed at g are upserted with ``deleted_gen = g`` (still
visible to readers of g - 1) and rows removed before g are deleted. Rows a killed earlier
attempt left for g are found by their generations and made to match the store, so the next
run converges. A store published to another backend (or a new store) is published in full
into a new collection, never merged into what was there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.errors import BackendError
from qa.index.folder import check_model, open_store, read_head
from qa.index.headlines import count_visible
from qa.index.neardup import NearDupIndex
from qa.index.store import VISIBLE, Store, visible
from qa.search import milvus_heads
from qa.search.local import date_key
from qa.search.milvus_view import (
    MilvusView,
    analysed,
    batches,
    encode_terms,
    milvus_calls,
    query_rows,
    source_key,
    visible_expr,
)
from qa.search.uri import META_KEY, BackendURI, check_published, published_to

if TYPE_CHECKING:
    from pymilvus import MilvusClient

# Up to this many passages the dense index is exact (FLAT), as the embedded backend's FAISS is;
# above it IVF_SQ8: 384 bytes a vector against HNSW's 1.7 KB (see docs/design.md).
FLAT_MAX = 200_000
INDEX_META = "milvus_index"
# pymilvus pings an idle channel every 10 s. A gRPC server by default takes pings without
# calls more often than every 5 minutes as abuse and answers GOAWAY ("too many pings"), as a
# loopback Milvus Lite server did; a call made while the channel reconnects can then fail (a
# chat left idle, then asked). Pings while a call is in flight are kept.
_QUIET_CHANNEL = {"grpc.keepalive_permit_without_calls": False}
# Each mirrored row's collection id and store rowid, as read back to reconcile.
_IDS = ["id", "rowid"]
_ROWS = (
    "SELECT p.rowid, p.id, p.article_id, p.tokens, p.text, p.vec, p.added_gen, p.deleted_gen, "
    "a.date, a.source FROM passages p JOIN articles a ON a.id = p.article_id"
)

__all__ = ["FLAT_MAX", "MilvusBackend", "dense_index"]


def dense_index(passages: int) -> dict[str, Any]:
    """The dense index for a collection of ``passages``: type, build and search parameters."""
    if passages <= FLAT_MAX:
        return {"type": "FLAT", "build": {}, "search": {}}
    lists = int(min(65536, max(1024, 2 ** round(math.log2(4 * math.sqrt(passages))))))
    return {
        "type": "IVF_SQ8",
        "build": {"nlist": lists},
        "search": {"nprobe": min(lists // 8, 128)},
    }


class MilvusBackend:
    """The index's passages in a Milvus collection (see the module's docstring).

    Args:
        index_dir: The index folder (its store is the source of truth).
        uri: The Milvus Lite file or server.
        batch: Rows per insert or upsert call.
    """

    def __init__(self, index_dir: Path, uri: BackendURI, batch: int = 1000) -> None:
        self.index_dir = index_dir
        self.uri = uri
        self.batch = batch
        self._client: MilvusClient | None = None
        self._store: Store | None = None
        self._view: MilvusView | None = None
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        """The URI the store records for a generation published here."""
        return self.uri.identity

    # -- connection ---------------------------------------------------------------------------
    def client(self) -> MilvusClient:
        """The connection, opened on first use.

        Raises:
            BackendError: The server cannot be reached or the Lite file cannot be opened.
        """
        if self._client is None:
            try:
                from pymilvus import MilvusClient
                from pymilvus.exceptions import MilvusException
            except ImportError as exc:
                raise BackendError(
                    f"--backend {self.identity} needs pymilvus: pip install 'newsqa[milvus]'"
                ) from exc
            # Milvus Lite logs a traceback when it cannot open its folder; the error says it.
            quiet = logging.getLogger("milvus_lite")
            level, quiet.level = quiet.level, logging.CRITICAL + 1
            try:
                self._client = MilvusClient(
                    uri=self.uri.client_uri, timeout=10, grpc_options=_QUIET_CHANNEL
                )
            except MilvusException as exc:
                raise BackendError(self._unreachable(exc)) from exc
            finally:
                quiet.setLevel(level)
        return self._client

    def _unreachable(self, exc: Exception) -> str:
        reason = getattr(exc, "message", "") or str(exc)
        if self.uri.kind == "lite":
            return (
                f"cannot open the Milvus Lite file {self.uri.target} ({reason}); one process "
                "at a time opens a Lite file: for several, run `milvus-lite server --data-dir "
                "DIR --host 127.0.0.1 --port PORT` and use --backend milvus://127.0.0.1:PORT"
            )
        return (
            f"cannot reach Milvus at {self.uri.target} ({reason}): start the server, check "
            "the host and port, or use --backend embedded"
        )

    def collection(self, store: Store) -> str:
        """The collection of ``store``: this machine's index folder and store file."""
        return _prefix(self.index_dir) + Path(store.path.name).stem.replace("-", "_")

    # -- SearchBackend ------------------------------------------------------------------------
    def check_model(self, name: str, dim: int) -> None:
        """Raise IndexMismatch for another model, or an index published to another backend."""
        with self._lock:
            store = self._open()
            check_model(store, name, dim)
            check_published(store, self.uri)

    def view(self) -> MilvusView:
        """The current generation (a new view once a newer one or a new store was committed)."""
        with self._lock:
            store = self._open()
            if read_head(self.index_dir) != store.path.name:  # `index --rebuild` replaced it
                store.close()
                self._store, self._view = None, None
                store = self._open()
            gen = store.current_gen
            if self._view is None or self._view.store is not store or self._view.gen != gen:
                self._view = self._load(store, gen)
            return self._view

    def _load(self, store: Store, gen: int) -> MilvusView:
        spec = json.loads(store.get_meta(INDEX_META) or "{}") or dense_index(0)
        name = self.collection(store)
        client = self.client()
        heads = milvus_heads.heads_name(name)
        head_spec = json.loads(store.get_meta(milvus_heads.META) or "{}")
        with milvus_calls(self.identity):
            client.load_collection(name)
            # Published before headlines were kept: no headline route until the next publish.
            heads = heads if head_spec and client.has_collection(heads) else ""
            if heads:
                client.load_collection(heads)
        return MilvusView(
            store=store,
            client=client,
            collection=name,
            gen=gen,
            where=self.identity,
            search_params={"metric_type": "IP", "params": spec.get("search", {})},
            clusters=NearDupIndex(store.db).clusters(gen),
            size=store.counts(gen)[1],
            heads=heads,
            head_params={"metric_type": "IP", "params": head_spec.get("search", {})},
        )

    def publish(self, store: Store, gen: int) -> None:
        """Make generation ``gen`` of ``store`` searchable here, before the store commits it.

        The store records this backend in the same transaction as the new generation, so a
        store last published elsewhere (or never) is published in full.
        """
        client = self.client()
        name = self.collection(store)
        with milvus_calls(self.identity):
            full = published_to(store) != self.identity or not client.has_collection(name)
            if full:
                self._publish_full(client, store, name, gen)
            else:
                self._publish_delta(client, store, name, gen)
            heads = milvus_heads.heads_name(name)
            if full or not client.has_collection(heads):  # published before headlines were
                spec = dense_index(count_visible(store, gen))
                milvus_heads.publish_full(client, store, heads, gen, spec, self.batch)
            else:
                milvus_heads.publish_delta(client, store, heads, gen, self.batch)
            self._drop_stale(client, store)
        store.set_meta(META_KEY, self.identity)

    def behind(self, store: Store) -> bool:
        """Whether the collection published from ``store`` lacks its headline collection
        (published before headlines were kept): the next publish writes it."""
        if published_to(store) != self.identity:
            return False  # published in full anyway
        with milvus_calls(self.identity):
            heads = milvus_heads.heads_name(self.collection(store))
            return not self.client().has_collection(heads)

    def close(self) -> None:
        """Close the store and the connection (a later search opens them again)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
            if self._client is not None:
                self._client.close()
            self._store, self._view, self._client = None, None, None

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(self.index_dir, readonly=True)
        return self._store

    # -- publishing ---------------------------------------------------------------------------
    def _publish_full(self, client: MilvusClient, store: Store, name: str, gen: int) -> None:
        """A new collection holding every passage visible at ``gen``."""
        spec = dense_index(store.counts(gen)[1])
        if client.has_collection(name):
            client.drop_collection(name)
        dim = int(store.get_meta("embed_dim", "0") or 0)
        _create(client, name, dim, spec)
        q = f"{_ROWS} WHERE {visible('p.')}"
        for rows in batches(store.db.execute(q, {"gen": gen}), self.batch):
            # Rows removed after ``gen`` count as live here: this collection starts at ``gen``.
            client.insert(name, [_entity(r, live=True) for r in rows])
        store.set_meta(INDEX_META, json.dumps(spec))

    def _publish_delta(self, client: MilvusClient, store: Store, name: str, gen: int) -> None:
        """Upsert what changed at ``gen``; delete what readers of ``gen - 1`` no longer see."""
        client.delete(name, filter=f"deleted_gen > 0 and deleted_gen < {int(gen)}")
        # Rows that a killed attempt at this generation wrote: made to match the store again.
        leftover = {
            str(r["id"])
            for r in query_rows(
                client, name, f"added_gen >= {int(gen)} or deleted_gen >= {int(gen)}", _IDS
            )
        }
        q = f"{_ROWS} WHERE p.added_gen = :gen OR p.deleted_gen = :gen"
        mirrored: set[str] = set()
        for rows in batches(store.db.execute(q, {"gen": gen}), self.batch):
            client.upsert(name, [_entity(r) for r in rows])
            mirrored.update(str(r[1]) for r in rows)
        rest = sorted(leftover - mirrored)
        for lo in range(0, len(rest), self.batch):
            ids = rest[lo : lo + self.batch]
            marks = ",".join("?" * len(ids))
            rows = store.db.execute(f"{_ROWS} WHERE p.id IN ({marks})", ids).fetchall()
            if rows:  # revived by the later run: live again
                client.upsert(name, [_entity(r) for r in rows])
            gone = sorted(set(ids) - {str(r[1]) for r in rows})
            if gone:
                client.delete(name, ids=gone)

    def _drop_stale(self, client: MilvusClient, store: Store) -> None:
        """Drop this folder's collections whose store file is gone (`index --rebuild`)."""
        prefix, own = _prefix(self.index_dir), self.collection(store)
        for other in client.list_collections():
            if other.startswith(prefix) and other != own:
                stem = other[len(prefix) :].removesuffix(milvus_heads.SUFFIX).replace("_", "-")
                if not (self.index_dir / f"{stem}.sqlite").exists():
                    client.drop_collection(other)

    # -- stats --------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Disagreements between the store's current generation and the collection."""
        with open_store(self.index_dir) as store:
            gen = store.current_gen
            q = f"SELECT rowid FROM passages WHERE {VISIBLE}"
            want = {int(r[0]) for r in store.db.execute(q, {"gen": gen})}
            name = self.collection(store)
            with milvus_calls(self.identity):
                if not self.client().has_collection(name):
                    return [f"no collection {name} in {self.identity}"]
                self.client().load_collection(name)  # a Lite file opened afresh: released
                rows = query_rows(self.client(), name, visible_expr(gen), _IDS)
                have = [int(r["rowid"]) for r in rows]
                heads = milvus_heads.problems(self.client(), store, name, gen)
        out = []
        if len(have) != len(set(have)):
            out.append(f"{len(have) - len(set(have))} passage(s) twice in {name}")
        missing, extra = want - set(have), set(have) - want
        if missing:
            out.append(f"{len(missing)} passage(s) of generation {gen} missing from {name}")
        if extra:
            out.append(f"{len(extra)} row(s) in {name} that generation {gen} does not hold")
        return out + heads

    def describe(self) -> dict[str, Any]:
        """What ``newsqa stats`` shows of the collection."""
        with open_store(self.index_dir) as store:
            spec = json.loads(store.get_meta(INDEX_META) or "{}")
            name = self.collection(store)
        heads = milvus_heads.heads_name(name)
        with milvus_calls(self.identity):
            stats = self.client().get_collection_stats(name)
            kept = self.client().has_collection(heads)
            head_rows = self.client().get_collection_stats(heads) if kept else None
        return {
            "backend": self.identity,
            "collection": name,
            "collection_rows": int(stats.get("row_count", 0)),
            "dense_index": spec.get("type", ""),
            # None: published before headlines were kept (the next `newsqa index` adds them).
            "headline_vectors": None if head_rows is None else int(head_rows.get("row_count", 0)),
        }


def _prefix(index_dir: Path) -> str:
    """Collections of one index folder on one machine share this prefix."""
    where = f"{socket.gethostname()}:{index_dir.resolve()}"
    return "newsqa_" + hashlib.sha256(where.encode()).hexdigest()[:12] + "_"


def _create(client: MilvusClient, name: str, dim: int, spec: dict[str, Any]) -> None:
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
    schema.add_field("rowid", DataType.INT64)
    schema.add_field("article_id", DataType.VARCHAR, max_length=64)
    schema.add_field("source_key", DataType.INT64)
    schema.add_field("day", DataType.INT64)
    schema.add_field("added_gen", DataType.INT64)
    schema.add_field("deleted_gen", DataType.INT64)
    schema.add_field(
        "terms",
        DataType.VARCHAR,
        max_length=65535,
        enable_analyzer=True,
        enable_match=True,
        analyzer_params={"tokenizer": "standard"},
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_function(
        Function(
            name="terms_bm25",
            function_type=FunctionType.BM25,
            input_field_names=["terms"],
            output_field_names=["sparse"],
        )
    )
    index = client.prepare_index_params()
    index.add_index("vec", index_type=spec["type"], metric_type="IP", params=spec["build"])
    # k1 and b as the embedded backend's bm25s, so that both score on one scale.
    index.add_index(
        "sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": 1.2, "bm25_b": 0.75},
    )
    for scalar in ("day", "source_key", "added_gen", "deleted_gen"):
        index.add_index(scalar, index_type="INVERTED")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def _entity(row: Any, live: bool = False) -> dict[str, Any]:
    """A store passage row (``_ROWS``) as a collection row."""
    rowid, pid, article_id, tokens, text, vec, added, deleted, date, source = row
    vector = np.frombuffer(vec, dtype=np.float16).astype(np.float32)
    return {
        "id": str(pid),
        "rowid": int(rowid),
        "article_id": str(article_id),
        "source_key": source_key(str(source)),
        "day": date_key(str(date)),
        "added_gen": int(added),
        "deleted_gen": 0 if live or deleted is None else int(deleted),
        "terms": (analysed(text) if tokens is None else encode_terms(tokens.split()))[:60000],
        "vec": vector.tolist(),
    }
