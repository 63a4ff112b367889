"""One summary of an index folder for ``newsqa stats`` and the chat's status bar."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.errors import CorruptIndex, IndexNotFound
from qa.index.embed import HashEmbedder
from qa.index.folder import read_head
from qa.index.indexer import Indexer
from qa.index.summary import summarize
from qa.tui.backend import read_index_info

STATS_KEYS = [
    "articles",
    "passages",
    "generation",
    "near_dup_clusters",
    "near_dup_copies",
    "embed_model",
    "embed_dim",
    "updated_at",
    "index_dir",
    "layout",
    "base_generation",
    "faiss",
    "delta_passages",
    "deleted_passages",
    "keyword_tokenizer",
    "headline_vectors",
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two articles (three passages) indexed with the hash embedder."""
    root = tmp_path_factory.mktemp("summary")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(
        "Bridge budget approved\n\nThe council approved the Elm Street bridge budget.\n\n"
        "Engineers warned of cracked girders on the old bridge.\n"
    )
    (corpus / "b.txt").write_text("Volcano erupts\n\nLava flowed toward the coastal village.\n")
    Indexer(root / "idx", HashEmbedder(32)).update([corpus])
    return root / "idx"


def test_counts_for_the_status_bar(index: Path) -> None:
    s = summarize(index)
    assert (s.articles, s.generation, s.embed_model, s.embed_dim) == (2, 1, "hash-32", 32)
    assert s.passages >= 2 and s.updated_at.startswith("20")
    # The poll skips the slow parts.
    assert s.near_dup_clusters is None and s.layout == {} and not s.keywords_outdated
    assert read_index_info(index) == s


def test_detail_is_the_stats_json_shape(index: Path) -> None:
    doc = summarize(index, detail=True).to_json()
    assert list(doc) == STATS_KEYS
    assert (doc["near_dup_clusters"], doc["near_dup_copies"]) == (0, 0)
    assert (doc["layout"], doc["base_generation"], doc["index_dir"]) == ("full", 1, str(index))


def test_no_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound):
        summarize(tmp_path)
    assert read_index_info(tmp_path) is None


def test_unreadable_store_is_a_corrupt_index(index: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "idx"
    shutil.copytree(index, copy)
    store = copy / (read_head(copy) or "")
    for leftover in copy.glob(f"{store.name}-*"):  # WAL files would keep the old pages
        leftover.unlink()
    store.write_bytes(b"not a database" * 100)
    with pytest.raises(CorruptIndex, match="unreadable"):
        summarize(copy)
    with pytest.raises(CorruptIndex):
        read_index_info(copy)
