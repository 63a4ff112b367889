"""Keyword tokenizer versions: inflections match, and indexes built before a change migrate.

Version 2 fixed a Snowball quirk ("boycotted" -> "boycot" but "boycotts" -> "boycott"). An
index built with version 1 keeps answering with version-1 query tokens until the next
``newsqa index`` re-tokenizes its passages and rebuilds its BM25 in full.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from qa.index import keywords
from qa.index.check import check_index
from qa.index.folder import open_store
from qa.index.generation import MANIFEST, gen_dir
from qa.index.keywords import tokenize
from tests.unit.index.test_delta import deltas, manifest, put, titles  # noqa: F401
from tests.unit.index.test_indexer import article_text, make_indexer, write

BOYCOTT = "The opposition boycotts the initiative, its leaders said on Monday."


def test_inflections_of_a_doubled_consonant_share_one_stem() -> None:
    assert tokenize("boycotted") == tokenize("boycotts") == tokenize("boycott") == ["boycot"]
    assert tokenize("staffed") == tokenize("staff")
    assert tokenize("boycotted", version=1) != tokenize("boycotts", version=1)
    # Short stems are left alone: "inn" must not become "in".
    assert tokenize("inn") == ["inn"]


def _age_to_version_1(root: Path) -> None:
    """Make a freshly built index look as written before versions were recorded."""
    with open_store(root) as store:
        path = gen_dir(root, store.path.name, store.current_gen) / MANIFEST
    db = sqlite3.connect(store.path)
    db.execute("DELETE FROM meta WHERE key='tokenizer'")
    db.commit()
    db.close()
    data = json.loads(path.read_text())
    del data["bm25"]["tokenizer"]
    path.write_text(json.dumps(data))


def _version_1_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stories: int) -> Path:
    """A corpus (``stories`` synthetic articles and the boycott one) indexed with version 1."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(stories):
        put(corpus, i)
    write(corpus / "sochi.txt", article_text("Sochi talks", [BOYCOTT], "2018-01-30"))
    root = tmp_path / "index"
    with monkeypatch.context() as old:
        old.setattr(keywords, "TOKENIZER_VERSION", 1)
        make_indexer(root).update([corpus])
    _age_to_version_1(root)
    return corpus


def test_a_version_1_index_answers_as_before_then_migrates_on_the_next_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    deltas: None,  # noqa: F811
) -> None:
    corpus = _version_1_index(tmp_path, monkeypatch, stories=6)
    root = tmp_path / "index"

    # Still usable, queried with its own version: the form it indexed matches, the other not.
    assert titles(root, "boycotts", fusion="bm25")[:1] == ["Sochi talks"]
    assert "Sochi talks" not in titles(root, "boycotted", fusion="bm25")

    put(corpus, 6)  # a small change that would otherwise be committed as a delta
    make_indexer(root).update([corpus])
    m = manifest(root)
    assert (m["kind"], m["bm25"]["tokenizer"]) == ("full", 2)  # type: ignore[index]
    with open_store(root) as store:
        assert store.get_meta("tokenizer") == "2"
        tokens = store.db.execute(
            "SELECT tokens FROM passages WHERE text LIKE '%boycotts%'"
        ).fetchone()[0]
        assert "boycot" in tokens.split() and "boycott" not in tokens.split()
    assert titles(root, "Who boycotted the initiative?", fusion="bm25")[:1] == ["Sochi talks"]
    assert check_index(root) == []


def test_an_outdated_index_is_rebuilt_even_when_no_article_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _version_1_index(tmp_path, monkeypatch, stories=0)
    root = tmp_path / "index"
    from click.testing import CliRunner

    from qa.cli.main import cli

    out = CliRunner().invoke(cli, ["stats", "--index-dir", str(root)])
    assert out.exit_code == 0, out.output
    assert "keyword_tokenizer  1" in out.output and "the next\n`newsqa index`" in out.output
    report = make_indexer(root).update([corpus])
    assert report.generation == 2
    assert titles(root, "boycotted", fusion="bm25") == ["Sochi talks"]
    # Up to date now: the next run with nothing changed commits nothing new.
    assert make_indexer(root).update([corpus]).generation == 2
    out = CliRunner().invoke(cli, ["stats", "--index-dir", str(root)])
    assert "keyword_tokenizer  2" in out.output and "newsqa index" not in out.output


def test_a_saved_index_scores_the_same_without_bm25s(tmp_path: Path) -> None:
    import random

    import numpy as np

    rng = random.Random(5)
    words = [f"w{i}" for i in range(300)]
    docs = [[rng.choice(words) for _ in range(rng.randint(1, 40))] for _ in range(500)]
    built = keywords.KeywordIndex()
    built.build(docs)
    built.save(tmp_path)
    ours = keywords.KeywordIndex()
    ours.load(tmp_path, len(docs))
    assert isinstance(ours._bm25, keywords._SavedScores)
    theirs = keywords.KeywordIndex()
    theirs._bm25, theirs.size = built._bm25, len(docs)
    for _ in range(50):
        query = " ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))
        assert np.array_equal(ours.scores(query), theirs.scores(query))
    assert ours.doc_freq("w7") == theirs.doc_freq("w7") > 0


def test_stop_words_are_bm25s_list() -> None:
    from bm25s.stopwords import STOPWORDS_EN

    assert keywords._stopwords() == frozenset(STOPWORDS_EN)
