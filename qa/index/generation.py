"""Derived search files of one index generation: FAISS vectors + BM25, written atomically.

A generation folder ``gen-N`` holds ``ids.npy`` (document number -> passage rowid),
``dense.faiss`` (inner product over unit vectors; flat or IVF by size, see qa.index.dense), the
BM25 files and ``manifest.json`` written last, which records the FAISS type and its settings.
The folder is built under a temporary name and renamed into place, so a folder named ``gen-N``
with a manifest is always complete.

Base and delta: rebuilding the whole search side for every small change costs time in
proportion to the corpus (tens of seconds at 400k passages), too slow for ``newsqa watch``.
So a generation is either *full* (a base segment over every visible passage) or a *delta*
over the newest full generation (its base): an exact flat FAISS index and a small BM25 of the
passages added since the base, plus ``deleted.npy``, the base document numbers removed since.
A delta folder references its base folder, which is kept on disk while any kept generation
refers to it. Once the delta outgrows ``NEWSQA_DELTA_SHARE`` of the base (default 0.1), or
the base is smaller than ``NEWSQA_DELTA_MIN`` passages (default 20,000, where a full build
takes about a second), the next generation is built in full again (compaction).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qa.errors import CorruptIndex
from qa.index import dense as dense_index
from qa.index import keywords
from qa.index.dense import DenseSpec, configure
from qa.index.headlines import HeadlineSegment, load_deleted, load_segment
from qa.index.keywords import DeltaKeywords, KeywordIndex

MANIFEST = "manifest.json"
# IVF list centroids, reused by the next generation so that it need not run k-means again.
CENTROIDS = "ivf-centroids.npy"
DELETED = "deleted.npy"

Ids = npt.NDArray[np.int64]


def gen_dir(root: Path, store_name: str, gen: int) -> Path:
    """Folder of generation ``gen`` of the store file ``store_name``."""
    return root / "gens" / f"{Path(store_name).stem}-gen-{gen}"


def gen_of(folder: Path) -> int:
    """Generation number of a folder named by :func:`gen_dir`."""
    return int(folder.name.rsplit("-gen-", 1)[1])


@dataclass
class Segment:
    """One searchable part of a generation: FAISS vectors and BM25 over the same documents."""

    folder: Path
    ids: Ids
    dense: Any
    keywords: KeywordIndex | DeltaKeywords
    spec: DenseSpec = field(default_factory=DenseSpec)
    headlines: HeadlineSegment | None = None

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])


@dataclass
class Generation:
    """A loaded generation: a base segment, maybe a delta over it, and the base's deletions.

    Document numbers run over the base first, then the delta; ``deleted`` base documents are
    never returned by :meth:`dense_search` and score 0 in :meth:`keyword_scores`.
    """

    gen: int
    base: Segment
    delta: Segment | None = None
    deleted: Ids = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    head_deleted: Ids = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        parts = [self.base.ids] + ([self.delta.ids] if self.delta is not None else [])
        self.ids: Ids = np.concatenate(parts) if len(parts) > 1 else self.base.ids
        heads = [s.headlines for s in (self.base, self.delta) if s is not None]
        self.heads: list[HeadlineSegment] | None = (
            None if any(h is None for h in heads) else [h for h in heads if h is not None]
        )
        self.head_ids: Ids = (
            np.concatenate([h.ids for h in self.heads])
            if self.heads
            else np.zeros(0, dtype=np.int64)
        )

    @property
    def size(self) -> int:
        """Document numbers in use (deleted base documents included)."""
        return int(self.ids.shape[0])

    @property
    def base_gen(self) -> int:
        """Generation number of the base segment."""
        return gen_of(self.base.folder)

    @property
    def passages(self) -> int:
        """Passages searchable in this generation."""
        return self.size - int(self.deleted.shape[0])

    def live_docs(self) -> Ids:
        """Document numbers of the searchable passages."""
        docs = np.arange(self.size, dtype=np.int64)
        return np.delete(docs, self.deleted) if len(self.deleted) else docs

    def dense_search(
        self, qv: npt.NDArray[np.float32], n: int, allowed: Ids | None = None
    ) -> list[tuple[int, float]]:
        """Top-``n`` (document number, inner product), best first, among ``allowed`` if given."""
        nb = self.base.size
        parts: list[_Part] = []
        if allowed is None:
            parts.append((self.base, 0, None, self.deleted))
        else:
            base_allowed = allowed[allowed < nb]
            if len(self.deleted):
                base_allowed = base_allowed[self._base_alive[base_allowed]]
            parts.append((self.base, 0, base_allowed, None))
        if self.delta is not None:
            ok = None if allowed is None else allowed[allowed >= nb] - nb
            parts.append((self.delta, nb, ok, None))
        return _search_parts(parts, qv, n)

    def headline_search(
        self, qv: npt.NDArray[np.float32], n: int, allowed: Ids | None = None
    ) -> list[tuple[int, float]]:
        """Top-``n`` (headline document number, inner product), best first, among ``allowed``
        if given; [] for a generation written without headlines."""
        parts: list[_Part] = []
        offset = 0
        for i, seg in enumerate(self.heads or []):
            excluded = self.head_deleted if i == 0 and len(self.head_deleted) else None
            ok = None
            if allowed is not None:
                ok = allowed[(allowed >= offset) & (allowed < offset + seg.size)] - offset
                if excluded is not None:
                    ok = np.setdiff1d(ok, excluded)
                    excluded = None
            parts.append((seg, offset, ok, excluded))
            offset += seg.size
        return _search_parts(parts, qv, n)

    def docs_of(self, rowids: Ids) -> Ids:
        """Document numbers of passage rowids (-1: not searchable in this generation).

        Both segments list their rowids in ascending order, so each is a binary search.
        """
        out = np.full(len(rowids), -1, dtype=np.int64)
        nb = self.base.size
        for seg, offset in ((self.base, 0), (self.delta, nb)):
            if seg is None or not seg.size:
                continue
            pos = np.minimum(np.searchsorted(seg.ids, rowids), seg.size - 1)
            hit = (out < 0) & (seg.ids[pos] == rowids)
            if offset == 0 and len(self.deleted):
                hit &= self._base_alive[pos]
            out[hit] = pos[hit] + offset
        return out

    @functools.cached_property
    def _base_alive(self) -> npt.NDArray[np.bool_]:
        alive = np.ones(self.base.size, dtype=bool)
        alive[self.deleted] = False
        return alive

    def keyword_scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every document number for ``query`` (0 for deleted ones)."""
        scores = self.base.keywords.scores(query)
        if self.delta is not None:
            scores = np.concatenate([scores, self.delta.keywords.scores(query)])
        if len(self.deleted):
            scores[self.deleted] = 0.0
        return scores


