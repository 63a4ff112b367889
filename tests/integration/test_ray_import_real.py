"""`import --ray` gives the plain import's index: the same passages and the same vectors.

Real model, real Ray: a local ``ray.init(num_cpus=2)`` on 127.0.0.1 for the module, and a
3-node ``ray.cluster_utils.Cluster`` on loopback for the slow test. The articles are the first
seven articles of SQuAD dev (about 300 paragraphs, each stored as an article) and the first 4
records of the shared news corpus (long articles of many passages), two of them repeated so
that duplicates take the same path in both imports; skipped when ../shared is absent.
"""

from __future__ import annotations

import gzip
import itertools
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from conftest import SHARED_DIR, needs_shared

from qa.errors import ClusterError
from qa.index.folder import read_head
from qa.index.indexer import Indexer, IndexReport
from qa.index.ray_cluster import start_ray
from qa.index.ray_import import RayIndexer
from tests.ray_fixtures import assert_none_left

if TYPE_CHECKING:
    from qa.index.embed import Embedder

NEWS = SHARED_DIR / "news" / "realtimeqa-corpus.jsonl.gz"
SQUAD = SHARED_DIR / "squad" / "dev-v1.1.json.gz"
pytestmark = [
    pytest.mark.integration,
    needs_shared("news", "realtimeqa-corpus.jsonl.gz"),
    needs_shared("squad", "dev-v1.1.json.gz"),
]


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A SQuAD file of seven articles' paragraphs and a JSONL file of 4 news articles, the
    first two again at the end."""
    folder = tmp_path_factory.mktemp("feed")
    with gzip.open(SQUAD, "rt", encoding="utf-8") as fh:
        squad = json.load(fh)
    (folder / "squad.json").write_text(json.dumps({"data": squad["data"][:7]}), encoding="utf-8")
    with gzip.open(NEWS, "rt", encoding="utf-8") as fh:
        lines = [line for line in itertools.islice(fh, 4) if line.strip()]
    (folder / "news.jsonl").write_text("".join(lines + lines[:2]), encoding="utf-8")
    return [folder / "squad.json", folder / "news.jsonl"]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray of two CPUs on loopback for the module; stopped after it."""
    ray = pytest.importorskip("ray")
    start_ray(None, num_cpus=2)  # as `import --ray` starts it: 127.0.0.1 only
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def plain_run(
    feed: list[Path], real_embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, IndexReport]:
    """The plain import of the feed: its index folder and report."""
    root = tmp_path_factory.mktemp("plain") / "index"
    return root, Indexer(root, real_embedder).update(feed, prune=False)


@pytest.fixture(scope="module")
def plain(plain_run: tuple[Path, IndexReport]) -> Path:
    return plain_run[0]


