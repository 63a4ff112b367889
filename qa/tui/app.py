"""The chat app: transcript of answer cards, input with history and /commands, status bar.

All slow work (loading models, answering, indexing, polling the index, looking up articles,
starting a browser) runs in thread workers that report back with messages (see
``qa.tui.messages``), so typing, scrolling and quitting never wait for it.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from qa.chats import ChatStore, Turn
from qa.errors import IndexNotFound
from qa.followup import QueryRewriter
from qa.index.summary import IndexSummary
from qa.text import printable
from qa.tui import messages as m
from qa.tui.backend import AnswererFactory, IndexRunner, StatusReader, describe, fix_for
from qa.tui.commands import ChatSettings, is_command, run_command
from qa.tui.panels import ErrorPanel, StatusBar, WorkingLine
from qa.tui.screens import ChatsScreen, HelpScreen, SourceScreen, SwitchCitation
from qa.tui.widgets import AnswerCard, PromptInput, QuestionView, SystemLine
from qa.tui.workers import ChatWorkers

WELCOME = (
    "Ask a question about the articles in your index, e.g. “Who boycotted the Sochi "
    "conference?”. Follow-ups like “Why did they refuse?” keep the subject. "
    "/help lists commands, F1 the keys."
)


M = TypeVar("M", bound=Message)


def live(handler: Callable[[NewsQAApp, M], None]) -> Callable[[NewsQAApp, M], None]:
    """Skip a worker's report that arrives while the app is shutting down (no screens)."""

    @functools.wraps(handler)
    def wrapper(app: NewsQAApp, msg: M) -> None:
        if app.screen_stack:
            handler(app, msg)

    return wrapper


class TurnView(Vertical):
    """A question and, once it comes, its answer card (or error)."""

    DEFAULT_CSS = "TurnView { height: auto; }"


