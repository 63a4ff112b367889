"""What an index folder holds, in one place: ``newsqa stats`` and the chat's status bar.

The chat polls every few seconds, so it asks for the counts only; ``stats`` also asks for the
near-duplicate clusters (a pass over every article) and the generation's layout.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qa.errors import CorruptIndex


@dataclass(frozen=True)
class IndexSummary:
    """Counts and metadata of an index's current generation.

    Attributes:
        articles: Articles visible in the current generation.
        passages: Passages visible in the current generation.
        generation: The committed generation (0: nothing indexed yet).
        updated_at: When the generation was committed (ISO time) or "".
        embed_model: Embedding model the index was built with.
        embed_dim: Dimension of its vectors (0 when unknown).
        index_dir: The index folder.
        near_dup_clusters: Clusters of near-duplicate articles (None: not counted).
        near_dup_copies: Articles beyond the first of each cluster (None: not counted).
        layout: How the generation is stored (full or delta, FAISS type ...); empty when not
            read or unreadable.
        keywords_outdated: The keyword index predates this version's tokenizer.
    """

    articles: int
    passages: int
    generation: int
    updated_at: str = ""
    embed_model: str = ""
    embed_dim: int = 0
    index_dir: str = ""
    near_dup_clusters: int | None = None
    near_dup_copies: int | None = None
    layout: Mapping[str, Any] = field(default_factory=dict)
    keywords_outdated: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``newsqa stats --json`` object (its keys in this order, layout keys last)."""
        return {
            "articles": self.articles,
            "passages": self.passages,
            "generation": self.generation,
            "near_dup_clusters": self.near_dup_clusters,
            "near_dup_copies": self.near_dup_copies,
            "embed_model": self.embed_model,
            "embed_dim": self.embed_dim,
            "updated_at": self.updated_at,
            "index_dir": self.index_dir,
            **self.layout,
        }


def summarize(index_dir: Path, detail: bool = False) -> IndexSummary:
    """Read the summary of the index in ``index_dir``.

    Args:
        index_dir: The index folder.
        detail: Also count near-duplicate clusters and read the generation's layout (what
            ``newsqa stats`` shows; too slow to poll on a large index).

    Returns:
        The summary of the current generation.

    Raises:
        IndexNotFound: when the folder holds no index.
        CorruptIndex: when the store cannot be read.
    """
    from qa.index.folder import open_store
    from qa.index.generation import describe, keywords_outdated

    with open_store(index_dir) as store:
        try:
            gen = store.current_gen
            articles, passages = store.counts(gen)
            summary = IndexSummary(
                articles,
                passages,
                gen,
                updated_at=store.get_meta("updated_at"),
                embed_model=store.get_meta("embed_model"),
                embed_dim=int(store.get_meta("embed_dim", "0") or 0),
                index_dir=str(index_dir),
            )
            clusters, copies = store.near_duplicates(gen) if detail else (None, None)
        except sqlite3.Error as exc:
            raise CorruptIndex(
                f"{store.path} is unreadable ({exc}): run `newsqa index --rebuild`"
            ) from exc
    if not detail:
        return summary
    name = store.path.name
    return replace(
        summary,
        near_dup_clusters=clusters,
        near_dup_copies=copies,
        layout=describe(index_dir, name, gen),
        keywords_outdated=keywords_outdated(index_dir, name, gen),
    )
