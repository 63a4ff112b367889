"""Integrity check of an index folder (``newsqa stats --check``).

First SQLite's own ``integrity_check`` of the store (every page, every index against its
table). Then every passage visible in the current generation must have its vector (FAISS)
and its keyword entry (BM25), every search document must map to a passage visible in that
generation (a delta generation's deleted base documents excluded), and the counts must agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import DamagedStore, QAError
from qa.index import headlines
from qa.index.database import integrity_problems
from qa.index.dense import dense_problems
from qa.index.folder import open_store
from qa.index.generation import gen_dir, load_generation

if TYPE_CHECKING:
    from qa.index.generation import Generation
    from qa.index.store import Store


def check_index(root: Path, attempts: int = 3) -> list[str]:
    """Problems found in the index folder (empty when consistent).

    A writer may commit (and retire the generation being checked) meanwhile: the check then
    starts again on the new current generation, up to ``attempts`` times.

    Raises:
        IndexNotFound: when the folder holds no index.
    """
    for _ in range(attempts - 1):
        problems, moved = _check_once(root)
        if not moved:
            return problems
    return _check_once(root)[0]


def _check_once(root: Path) -> tuple[list[str], bool]:
    """Problems of the current generation, and whether it stopped being current meanwhile."""
    try:
        with open_store(root) as store:
            return _check_store(root, store)
    except DamagedStore as exc:  # found by a query before or after SQLite's own check
        return [str(exc)], False


def _check_store(root: Path, store: Store) -> tuple[list[str], bool]:
    damage = integrity_problems(store.db)
    if damage:
        more = f" and {len(damage) - 1} more" if len(damage) > 1 else ""
        line = (
            f"{store.path} fails SQLite's integrity check ({damage[0]}{more}): "
            "run `newsqa index --rebuild` to rebuild it from the corpus"
        )
        return [line], False
    gen = store.current_gen
    if gen == 0:
        return ["no generation committed yet: run `newsqa index`"], False
    try:
        g = load_generation(gen_dir(root, store.path.name, gen))
    except QAError as exc:
        return [str(exc)], store.current_gen != gen
    articles, passages = store.counts(gen)
    dim = int(store.get_meta("embed_dim", "0") or 0)
    problems = _segment_problems(g, dim) + _headline_problems(store, g, gen, dim)
    if g.passages != passages:
        problems.append(f"search documents: {g.passages}, but {passages} passages are stored")
    return problems + _row_problems(store, g, gen, articles), False


def _segment_problems(g: Generation, dim: int) -> list[str]:
    """Vector count, dimension and the IVF lists, whatever the FAISS type, per segment."""
    problems = []
    for seg in (g.base, g.delta):
        if seg is not None:
            problems += dense_problems(seg.dense, seg.spec, seg.size, dim)
            if seg.keywords.size != seg.size:
                problems.append(
                    f"BM25 documents: {seg.keywords.size}, but {seg.size} "
                    f"search documents in {seg.folder.name}"
                )
    return problems


def _headline_problems(store: Store, g: Generation, gen: int, dim: int) -> list[str]:
    """Headline vectors against the store's visible headlines (a generation written before
    headlines were kept has none to check; the next ``newsqa index`` adds them)."""
    if g.heads is None:
        return []
    problems = []
    for seg in g.heads:
        problems += [f"headlines: {p}" for p in dense_problems(seg.dense, seg.spec, seg.size, dim)]
    live = len(g.head_ids) - len(g.head_deleted)
    stored = headlines.count_visible(store, gen)
    if live != stored:
        problems.append(f"headline vectors: {live}, but {stored} headlines are stored")
    return problems


def _row_problems(store: Store, g: Generation, gen: int, articles: int) -> list[str]:
    """Search documents against the stored passages, and articles without passages."""
    problems = []
    ids = [int(i) for i in g.ids[g.live_docs()]]
    unique = set(ids)
    if len(unique) != len(ids):
        problems.append("the id map lists a passage twice")
    found = store.passages_by_rowid(ids) if ids else {}
    if len(found) != len(unique):
        problems.append(f"{len(unique) - len(found)} search documents have no stored passage")
    visible = store.visible_rowids(gen, unique)
    if len(visible) != len(unique):
        problems.append(
            f"{len(unique) - len(visible)} search documents are passages deleted in this generation"
        )
    q = (
        "SELECT COUNT(DISTINCT p.article_id) FROM passages p WHERE p.added_gen <= :g "
        "AND (p.deleted_gen IS NULL OR p.deleted_gen > :g)"
    )
    with_passages = int(store.db.execute(q, {"g": gen}).fetchone()[0])
    if with_passages != articles:
        problems.append(f"{articles} articles but {with_passages} have passages")
    return problems