# (segment, its first document number, the local numbers allowed or None for all, the local
# numbers excluded or None)
_Part = tuple["Segment | HeadlineSegment", int, "Ids | None", "Ids | None"]


def _search_parts(
    parts: list[_Part], qv: npt.NDArray[np.float32], n: int
) -> list[tuple[int, float]]:
    """Top-``n`` (document number, inner product) over segments, best first."""
    found: list[tuple[int, float]] = []
    for seg, offset, ok, excluded in parts:
        if seg.size == 0 or (ok is not None and not len(ok)):
            continue
        scores, idx = dense_index.search(seg.dense, seg.spec, qv, min(n, seg.size), ok, excluded)
        found += [
            (int(i) + offset, float(s)) for i, s in zip(idx[0], scores[0], strict=True) if i >= 0
        ]
    return sorted(found, key=lambda x: -x[1])[:n]


def _tokenizer_of(manifest: dict[str, Any]) -> int:
    """Tokenizer version of a full generation's BM25 (1 before versions were recorded)."""
    return int(manifest.get("bm25", {}).get("tokenizer", 1))


def keywords_outdated(root: Path, store_name: str, gen: int) -> bool:
    """Whether generation ``gen``'s BM25 was built with an older tokenizer than this one.

    Such a generation still answers (queries use its own version); the next ``newsqa index``
    rebuilds it in full. An unreadable manifest counts as up to date: loading reports it.
    """
    try:
        folder = gen_dir(root, store_name, gen)
        base = _base_of(folder) or folder
        return (
            _tokenizer_of(json.loads((base / MANIFEST).read_text())) != keywords.TOKENIZER_VERSION
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _base_of(folder: Path) -> Path | None:
    """The full generation folder behind ``folder`` (itself when it is full)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("kind") != "delta":
        return folder
    return folder.with_name(folder.name.rsplit("-gen-", 1)[0] + f"-gen-{int(manifest['base'])}")


# ----------------------------------------------------------------------------------- loading
def load_generation(folder: Path, base: Segment | None = None) -> Generation:
    """Load a generation folder written by :func:`build_generation`.

    Args:
        folder: The generation folder.
        base: An already loaded base segment; reused when it is this generation's base
            (readers then load only the small delta after each commit).

    Raises:
        CorruptIndex: when files are missing, unreadable or disagree.
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("kind") != "delta":
            seg = _load_segment(folder, manifest, int(manifest["passages"]))
            return Generation(int(manifest["gen"]), seg)
        entry = manifest.get("headlines")
        base_folder = _base_of(folder)
        assert base_folder is not None
        if base is None or base.folder != base_folder:
            base_manifest = json.loads((base_folder / MANIFEST).read_text())
            base = _load_segment(base_folder, base_manifest, int(base_manifest["passages"]))
        delta = _load_delta(folder, base, int(manifest["delta_passages"]))
        delta.headlines = load_segment(folder, entry)
        head_deleted = load_deleted(folder, entry)
        deleted = np.load(folder / DELETED)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, AssertionError) as exc:
        raise CorruptIndex(
            f"index files in {folder} are unreadable ({exc}): run `newsqa index --rebuild`"
        ) from exc
    if (
        base.size != manifest["base_passages"]
        or base.size + delta.size - len(deleted) != manifest["passages"]
        or (len(deleted) and int(deleted.max()) >= base.size)
    ):
        raise CorruptIndex(f"index files in {folder} disagree: run `newsqa index --rebuild`")
    return Generation(int(manifest["gen"]), base, delta, deleted.astype(np.int64), head_deleted)


