"""FAISS index type by size (qa.index.dense): IVF and HNSW generations through the Indexer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from qa.errors import SettingError
from qa.index import dense as dense_index
from qa.index.check import check_index
from qa.index.chunk import Chunker
from qa.index.dense import DenseSpec, choose_kind
from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.index.generation import CENTROIDS, MANIFEST, gen_dir
from qa.index.indexer import Indexer
from qa.search.retriever import Filters, Retriever

TOPICS = [
    "council bridge budget river mayor vote road",
    "volcano lava ash village eruption harbour evacuation",
    "chess queen endgame grandmaster tournament opening rook",
    "museum fossil dinosaur skeleton exhibition curator bones",
    "election ballot senator campaign poll candidate debate",
    "court judge appeal verdict trial lawyer jury",
    "storm flood rescue rain wind shelter coast",
    "vaccine hospital nurse doctor patients clinic virus",
    "market stocks bank inflation tariff rates investors",
    "satellite rocket orbit telescope galaxy launch astronaut",
]
WORDS = " ".join(TOPICS).split()
SOURCES = [f"https://news{i}.example" for i in range(20)]


def paragraph(rng: random.Random, topic: int) -> str:
    """Mostly words of one topic, some of any: dense vectors cluster by topic like news does."""
    own = TOPICS[topic].split()
    words = [rng.choice(own if rng.random() < 0.7 else WORDS) for _ in range(rng.randint(30, 60))]
    return " ".join(words) + "."


def write_feed(path: Path, n: int, seed: int, start: int = 0) -> None:
    """``n`` articles on 10 topics from 20 sources, dates over one year."""
    rng = random.Random(seed)
    lines = []
    for i in range(start, start + n):
        topic = rng.randrange(len(TOPICS))
        rec = {
            "title": f"Report {i}",
            "text": "\n\n".join(paragraph(rng, topic) for _ in range(3)),
            "url": f"{SOURCES[i % 20]}/story/{i}",
            "publish_date": f"2022-{1 + i % 12:02d}-{1 + i % 28:02d}",
        }
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch, n: int = 500) -> Path:
    """An index of ``n`` articles (~3 passages each) whose generation uses ``kind``."""
    monkeypatch.setenv("NEWSQA_FAISS", kind)
    feed = tmp_path / "feed"
    feed.mkdir(exist_ok=True)
    write_feed(feed / "a.jsonl", n, seed=3)
    root = tmp_path / "index"
    Indexer(root, HashEmbedder(64), chunker=Chunker(model_max_tokens=None)).update([feed])
    return root


def stored_vectors(root: Path) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Every visible passage's vector, text, source and date, in FAISS id (rowid) order."""
    with open_store(root) as store:
        q = (
            "SELECT p.vec, p.text, a.source, a.date FROM passages p JOIN articles a "
            "ON a.id = p.article_id ORDER BY p.rowid"
        )
        rows = store.db.execute(q).fetchall()
    vecs = np.stack([np.frombuffer(r[0], dtype=np.float16).astype(np.float32) for r in rows])
    return vecs, [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]


def dense_texts(root: Path, query: str, k: int, filters: Filters | None = None) -> list[str]:
    r = Retriever(root, HashEmbedder(64), fusion="dense")
    try:
        return [h.passage.text for h in r.search(query, k=k, filters=filters)]
    finally:
        r.backend.close()


def exact_texts(root: Path, query: str, k: int, allowed: np.ndarray | None = None) -> list[str]:
    """Exact dense top-k by brute force over the stored vectors."""
    vecs, texts, _, _ = stored_vectors(root)
    scores = vecs @ HashEmbedder(64).embed([query])[0]
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    return [texts[i] for i in np.argsort(-scores, kind="stable")[:k]]


def manifest(root: Path) -> dict[str, object]:
    with open_store(root) as store:
        folder = gen_dir(root, store.path.name, store.current_gen)
    data: dict[str, object] = json.loads((folder / MANIFEST).read_text())
    return data


