"""The FAISS index of a generation, chosen by size: exact flat below a threshold, IVF above.

Measured in ``bench/faiss_types.py`` (docs/benchmarks.md): one flat inner-product query costs
about 0.06 ms per 1,000 vectors on this 2-core machine when idle (10 ms over the 174k-passage
news index, 29 ms over 521k), and 4-6x more when its second OpenMP thread waits behind a busy
core. Up to ``FLAT_MAX`` vectors that is well inside the query budget, so the index stays exact
and costs nothing to build. Above it, IVF with 8-bit scalar-quantised vectors (``IVFn,SQ8``)
answers in 1.4 ms at 521k vectors at a quarter of the memory, with recall@100 0.98 against flat
at the recorded ``nprobe``, for 1-3 s more per generation build. HNSW is there for comparison
(``NEWSQA_FAISS=hnsw``): 4x slower to build, and it loses recall under filters, so ``auto``
never picks it.

``NEWSQA_FAISS=flat|ivf|hnsw|auto`` forces the type (tests, benchmarks); the chosen type and
its search settings are recorded in the generation's manifest and used by every reader.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qa import settings

KINDS = ("flat", "ivf", "hnsw")
FLAT_MAX = 200_000
SEED = 1234
# k-means sample per list: faiss warns below 39 points per centroid; more only costs time.
TRAIN_PER_LIST = 40
HNSW_M = 32
HNSW_EF_SEARCH = 128
# A filter leaving less than this share of an HNSW graph is searched exactly instead: graph
# walks through excluded nodes stop early (recall@100 0.92 on the news index with half of it
# filtered out, 0.96 with a fifth).
HNSW_EXACT_BELOW = 0.6

Vectors = npt.NDArray[np.float32]


def _faiss() -> Any:
    """The faiss module, untyped: its partial stubs do not know the SWIG keyword arguments."""
    import faiss

    return faiss


@dataclass(frozen=True)
class DenseSpec:
    """Type and search settings of a generation's FAISS index (stored in its manifest).

    Attributes:
        kind: ``flat``, ``ivf`` or ``hnsw``.
        nlist: IVF lists.
        nprobe: IVF lists searched per query.
        ef_search: HNSW candidate list size per query.
        trained_on: Vectors in the index when the IVF lists were trained (they are reused by
            later generations until the corpus doubles or halves).
    """

    kind: str = "flat"
    nlist: int = 0
    nprobe: int = 0
    ef_search: int = 0
    trained_on: int = 0

    def to_json(self) -> dict[str, Any]:
        """The manifest entry."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> DenseSpec:
        """Read a manifest entry; generations written before it existed are flat."""
        if not data:
            return cls()
        spec = cls(**{k: data[k] for k in asdict(cls()) if k in data})
        if spec.kind not in KINDS:
            raise ValueError(f"unknown FAISS index type {spec.kind!r}")
        return spec


def choose_kind(n: int, forced: str | None = None) -> str:
    """Index type for ``n`` vectors: ``forced``, else ``NEWSQA_FAISS``, else by size.

    Raises:
        ValueError: for an unknown type name.
    """
    kind = (forced or settings.load().faiss).strip().lower()
    if kind == "auto":
        return "flat" if n <= FLAT_MAX else "ivf"
    if kind not in KINDS:
        raise ValueError(f"FAISS index type {kind!r}: use one of flat, ivf, hnsw, auto")
    return kind


