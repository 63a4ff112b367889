"""The index folder: which store is live, one writer at a time, and which model built it.

Layout::

    HEAD                      {"store": "store-1.sqlite"}  (replaced atomically)
    store-1.sqlite            articles, passages + vectors, file state, meta
    gens/store-1-gen-N/       FAISS + BM25 of generation N (see qa.index.generation)
    .lock                     one writer at a time

Readers (search, answering, the chat, ``stats``) need only this module, never the indexer.
"""

from __future__ import annotations

import fcntl
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qa import settings
from qa.errors import CorruptIndex, IndexMismatch, IndexNotFound, QAError
from qa.index.embed import DEFAULT_MODEL, Embedder, EmbedderLike, runtime_family
from qa.index.store import Store

# What HEAD may name: a store file of this folder, never a path (``..``, absolute, a link).
_STORE_NAME = re.compile(r"store-[0-9]{1,9}\.sqlite")


def read_head(root: Path) -> str | None:
    """Name of the current store file, or None when the folder holds no index.

    Raises:
        CorruptIndex: HEAD is damaged or names anything but a store file in ``root``.
    """
    head = root / "HEAD"
    if not head.exists() and not head.is_symlink():
        return None
    damaged = f"{head} is damaged: run `newsqa index --rebuild`"
    if not head.is_file():  # a folder or a pipe: reading it would fail or wait
        raise CorruptIndex(damaged)
    try:
        with open(head, "rb") as fh:
            name = json.loads(fh.read(4096))["store"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise CorruptIndex(damaged) from exc
    if not isinstance(name, str) or not _STORE_NAME.fullmatch(name) or _outside(root, name):
        shown = name if isinstance(name, str) else type(name).__name__
        raise CorruptIndex(
            f"{head} names {shown!r}, not a store file in {root}: run `newsqa index --rebuild`"
        )
    return name


def _outside(root: Path, name: str) -> bool:
    """True when ``root/name`` is a link that leads out of ``root``."""
    path = root / name
    return path.is_symlink() and path.resolve().parent != root.resolve()


def open_store(root: Path, readonly: bool = True) -> Store:
    """Open the current store of an index folder (``with open_store(root) as store:`` closes it).

    Raises:
        IndexNotFound: when the folder holds no index.
    """
    name = read_head(root)
    if name is None or not (root / name).exists():
        raise IndexNotFound(str(root))
    return Store(root / name, readonly=readonly)


@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Exclusive lock so that two indexers never write one folder at once."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise QAError(f"another `newsqa index` is writing {root}; wait for it") from exc
        yield


def embedder_for(
    root: Path,
    default: str | None = None,
    for_index: bool = False,
    few: bool = False,
    fresh: bool = False,
) -> EmbedderLike:
    """The embedder an index folder was built with (queries must use the same model).

    Args:
        root: Index folder (may not exist yet).
        default: Model for a new index; ``NEWSQA_MODEL`` or the offline MiniLM when None.
            ``hash-N`` is the fast fake embedder of the tests (subprocess runs of the CLI).
        for_index: For embedding passages, not questions. Passages of an index embedded in
            int8 come from the int8 copy; questions of every index go through the float32 ONNX
            Runtime copy when built (:func:`qa.index.embed_onnx.pick`).
        few: Passages a few at a time (``newsqa watch``): a float index takes them from the
            float32 copy as questions, without importing torch.
        fresh: Passages for a rebuilt index (``newsqa index --rebuild``): the index keeps its
            model but not its runtime; they come from the runtime a new index gets here, so
            that an index of a runtime this machine lacks (an earlier int8 recipe's) can be
            re-embedded.
    """
    from qa.index.embed_onnx import pick

    name = default or settings.load().model or DEFAULT_MODEL
    runtime: str | None = None
    try:
        with open_store(root) as store:
            name = store.get_meta("embed_model") or name
            runtime = None if fresh else store.get_meta("embed_runtime") or ""
    except QAError:  # no index, or a damaged one: `index --rebuild` uses the default
        pass
    return pick(name, runtime, for_index, few) or embedder_named(name)


def embedder_named(name: str) -> EmbedderLike:
    """The embedder of a model name (``hash-N``: the tests' fake, so that CLI runs stay fast)."""
    from qa.index.embed import HashEmbedder

    size = name.removeprefix("hash-")
    if name.startswith("hash-") and size.isdigit():
        return HashEmbedder(int(size))
    return Embedder(name)


def check_runtime(store: Store, embedder: EmbedderLike) -> None:
    """Refuse to add vectors of another runtime family (int8 and float never mix).

    Raises:
        IndexMismatch: when the index's vectors came from another family.
    """
    runtime = str(getattr(embedder, "runtime", ""))
    built = store.get_meta("embed_runtime") or "torch"  # unrecorded: torch made it
    if runtime_family(runtime) and runtime_family(built) != runtime_family(runtime):
        raise IndexMismatch(
            f"index was embedded by {built} but {runtime} is configured: run "
            "`newsqa index --rebuild` to re-embed"
        )


def check_model(store: Store, name: str, dim: int) -> None:
    """Refuse to mix vectors of different models.

    Raises:
        IndexMismatch: when the index was built with another model or dimension.
    """
    built_name = store.get_meta("embed_model")
    built_dim = store.get_meta("embed_dim")
    if built_name and (built_name != name or built_dim != str(dim)):
        raise IndexMismatch(
            f"index was built with {built_name} ({built_dim}-d) but {name} ({dim}-d) is "
            "configured: run `newsqa index --rebuild`"
        )
