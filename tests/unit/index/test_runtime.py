"""Which runtime embeds: recorded in the index, kept by later runs, matched by queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa import hardware
from qa.errors import IndexMismatch, ModelLoadError
from qa.index import embed_onnx
from qa.index.chunk import Chunker
from qa.index.embed import DEFAULT_MODEL, HashEmbedder, length_batches, runtime_family
from qa.index.embed_onnx import INT8, OnnxEmbedder, onnx_path, pick
from qa.index.folder import embedder_for, open_store
from qa.index.indexer import Indexer

ARTICLE = {
    "title": "Council approves the bridge",
    "text": "The city council approved the new bridge on Monday after a long debate.",
    "publish_date": "2024-01-02",
    "url": "https://example.com/bridge",
}


class Int8Hash(HashEmbedder):
    """A fast fake that says its vectors came from the int8 ONNX copy."""

    runtime = "onnx-int8"


class FusedHash(HashEmbedder):
    """The same fake, saying the fused int8 recipe's copy made its vectors."""

    runtime = "onnx-int8-fused"


class FloatHash(HashEmbedder):
    """The same fake, saying torch made its vectors in float32."""

    runtime = "torch-fp32"


@pytest.fixture()
def feed(tmp_path: Path) -> Path:
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps(ARTICLE) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("NEWSQA_CACHE_DIR", str(folder))
    monkeypatch.delenv("NEWSQA_EMBED_DTYPE", raising=False)
    monkeypatch.delenv("NEWSQA_EMBED_BACKEND", raising=False)
    return folder


def _cpu(monkeypatch: pytest.MonkeyPatch, bf16: bool) -> None:
    flags = frozenset({"avx512_bf16"} if bf16 else set())
    monkeypatch.setattr(hardware, "probe", lambda: hardware.Hardware("test", flags, 2))
    monkeypatch.setattr(hardware, "bf16_supported", lambda: bf16)


def _index(root: Path, embedder: HashEmbedder, feed: Path) -> None:
    Indexer(root, embedder, chunker=Chunker(model_max_tokens=None)).update([feed], prune=False)


def test_the_index_records_the_runtime_of_its_vectors(tmp_path: Path, feed: Path) -> None:
    root = tmp_path / "index"
    _index(root, Int8Hash(64), feed)
    with open_store(root) as store:
        assert store.get_meta("embed_runtime") == "onnx-int8"


def test_vectors_of_another_family_are_refused(tmp_path: Path, feed: Path) -> None:
    root = tmp_path / "index"
    _index(root, Int8Hash(64), feed)
    with pytest.raises(IndexMismatch, match=r"onnx-int8.*torch-fp32.*--rebuild"):
        _index(root, FloatHash(64), feed)
    # --rebuild re-embeds everything with the runtime asked for.
    Indexer(root, FloatHash(64), chunker=Chunker(model_max_tokens=None)).update(
        [feed], rebuild=True, prune=False
    )
    with open_store(root) as store:
        assert store.get_meta("embed_runtime") == "torch-fp32"


def test_an_index_without_a_record_is_a_torch_index(tmp_path: Path, feed: Path) -> None:
    root = tmp_path / "index"
    _index(root, FloatHash(64), feed)
    with open_store(root, readonly=False) as store:
        store.set_meta("embed_runtime", "")  # written before runtimes were recorded
        store.db.commit()
    _index(root, FloatHash(64), feed)  # float vectors join it
    with pytest.raises(IndexMismatch):
        _index(root, Int8Hash(64), feed)


def test_runtime_families() -> None:
    assert {runtime_family(r) for r in ("torch-fp32", "torch-bf16", "onnx-fp32")} == {"float"}
    assert runtime_family("onnx-int8") == "int8"
    assert runtime_family("onnx-int8-fused") == INT8 == "int8-fused"  # a family of its own
    assert runtime_family("") == runtime_family("hash-64") == ""