def ivf_lists(n: int) -> int:
    """IVF list count: the power of two nearest 2*sqrt(n), with >= 39 vectors per list."""
    target = int(2 ** round(math.log2(max(2.0, 2 * math.sqrt(n)))))
    return max(1, min(target, n // 39))


def ivf_nprobe(nlist: int) -> int:
    """Lists searched per query: 1/8 of them (question recall@100 0.98 on the news vectors)."""
    return max(1, min(nlist, math.ceil(nlist / 8)))


def build_dense(
    vecs: npt.NDArray[np.floating[Any]],
    kind: str,
    centroids: Vectors | None = None,
    trained_on: int = 0,
) -> tuple[Any, DenseSpec]:
    """Build a FAISS inner-product index of ``kind`` over unit vectors.

    Args:
        vecs: ``(n, d)`` unit vectors (float16 or float32); row i gets FAISS id i.
        kind: ``flat``, ``ivf`` or ``hnsw``.
        centroids: IVF list centroids of an earlier generation to reuse (skips k-means).
        trained_on: How many vectors ``centroids`` were trained on.

    Returns:
        The index and its spec.
    """
    faiss = _faiss()
    n, d = vecs.shape
    if kind == "flat" or n == 0:
        index = faiss.IndexFlatIP(d)
        add_chunked(index, vecs)
        return index, DenseSpec("flat")
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        add_chunked(index, vecs)
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index, DenseSpec("hnsw", ef_search=HNSW_EF_SEARCH)
    return _build_ivf(vecs, centroids, trained_on)


def add_chunked(index: Any, vecs: npt.NDArray[np.floating[Any]], chunk: int = 65_536) -> None:
    """Add vectors of any float type in float32 chunks (no full float32 copy in memory)."""
    for start in range(0, vecs.shape[0], chunk):
        index.add(np.ascontiguousarray(vecs[start : start + chunk], dtype=np.float32))


def _build_ivf(
    vecs: npt.NDArray[np.floating[Any]], centroids: Vectors | None, trained_on: int
) -> tuple[Any, DenseSpec]:
    faiss = _faiss()
    n, d = vecs.shape
    # The lists stay good while the corpus keeps roughly its size; retrain when it doubles.
    reuse = (
        centroids is not None and centroids.shape[1] == d and trained_on // 2 <= n <= 2 * trained_on
    )
    nlist = centroids.shape[0] if centroids is not None and reuse else ivf_lists(n)
    index = faiss.index_factory(d, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = SEED
    if centroids is not None and reuse:
        # A quantizer that already holds nlist centroids is not trained again by faiss.
        ivf.quantizer.add(centroids)
    else:
        trained_on = n
    rng = np.random.default_rng(SEED)
    size = min(n, TRAIN_PER_LIST * nlist)
    sample = vecs if size == n else vecs[np.sort(rng.choice(n, size, replace=False))]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    add_chunked(index, vecs)
    ivf.nprobe = ivf_nprobe(nlist)
    return index, DenseSpec("ivf", nlist=nlist, nprobe=ivf.nprobe, trained_on=trained_on)


def ivf_centroids(index: Any) -> Vectors:
    """The list centroids of an IVF index (kept so that later generations skip training)."""
    faiss = _faiss()
    ivf = faiss.extract_index_ivf(index)
    out: Vectors = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    return out


def configure(index: Any, spec: DenseSpec) -> None:
    """Apply the recorded search settings to a freshly loaded index."""
    faiss = _faiss()
    if spec.kind == "ivf":
        faiss.extract_index_ivf(index).nprobe = spec.nprobe
    elif spec.kind == "hnsw":
        index.hnsw.efSearch = spec.ef_search


def search(
    index: Any,
    spec: DenseSpec,
    qv: Vectors,
    n: int,
    allowed: npt.NDArray[np.int64] | None = None,
    excluded: npt.NDArray[np.int64] | None = None,
) -> tuple[Vectors, npt.NDArray[np.int64]]:
    """Top-``n`` inner products, optionally only among the FAISS ids in ``allowed``.

    Filters keep the recall of the unfiltered search: IVF probes more lists the fewer
    vectors the filter leaves (all of them, i.e. an exact search, for selective filters);
    HNSW scans its flat vector storage exactly below ``HNSW_EXACT_BELOW``. ``excluded`` ids
    (passages deleted since the index was built) are skipped; with ``allowed`` given, the
    caller removes them from it.
    """
    faiss = _faiss()
    if allowed is None and excluded is not None and len(excluded):
        inner = faiss.IDSelectorBatch(excluded)
        sel = faiss.IDSelectorNot(inner)
        params: Any = (
            faiss.SearchParametersIVF(sel=sel, nprobe=spec.nprobe)
            if spec.kind == "ivf"
            else faiss.SearchParameters(sel=sel)
        )
        if spec.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=spec.ef_search)
        scores, idx = index.search(qv, n, params=params)
        del inner  # the selectors must outlive the search (SWIG does not keep them alive)
        return scores, idx
    if allowed is None:
        scores, idx = index.search(qv, n)
        return scores, idx
    share = len(allowed) / max(1, index.ntotal)
    n = min(n, len(allowed))
    sel = faiss.IDSelectorBatch(allowed)
    if spec.kind == "ivf":
        nprobe = min(spec.nlist, math.ceil(spec.nprobe / max(share, 1e-9)))
        params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
    elif spec.kind == "hnsw" and share < HNSW_EXACT_BELOW:
        # The graph's vectors sit in a flat index: search it with the filter, exactly.
        index = faiss.downcast_index(index.storage)
        params = faiss.SearchParameters(sel=sel)
    elif spec.kind == "hnsw":
        params = faiss.SearchParametersHNSW(sel=sel, efSearch=math.ceil(spec.ef_search / share))
    else:
        params = faiss.SearchParameters(sel=sel)
    scores, idx = index.search(qv, n, params=params)
    return scores, idx


def dense_problems(index: Any, spec: DenseSpec, passages: int, dim: int) -> list[str]:
    """Inconsistencies of a loaded index against its spec and the store's counts."""
    faiss = _faiss()
    problems = []
    if index.ntotal != passages:
        problems.append(f"FAISS vectors: {index.ntotal}, but {passages} passages are stored")
    if dim and index.d != dim:
        problems.append(f"vectors are {index.d}-d but the index records {dim}-d")
    actual = {"IndexFlatIP": "flat", "IndexHNSWFlat": "hnsw"}.get(type(index).__name__, "ivf")
    if actual != spec.kind:
        problems.append(f"the manifest says {spec.kind} but the FAISS file holds {actual}")
    elif spec.kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        listed = sum(ivf.invlists.list_size(i) for i in range(ivf.nlist))
        if not ivf.is_trained or ivf.nlist != spec.nlist or listed != index.ntotal:
            problems.append(
                f"IVF lists disagree: {listed} listed vectors, {ivf.nlist} lists "
                f"(manifest {spec.nlist}), trained {bool(ivf.is_trained)}"
            )
    return problems