class NewsQAApp(ChatWorkers):
    """``newsqa chat``.

    Args:
        answerer_factory: Builds the answerer for an index folder (called in a worker).
        index_dir: Index folder (chats are saved in ``chats.sqlite`` inside it).
        corpus_dir: Folder offered for indexing when there is no index.
        status_reader: Reads the index status shown in the status bar (polled).
        index_runner: Indexes ``corpus_dir`` into ``index_dir`` with a progress callback.
        poll_seconds: How often the index generation on disk is checked.
    """

    TITLE = "newsqa"
    SUB_TITLE = "news QA chat"
    CSS = """
    #transcript { height: 1fr; padding: 0 1; }
    .welcome { color: $text-muted; padding: 1 1; }
    PromptInput { margin: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+n", "new_chat", "New chat"),
        Binding("f2,ctrl+h", "chats", "Chats", key_display="F2"),
        Binding("escape", "focus_last_card", "Answers", show=False),
    ]

    def __init__(
        self,
        answerer_factory: AnswererFactory,
        index_dir: Path,
        corpus_dir: Path,
        status_reader: StatusReader,
        index_runner: IndexRunner,
        poll_seconds: float = 3.0,
    ) -> None:
        super().__init__(answerer_factory, index_dir, corpus_dir, status_reader, index_runner)
        self.poll_seconds = poll_seconds
        self.models = "loading"
        self.failure: BaseException | None = None
        self.settings = ChatSettings()
        self.turns: list[Turn] = []
        self.queue: deque[tuple[str, str]] = deque()
        self.busy = False
        self.chat_id: int | None = None
        self.chat_store: ChatStore | None = None
        self.info: IndexSummary | None = None
        self.index_note = "checking index…"
        self._views = 0

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        """Header, transcript, spinner, input, status bar, footer."""
        yield Header()
        with VerticalScroll(id="transcript"):
            yield Static(WELCOME, classes="welcome")
        yield WorkingLine()
        yield PromptInput(placeholder="Ask a question, or /help", id="prompt")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        """Start loading, polling and the chat store; focus the input."""
        self.main.query_one("#transcript", VerticalScroll).anchor()
        self.main.query_one(PromptInput).focus()
        try:
            self.chat_store = ChatStore.for_index(self.index_dir)
            self.main.query_one(PromptInput).history = self.chat_store.recent_questions()
            self.main.query_one(PromptInput).remember("")
        except Exception as exc:  # read-only folder, damaged file: chat works, unsaved
            self.notify(
                printable(f"chats will not be saved: {describe(exc)}", single_line=True),
                severity="warning",
                markup=False,
            )
        self._refresh_status()
        self.load_backend()
        self.poll_index()
        self.set_interval(self.poll_seconds, self.poll_index)

    def on_unmount(self) -> None:
        """Close the chat file and the article lookup connection."""
        if self.chat_store is not None:
            self.chat_store.close()
        if self.backend is not None:
            self.backend.close()

    @property
    def main(self) -> Screen[Any]:
        """The chat screen (queries go here even while a viewer or help screen is on top)."""
        return self.screen_stack[0] if self.screen_stack else self.screen

    def _refresh_status(self) -> None:
        for bar in self.main.query(StatusBar):
            bar.show(
                self.models, self.info, self.index_note, self.settings.describe(), self.settings.k
            )

    @property
    def transcript(self) -> VerticalScroll:
        """The scrolling transcript."""
        return self.main.query_one("#transcript", VerticalScroll)

    def _append(self, widget: Static | Vertical) -> None:
        self.main.query(".welcome").remove()
        self.transcript.mount(widget)
        self.transcript.scroll_end(animate=False)

    # -- backend life cycle -------------------------------------------------------------------
    @live
    def on_backend_ready(self, msg: m.BackendReady) -> None:
        """Models are loaded: answer what is waiting."""
        if self.backend is not None:
            self.backend.close()
        self.backend, self.models, self.failure = msg.backend, "ready", None
        self.rewriter = QueryRewriter(msg.stats)
        self.main.query(".backend-error").remove()
        self._refresh_status()
        self.poll_index()
        self._pump()

    @live
    def on_backend_failed(self, msg: m.BackendFailed) -> None:
        """Show the error panel (with an offer to index when there is no index)."""
        self.backend, self.models, self.failure = None, "failed", msg.error
        self._refresh_status()
        self.main.query(".backend-error").remove()
        offer = ""
        if isinstance(msg.error, IndexNotFound) and self.corpus_dir.is_dir():
            offer = f"{self.corpus_dir}/"
        panel = ErrorPanel(
            "Cannot answer yet", describe(msg.error), fix_for(msg.error), offer_index=offer
        )
        # A class, not an id: removal is deferred, and a new chat (or a retry) mounts the
        # next panel before the old one is gone; two equal ids would crash the app.
        panel.add_class("backend-error")
        self._append(panel)
        self._fail_queue()
        if offer and not self.main.query_one(PromptInput).value:
            panel.call_after_refresh(lambda: panel.query_one("#index").focus())

    def _fail_queue(self) -> None:
        while self.queue:
            _, view_id = self.queue.popleft()
            for view in self.main.query(f"#{view_id}"):
                line = SystemLine("not answered: the index is not ready (see above)", True)
                view.call_after_refresh(view.mount, line)
        self.main.query_one(WorkingLine).stop()

    @on(ErrorPanel.Action)
    def _panel_action(self, msg: ErrorPanel.Action) -> None:
        self._backend_action(msg.action)

    def _backend_action(self, action: str) -> None:
        if action == "index":
            if self.models == "indexing":
                self._append(SystemLine("already indexing"))
                return
            if not self.main.query(".backend-error #index"):
                self._append(
                    SystemLine(
                        "/index is offered when there is no index; to update "
                        "one, run `newsqa index` in a shell",
                        error=True,
                    )
                )
                return
            self.models = "indexing"
            self._refresh_status()
            for panel in self.main.query(".backend-error").results(ErrorPanel):
                panel.show_progress(0, None, f"indexing {self.corpus_dir}/ …")
            self.run_index()
        elif action == "retry":
            self._retry()

    def _retry(self) -> None:
        self.main.query(".backend-error").remove()
        self.models = "loading"
        self._refresh_status()
        self.main.query_one(PromptInput).focus()
        self.load_backend()

    @live
    def on_index_progress(self, msg: m.IndexProgress) -> None:
        """Move the progress bar."""
        of = f" of {msg.total}" if msg.total else ""
        for panel in self.main.query(".backend-error").results(ErrorPanel):
            panel.show_progress(msg.done, msg.total, f"indexing: {msg.done}{of} articles")

    @live
    def on_index_finished(self, msg: m.IndexFinished) -> None:
        """Load the fresh index (or show why indexing failed)."""
        if msg.error is not None:
            self.on_backend_failed(m.BackendFailed(msg.error))
            return
        self._append(SystemLine(msg.summary))
        self._retry()
        self.poll_index()

    @live
    def on_index_status(self, msg: m.IndexStatus) -> None:
        """Status bar; notice (and pick up) a new generation written by `newsqa index`."""
        old = self.info
        self.info, self.index_note = msg.info, msg.error or ("no index" if not msg.info else "")
        if msg.info and old and msg.info.generation != old.generation:
            self.notify(
                f"index updated: generation {msg.info.generation}, {msg.info.articles:,} articles"
            )
        if msg.info and self.models == "failed" and isinstance(self.failure, IndexNotFound):
            self._retry()  # an index appeared (indexed from a shell)
        self._refresh_status()

    # -- asking -----------------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        text = " ".join(event.value.split())
        prompt = self.main.query_one(PromptInput)
        prompt.value = ""
        if not text:
            return
        prompt.remember(text)
        if is_command(text):
            self._command(text)
            return
        self._views += 1
        view = TurnView(QuestionView(text), id=f"turn-{self._views}")
        self._append(view)
        if self.chat_id is None and self.chat_store is not None:
            self.chat_id = self.chat_store.new_chat()
        self.queue.append((text, view.id or ""))
        self._pump()

    def _pump(self) -> None:
        working = self.main.query_one(WorkingLine)
        if self.busy:
            return
        if not self.queue:
            working.stop()
            return
        if self.backend is None:
            if self.models == "failed":
                self._fail_queue()
            else:
                what = "index" if self.models == "indexing" else "models"
                working.start(
                    f"waiting for the {what} to load… {len(self.queue)} question(s) queued"
                )
            return
        question, view_id = self.queue.popleft()
        self.busy = True
        working.start(f"searching and reading: {question}")
        self.answer(question, view_id, self.backend, list(self.turns), self.settings, self.chat_id)

    @live
    def on_answered(self, msg: m.Answered) -> None:
        """Show the answer card, save the turn, go on with the queue."""
        self.busy = False
        if self.chat_store is not None and msg.chat_id is not None:
            try:
                self.chat_store.add_turn(msg.chat_id, msg.turn)
            except Exception as exc:
                self.notify(
                    printable(f"could not save the chat: {describe(exc)}", single_line=True),
                    severity="warning",
                    markup=False,
                )
        if msg.chat_id == self.chat_id:
            self.turns.append(msg.turn)
            for view in self.main.query(f"#{msg.view_id}"):
                view.mount(AnswerCard(msg.turn))
            self.transcript.scroll_end(animate=False)
        self._pump()

    @live
    def on_ask_failed(self, msg: m.AskFailed) -> None:
        """Show why the question could not be answered."""
        self.busy = False
        for view in self.main.query(f"#{msg.view_id}"):
            view.mount(
                ErrorPanel("Could not answer", describe(msg.error), fix_for(msg.error), retry=False)
            )
        self.transcript.scroll_end(animate=False)
        self._pump()

    def _command(self, text: str) -> None:
        result = run_command(text, self.settings)
        if result.action == "clear":
            self.action_new_chat()
            return
        if result.action in ("index", "retry"):
            self._backend_action(result.action)
            return
        self.settings = result.settings
        self._append(SystemLine(result.message, error=result.error))
        self._refresh_status()

    # -- citations and URLs -----------------------------------------------------------------
    def on_answer_card_open_citation(self, msg: AnswerCard.OpenCitation) -> None:
        """Open a citation in the source viewer."""
        cite = next((c for c in msg.turn.citations if c.n == msg.n), None)
        if cite is not None:
            self.look_up(cite, msg.turn.citations, False)

    def on_switch_citation(self, msg: SwitchCitation) -> None:
        """Left/right in the source viewer."""
        screen = self.screen
        if isinstance(screen, SourceScreen):
            self.look_up(msg.citation, screen.citations, True)

    @live
    def on_article_loaded(self, msg: m.ArticleLoaded) -> None:
        """Push (or swap in) the source viewer."""
        screen = SourceScreen(msg.citation, msg.article, msg.citations)
        if msg.switch and isinstance(self.screen, SourceScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def on_answer_card_open_url(self, msg: AnswerCard.OpenURL) -> None:
        """Open a URL (from a card or the source viewer)."""
        self.open_browser(msg.url)

    @live
    def on_url_opened(self, msg: m.UrlOpened) -> None:
        """Say what happened; without a browser, copy the URL instead."""
        if msg.ok:
            self.notify(printable(f"opened {msg.url}", single_line=True), markup=False)
        else:
            self.copy_to_clipboard(printable(msg.url, single_line=True))
            self.notify("no browser available here: URL copied to the clipboard")

    # -- actions ----------------------------------------------------------------------------
    def action_help(self) -> None:
        """Show every binding and command."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_new_chat(self) -> None:
        """Clear the transcript and start a new chat (the old one stays saved)."""
        self.transcript.remove_children()
        self.transcript.mount(Static(WELCOME, classes="welcome"))
        self.turns, self.chat_id = [], None
        self.queue.clear()
        if self.models == "failed" and self.failure is not None:
            self.on_backend_failed(m.BackendFailed(self.failure))
        self.main.query_one(PromptInput).focus()
        self.notify("new chat")

    def action_chats(self) -> None:
        """List saved chats; reopen the one chosen."""
        if self.chat_store is None:
            self.notify("chats are not saved in this session", severity="warning")
            return
        if not isinstance(self.screen, ChatsScreen):
            self.push_screen(ChatsScreen(self.chat_store, self.chat_id), self._reopen)

    def _reopen(self, chat_id: int | None) -> None:
        if chat_id is None or self.chat_store is None:
            return
        turns = self.chat_store.turns(chat_id)
        self.transcript.remove_children()
        self.turns, self.chat_id = turns, chat_id
        self.queue.clear()
        for turn in turns:
            self._views += 1
            self.transcript.mount(
                TurnView(QuestionView(turn.question), AnswerCard(turn), id=f"turn-{self._views}")
            )
        self.transcript.scroll_end(animate=False)
        self.notify(f"reopened chat ({len(turns)} turns)")

    def action_focus_last_card(self) -> None:
        """Focus the latest answer card (escape from the input)."""
        cards = self.main.query(AnswerCard)
        if cards:
            cards.last().focus()
            cards.last().scroll_visible()