@pytest.mark.parametrize(
    ("dtype", "bf16", "built", "want"),
    [
        ("auto", True, True, "torch-bf16"),
        ("auto", False, True, "onnx-int8"),
        ("auto", False, False, "torch-fp32"),
        ("int8", True, True, "onnx-int8"),
        ("fp32", False, True, "torch-fp32"),
        ("bf16", False, True, "torch-bf16"),
    ],
)
def test_passage_runtime_by_cpu_and_setting(
    dtype: str, bf16: bool, built: bool, want: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpu(monkeypatch, bf16)
    assert hardware.passage_runtime(dtype, built) == want


def _plant(precision: str) -> Path:
    """A file where the copy belongs (never run here: embedders load lazily)."""
    path = onnx_path(precision)
    path.write_bytes(b"not run in this test")
    return path


def test_a_new_index_on_a_cpu_without_bf16_embeds_in_int8(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpu(monkeypatch, bf16=False)
    assert pick(DEFAULT_MODEL, None, for_index=True) is None  # no copy: torch in float32
    _plant("int8")  # the earlier recipe's copy never starts a new index
    assert pick(DEFAULT_MODEL, None, for_index=True) is None
    path = _plant(INT8)
    chosen = pick(DEFAULT_MODEL, None, for_index=True)
    assert isinstance(chosen, OnnxEmbedder) and chosen.runtime == "onnx-int8-fused"
    assert chosen.path == path
    _cpu(monkeypatch, bf16=True)
    assert pick(DEFAULT_MODEL, None, for_index=True) is None  # bf16: torch


def test_questions_use_the_float32_copy_for_a_float_index(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pick(DEFAULT_MODEL, "torch-bf16", for_index=False) is None  # not built: torch
    _plant("fp32")
    for recorded in ("torch-bf16", "torch-fp32", "onnx-fp32", ""):
        chosen = pick(DEFAULT_MODEL, recorded, for_index=False)
        assert isinstance(chosen, OnnxEmbedder) and chosen.runtime == "onnx-fp32"
    monkeypatch.setenv("NEWSQA_EMBED_BACKEND", "torch")
    assert pick(DEFAULT_MODEL, "torch-bf16", for_index=False) is None
    # Passages of a float index: torch (bf16 where the CPU has it), never the float32 copy.
    monkeypatch.delenv("NEWSQA_EMBED_BACKEND")
    assert pick(DEFAULT_MODEL, "torch-bf16", for_index=True) is None


def test_an_int8_index_takes_int8_passages_and_float_questions(cache: Path) -> None:
    _plant("fp32")
    with pytest.raises(ModelLoadError, match=r"int8 ONNX copy.*python -m qa\.index"):
        pick(DEFAULT_MODEL, "onnx-int8-fused", for_index=True)
    for few in (False, True):  # `newsqa watch` adds int8 passages to it too
        with pytest.raises(ModelLoadError, match=r"int8 ONNX copy"):
            pick(DEFAULT_MODEL, "onnx-int8-fused", for_index=True, few=few)
    _plant(INT8)
    for few in (False, True):
        chosen = pick(DEFAULT_MODEL, "onnx-int8-fused", for_index=True, few=few)
        assert isinstance(chosen, OnnxEmbedder) and chosen.runtime == "onnx-int8-fused"
    # Questions: float32 (the copy when built, else torch), never the int8 copy.
    chosen = pick(DEFAULT_MODEL, "onnx-int8-fused", for_index=False)
    assert isinstance(chosen, OnnxEmbedder) and chosen.runtime == "onnx-fp32"
    onnx_path("fp32").unlink()
    assert pick(DEFAULT_MODEL, "onnx-int8-fused", for_index=False) is None


def test_an_index_of_the_earlier_int8_recipe_keeps_its_own_copy_or_asks_to_rebuild(
    cache: Path,
) -> None:
    _plant(INT8)  # what setup builds now
    for few in (False, True):  # never the fused copy: its vectors are another recipe's
        with pytest.raises(ModelLoadError, match=r"earlier int8.*onnx-int8\).*--rebuild"):
            pick(DEFAULT_MODEL, "onnx-int8", for_index=True, few=few)
    old = _plant("int8")  # still in the cache from an earlier setup
    for few in (False, True):
        chosen = pick(DEFAULT_MODEL, "onnx-int8", for_index=True, few=few)
        assert isinstance(chosen, OnnxEmbedder) and chosen.runtime == "onnx-int8"
        assert chosen.path == old


def test_vectors_of_two_int8_recipes_never_mix(tmp_path: Path, feed: Path) -> None:
    root = tmp_path / "index"
    _index(root, Int8Hash(64), feed)
    with pytest.raises(IndexMismatch, match=r"onnx-int8 but onnx-int8-fused.*--rebuild"):
        _index(root, FusedHash(64), feed)
    Indexer(root, FusedHash(64), chunker=Chunker(model_max_tokens=None)).update(
        [feed], rebuild=True, prune=False
    )
    with open_store(root) as store:
        assert store.get_meta("embed_runtime") == "onnx-int8-fused"
    with pytest.raises(IndexMismatch, match=r"onnx-int8-fused but onnx-int8"):
        _index(root, Int8Hash(64), feed)


class OldMiniLM(Int8Hash):
    """A fake that says it is the default MiniLM, embedded by the earlier int8 copy."""

    def __init__(self) -> None:
        super().__init__(384)
        self.name = DEFAULT_MODEL


def test_a_rebuild_takes_the_runtime_of_a_new_index(
    tmp_path: Path, feed: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "index"
    _index(root, OldMiniLM(), feed)
    _cpu(monkeypatch, bf16=False)
    _plant(INT8)
    with pytest.raises(ModelLoadError, match=r"--rebuild"):  # more passages for it: no copy
        embedder_for(root, for_index=True)
    chosen = embedder_for(root, for_index=True, fresh=True)  # `newsqa index --rebuild`
    assert isinstance(chosen, OnnxEmbedder) and chosen.runtime == "onnx-int8-fused"
    monkeypatch.setenv("NEWSQA_EMBED_DTYPE", "fp32")  # a forced family: no mismatch to report
    assert embedder_for(root, for_index=True, fresh=True).name == DEFAULT_MODEL
    with pytest.raises(IndexMismatch):
        embedder_for(root, for_index=True)


def test_watch_adds_float32_passages_to_a_float_index_without_torch(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpu(monkeypatch, bf16=True)
    _plant("fp32")
    _plant(INT8)
    for recorded in ("torch-bf16", "torch-fp32", "onnx-fp32", "", None):
        chosen = pick(DEFAULT_MODEL, recorded, for_index=True, few=True)
        assert isinstance(chosen, OnnxEmbedder) and chosen.runtime == "onnx-fp32"
        assert pick(DEFAULT_MODEL, recorded, for_index=True) is None  # many: torch in bf16
    _cpu(monkeypatch, bf16=False)  # a new index there is an int8 index, watched or not
    chosen = pick(DEFAULT_MODEL, None, for_index=True, few=True)
    assert isinstance(chosen, OnnxEmbedder) and chosen.runtime == "onnx-int8-fused"


def test_a_forced_dtype_of_another_family_is_a_clear_error(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_EMBED_DTYPE", "int8")
    with pytest.raises(IndexMismatch, match=r"torch-bf16.*NEWSQA_EMBED_DTYPE=int8.*--rebuild"):
        pick(DEFAULT_MODEL, "torch-bf16", for_index=True)
    monkeypatch.setenv("NEWSQA_EMBED_DTYPE", "fp32")
    with pytest.raises(IndexMismatch, match=r"onnx-int8"):
        pick(DEFAULT_MODEL, "onnx-int8", for_index=True)


def test_onnx_backend_without_the_copy_says_how_to_build(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_EMBED_BACKEND", "onnx")
    with pytest.raises(ModelLoadError, match=r"python -m qa\.index"):
        pick(DEFAULT_MODEL, "torch-bf16", for_index=False)


def test_embedder_for_reads_the_record(tmp_path: Path, feed: Path, cache: Path) -> None:
    root = tmp_path / "index"
    _index(root, Int8Hash(64), feed)
    # hash-64 has no ONNX copy: more passages for an int8 record with no copy to make them
    # are an error; its questions are embedded in float by the model the index names.
    with pytest.raises(ModelLoadError, match=r"int8"):
        embedder_for(root, for_index=True)
    with pytest.raises(ModelLoadError, match=r"int8"):
        embedder_for(root, for_index=True, few=True)
    assert embedder_for(root).name == "hash-64"
    assert embed_onnx.find_copy("int8", "hash-64") is None


def test_length_batches_group_texts_longest_first_and_cover_each_once() -> None:
    lengths = [5, 40, 12, 40, 7, 30, 2]
    groups = length_batches(lengths, 3)
    assert [len(g) for g in groups] == [3, 3, 1]
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(lengths)))  # every text exactly once
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert length_batches([], 16) == []
