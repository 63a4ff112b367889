"""Worker threads of the chat app: everything slow runs here and reports with messages.

Loading models, answering, indexing, polling the index, looking up articles and starting a
browser all block; the app calls these methods, which return at once, and gets the results as
``qa.tui.messages`` on its own thread.
"""

from __future__ import annotations

import os
import sys
import time
import webbrowser
from dataclasses import replace
from pathlib import Path

from textual import work
from textual.app import App

from qa.chats import Turn
from qa.followup import QueryRewriter, answer_rewritten
from qa.tui import messages as m
from qa.tui.backend import AnswererFactory, Backend, IndexRunner, StatusReader, describe
from qa.tui.commands import ChatSettings
from qa.types import Citation


def can_open_browser() -> bool:
    """True when ``webbrowser`` can start a graphical browser (not one inside this terminal)."""
    if sys.platform in ("darwin", "win32") or os.environ.get("BROWSER"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class ChatWorkers(App[None]):
    """The app's state shared with its workers, and the workers themselves.

    Args:
        answerer_factory: Builds the answerer for an index folder (called in a worker).
        index_dir: Index folder (chats are saved in ``chats.sqlite`` inside it).
        corpus_dir: Folder offered for indexing when there is no index.
        status_reader: Reads the index status shown in the status bar (polled).
        index_runner: Indexes ``corpus_dir`` into ``index_dir`` with a progress callback.
    """

    def __init__(
        self,
        answerer_factory: AnswererFactory,
        index_dir: Path,
        corpus_dir: Path,
        status_reader: StatusReader,
        index_runner: IndexRunner,
    ) -> None:
        super().__init__()
        self.answerer_factory = answerer_factory
        self.index_dir = index_dir
        self.corpus_dir = corpus_dir
        self.status_reader = status_reader
        self.index_runner = index_runner
        self.backend: Backend | None = None
        self.rewriter = QueryRewriter()
        self._progress_at = 0.0

    @work(thread=True, group="backend", exit_on_error=False)
    def load_backend(self) -> None:
        """Build the answerer and warm it up."""
        try:
            answerer = self.answerer_factory(self.index_dir)
            answerer.warm_up()
            backend = Backend(answerer, self.index_dir)
            self.post_message(m.BackendReady(backend, backend.term_stats()))
        except BaseException as exc:
            self.post_message(m.BackendFailed(exc))

    def poll_index(self) -> None:
        """Read the index status from disk, unless a read is still under way."""
        if not any(w.group == "poll" and not w.is_finished for w in self.workers):
            self._poll()

    @work(thread=True, group="poll", exit_on_error=False)
    def _poll(self) -> None:
        try:
            self.post_message(m.IndexStatus(self.status_reader(self.index_dir)))
        except BaseException as exc:
            self.post_message(m.IndexStatus(None, describe(exc)))

    @work(thread=True, group="ask", exit_on_error=False)
    def answer(
        self,
        question: str,
        view_id: str,
        backend: Backend,
        history: list[Turn],
        settings: ChatSettings,
        chat_id: int | None,
    ) -> None:
        """Rewrite a follow-up, retrieve and read; post the turn."""
        from qa.search.retriever import Filters

        t0 = time.perf_counter()
        try:
            try:
                rw = self.rewriter.rewrite(question, [t.exchange() for t in history])
            except Exception:  # the rewriter only helps: never fail a question on it
                rw = None
            query = rw.query if rw is not None else question
            filters = Filters(settings.since, settings.until, settings.source)
            # Retrieved with the rewrite; a question that leans back is read as rewritten,
            # others as typed (see answer_rewritten).
            resp = (
                answer_rewritten(backend.answerer.ask, rw, settings.k, filters)
                if rw is not None
                else backend.answerer.ask(question, k=settings.k, filters=filters)
            )
            # The pipeline's own timing (retrieve + read) when it reports one.
            took = resp.timings_ms.get("total", (time.perf_counter() - t0) * 1000) / 1000
            turn = Turn.from_response(
                resp,
                searched_for=query if rw is not None and rw.rewritten else "",
                # The dates searched ("articles up to ..., recent first") beside the filters.
                filters=" · ".join(x for x in (settings.describe(), resp.scope) if x),
                k=settings.k,
                seconds=took,
            )
            self.post_message(m.Answered(replace(turn, question=question), chat_id, view_id))
        except BaseException as exc:
            self.post_message(m.AskFailed(question, exc, view_id))

    @work(thread=True, group="index", exit_on_error=False)
    def run_index(self) -> None:
        """Index the corpus folder (progress reported as messages)."""

        def progress(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - self._progress_at >= 0.1 or (total and done >= total):
                self._progress_at = now
                self.post_message(m.IndexProgress(done, total))

        try:
            summary = self.index_runner(self.index_dir, self.corpus_dir, progress)
            self.post_message(m.IndexFinished(summary))
        except BaseException as exc:
            self.post_message(m.IndexFinished("", exc))

    @work(thread=True, group="lookup", exit_on_error=False)
    def look_up(self, citation: Citation, citations: tuple[Citation, ...], switch: bool) -> None:
        """Fetch the full article of a citation."""
        article = None
        if self.backend is not None:
            try:
                article = self.backend.article(citation.article_id)
            except Exception:  # the viewer falls back to the cited passage
                article = None
        self.post_message(m.ArticleLoaded(citation, article, citations, switch))

    @work(thread=True, group="browser", exit_on_error=False)
    def open_browser(self, url: str) -> None:
        """Start a browser on ``url`` when there is one to start."""
        ok = False
        if can_open_browser():
            try:
                ok = webbrowser.open(url, new=2)
            except Exception:
                ok = False
        self.post_message(m.UrlOpened(url, ok))
