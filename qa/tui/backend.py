"""The seam between the chat app and the pipeline: answerer, article lookup, index status.

Tests inject a fake answerer (anything with ``warm_up`` and ``ask``; optionally ``article``),
a status reader and an index runner; the defaults use the real pipeline on an index folder.
Everything here may block, so the app only calls it from worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qa.errors import CorruptIndex, IndexMismatch, IndexNotFound, ModelLoadError, QAError
from qa.index.summary import IndexSummary
from qa.text import printable

if TYPE_CHECKING:
    from qa.followup import TermStats
    from qa.index.store import Store
    from qa.search.retriever import Filters
    from qa.types import Response

# progress(articles_done, articles_total_or_None)
Progress = Callable[[int, int | None], None]


class AnswererLike(Protocol):
    """What the app needs from an answerer (``qa.answer.Answerer`` or a fake)."""

    def warm_up(self) -> None:
        """Load models and index."""
        ...

    def ask(
        self,
        question: str,
        k: int = 5,
        filters: Filters | None = None,
        search_query: str | None = None,
    ) -> Response:
        """Answer one question (retrieved with ``search_query`` when given)."""
        ...


AnswererFactory = Callable[[Path], AnswererLike]
StatusReader = Callable[[Path], "IndexSummary | None"]
IndexRunner = Callable[[Path, Path, Progress], str]


@dataclass(frozen=True)
class ArticleView:
    """An article as the source viewer shows it."""

    id: str
    title: str
    date: str
    url: str
    source: str
    text: str


def default_answerer(
    index_dir: Path, reader: str = "auto", backend: str | None = None
) -> AnswererLike:
    """The real pipeline on ``index_dir`` with the named reader (models load in ``warm_up``)
    and search backend (None: the index's own)."""
    from qa.answer import Answerer

    return Answerer(index_dir, reader=reader, backend=backend)


def read_index_info(index_dir: Path) -> IndexSummary | None:
    """What the status bar shows of the index on disk; None when there is no index.

    Raises:
        QAError: when the index exists but cannot be read.
    """
    from qa.index.summary import summarize

    try:
        return summarize(index_dir)
    except IndexNotFound:
        return None


def run_indexer(
    index_dir: Path, corpus: Path, progress: Progress, backend: str | None = None
) -> str:
    """Index ``corpus`` into ``index_dir`` with the real embedder and publish it to
    ``backend`` (None: the index's own); returns a summary line."""
    from qa.index.folder import embedder_for
    from qa.index.indexer import Indexer
    from qa.search.engines import publisher_for

    if not corpus.exists():
        raise QAError(f"no such folder: {corpus}")
    embedder = embedder_for(index_dir, for_index=True)
    indexer = Indexer(index_dir, embedder, backend=publisher_for(index_dir, backend))
    report = indexer.update([corpus], progress=progress)
    return (
        f"indexed {corpus}/: index has {report.articles} article(s), "
        f"{report.passages} passages (added {report.added}, skipped {report.skipped}) "
        f"in {report.seconds:.1f} s"
    )


def fix_for(exc: BaseException) -> str:
    """What the person should do about an error, in one line."""
    if isinstance(exc, IndexNotFound):
        return (
            "Index your articles: press the button (or type /index) to index the corpus "
            "folder, or run `newsqa index PATH` in a shell; the chat picks the index up "
            "by itself."
        )
    if isinstance(exc, (IndexMismatch, CorruptIndex)):
        return "Rebuild the index: run `newsqa index --rebuild` in a shell, then Retry."
    if isinstance(exc, ModelLoadError):
        return "Reinstall the models: `pip install -e .` in the project folder, then Retry."
    if isinstance(exc, QAError):
        return "Fix the problem above, then Retry (or type /reload)."
    return "This is a bug in newsqa: Retry (or type /reload), and please report it."


def describe(exc: BaseException) -> str:
    """A one-line message for any error (never a traceback)."""
    if isinstance(exc, QAError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


class Backend:
    """Wraps an answerer with what the app needs besides answers.

    Args:
        answerer: The answerer (real or fake).
        index_dir: Index folder, for article lookups when the answerer has none.
    """

    def __init__(self, answerer: AnswererLike, index_dir: Path) -> None:
        self.answerer = answerer
        self.index_dir = index_dir
        self._store: Store | None = None
        self._store_name = ""
        self._lock = threading.Lock()

    def term_stats(self) -> TermStats | None:
        """Document frequencies for the follow-up rewriter (None for fakes without them)."""
        stats = getattr(self.answerer, "term_stats", None)
        if stats is not None:
            return stats  # type: ignore[no-any-return]
        retriever = getattr(self.answerer, "retriever", None)
        if retriever is None or not hasattr(retriever, "_refresh"):
            return None
        from qa.followup import RetrieverStats

        return RetrieverStats(retriever)

    def article(self, article_id: str) -> ArticleView | None:
        """The full article behind a citation, or None when it is no longer indexed."""
        lookup = getattr(self.answerer, "article", None)
        if callable(lookup):
            found: Any = lookup(article_id)
            return found if found is None or isinstance(found, ArticleView) else None
        from qa.index.folder import read_head

        with self._lock:
            head = read_head(self.index_dir) or ""
            if self._store is None or head != self._store_name:
                from qa.index.folder import open_store

                if self._store is not None:
                    self._store.close()
                self._store = open_store(self.index_dir)
                self._store_name = head
            row = self._store.article(article_id)
        if row is None:
            return None
        # As the search side does: an older index may hold terminal escapes (offsets hold).
        title, date, url, source = (
            printable(str(row[k]), single_line=True) for k in ("title", "date", "url", "source")
        )
        return ArticleView(str(row["id"]), title, date, url, source, printable(str(row["text"])))

    def close(self) -> None:
        """Close the lookup connection."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
