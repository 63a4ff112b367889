"""``newsqa chat``: a Textual chat over the index, with citations and a source viewer."""

from __future__ import annotations

import functools
import os
import sys
import threading
from pathlib import Path

from qa.index.summary import IndexSummary
from qa.tui.app import NewsQAApp
from qa.tui.backend import (
    AnswererFactory,
    AnswererLike,
    ArticleView,
    IndexRunner,
    StatusReader,
    default_answerer,
    read_index_info,
    run_indexer,
)

__all__ = ["AnswererLike", "ArticleView", "IndexSummary", "NewsQAApp", "create_app", "run_chat"]


def create_app(
    answerer_factory: AnswererFactory | None = None,
    index_dir: Path = Path("index"),
    corpus_dir: Path = Path("corpus"),
    status_reader: StatusReader | None = None,
    index_runner: IndexRunner | None = None,
    poll_seconds: float = 3.0,
) -> NewsQAApp:
    """Build the chat app.

    Args:
        answerer_factory: ``index_dir -> answerer`` (default: the real pipeline). Tests pass a
            fake with ``warm_up()``, ``ask(question, k, filters)`` and optionally
            ``article(article_id) -> ArticleView | None``.
        index_dir: Index folder; chats are saved in ``index_dir/chats.sqlite``.
        corpus_dir: Folder offered for indexing when there is no index.
        status_reader: ``index_dir -> IndexSummary | None`` (default: read the index on disk).
        index_runner: ``(index_dir, corpus_dir, progress) -> summary`` (default: the Indexer).
        poll_seconds: How often the index on disk is checked for a new generation.

    Returns:
        The app (call ``run()``, or ``run_test()`` in tests).
    """
    return NewsQAApp(
        answerer_factory or default_answerer,
        index_dir,
        corpus_dir,
        status_reader or read_index_info,
        index_runner or run_indexer,
        poll_seconds,
    )


def run_chat(
    index_dir: Path,
    corpus_dir: Path = Path("corpus"),
    reader: str = "auto",
    backend: str | None = None,
) -> None:
    """Run the app in this terminal; returns when the person quits.

    ``reader`` names the reader as for ``newsqa ask --reader``, ``backend`` the search backend
    as ``--backend`` does (None: the index's own).

    Worker threads still loading a model or indexing are not waited for: the index keeps its
    last complete generation, so the process exits at once.
    """
    factory = functools.partial(default_answerer, reader=reader, backend=backend)
    runner = functools.partial(run_indexer, backend=backend)
    app = create_app(factory, index_dir=index_dir, corpus_dir=corpus_dir, index_runner=runner)
    app.run()
    busy = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and t.is_alive() and not t.daemon
    ]
    if busy:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(app.return_code or 0)