def _load_segment(folder: Path, manifest: dict[str, Any], passages: int) -> Segment:
    import faiss

    ids = np.load(folder / "ids.npy")
    dense = faiss.read_index(str(folder / "dense.faiss"))
    spec = DenseSpec.from_json(manifest.get("dense"))
    configure(dense, spec)
    kw = KeywordIndex(version=_tokenizer_of(manifest))
    kw.load(folder / "bm25", passages)
    if ids.shape[0] != passages or dense.ntotal != ids.shape[0]:
        raise CorruptIndex(f"index files in {folder} disagree: run `newsqa index --rebuild`")
    return Segment(folder, ids, dense, kw, spec, load_segment(folder, manifest.get("headlines")))


def _load_delta(folder: Path, base: Segment, passages: int) -> Segment:
    import faiss

    ids = np.load(folder / "ids.npy")
    dense = faiss.read_index(str(folder / "dense.faiss"))
    assert isinstance(base.keywords, KeywordIndex)
    kw = DeltaKeywords()
    kw.load(folder / "bm25-delta", base.keywords)
    if ids.shape[0] != passages or dense.ntotal != passages or kw.size != passages:
        raise CorruptIndex(f"index files in {folder} disagree: run `newsqa index --rebuild`")
    return Segment(folder, ids, dense, kw, DenseSpec("flat"))


def describe(root: Path, store_name: str, gen: int) -> dict[str, Any]:
    """How generation ``gen`` is laid out (for ``newsqa stats``); {} when unreadable."""
    try:
        m = json.loads((gen_dir(root, store_name, gen) / MANIFEST).read_text())
        base_folder = _base_of(gen_dir(root, store_name, gen))
        assert base_folder is not None
        base = json.loads((base_folder / MANIFEST).read_text())
    except (OSError, ValueError, AssertionError):
        return {}
    delta = m.get("kind") == "delta"
    heads = base.get("headlines"), m.get("headlines") if delta else None
    return {
        "layout": "delta" if delta else "full",
        "base_generation": int(base["gen"]),
        "faiss": str(base.get("dense", {}).get("kind", "flat")),
        "delta_passages": int(m.get("delta_passages", 0)),
        "deleted_passages": int(m.get("deleted", 0)),
        "keyword_tokenizer": _tokenizer_of(base),
        # None: written before headline vectors were kept (the next `newsqa index` adds them).
        "headline_vectors": None
        if heads[0] is None or (delta and heads[1] is None)
        else int(heads[0]["count"])
        + (int(heads[1]["count"]) - int(heads[1]["deleted"]) if delta and heads[1] else 0),
    }
