"""Unit tests for qa.index.watch: a folder watcher that keeps the index in step (HashEmbedder)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qa.index.chunk import Chunker
from qa.index.embed import HashEmbedder
from qa.index.indexer import Indexer, IndexReport
from qa.index.watch import Watcher
from qa.search.retriever import Retriever

pytestmark = pytest.mark.timeout(30)

TIMEOUT = 5.0
TOPICS = {
    "bridge": (
        "City council approves the Elm Street bridge budget",
        "The council voted to approve a budget for replacing the Elm Street bridge.",
    ),
    "volcano": (
        "Volcano erupts near the coastal village",
        "A volcano erupted overnight sending lava toward the coastal village.",
    ),
    "chess": (
        "Teenager wins the national chess championship",
        "A fifteen year old won the national chess championship on Sunday.",
    ),
}


def write_article(folder: Path, name: str, topic: str, extra: str = "") -> Path:
    """Write a plain-text article (title, date, paragraph, url trailer)."""
    title, text = TOPICS[topic]
    path = folder / f"{name}.txt"
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(
        f"{title}\n\nApril 11, 2023\n\n{text} {extra}\n\nOriginal url:\n"
        f"<https://www.example.com/{name}>\n",
        encoding="utf-8",
    )
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000))
    return path


class Reports:
    """Collects watcher reports and errors; lets a test wait for one."""

    def __init__(self) -> None:
        self.items: list[IndexReport] = []
        self.errors: list[BaseException] = []
        self.cond = threading.Condition()

    def add(self, report: IndexReport) -> None:
        with self.cond:
            self.items.append(report)
            self.cond.notify_all()

    def error(self, exc: BaseException) -> None:
        with self.cond:
            self.errors.append(exc)
            self.cond.notify_all()

    def wait(
        self, pred: Callable[[IndexReport], bool], start: int, timeout: float = TIMEOUT
    ) -> IndexReport:
        """The first report from index ``start`` on that satisfies ``pred``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for r in self.items[start:]:
                    if pred(r):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching report in {timeout} s: {self.items[start:]}"
                        f" errors={self.errors}"
                    )
                self.cond.wait(left)

    def __len__(self) -> int:
        with self.cond:
            return len(self.items)


def titles(index: Path, query: str) -> list[str]:
    return [h.title for h in Retriever(index, HashEmbedder(64)).search(query, k=5)]


@pytest.fixture()
def setup(tmp_path: Path) -> Iterator[tuple[Path, Path, Watcher, Reports]]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_article(corpus, "bridge", "bridge")
    index = tmp_path / "index"
    indexer = Indexer(index, HashEmbedder(64), chunker=Chunker(model_max_tokens=None))
    reports = Reports()
    watcher = Watcher(corpus, indexer, debounce=0.3, on_report=reports.add, on_error=reports.error)
    watcher.start()
    try:
        reports.wait(lambda r: r.added == 1, 0)  # the initial update
        yield corpus, index, watcher, reports
    finally:
        watcher.stop(timeout=10)
    assert not watcher.running


def test_add_modify_rename_delete(setup: tuple[Path, Path, Watcher, Reports]) -> None:
    corpus, index, _watcher, reports = setup
    n = len(reports)
    write_article(corpus, "volcano", "volcano")
    r = reports.wait(lambda r: r.added == 1, n)
    assert r.articles == 2
    assert "Volcano erupts near the coastal village" in titles(index, "volcano lava village")

    n = len(reports)
    write_article(corpus, "volcano", "volcano", extra="Ash covered the harbour.")
    r = reports.wait(lambda r: r.updated == 1, n)
    assert r.articles == 2 and r.added == 0

    n = len(reports)
    os.rename(corpus / "volcano.txt", corpus / "eruption.txt")
    r = reports.wait(lambda r: r.generation > 0, n)
    assert r.passages_embedded == 0 and r.removed == 0 and r.articles == 2
    assert "Volcano erupts near the coastal village" in titles(index, "volcano lava village")

    n = len(reports)
    (corpus / "eruption.txt").unlink()
    r = reports.wait(lambda r: r.removed == 1, n)
    assert r.articles == 1
    assert "Volcano erupts near the coastal village" not in titles(index, "volcano lava village")
    assert not reports.errors


def test_bad_file_is_skipped_and_watching_goes_on(
    setup: tuple[Path, Path, Watcher, Reports],
) -> None:
    corpus, index, watcher, reports = setup
    n = len(reports)
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02 not text \x00")
    r = reports.wait(lambda r: r.skipped >= 1, n)
    assert any("binary.txt" in line for line in r.skips)
    assert watcher.running

    n = len(reports)
    write_article(corpus, "chess", "chess")
    r = reports.wait(lambda r: r.added == 1, n)
    assert "Teenager wins the national chess championship" in titles(index, "chess championship")
    assert not reports.errors


def test_burst_of_writes_is_one_run(setup: tuple[Path, Path, Watcher, Reports]) -> None:
    corpus, _index, watcher, reports = setup
    n = len(reports)
    runs = watcher.runs
    for i in range(5):  # well within the 0.3 s debounce of each other
        write_article(corpus, f"chess-{i}", "chess", extra=f"Game {i} of the match.")
        time.sleep(0.02)
    r = reports.wait(lambda r: r.added == 5, n)
    time.sleep(watcher.debounce + 0.3)  # a second run would have started by now
    assert watcher.runs == runs + 1 and len(reports) == n + 1
    assert r.articles == 6


def test_ignored_files_do_not_trigger_runs(setup: tuple[Path, Path, Watcher, Reports]) -> None:
    corpus, _index, watcher, reports = setup
    runs = watcher.runs
    (corpus / ".bridge.txt.swp").write_text("swap")
    (corpus / "bridge.txt~").write_text("backup")
    (corpus / "notes.tmp").write_text("temp")
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "a.txt").write_text("hidden")
    time.sleep(watcher.debounce + 0.3)
    assert watcher.runs == runs
    assert watcher.relevant(str(corpus.resolve() / "sub" / "a.md"))
    assert not watcher.relevant(str(corpus.resolve() / "sub" / ".a.md"))
    assert not reports.errors


def test_index_inside_corpus_is_ignored(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_article(corpus, "bridge", "bridge")
    index = corpus / "index"
    indexer = Indexer(index, HashEmbedder(64), chunker=Chunker(model_max_tokens=None))
    reports = Reports()
    with Watcher(
        corpus, indexer, debounce=0.2, on_report=reports.add, on_error=reports.error
    ) as watcher:
        reports.wait(lambda r: r.added == 1, 0)
        assert not watcher.relevant(str(index.resolve() / "x.json"))
        time.sleep(0.6)  # the index's own writes must not cause further runs
        assert watcher.runs == 1
    assert not watcher.running


def test_failed_run_is_reported_and_retried(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_article(corpus, "bridge", "bridge")

    class Flaky(Indexer):
        calls = 0

        def update(self, paths, rebuild=False, progress=None, prune=True):  # type: ignore[no-untyped-def]
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("boom")
            return super().update(paths, rebuild=rebuild, progress=progress, prune=prune)

    indexer = Flaky(tmp_path / "index", HashEmbedder(64), chunker=Chunker(model_max_tokens=None))
    reports = Reports()
    with Watcher(
        corpus, indexer, debounce=0.1, on_report=reports.add, on_error=reports.error, retry=0.2
    ) as watcher:
        r = reports.wait(lambda r: r.added == 1, 0)
        assert [str(e) for e in reports.errors] == ["boom"]
        assert r.articles == 1 and watcher.running
