"""A damaged index store, met by every command as a person runs it (fake embedder).

Real SQLite files are damaged on disk the way disks and copies damage them (bytes flipped in
a page, the header, a cut-short or emptied file, WAL leftovers, a HEAD that points
elsewhere). Every command answers with one line that says to rebuild and exits 1;
``index --rebuild`` rebuilds from the corpus alone (no ``--model``); a plain ``index``
repairs what it can and otherwise refuses, never exiting 0 over a damaged store.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import NewsQA

FAST = {"NEWSQA_MODEL": "hash-64"}
SENTENCE = ("--reader", "sentence")
REBUILD = "run `newsqa index --rebuild`"


def write_corpus(folder: Path, n: int = 30) -> Path:
    folder.mkdir()
    for i in range(n):
        body = " ".join(
            f"Sentence {j} of report {i} tells of boats in harbour {i}." for j in range(25)
        )
        text = f"Harbour report {i}\n\nMay 2, 2023\n\n{body}\n\nOriginal url:\n<https://x.example/{i}>\n"
        (folder / f"report-{i}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus and its index, built once; each test damages a copy."""
    from click.testing import CliRunner

    from qa.cli.main import cli

    base = tmp_path_factory.mktemp("damage")
    write_corpus(base / "corpus")
    runner = CliRunner()
    result = runner.invoke(
        cli, ["index", str(base / "corpus"), "--index-dir", str(base / "index")], env=FAST
    )
    assert result.exit_code == 0, result.output
    return base


@pytest.fixture()
def site(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built / "corpus", tmp_path / "corpus")
    shutil.copytree(built / "index", tmp_path / "index")
    return tmp_path


def store_of(index: Path) -> Path:
    return index / "store-1.sqlite"


def page_of(store: Path, name: str) -> tuple[int, int]:
    """(root page number, page size) of a table or index."""
    with sqlite3.connect(store) as db:
        size = int(db.execute("PRAGMA page_size").fetchone()[0])
        root = int(
            db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (name,)).fetchone()[0]
        )
    return root, size


def xor(path: Path, start: int, length: int, mask: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    for i in range(start, start + length):
        data[i] ^= mask
    path.write_bytes(bytes(data))


def xor_header(index: Path) -> None:
    xor(store_of(index), 0, 200)


def xor_a_table_page(index: Path) -> None:
    """200 bytes from the start of the passages table's root page: its b-tree header."""
    root, size = page_of(store_of(index), "passages")
    xor(store_of(index), (root - 1) * size, 200)


def xor_middle(index: Path) -> None:
    """200 bytes at the start of the middle page of the file."""
    store = store_of(index)
    pages = store.stat().st_size // 4096
    xor(store, (pages // 2) * 4096, 200)


def truncate_half(index: Path) -> None:
    store = store_of(index)
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])


def empty(index: Path) -> None:
    store_of(index).write_bytes(b"")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "header XOR 200 bytes": xor_header,
    "table page XOR 200 bytes": xor_a_table_page,
    "middle page XOR 200 bytes": xor_middle,
    "truncated to half": truncate_half,
    "0 bytes": empty,
}


def assert_one_rebuild_line(run_err: str, code: int) -> None:
    assert code == 1, run_err
    assert "Traceback" not in run_err
    lines = [line for line in run_err.splitlines() if line.startswith("newsqa:")]
    assert len(lines) == 1, run_err
    assert REBUILD in lines[0] and "store-1.sqlite" in lines[0], lines[0]


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_every_command_meets_a_damaged_store_with_one_line(
    site: Path, newsqa: NewsQA, damage: Callable[[Path], None]
) -> None:
    index = site / "index"
    damage(index)
    check = newsqa("stats", "--check", "--index-dir", str(index), env=FAST)
    assert_one_rebuild_line(check.err, check.code)
    plain = newsqa("index", str(site / "corpus"), "--index-dir", str(index), env=FAST)
    assert_one_rebuild_line(plain.err, plain.code)
    for args in (("stats",), ("ask", "Which boats?", *SENTENCE)):
        run = newsqa(*args, "--index-dir", str(index), env=FAST)
        assert "Traceback" not in run.err
        if run.code != 0:  # the query may not touch the damaged pages
            assert_one_rebuild_line(run.err, run.code)


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_rebuild_from_the_corpus_alone_repairs_a_damaged_store(
    site: Path, newsqa: NewsQA, damage: Callable[[Path], None]
) -> None:
    index = site / "index"
    damage(index)
    run = newsqa("index", str(site / "corpus"), "--rebuild", "--index-dir", str(index), env=FAST)
    assert run.code == 0, run.err
    assert "index: 30 articles" in run.flat_out
    assert newsqa("stats", "--check", "--index-dir", str(index)).code == 0
    assert not store_of(index).exists()  # the damaged store is gone
    ask = newsqa("ask", "Which boats are in harbour 7?", *SENTENCE, "--index-dir", str(index))
    assert ask.code == 0 and "x.example/7" in ask.out


def test_rebuild_keeps_the_model_the_store_names(site: Path, newsqa: NewsQA) -> None:
    """Neither --model nor NEWSQA_MODEL: a store whose metadata still reads names its model
    (the fast fake here; tests/integration covers an unreadable store and the real model)."""
    index = site / "index"
    root, size = page_of(store_of(index), "passages_embed")
    xor(store_of(index), (root - 1) * size, 200)
    run = newsqa("index", str(site / "corpus"), "--rebuild", "--index-dir", str(index))
    assert run.code == 0, run.err
    with sqlite3.connect(index / "store-2.sqlite") as db:
        (model,) = db.execute("SELECT value FROM meta WHERE key='embed_model'").fetchone()
    assert model == "hash-64"


