"""Delta generations (qa.index.generation): small changes are committed as a delta over a base.

Every test forces deltas at toy size (``NEWSQA_DELTA_MIN=0``) and checks them against what a
full build of the same corpus returns.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from qa.index.check import check_index
from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.index.generation import MANIFEST, gen_dir
from qa.index.keywords import DeltaKeywords, KeywordIndex, tokenize
from qa.search.retriever import Filters, Retriever
from tests.unit.index.test_indexer import article_text, make_indexer, write

WORDS = (
    "harbour council budget river storm vaccine court election tariff museum rocket "
    "strike drought festival senate bridge merger wildfire orchestra satellite pipeline "
    "glacier factory stadium treaty"
).split()


def story(i: int) -> tuple[str, list[str], str]:
    """A synthetic article: a unique keyword ``kw{i}`` in a random mix of shared words."""
    rng = random.Random(i)
    paragraphs = [
        " ".join(rng.choice(WORDS) for _ in range(150)) + f" kw{i} marker{i % 3}." for _ in range(3)
    ]
    return f"Story number {i} about {rng.choice(WORDS)}", paragraphs, f"2023-0{1 + i % 9}-1{i % 10}"


def put(folder: Path, i: int, extra: str = "") -> Path:
    title, paragraphs, date = story(i)
    if extra:
        paragraphs = [*paragraphs, extra]
    return write(
        folder / f"s{i}.txt", article_text(title, paragraphs, date, f"https://news.example/{i}")
    )


def manifest(root: Path) -> dict[str, object]:
    with open_store(root) as store:
        data: dict[str, object] = json.loads(
            (gen_dir(root, store.path.name, store.current_gen) / MANIFEST).read_text()
        )
        return data


@pytest.fixture()
def deltas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSQA_DELTA_MIN", "0")
    monkeypatch.setenv("NEWSQA_DELTA_SHARE", "10")


def ranked(
    root: Path, query: str, fusion: str = "linear", k: int = 50, filters: Filters | None = None
) -> list[tuple[str, float]]:
    """(title, score) of the hits, best first."""
    r = Retriever(root, HashEmbedder(64), fusion=fusion)
    try:
        return [(h.title, h.score) for h in r.search(query, k=k, filters=filters)]
    finally:
        r.backend.close()


def titles(root: Path, query: str, fusion: str = "linear", k: int = 50) -> list[str]:
    return [t for t, _ in ranked(root, query, fusion, k)]


def mutate(corpus: Path, root: Path) -> None:
    """Add, change and delete files, one indexing run each."""
    put(corpus, 20)
    make_indexer(root).update([corpus])
    put(corpus, 3, extra="A late correction about the glacier treaty kw3late.")
    make_indexer(root).update([corpus])
    (corpus / "s5.txt").unlink()
    make_indexer(root).update([corpus])
    put(corpus, 21)
    (corpus / "s21.txt").rename(corpus / "renamed21.txt")
    make_indexer(root).update([corpus])


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(12):
        put(folder, i)
    return folder


def test_small_changes_commit_deltas_that_search_like_a_full_build(
    corpus: Path, tmp_path: Path, deltas: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    assert manifest(root)["kind"] == "full"
    mutate(corpus, root)
    m = manifest(root)
    assert (m["kind"], m["base"]) == ("delta", 1)
    assert m["deleted"] == 6  # s5's three passages and s3's old three
    assert check_index(root) == []
    monkeypatch.setenv("NEWSQA_DELTA_MIN", "1000000")
    full = tmp_path / "full"
    make_indexer(full).update([corpus])
    assert manifest(full)["kind"] == "full"
    for query in (
        "kw20",
        "kw3late glacier",
        "kw5",
        "kw21 harbour",
        "storm council budget",
        "marker1 rocket",
        "kw7",
    ):
        got, want = ranked(root, query, "dense"), ranked(full, query, "dense")
        # Dense search is exact on both sides: the same hits with the same scores (near-ties
        # may swap places).
        assert {t for t, _ in got} == {t for t, _ in want}, query
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5), query
        for fusion in ("bm25", "linear"):
            # BM25 statistics differ slightly (the delta is scored with the base's).
            got, want = ranked(root, query, fusion), ranked(full, query, fusion)
            assert {t for t, _ in got} == {t for t, _ in want}, (query, fusion)
            if len(want) > 1 and want[0][1] > want[1][1] * 1.2:
                assert got[0][0] == want[0][0], (query, fusion)
    assert "Story number 5" not in " ".join(titles(root, "kw5 harbour river"))


def test_readers_keep_the_loaded_base_across_delta_commits(
    corpus: Path, tmp_path: Path, deltas: None
) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    r = Retriever(root, HashEmbedder(64))
    base = r.view().gen.base
    put(corpus, 30)
    make_indexer(root).update([corpus])
    snap = r.view()
    assert snap.gen.base is base and snap.gen.delta is not None
    assert r.search("kw30", k=1)[0].title.startswith("Story number 30")
    # The per-document metadata of the delta is read too: a date filter finds it.
    title, _, date = story(30)
    hits = r.search("kw30", k=3, filters=Filters(since=date, until=date))
    assert hits and all(h.date == date for h in hits) and hits[0].title == title
    r.backend.close()


def test_deleted_base_passages_are_never_returned(
    corpus: Path, tmp_path: Path, deltas: None
) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    for i in (0, 1, 2):
        (corpus / f"s{i}.txt").unlink()
    make_indexer(root).update([corpus])
    r = Retriever(root, HashEmbedder(64))
    snap = r.view()
    assert len(snap.gen.deleted) == 9 and snap.gen.passages == 27
    every = {h.title for h in r.search("kw0 kw1 kw2 harbour storm", k=100)}
    assert len(every) == 9 and not any(
        t.startswith(("Story number 0 ", "Story number 1 ")) for t in every
    )
    assert snap.gen.keyword_scores("kw0 kw1 kw2").max() == 0.0
    # Filtered searches go through the allowed-ids path of FAISS: deletions hold there too.
    hits = r.search("kw0", k=100, filters=Filters(since="2000-01-01"))
    assert len(hits) == 27 and "Story number 0" not in {h.title[:14] for h in hits}
    r.backend.close()


def test_delta_compacts_into_a_new_base_and_old_bases_go(
    corpus: Path, tmp_path: Path, deltas: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    for i in (40, 41, 42):
        put(corpus, i)
        make_indexer(root).update([corpus])
    with open_store(root) as store:
        name = store.path.name
    folders = sorted(p.name for p in (root / "gens").iterdir())
    assert folders == [gen_dir(root, name, g).name for g in (1, 3, 4)]  # base, previous, current
    monkeypatch.setenv("NEWSQA_DELTA_SHARE", "0.05")  # 4 new of 36 passages: too big a delta
    put(corpus, 43)
    make_indexer(root).update([corpus])
    assert manifest(root)["kind"] == "full"
    put(corpus, 44)
    make_indexer(root).update([corpus])
    folders = sorted(p.name for p in (root / "gens").iterdir())
    assert folders == [gen_dir(root, name, g).name for g in (5, 6)]
    assert check_index(root) == []
    assert titles(root, "kw43", k=1)[0].startswith("Story number 43")


def test_check_reports_a_damaged_delta(corpus: Path, tmp_path: Path, deltas: None) -> None:
    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    (corpus / "s0.txt").unlink()
    make_indexer(root).update([corpus])
    with open_store(root) as store:
        folder = gen_dir(root, store.path.name, store.current_gen)
    np.save(folder / "deleted.npy", np.asarray([0], dtype=np.int64))  # forgets two deletions
    problems = check_index(root)
    assert problems and "disagree" in problems[0]
    np.save(folder / "deleted.npy", np.asarray([0, 1, 30], dtype=np.int64))  # wrong ones
    problems = check_index(root)
    assert any("deleted in this generation" in p for p in problems), problems


def test_delta_keywords_score_on_the_base_scale() -> None:
    docs = [tokenize(" ".join(story(i)[1])) for i in range(12)]
    full = KeywordIndex()
    full.build(docs)
    base = KeywordIndex()
    base.build(docs[:11])
    delta = DeltaKeywords()
    delta.build([docs[11]], base, sum(map(len, docs[:11])) / 11)
    for query in ("kw11 harbour", "storm budget marker2", "river river kw11", "kw4"):
        want = float(full.scores(query)[11])
        got = float(delta.scores(query)[0])
        # As if built with the base: only the average length differs (the base's is used).
        assert abs(got - want) <= 0.02 * max(want, 1e-9), (query, got, want)
    assert base.doc_freq("kw4") == 1 and base.doc_freq("unknownword") == 0
    assert base.doc_freq(tokenize("harbour")[0]) == full.doc_freq(tokenize("harbour")[0]) - (
        "harbour" in " ".join(story(11)[1])
    )


def test_keyword_index_from_token_ids_equals_the_one_from_tokens() -> None:
    docs = [tokenize(" ".join(story(i)[1])) for i in range(12)] + [[]]
    vocab: dict[str, int] = {}
    ids = [np.asarray([vocab.setdefault(t, len(vocab)) for t in d], dtype=np.int32) for d in docs]
    by_tokens, by_ids = KeywordIndex(), KeywordIndex()
    by_tokens.build(docs)
    by_ids.build_ids(ids, vocab)
    for query in ("kw3 harbour", "storm budget marker1 marker1", "river", "nothing matches"):
        assert np.allclose(by_tokens.scores(query), by_ids.scores(query)), query
    assert by_ids.doc_freq(tokenize("storm")[0]) == by_tokens.doc_freq(tokenize("storm")[0]) > 0


def test_stats_shows_the_generation_layout(corpus: Path, tmp_path: Path, deltas: None) -> None:
    from click.testing import CliRunner

    from qa.cli.main import cli

    root = tmp_path / "index"
    make_indexer(root).update([corpus])
    put(corpus, 50)
    (corpus / "s0.txt").unlink()
    make_indexer(root).update([corpus])
    out = CliRunner().invoke(cli, ["stats", "--json", "--check", "--index-dir", str(root)])
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    assert (info["layout"], info["base_generation"], info["faiss"]) == ("delta", 1, "flat")
    assert (info["delta_passages"], info["deleted_passages"], info["articles"]) == (3, 3, 12)