def test_choose_kind_by_size_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSQA_FAISS", raising=False)
    assert choose_kind(dense_index.FLAT_MAX) == "flat"
    assert choose_kind(dense_index.FLAT_MAX + 1) == "ivf"
    assert choose_kind(10, forced="hnsw") == "hnsw"
    monkeypatch.setenv("NEWSQA_FAISS", "ivf")
    assert choose_kind(10) == "ivf"
    monkeypatch.setenv("NEWSQA_FAISS", "annoy")
    with pytest.raises(SettingError, match="NEWSQA_FAISS='annoy'"):
        choose_kind(10)
    with pytest.raises(ValueError, match="annoy"):
        choose_kind(10, forced="annoy")
    assert DenseSpec.from_json(None) == DenseSpec("flat")  # generations written before


def test_ivf_generation_searches_filters_and_passes_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build(tmp_path, "ivf", monkeypatch)
    spec = DenseSpec.from_json(manifest(root)["dense"])  # type: ignore[arg-type]
    assert spec.kind == "ivf" and 1 < spec.nprobe < spec.nlist  # a real partial probe
    assert check_index(root) == []
    _, texts, sources, dates = stored_vectors(root)
    # A passage's own text finds it although only nprobe of the lists are searched.
    for i in range(0, len(texts), len(texts) // 7):
        assert dense_texts(root, texts[i], k=1) == [texts[i]]
    query = "volcano lava village harbour rescue"
    assert len(set(dense_texts(root, query, 10)) & set(exact_texts(root, query, 10))) >= 8
    # Selective filters (one source of 20; one month) probe every list: exact over the subset.
    only = np.asarray(["news7.example" in s for s in sources])
    got = dense_texts(root, query, 10, Filters(source="news7.example"))
    assert got and set(got) <= {t for t, keep in zip(texts, only, strict=True) if keep}
    assert got[0] == exact_texts(root, query, 1, only)[0]
    assert len(set(got) & set(exact_texts(root, query, 10, only))) >= 9
    march = np.asarray([d.startswith("2022-03") for d in dates])
    got = dense_texts(root, query, 5, Filters(since="2022-03-01", until="2022-03-31"))
    assert got[0] == exact_texts(root, query, 1, march)[0]


def test_next_ivf_generation_reuses_its_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build(tmp_path, "ivf", monkeypatch)
    first = manifest(root)
    with open_store(root) as store:
        centroids = np.load(gen_dir(root, store.path.name, store.current_gen) / CENTROIDS)
    write_feed(tmp_path / "feed" / "b.jsonl", 40, seed=4, start=10_000)
    Indexer(root, HashEmbedder(64), chunker=Chunker(model_max_tokens=None)).update(
        [tmp_path / "feed"]
    )
    second = manifest(root)
    assert second["gen"] == 2 and second["passages"] > first["passages"]  # type: ignore[operator]
    assert second["dense"] == first["dense"]  # same lists, same trained_on
    with open_store(root) as store:
        again = np.load(gen_dir(root, store.path.name, store.current_gen) / CENTROIDS)
    np.testing.assert_array_equal(again, centroids)
    assert check_index(root) == []


def test_ivf_build_is_deterministic() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a, spec_a = dense_index.build_dense(x, "ivf")
    b, spec_b = dense_index.build_dense(x, "ivf")
    assert spec_a == spec_b and spec_a.nlist > 1
    np.testing.assert_array_equal(dense_index.ivf_centroids(a), dense_index.ivf_centroids(b))
    np.testing.assert_array_equal(a.search(x[:20], 10)[1], b.search(x[:20], 10)[1])


def test_hnsw_generation_filters_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = build(tmp_path, "hnsw", monkeypatch, n=200)
    assert DenseSpec.from_json(manifest(root)["dense"]).kind == "hnsw"  # type: ignore[arg-type]
    assert check_index(root) == []
    _, texts, sources, _ = stored_vectors(root)
    query = "election ballot senator court"
    only = np.asarray(["news3.example" in s for s in sources])
    # 5% of the graph: searched exactly over the allowed vectors (flat storage, same scores).
    got = dense_texts(root, query, 5, Filters(source="news3.example"))
    assert got == exact_texts(root, query, 5, only)
    assert dense_texts(root, texts[10], 1) == [texts[10]]


def test_check_reports_a_manifest_that_disagrees_with_the_faiss_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build(tmp_path, "ivf", monkeypatch, n=200)
    with open_store(root) as store:
        path = gen_dir(root, store.path.name, store.current_gen) / MANIFEST
    data = json.loads(path.read_text())
    data["dense"]["kind"] = "flat"
    path.write_text(json.dumps(data))
    problems = check_index(root)
    assert any("manifest says flat" in p for p in problems)