def passages(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every live passage of an index: id -> (article, paragraph, start, end, text, vector)."""
    name = read_head(root)
    assert name is not None
    db = sqlite3.connect(root / name)
    try:
        rows = db.execute(
            "SELECT id, article_id, paragraph, start, end, text, vec FROM passages "
            "WHERE deleted_gen IS NULL"
        ).fetchall()
    finally:
        db.close()
    return {r[0]: (*r[1:6], np.frombuffer(r[6], dtype=np.float16).astype(np.float32)) for r in rows}


def assert_same_index(plain: Path, other: Path) -> None:
    want, got = passages(plain), passages(other)
    assert len(want) > 300  # hundreds of passages: a real comparison
    assert set(got) == set(want)
    assert {k: v[:5] for k, v in got.items()} == {k: v[:5] for k, v in want.items()}
    ids = sorted(want)
    a = np.stack([want[i][5] for i in ids])
    b = np.stack([got[i][5] for i in ids])
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert float(cos.min()) >= 0.999, f"lowest cosine {cos.min():.5f} at {ids[int(cos.argmin())]}"


def headline_vectors(root: Path) -> dict[str, np.ndarray]:
    name = read_head(root)
    assert name is not None
    db = sqlite3.connect(root / name)
    try:
        rows = db.execute("SELECT article_id, vec FROM headlines").fetchall()
    finally:
        db.close()
    return {r[0]: np.frombuffer(r[1], dtype=np.float16).astype(np.float32) for r in rows}


def assert_same_headlines(plain: Path, other: Path) -> None:
    """The actors' headline vectors are the plain import's (one per titled article)."""
    want, got = headline_vectors(plain), headline_vectors(other)
    assert len(want) > 100 and set(got) == set(want)
    ids = sorted(want)
    a, b = np.stack([want[i] for i in ids]), np.stack([got[i] for i in ids])
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert float(cos.min()) >= 0.999


def meta(root: Path, key: str) -> str:
    name = read_head(root)
    assert name is not None
    db = sqlite3.connect(root / name)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        db.close()
    return str(row[0]) if row else ""


def test_ray_import_gives_the_plain_imports_passages_and_vectors(
    local_ray: None,
    feed: list[Path],
    plain_run: tuple[Path, IndexReport],
    real_embedder: Embedder,
    tmp_path: Path,
) -> None:
    plain, want = plain_run
    root = tmp_path / "index"
    report = RayIndexer(root, real_embedder).update(feed, prune=False)
    assert report.added == want.added > 300
    assert report.duplicates == want.duplicates >= 2
    assert report.near_duplicates == want.near_duplicates
    assert report.passages_embedded + report.passages_reused == want.passages > 300
    assert report.truncated == want.truncated
    assert meta(root, "embed_runtime") == meta(plain, "embed_runtime") == real_embedder.runtime
    assert_same_index(plain, root)
    assert_same_headlines(plain, root)


def test_a_killed_ray_import_resumes_from_its_last_commit(
    local_ray: None,
    feed: list[Path],
    plain_run: tuple[Path, IndexReport],
    real_embedder: Embedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "index"
    flushes = 0
    write = RayIndexer._flush

    def dies_after_three(self: RayIndexer, *args: Any) -> None:
        nonlocal flushes
        flushes += 1
        if flushes > 3:
            raise KeyboardInterrupt  # as Ctrl+C would, between two batches
        write(self, *args)

    monkeypatch.setattr(RayIndexer, "_flush", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        RayIndexer(root, real_embedder, batch_passages=64).update(feed, prune=False)
    assert read_head(root) is None  # nothing committed as an index yet
    monkeypatch.setattr(RayIndexer, "_flush", write)
    report = RayIndexer(root, real_embedder, batch_passages=64).update(feed, prune=False)
    plain, want = plain_run
    # The articles of the three committed batches were not sent to Ray again.
    assert 0 < report.unchanged < want.added
    assert report.added + report.unchanged == want.added
    assert_same_index(plain, root)


def test_an_unreachable_cluster_is_one_error(
    feed: list[Path], real_embedder: Embedder, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        RayIndexer(tmp_path / "index", real_embedder, address=f"127.0.0.1:{port}").update(
            feed, prune=False
        )


@pytest.mark.slow
# Fixtures included (the plain import and ~500 passages embedded twice); a hang fails the test
# instead of holding the suite. Starved of CPU (a load average over 20 on 2 cores, at nice 10)
# it took longer than 20 minutes.
@pytest.mark.timeout(1800)
def test_ray_import_on_a_three_node_cluster(
    feed: list[Path], plain_run: tuple[Path, IndexReport], real_embedder: Embedder, tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():  # the module's local Ray, when the tests run together
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"},
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        root = tmp_path / "index"
        # One dataset spread over the three nodes' actors (one CPU each, so one actor a node).
        indexer = RayIndexer(root, real_embedder, address=cluster.address)
        report = indexer.update(feed, prune=False)
        assert not ray.is_initialized()  # the import connected and disconnected
        assert report.added == plain_run[1].added
        assert_same_index(plain_run[0], root)
        start_ray(cluster.address)  # connect again to see the nodes after the import
        nodes = ray.nodes()
        assert len(nodes) == 3
        assert {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
        assert all(n["Alive"] for n in nodes)  # no node was lost during the import
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert_none_left()  # every raylet and the GCS stopped with the cluster
