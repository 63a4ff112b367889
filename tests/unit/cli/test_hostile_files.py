"""Hostile files in the corpus, through ``newsqa index`` as a person runs it (fake embedder).

Each bad file is one skip line on stderr; every other article is indexed and committed, also
on the very first run; what is still skipped is reported again on every later run, and
``--strict`` fails while any remains.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import NewsQA

FAST = {"NEWSQA_MODEL": "hash-64"}
GOOD = (
    "Harbour bakery wins prize\n\nJune 3, 2023\n\n"
    "The harbour bakery won the national sourdough prize for its rye loaf.\n\n"
    "Original url:\n<https://food.example/bakery>\n"
)


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in ``tmp_path``: the corpus is ``corpus/``, so that skip lines stay short."""
    monkeypatch.chdir(tmp_path)


def good_corpus(tmp_path: Path) -> Path:
    """``corpus/`` (relative) with one good article."""
    corpus = Path("corpus")
    corpus.mkdir()
    (corpus / "bakery.txt").write_text(GOOD, encoding="utf-8")
    return corpus


def skip_lines(err: str) -> list[str]:
    """The ``skipped ...`` lines of stderr, rejoined where the console wrapped them."""
    lines = err.splitlines()
    flat = " ".join(s.strip() for s in lines if not s.startswith(("indexing", "newsqa:")))
    return ["skipped " + part.strip() for part in flat.split("skipped ")[1:]]


def indexed_titles(index: Path) -> list[str]:
    head = (index / "HEAD").read_text()
    store = index / head.split('"')[3]
    with sqlite3.connect(store) as db:
        return [r[0] for r in db.execute("SELECT title FROM articles ORDER BY title")]


def make_loop(corpus: Path) -> str:
    (corpus / "a.txt").symlink_to("b.txt")
    (corpus / "b.txt").symlink_to("a.txt")
    return "a.txt: symbolic link loop"


def make_dangling(corpus: Path) -> str:
    (corpus / "gone.txt").symlink_to("nowhere.txt")
    return "gone.txt: broken symbolic link (to nowhere.txt)"


def make_deep_json(corpus: Path) -> str:
    (corpus / "deep.json").write_text("[" * 100_000)
    return "deep.json: invalid JSON: nested too deeply"


def make_deep_jsonl(corpus: Path) -> str:
    (corpus / "deep.jsonl").write_text('{"title": "x", "text": ' + "[" * 100_000 + "\n")
    return "deep.jsonl:1: invalid JSON: nested too deeply"


def make_device(corpus: Path) -> str:
    (corpus / "zero.txt").symlink_to("/dev/zero")  # would never end if read
    return "zero.txt: not a regular file (a character device)"


def make_socket(corpus: Path) -> str:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(corpus / "sock.txt"))
    sock.close()
    return "sock.txt: not a regular file (a socket)"


def make_late_nul(corpus: Path) -> str:
    body = "Plain words here. " * 600  # past the first 8 KiB
    (corpus / "late.txt").write_text(f"Late binary\n\nMay 1, 2023\n\n{body}\x00tail\n")
    return "late.txt: binary file"


BAD_FILES: dict[str, Callable[[Path], str]] = {
    "symlink loop": make_loop,
    "dangling symlink": make_dangling,
    "100,000 nested [ in .json": make_deep_json,
    "100,000 nested [ in a .jsonl line": make_deep_jsonl,
    "link to a device": make_device,
    "socket": make_socket,
    "NUL byte after 8 KiB": make_late_nul,
}


