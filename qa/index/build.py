"""Writing a generation's search files: a full FAISS + BM25 build, or a delta over a base.

A generation folder is written under a temporary name, fsynced and renamed into place, so a
crash leaves either the finished folder or none; the store commits the generation only after
that. The delta rules (``NEWSQA_DELTA_MIN``, ``NEWSQA_DELTA_SHARE``) are described in
:mod:`qa.index.generation`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qa import settings
from qa.errors import CorruptIndex
from qa.index import headlines, keywords
from qa.index.dense import DenseSpec, build_dense, choose_kind, ivf_centroids
from qa.index.generation import (
    CENTROIDS,
    DELETED,
    MANIFEST,
    Ids,
    _base_of,
    _tokenizer_of,
    gen_dir,
    gen_of,
)
from qa.index.keywords import DeltaKeywords, KeywordIndex
from qa.index.store import Store


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (renames) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a small file via a temporary file and rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


# ---------------------------------------------------------------------------------- building
def build_generation(store: Store, root: Path, gen: int, dim: int, full: bool = False) -> Path:
    """Write the search files for the passages visible at ``gen``: a delta or a full build.

    Args:
        store: The store (its uncommitted rows of ``gen`` are visible to this connection).
        root: Index folder.
        gen: Generation number.
        dim: Vector dimension.
        full: Always a full build (the current generation's files are damaged).

    Returns:
        The finished generation folder.
    """
    plan = None if full else _delta_plan(store, root, gen)
    final = gen_dir(root, store.path.name, gen)
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if plan is None:
        manifest = _write_full(store, root, gen, dim, tmp)
    else:
        manifest = _write_delta(plan, gen, dim, tmp)
        entry = headlines.write_delta(
            store, plan.base_folder, plan.previous, plan.base_gen, gen, dim, tmp
        )
        if entry is not None:
            manifest["headlines"] = entry
    (tmp / MANIFEST).write_text(json.dumps(manifest))
    for f in tmp.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return final


def _write_full(store: Store, root: Path, gen: int, dim: int, tmp: Path) -> dict[str, Any]:
    # Streamed into compact arrays (float16 vectors, int32 token ids): Python lists of token
    # strings and vector blobs took 5.1 GB at 630k passages, these about 2 GB.
    n = store.counts(gen)[1]
    rowids = np.empty(n, dtype=np.int64)
    vecs = np.empty((n, dim), dtype=np.float16)
    vocab: dict[str, int] = {}
    docs: list[npt.NDArray[np.int32]] = []
    i = 0
    for i, (rowid, toks, blob) in enumerate(store.visible_passages(gen)):
        rowids[i] = rowid
        vecs[i] = np.frombuffer(blob, dtype=np.float16)
        docs.append(
            np.fromiter(
                (vocab.setdefault(t, len(vocab)) for t in toks), dtype=np.int32, count=len(toks)
            )
        )
    if len(docs) != n:  # the writer holds the lock: only a damaged store gets here
        raise CorruptIndex(f"{store.path} changed while generation {gen} was built")
    spec = _write_dense(vecs, tmp, gen_dir(root, store.path.name, store.current_gen))
    del vecs
    np.save(tmp / "ids.npy", rowids)
    kw = KeywordIndex()
    kw.build_ids(docs, vocab)
    kw.save(tmp / "bm25")
    avgdl = sum(len(d) for d in docs) / n if n else 1.0
    return {
        "gen": gen,
        "kind": "full",
        "passages": n,
        "dim": dim,
        "built": time.time(),
        "dense": spec.to_json(),
        "bm25": {"avgdl": avgdl, "tokenizer": keywords.TOKENIZER_VERSION},
        "headlines": headlines.write_full(store, gen, dim, tmp),
    }


@dataclass
class _DeltaPlan:
    base_gen: int
    base_manifest: dict[str, Any]
    rows: list[tuple[int, list[str], bytes]]
    deleted: Ids
    base_folder: Path
    previous: Path


def _delta_plan(store: Store, root: Path, gen: int) -> _DeltaPlan | None:
    """What a delta over the current generation's base would hold; None: build in full."""
    conf = settings.load()
    current = store.current_gen
    if current == 0:
        return None
    try:
        prev = json.loads((gen_dir(root, store.path.name, current) / MANIFEST).read_text())
        base_gen = int(prev.get("base", prev["gen"]))
        base_folder = gen_dir(root, store.path.name, base_gen)
        base = json.loads((base_folder / MANIFEST).read_text())
        base_ids = np.load(base_folder / "ids.npy")
        prev_deleted = (
            np.load(gen_dir(root, store.path.name, current) / DELETED)
            if prev.get("kind") == "delta"
            else np.zeros(0, dtype=np.int64)
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: rebuild in full
    nb = int(base["passages"])
    if nb < conf.delta_min or _tokenizer_of(base) != keywords.TOKENIZER_VERSION:
        return None  # small, or its BM25 holds older tokens than the store's: build in full
    if "headlines" not in base and headlines.any_stored(store):
        return None  # a base from before headlines were kept: the next one carries them
    gone = np.asarray(store.deleted_since(base_gen, gen), dtype=np.int64)
    pos = np.searchsorted(base_ids, gone)
    hit = (pos < len(base_ids)) & (base_ids[np.minimum(pos, len(base_ids) - 1)] == gone)
    deleted = np.union1d(prev_deleted, pos[hit]).astype(np.int64)
    budget = conf.delta_share * nb
    if len(deleted) > budget or store.count_added_since(base_gen, gen) + len(deleted) > budget:
        return None
    rows = list(store.passages_added_since(base_gen, gen))
    previous = gen_dir(root, store.path.name, current)
    return _DeltaPlan(base_gen, base, rows, deleted, base_folder, previous)


def _write_delta(plan: _DeltaPlan, gen: int, dim: int, tmp: Path) -> dict[str, Any]:
    import faiss

    vecs = np.frombuffer(b"".join(r[2] for r in plan.rows), dtype=np.float16).reshape(-1, dim)
    index = faiss.IndexFlatIP(dim)
    if len(vecs):
        index.add(np.ascontiguousarray(vecs, dtype=np.float32))
    faiss.write_index(index, str(tmp / "dense.faiss"))
    np.save(tmp / "ids.npy", np.asarray([r[0] for r in plan.rows], dtype=np.int64))
    np.save(tmp / DELETED, plan.deleted)
    # Only the token lists and the base's mean length are written: the base is joined on load.
    kw = DeltaKeywords()
    kw.build(
        [r[1] for r in plan.rows], None, float(plan.base_manifest.get("bm25", {}).get("avgdl", 0.0))
    )
    kw.save(tmp / "bm25-delta")
    nb = int(plan.base_manifest["passages"])
    return {
        "gen": gen,
        "kind": "delta",
        "base": plan.base_gen,
        "passages": nb + len(plan.rows) - len(plan.deleted),
        "base_passages": nb,
        "delta_passages": len(plan.rows),
        "deleted": len(plan.deleted),
        "dim": dim,
        "built": time.time(),
        "dense": DenseSpec("flat").to_json(),
    }


def _write_dense(vecs: npt.NDArray[np.float16], tmp: Path, previous: Path) -> DenseSpec:
    """Build and save the FAISS index; IVF reuses the previous generation's lists."""
    import faiss

    kind = choose_kind(len(vecs))
    centroids, trained_on = None, 0
    if kind == "ivf":
        src = _base_of(previous)
        if src is not None and (src / CENTROIDS).exists():
            try:
                old = DenseSpec.from_json(json.loads((src / MANIFEST).read_text()).get("dense"))
                centroids, trained_on = np.load(src / CENTROIDS), old.trained_on
            except (OSError, ValueError, KeyError, TypeError):
                centroids = None  # unreadable: train afresh
    index, spec = build_dense(vecs, kind, centroids, trained_on)
    faiss.write_index(index, str(tmp / "dense.faiss"))
    if spec.kind == "ivf":
        np.save(tmp / CENTROIDS, ivf_centroids(index))
    return spec


# ---------------------------------------------------------------------------------- retention
def remove_old_generations(root: Path, store_name: str, keep: set[int]) -> None:
    """Delete generation folders (and stale temporaries) not in ``keep`` nor their bases."""
    gens = root / "gens"
    if not gens.exists():
        return
    keep = set(keep)
    for g in list(keep):
        base = _base_of(gen_dir(root, store_name, g))
        if base is not None:
            keep.add(gen_of(base))
    prefix = f"{Path(store_name).stem}-gen-"
    for d in gens.iterdir():
        suffix = d.name[len(prefix) :] if d.name.startswith(prefix) else ""
        # Other stores' folders (after a rebuild) and unfinished temporaries go too.
        if not suffix.isdigit() or int(suffix) not in keep:
            shutil.rmtree(d, ignore_errors=True)
