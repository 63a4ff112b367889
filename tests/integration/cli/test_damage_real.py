"""Damaged stores, damaged generations and crashed runs with the real MiniLM embedder.

``index --rebuild`` rebuilds a store whose header is gone from the corpus alone (no
``--model``, no ``NEWSQA_MODEL``: the default model), and a run that dies before its commit
leaves the previous generation answering.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NewsQA

from qa.index import indexer as indexer_module
from qa.settings import DEFAULT_MODEL

pytestmark = pytest.mark.integration

SENTENCE = ("--reader", "sentence")
QUESTION = "Who boycotted the Sochi conference?"
REFERENCE_URL = "themoscowtimes.com/2018/01/30/putin-stages-syria-peace-conference"
BAKERY = (
    "Harbour bakery wins prize\n\nJune 3, 2023\n\n"
    "The harbour bakery won the national sourdough prize for its rye loaf.\n\n"
    "Original url:\n<https://food.example/bakery>\n"
)


@pytest.fixture()
def site(tmp_path: Path, reference_article: Path, newsqa: NewsQA, shared_model: None) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(reference_article, corpus)
    run = newsqa("index", str(corpus), "--index-dir", str(tmp_path / "index"))
    assert run.code == 0, run.err
    return tmp_path


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("newsqa:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_damaged_store_is_rebuilt_from_the_corpus_alone(site: Path, newsqa: NewsQA) -> None:
    index = site / "index"
    store = index / "store-1.sqlite"
    data = bytearray(store.read_bytes())
    for i in range(200):
        data[i] ^= 0xFF
    store.write_bytes(bytes(data))
    ask = newsqa("ask", QUESTION, *SENTENCE, "--index-dir", str(index))
    assert ask.code == 1
    assert "run `newsqa index --rebuild`" in one_line(ask.err)
    run = newsqa("index", str(site / "corpus"), "--rebuild", "--index-dir", str(index))
    assert run.code == 0, run.err
    assert newsqa("stats", "--check", "--index-dir", str(index)).code == 0
    stats = newsqa("stats", "--json", "--index-dir", str(index))
    assert f'"embed_model": "{DEFAULT_MODEL}"' in stats.out
    ask = newsqa("ask", QUESTION, *SENTENCE, "--index-dir", str(index))
    assert ask.code == 0 and REFERENCE_URL in ask.flat_out


def test_a_one_shot_ask_on_a_damaged_store_exits_with_its_line(site: Path) -> None:
    # A real process with the default reader, whose model loads in a thread while the
    # question is searched: the error must end the process cleanly (exit 1), not abort it
    # because that thread was still inside ONNX Runtime (exit 134).
    index = site / "index"
    store = index / "store-1.sqlite"
    data = bytearray(store.read_bytes())
    for i in range(4096, 4296):  # page 2: the header still reads, the tables do not
        data[i] ^= 0xFF
    store.write_bytes(bytes(data))
    # The abort is a race (two runs in five on a two-article index by hand; rarer here).
    for _ in range(8):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from qa.cli.main import main; main()",
                "ask",
                QUESTION,
                "--index-dir",
                str(index),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 1, done.stderr
        assert "run `newsqa index --rebuild`" in one_line(done.stderr)


def test_a_damaged_generation_is_rebuilt_by_a_plain_index(site: Path, newsqa: NewsQA) -> None:
    index = site / "index"
    (gen,) = (index / "gens").iterdir()
    (gen / "dense.faiss").write_bytes(os.urandom(500))
    ask = newsqa("ask", QUESTION, *SENTENCE, "--index-dir", str(index))
    assert ask.code == 1 and "run `newsqa index --rebuild`" in one_line(ask.err)
    run = newsqa("index", str(site / "corpus"), "--index-dir", str(index))
    assert run.code == 0, run.err
    assert newsqa("stats", "--check", "--index-dir", str(index)).code == 0
    ask = newsqa("ask", QUESTION, *SENTENCE, "--index-dir", str(index))
    assert ask.code == 0 and REFERENCE_URL in ask.flat_out


def test_a_run_that_dies_before_its_commit_keeps_the_previous_generation(
    site: Path, newsqa: NewsQA, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, corpus = site / "index", site / "corpus"
    (corpus / "bakery.txt").write_text(BAKERY, encoding="utf-8")
    (corpus / "loop.txt").symlink_to("loop.txt")
    os.mkfifo(corpus / "pipe.txt")

    def die(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the machine stops while the new generation is written

    monkeypatch.setattr(indexer_module, "build_generation", die)
    crashed = newsqa("index", str(corpus), "--index-dir", str(index))
    assert crashed.code == 130
    monkeypatch.undo()
    # Generation 1 answers as before, and knows nothing of the bakery yet.
    assert newsqa("stats", "--check", "--index-dir", str(index)).code == 0
    ask = newsqa("ask", QUESTION, *SENTENCE, "--index-dir", str(index))
    assert ask.code == 0 and REFERENCE_URL in ask.flat_out
    bakery = newsqa(
        "ask", "Which bakery won the sourdough prize?", *SENTENCE, "--index-dir", str(index)
    )
    assert "food.example/bakery" not in bakery.out
    # The next run finishes the work; the bad files are one skip line each.
    run = newsqa("index", str(corpus), "--index-dir", str(index))
    assert run.code == 0, run.err
    assert "generation 2" in run.flat_out and "skipped 2" in run.flat_out
    bakery = newsqa(
        "ask", "Which bakery won the sourdough prize?", *SENTENCE, "--index-dir", str(index)
    )
    assert bakery.code == 0 and "food.example/bakery" in bakery.out
