"""Messages that worker threads post back to the app (the only way they touch the UI)."""

from __future__ import annotations

from textual.message import Message

from qa.chats import Turn
from qa.followup import TermStats
from qa.index.summary import IndexSummary
from qa.tui.backend import ArticleView, Backend
from qa.types import Citation


class BackendReady(Message):
    """Models and index are loaded."""

    def __init__(self, backend: Backend, stats: TermStats | None) -> None:
        super().__init__()
        self.backend = backend
        self.stats = stats


class BackendFailed(Message):
    """Loading the answerer failed (no index, model missing, corrupt index ...)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


class Answered(Message):
    """A question was answered (``turn.answer`` None: no answer in the corpus)."""

    def __init__(self, turn: Turn, chat_id: int | None, view_id: str) -> None:
        super().__init__()
        self.turn = turn
        self.chat_id = chat_id
        self.view_id = view_id


class AskFailed(Message):
    """Answering raised an error."""

    def __init__(self, question: str, error: BaseException, view_id: str) -> None:
        super().__init__()
        self.question = question
        self.error = error
        self.view_id = view_id


class IndexStatus(Message):
    """The index on disk as polled (``info`` None: no index; ``error``: unreadable)."""

    def __init__(self, info: IndexSummary | None, error: str = "") -> None:
        super().__init__()
        self.info = info
        self.error = error


class IndexProgress(Message):
    """Indexing progress."""

    def __init__(self, done: int, total: int | None) -> None:
        super().__init__()
        self.done = done
        self.total = total


class IndexFinished(Message):
    """Indexing ended: a summary line, or the error."""

    def __init__(self, summary: str, error: BaseException | None = None) -> None:
        super().__init__()
        self.summary = summary
        self.error = error


class ArticleLoaded(Message):
    """The article behind a citation was looked up (None: not in the index)."""

    def __init__(
        self,
        citation: Citation,
        article: ArticleView | None,
        citations: tuple[Citation, ...],
        switch: bool,
    ) -> None:
        super().__init__()
        self.citation = citation
        self.article = article
        self.citations = citations
        self.switch = switch


class UrlOpened(Message):
    """A browser was (``ok``) or could not be started for ``url``."""

    def __init__(self, url: str, ok: bool) -> None:
        super().__init__()
        self.url = url
        self.ok = ok
