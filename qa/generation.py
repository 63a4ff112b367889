"""Derived search files of one index generation: FAISS vectors + BM25, written atomically.

A generation folder ``gen-N`` holds ``ids.npy`` (document number -> passage rowid),
``dense.faiss`` (inner product over unit vectors; flat or IVF by size, see qa.dense_index), the
BM25 files and ``manifest.json`` written last, which records the FAISS type and its settings.
The folder is built under a temporary name and renamed into place, so a folder named ``gen-N``
with a manifest is always complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa.dense_index import DenseSpec, build_dense, choose_kind, configure, ivf_centroids
from qa.errors import CorruptIndex
from qa.keywords import KeywordIndex
from qa.store import Store

MANIFEST = "manifest.json"
# IVF list centroids, reused by the next generation so that it need not run k-means again.
CENTROIDS = "ivf-centroids.npy"


def gen_dir(root: Path, store_name: str, gen: int) -> Path:
    """Folder of generation ``gen`` of the store file ``store_name``."""
    return root / "gens" / f"{Path(store_name).stem}-gen-{gen}"


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


@dataclass
class Generation:
    """A loaded generation: the search structures of one snapshot."""

    gen: int
    ids: npt.NDArray[np.int64]
    dense: object
    keywords: KeywordIndex
    spec: DenseSpec = field(default_factory=DenseSpec)

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])


def build_generation(store: Store, root: Path, gen: int, dim: int) -> Path:
    """Write the search files for the passages visible at ``gen``.

    Args:
        store: The store (its uncommitted rows of ``gen`` are visible to this connection).
        root: Index folder.
        gen: Generation number.
        dim: Vector dimension.

    Returns:
        The finished generation folder.
    """
    final = gen_dir(root, store.path.name, gen)
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rowids: list[int] = []
    tokens: list[list[str]] = []
    vec_blobs: list[bytes] = []
    for rowid, toks, blob in store.visible_passages(gen):
        rowids.append(rowid)
        tokens.append(toks)
        vec_blobs.append(blob)
    vecs = np.frombuffer(b"".join(vec_blobs), dtype=np.float16).reshape(-1, dim)
    del vec_blobs
    spec = _write_dense(np.ascontiguousarray(vecs, dtype=np.float32), tmp,
                        gen_dir(root, store.path.name, store.current_gen))
    np.save(tmp / "ids.npy", np.asarray(rowids, dtype=np.int64))
    kw = KeywordIndex()
    kw.build(tokens)
    kw.save(tmp / "bm25")
    manifest = {"gen": gen, "passages": len(rowids), "dim": dim, "built": time.time(),
                "dense": spec.to_json()}
    (tmp / MANIFEST).write_text(json.dumps(manifest))
    for f in tmp.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return final


def load_generation(folder: Path) -> Generation:
    """Load a generation folder written by :func:`build_generation`."""
    import faiss

    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        ids = np.load(folder / "ids.npy")
        dense = faiss.read_index(str(folder / "dense.faiss"))
        spec = DenseSpec.from_json(manifest.get("dense"))
        configure(dense, spec)
        kw = KeywordIndex()
        kw.load(folder / "bm25", int(manifest["passages"]))
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CorruptIndex(
            f"index files in {folder} are unreadable ({exc}): run `newsqa index --rebuild`"
        ) from exc
    if ids.shape[0] != manifest["passages"] or dense.ntotal != ids.shape[0]:
        raise CorruptIndex(f"index files in {folder} disagree: run `newsqa index --rebuild`")
    return Generation(int(manifest["gen"]), ids, dense, kw, spec)


def _write_dense(vecs: npt.NDArray[np.float32], tmp: Path, previous: Path) -> DenseSpec:
    """Build and save the FAISS index; IVF reuses the previous generation's lists."""
    import faiss

    kind = choose_kind(len(vecs))
    centroids, trained_on = None, 0
    if kind == "ivf" and (previous / CENTROIDS).exists():
        try:
            old = DenseSpec.from_json(json.loads((previous / MANIFEST).read_text()).get("dense"))
            centroids, trained_on = np.load(previous / CENTROIDS), old.trained_on
        except (OSError, ValueError, KeyError, TypeError):
            centroids = None  # unreadable: train afresh
    index, spec = build_dense(vecs, kind, centroids, trained_on)
    faiss.write_index(index, str(tmp / "dense.faiss"))
    if spec.kind == "ivf":
        np.save(tmp / CENTROIDS, ivf_centroids(index))
    return spec


def remove_old_generations(root: Path, store_name: str, keep: set[int]) -> None:
    """Delete generation folders (and stale temporaries) not in ``keep``."""
    gens = root / "gens"
    if not gens.exists():
        return
    prefix = f"{Path(store_name).stem}-gen-"
    for d in gens.iterdir():
        suffix = d.name[len(prefix) :] if d.name.startswith(prefix) else ""
        # Other stores' folders (after a rebuild) and unfinished temporaries go too.
        if not suffix.isdigit() or int(suffix) not in keep:
            shutil.rmtree(d, ignore_errors=True)