@pytest.mark.parametrize("make", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_is_one_skip_line_and_the_rest_is_indexed(
    tmp_path: Path, newsqa: NewsQA, make: Callable[[Path], str]
) -> None:
    corpus = good_corpus(tmp_path)
    expected = make(corpus)
    index = tmp_path / "index"
    run = newsqa("index", str(corpus), "--index-dir", str(index), env=FAST)
    assert run.code == 0, run.err
    assert f"skipped {corpus}/{expected}" in skip_lines(run.err)
    assert "Traceback" not in run.err
    assert "index: 1 articles" in run.flat_out
    assert indexed_titles(index) == ["Harbour bakery wins prize"]
    assert newsqa("stats", "--index-dir", str(index), "--check").code == 0


def test_the_loop_is_reported_for_both_links(tmp_path: Path, newsqa: NewsQA) -> None:
    corpus = good_corpus(tmp_path)
    make_loop(corpus)
    run = newsqa("index", str(corpus), "--index-dir", str(tmp_path / "index"), env=FAST)
    assert skip_lines(run.err) == [
        f"skipped {corpus}/a.txt: symbolic link loop",
        f"skipped {corpus}/b.txt: symbolic link loop",
    ]
    assert "skipped 2" in run.flat_out


@pytest.fixture()
def unblock_fifo(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """Opens the FIFO for writing after 5 s, so that a reader blocked on it ends (the test
    then fails instead of hanging)."""
    stop = threading.Event()
    fifos: list[Path] = []

    def watchdog() -> None:
        if stop.wait(5):
            return
        while not stop.is_set():
            for fifo in fifos:
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                except OSError as exc:
                    assert exc.errno in (errno.ENXIO, errno.ENOENT)
            time.sleep(0.05)

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    yield fifos.append
    stop.set()
    thread.join()


def test_a_fifo_is_skipped_without_waiting_for_a_writer(
    tmp_path: Path, newsqa: NewsQA, unblock_fifo: Callable[[Path], None]
) -> None:
    corpus = good_corpus(tmp_path)
    for name in ("pipe.txt", "pipe.jsonl", "pipe.json.gz"):
        os.mkfifo(corpus / name)
        unblock_fifo(corpus / name)
    index = tmp_path / "index"
    t0 = time.monotonic()
    run = newsqa("index", str(corpus), "--index-dir", str(index), env=FAST)
    assert time.monotonic() - t0 < 5, "waited for a writer"
    assert run.code == 0, run.err
    assert sorted(skip_lines(run.err)) == [
        f"skipped {corpus}/{name}: not a regular file (a named pipe)"
        for name in ("pipe.json.gz", "pipe.jsonl", "pipe.txt")
    ]
    assert indexed_titles(index) == ["Harbour bakery wins prize"]
    # The writer lock was released: the next run goes ahead.
    assert newsqa("index", str(corpus), "--index-dir", str(index), env=FAST).code == 0


def test_a_folder_named_like_an_article_is_searched_not_read(
    tmp_path: Path, newsqa: NewsQA
) -> None:
    corpus = good_corpus(tmp_path)
    inner = corpus / "folder.txt"
    inner.mkdir()
    (inner / "inside.txt").write_text(GOOD.replace("Harbour", "Inner"), encoding="utf-8")
    (corpus / "link.txt").symlink_to("folder.txt")  # a link to a folder: not followed, not read
    run = newsqa("index", str(corpus), "--index-dir", str(tmp_path / "index"), env=FAST)
    assert run.code == 0, run.err
    assert skip_lines(run.err) == []
    assert indexed_titles(tmp_path / "index") == [
        "Harbour bakery wins prize",
        "Inner bakery wins prize",
    ]


def test_a_named_folder_or_pipe_given_as_argument(tmp_path: Path, newsqa: NewsQA) -> None:
    corpus = good_corpus(tmp_path)
    os.mkfifo("named.txt")
    run = newsqa(
        "index",
        str(corpus),
        "named.txt",
        "--index-dir",
        str(tmp_path / "i"),
        env=FAST,
    )
    assert run.code == 0, run.err
    assert skip_lines(run.err) == ["skipped named.txt: not a regular file (a named pipe)"]


def deny(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Opening files called ``name`` fails as for a file the user may not read."""
    real_open = os.open

    def fake_open(path: object, *args: object, **kwargs: object) -> int:
        if os.fspath(path).endswith(name):  # type: ignore[call-overload]
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))  # type: ignore[call-overload]
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", fake_open)


def test_an_unreadable_file_is_skipped(
    tmp_path: Path, newsqa: NewsQA, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = good_corpus(tmp_path)
    (corpus / "secret.txt").write_text(GOOD.replace("Harbour", "Secret"), encoding="utf-8")
    deny(monkeypatch, "secret.txt")
    run = newsqa("index", str(corpus), "--index-dir", str(tmp_path / "index"), env=FAST)
    assert run.code == 0, run.err
    assert skip_lines(run.err) == [
        f"skipped {corpus}/secret.txt: cannot read file: Permission denied"
    ]
    assert indexed_titles(tmp_path / "index") == ["Harbour bakery wins prize"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its mode")
def test_an_unreadable_file_is_skipped_for_real(tmp_path: Path, newsqa: NewsQA) -> None:
    corpus = good_corpus(tmp_path)
    secret = corpus / "secret.txt"
    secret.write_text(GOOD.replace("Harbour", "Secret"), encoding="utf-8")
    secret.chmod(0)
    run = newsqa("index", str(corpus), "--index-dir", str(tmp_path / "index"), env=FAST)
    assert run.code == 0, run.err
    assert skip_lines(run.err) == [f"skipped {secret}: cannot read file: Permission denied"]


def test_what_is_still_skipped_is_reported_on_every_run(tmp_path: Path, newsqa: NewsQA) -> None:
    corpus = good_corpus(tmp_path)
    bad = corpus / "feed.jsonl"
    bad.write_text('{"title": "One", "text": "Body one."}\n{broken\n', encoding="utf-8")
    make_dangling(corpus)
    index = tmp_path / "index"
    args = ("index", str(corpus), "--index-dir", str(index))
    expected = [
        f"skipped {corpus}/gone.txt: broken symbolic link (to nowhere.txt)",
        f"skipped {bad}:2: invalid JSON: Expecting property name enclosed in double quotes "
        "(column 2)",
    ]
    first = newsqa(*args, env=FAST)
    assert first.code == 0 and skip_lines(first.err) == expected
    again = newsqa(*args, env=FAST)
    assert again.code == 0 and skip_lines(again.err) == expected
    assert "skipped 2" in again.flat_out and "unchanged 2" in again.flat_out
    strict = newsqa(*args, "--strict", env=FAST)
    assert strict.code == 1
    bad.touch()  # same content, new mtime: still remembered
    (corpus / "gone.txt").unlink()
    later = newsqa(*args, "--strict", env=FAST)
    assert later.code == 1 and skip_lines(later.err) == expected[1:]
    bad.write_text('{"title": "One", "text": "Body one."}\n', encoding="utf-8")
    fixed = newsqa(*args, "--strict", env=FAST)
    assert fixed.code == 0, fixed.err
    assert skip_lines(fixed.err) == [] and "skipped 0" in fixed.flat_out


def test_a_removed_bad_file_is_forgotten(tmp_path: Path, newsqa: NewsQA) -> None:
    corpus = good_corpus(tmp_path)
    make_deep_json(corpus)
    index = tmp_path / "index"
    assert newsqa("index", str(corpus), "--index-dir", str(index), env=FAST).code == 0
    (corpus / "deep.json").unlink()
    run = newsqa("index", str(corpus), "--index-dir", str(index), "--strict", env=FAST)
    assert run.code == 0, run.err
    assert skip_lines(run.err) == []


def test_a_nul_byte_late_in_a_jsonl_file_skips_that_line(tmp_path: Path, newsqa: NewsQA) -> None:
    corpus = good_corpus(tmp_path)
    lines = [f'{{"title": "Record {i}", "text": "{"word " * 600}"}}' for i in range(5)]
    lines[4] = lines[4].replace("word", "wo\x00rd", 1)
    (corpus / "feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = newsqa("index", str(corpus), "--index-dir", str(tmp_path / "index"), env=FAST)
    assert run.code == 0, run.err
    assert skip_lines(run.err) == [f"skipped {corpus}/feed.jsonl:5: binary data (a NUL byte)"]
    assert "index: 5 articles" in run.flat_out


def test_an_article_over_the_size_limit_is_skipped(tmp_path: Path, newsqa: NewsQA) -> None:
    corpus = good_corpus(tmp_path)
    body = "x" * 30_000  # one line, no spaces
    (corpus / "huge.txt").write_text(f"Huge\n\nMay 1, 2023\n\n{body}\n", encoding="utf-8")
    env = {**FAST, "NEWSQA_MAX_ARTICLE_MB": "0.02"}
    run = newsqa("index", str(corpus), "--index-dir", str(tmp_path / "index"), env=env)
    assert run.code == 0, run.err
    assert skip_lines(run.err) == [
        f"skipped {corpus}/huge.txt: article text is 0.0286 MB, over the limit of 0.02 MB "
        "(NEWSQA_MAX_ARTICLE_MB)"
    ]
    assert (
        newsqa("index", "--index-dir", str(tmp_path / "i"), env={"NEWSQA_MAX_ARTICLE_MB": "0"}).code
        == 2
    )