def test_damaged_indexes_are_repaired_by_a_plain_index(site: Path, newsqa: NewsQA) -> None:
    """Bytes flipped inside an index's entries: SQLite's quick check passes, its integrity
    check does not, and neither did the old ``stats --check``."""
    index = site / "index"
    root, size = page_of(store_of(index), "passages_embed")
    xor(store_of(index), root * size - 40, 20, mask=0x01)
    with sqlite3.connect(store_of(index)) as db:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
    check = newsqa("stats", "--check", "--index-dir", str(index), env=FAST)
    assert check.code == 1 and "fails SQLite's integrity check" in check.err
    run = newsqa("index", str(site / "corpus"), "--index-dir", str(index), env=FAST)
    assert run.code == 0, run.err
    assert newsqa("stats", "--check", "--index-dir", str(index), env=FAST).code == 0


def test_wal_leftovers_are_ignored(site: Path, newsqa: NewsQA) -> None:
    index = site / "index"
    Path(f"{store_of(index)}-wal").write_bytes(os.urandom(40_000))
    Path(f"{store_of(index)}-shm").write_bytes(os.urandom(32_768))
    for args in (("stats", "--check"), ("ask", "Which boats?", *SENTENCE)):
        run = newsqa(*args, "--index-dir", str(index), env=FAST)
        assert run.code == 0, run.err
    run = newsqa("index", str(site / "corpus"), "--index-dir", str(index), env=FAST)
    assert run.code == 0, run.err


@pytest.mark.parametrize(
    "head",
    [
        '{"store": "/etc/hostname"}',
        '{"store": "../corpus/report-1.txt"}',
        '{"store": 7}',
        "{",
        "[]",
    ],
    ids=["absolute", "dotdot", "number", "truncated", "list"],
)
def test_head_may_only_name_a_store_file_in_the_folder(
    site: Path, newsqa: NewsQA, head: str
) -> None:
    index = site / "index"
    (index / "HEAD").write_text(head)
    for args in (("stats",), ("stats", "--check"), ("ask", "Which boats?", *SENTENCE)):
        run = newsqa(*args, "--index-dir", str(index), env=FAST)
        assert run.code == 1 and "Traceback" not in run.err, run.err
        (line,) = [s for s in run.err.splitlines() if s.startswith("newsqa:")]
        assert f"{index}/HEAD" in line and REBUILD in line, line
    plain = newsqa("index", str(site / "corpus"), "--index-dir", str(index), env=FAST)
    assert plain.code == 1
    run = newsqa("index", str(site / "corpus"), "--rebuild", "--index-dir", str(index), env=FAST)
    assert run.code == 0, run.err
    assert json.loads((index / "HEAD").read_text()) == {"store": "store-2.sqlite"}
    assert newsqa("stats", "--check", "--index-dir", str(index)).code == 0


def test_a_store_linked_from_outside_the_folder_is_refused(
    site: Path, newsqa: NewsQA, tmp_path: Path
) -> None:
    index = site / "index"
    outside = tmp_path / "elsewhere.sqlite"
    store_of(index).rename(outside)
    store_of(index).symlink_to(outside)
    run = newsqa("stats", "--index-dir", str(index), env=FAST)
    assert run.code == 1 and "not a store file in" in run.err


def test_a_damaged_generation_is_rebuilt_by_a_plain_index(site: Path, newsqa: NewsQA) -> None:
    index = site / "index"
    (gen,) = (index / "gens").iterdir()
    for name in ("dense.faiss", "ids.npy"):
        (gen / name).write_bytes(os.urandom(100))
    ask = newsqa("ask", "Which boats?", *SENTENCE, "--index-dir", str(index), env=FAST)
    assert ask.code == 1 and "Traceback" not in ask.err
    run = newsqa("index", str(site / "corpus"), "--index-dir", str(index), env=FAST)
    assert run.code == 0, run.err
    assert "generation 2" in run.flat_out
    assert newsqa("stats", "--check", "--index-dir", str(index), env=FAST).code == 0
    ask = newsqa("ask", "Which boats are in harbour 7?", *SENTENCE, "--index-dir", str(index))
    assert ask.code == 0 and "x.example/7" in ask.out


@pytest.mark.parametrize("kind", ["folder", "pipe"])
def test_a_folder_or_a_pipe_in_the_stores_place(site: Path, newsqa: NewsQA, kind: str) -> None:
    index = site / "index"
    store_of(index).unlink()
    if kind == "folder":
        store_of(index).mkdir()
    else:
        os.mkfifo(store_of(index))
    for args in (("stats",), ("stats", "--check"), ("index", str(site / "corpus"))):
        run = newsqa(*args, "--index-dir", str(index), env=FAST)
        assert_one_rebuild_line(run.err, run.code)
        assert "(not a regular file)" in run.err
    run = newsqa("index", str(site / "corpus"), "--rebuild", "--index-dir", str(index), env=FAST)
    assert run.code == 0, run.err
    assert sorted(p.name for p in index.glob("store-*")) == ["store-2.sqlite"]
