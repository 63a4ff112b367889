"""Keep an index in step with a folder of articles as files change (``newsqa watch``).

A watchdog observer reports file-system events under the folder; events that concern article
files mark the index "dirty". A loop thread waits until the folder has been quiet for
``debounce`` seconds (so a burst of writes becomes one run) and then calls
``Indexer.update([folder])``, which handles new, changed, renamed and deleted files
incrementally.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from qa.index.indexer import Indexer, IndexReport
from qa.ingest.files import file_kind

__all__ = ["Watcher", "status_line"]

# Event kinds that can change what the folder holds (opened / closed-without-write / attrib
# events are ignored, so the indexer reading a file never triggers another run).
_FILE_EVENTS = frozenset(
    {
        EVENT_TYPE_CREATED,
        EVENT_TYPE_MODIFIED,
        EVENT_TYPE_MOVED,
        EVENT_TYPE_DELETED,
        EVENT_TYPE_CLOSED,
    }
)
# A folder's "modified" event fires for every change inside it: only these matter.
_DIR_EVENTS = frozenset({EVENT_TYPE_CREATED, EVENT_TYPE_MOVED, EVENT_TYPE_DELETED})
_MAX_BACKOFF = 60.0


class _Handler(FileSystemEventHandler):
    """Forwards watchdog events to the watcher."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Mark the watcher dirty when the event concerns an article file.

        Args:
            event: The watchdog event.
        """
        self._watcher.notice(event)


class Watcher:
    """Re-indexes a folder after its article files change.

    Args:
        folder: Folder of article files, watched recursively.
        indexer: Indexer of the target index; ``update([folder])`` is called per run.
        debounce: Seconds without relevant events before a run starts.
        on_report: Called with the report of every completed run (from the loop thread).
        on_error: Called with the exception of a failed run (from the loop thread); the
            watcher keeps running and retries later, backing off while failures repeat.
        max_wait: Longest delay, in seconds, between the first event of a burst and its run,
            so that a folder that never goes quiet is still indexed.
        retry: Seconds before the first retry of a failed run.
    """

    def __init__(
        self,
        folder: Path,
        indexer: Indexer,
        debounce: float = 0.5,
        on_report: Callable[[IndexReport], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        max_wait: float = 10.0,
        retry: float = 2.0,
    ) -> None:
        self.folder = folder
        self.indexer = indexer
        self.debounce = debounce
        self.on_report = on_report
        self.on_error = on_error
        self.max_wait = max(max_wait, debounce)
        self.retry = retry
        self.runs = 0
        self._root = folder.resolve()
        self._index_root = indexer.root.resolve()
        self._cond = threading.Condition()
        self._due: float | None = None
        self._first: float | None = None
        self._backoff = retry
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching, then run an initial update so the index matches the folder.

        Raises:
            RuntimeError: When the watcher is already running.
            NotADirectoryError: When the folder is not a folder.
        """
        if self._thread is not None:
            raise RuntimeError("watcher already started")
        if not self._root.is_dir():
            raise NotADirectoryError(str(self.folder))
        self._stopping = False
        observer = Observer()
        observer.schedule(_Handler(self), str(self._root), recursive=True)
        observer.daemon = True
        observer.start()  # before the initial run, so no change in between is missed
        self._observer = observer
        with self._cond:
            now = time.monotonic()
            self._due, self._first = now, now
        self._thread = threading.Thread(target=self._loop, name="newsqa-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop watching; a run in progress is finished first.

        Args:
            timeout: Seconds to wait for each thread to end (None: as long as it takes).
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        """Whether the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- events ------------------------------------------------------------------------------

    def relevant(self, path: str, is_directory: bool = False) -> bool:
        """Whether a changed path can affect the index.

        Hidden files and folders (and so editor swap files such as ``.foo.swp``), names
        without a known article suffix (``foo.txt~``, ``foo.txt.tmp``) and anything inside
        the index folder are ignored.

        Args:
            path: Absolute path from an event.
            is_directory: Whether the path is a folder (any name counts).

        Returns:
            True when the path is an article file (or a folder) under the watched folder.
        """
        p = Path(path)
        try:
            rel = p.relative_to(self._root)
        except ValueError:
            return False
        if any(part.startswith(".") for part in rel.parts):
            return False
        if p == self._index_root or self._index_root in p.parents:
            return False
        if is_directory:
            return p != self._root
        return file_kind(p.name) is not None

    def notice(self, event: FileSystemEvent) -> None:
        """Mark the index dirty when an event concerns article files.

        Args:
            event: A watchdog event.
        """
        kinds = _DIR_EVENTS if event.is_directory else _FILE_EVENTS
        if event.event_type not in kinds:
            return
        paths = [os.fsdecode(event.src_path)]
        if event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        if any(self.relevant(p, event.is_directory) for p in paths):
            self.mark_dirty()

    def mark_dirty(self) -> None:
        """Schedule a run ``debounce`` seconds from now (later events push it back)."""
        with self._cond:
            now = time.monotonic()
            if self._first is None:
                self._first = now
            self._due = min(now + self.debounce, self._first + self.max_wait)
            self._cond.notify_all()

    # -- loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._due is None:
                        self._cond.wait()
                        continue
                    wait = self._due - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return
                self._due = self._first = None
            self._run_once()

    def _run_once(self) -> None:
        try:
            report = self.indexer.update([self.folder])
        except Exception as exc:  # one failed run must not end the watcher
            with self._cond:
                # Retry later (a file vanished mid-run, the lock was busy...), backing off.
                now = time.monotonic()
                due = now + self._backoff
                self._due = due if self._due is None else min(self._due, due)
                self._first = self._first or now
                self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
            if self.on_error is not None:
                self.on_error(exc)
            return
        self._backoff = self.retry
        self.runs += 1
        if self.on_report is not None:
            try:
                self.on_report(report)
            except Exception as exc:  # a failing callback must not end the loop
                if self.on_error is not None:
                    self.on_error(exc)


def status_line(report: IndexReport, when: float | None = None) -> str:
    """One line for a person about one run, e.g. for ``newsqa watch``.

    Args:
        report: The run's report.
        when: Wall-clock time of the run (``time.time()``); now when None.

    Returns:
        ``HH:MM:SS added A, updated U, removed R, skipped S; 0.12 s; generation G (N articles)``.
    """
    stamp = time.strftime("%H:%M:%S", time.localtime(when))
    return (
        f"{stamp} added {report.added}, updated {report.updated}, removed {report.removed}, "
        f"skipped {report.skipped}; {report.seconds:.2f} s; generation {report.generation} "
        f"({report.articles} articles)"
    )
