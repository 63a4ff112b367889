"""``newsqa add``: bring article pages, RSS/Atom feeds and local files into the corpus folder.

Each new web article is saved as one file in the canonical plain-text format (title line, date
line, paragraphs, ``Original url:`` trailer; see :func:`render_article`), so the corpus stays
the source of truth and can always be re-indexed from scratch. Local files are copied in as
they are, once they parse as at least one article. Files appear atomically (written to a
hidden temporary file, then linked or renamed into place) and never replace a different file.

Already seen: the corpus itself is the record (:class:`CorpusCatalog`). A URL or feed entry
whose URL is already in the corpus, or a page whose article (same title and text) is, is
skipped. A separate "seen" file would drift from what is actually indexed: one in the index
folder is lost with a fresh index folder and misses ``--no-index`` runs, and either kind goes
stale when a person edits or moves corpus files. The price: an article deleted from the corpus
comes back on the next run of its feed.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from qa.errors import FetchError
from qa.ingest.fetch import Extracted, Fetched, extract_article, feed_links, fetch, page_kind
from qa.ingest.files import Ingestor, Skipped, file_kind
from qa.ingest.formats import normalize_text, parse_plain, tidy_body
from qa.types import Article

__all__ = ["AddReport", "Adder", "CorpusCatalog", "Outcome", "render_article"]

Status = Literal["added", "present", "failed"]
# Written as the photo-credit line when the body's first paragraph would otherwise be taken for
# one (a short line without punctuation right under the date is dropped by the txt parser).
_CREDIT_GUARD = "Saved with newsqa add"
_SLUG_CHARS = 60


@dataclass(frozen=True)
class Outcome:
    """What happened to one source (a URL, a feed entry or a file).

    Attributes:
        source: The URL or file as given (for feed entries: the entry's link).
        status: ``added``, ``present`` (already in the corpus) or ``failed``.
        detail: The corpus file (added, present) or why it failed.
        path: The corpus file written, for ``added``.
    """

    source: str
    status: Status
    detail: str
    path: Path | None = None

    def line(self) -> str:
        """One line for a person, e.g. ``added   corpus/2023-04-11-x.txt  <- https://...``."""
        if self.status == "added":
            return f"added    {self.detail}  <- {self.source}"
        if self.status == "present":
            return f"present  {self.source}  (already in the corpus: {self.detail})"
        return f"failed   {self.source}: {self.detail}"


@dataclass
class AddReport:
    """Everything one ``newsqa add`` run did, in order."""

    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        """How many outcomes have the given status."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def new_paths(self) -> list[Path]:
        """The corpus files written in this run (to be indexed)."""
        return [o.path for o in self.outcomes if o.status == "added" and o.path is not None]

    def summary(self) -> str:
        """Totals, e.g. ``2 added, 1 already present, 0 failed``."""
        return (
            f"{self.count('added')} added, {self.count('present')} already present, "
            f"{self.count('failed')} failed"
        )

    def error(self) -> str | None:
        """The one-line error when nothing was added because of failures, else None."""
        failed = [o for o in self.outcomes if o.status == "failed"]
        if self.count("added") or not failed:
            return None
        if len(failed) == 1:
            return f"{failed[0].source}: {failed[0].detail}"
        return f"nothing added: {len(failed)} sources failed (see above)"


def normalize_url(url: str) -> str:
    """A comparison key for URLs: scheme and host in lower case, no fragment."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, "")
    )


class CorpusCatalog:
    """The URLs and article ids already in a corpus folder, read with the indexer's parser.

    Loaded on first use (one pass over the corpus: cheap next to fetching pages) and kept up to
    date as articles are added in this run.

    Args:
        corpus: The corpus folder (may not exist yet).
    """

    def __init__(self, corpus: Path) -> None:
        self.corpus = corpus
        self._urls: dict[str, str] | None = None
        self._ids: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        if self._urls is None:
            self._urls = {}
            if self.corpus.is_dir():
                for item in Ingestor().read([self.corpus]):
                    if isinstance(item, Article):
                        self.remember(item, item.origin)
        return self._urls

    def by_url(self, url: str) -> str | None:
        """The corpus file holding an article with this URL, or None."""
        return self._load().get(normalize_url(url)) if url else None

    def by_id(self, article_id: str) -> str | None:
        """The corpus file holding an article with this content id, or None."""
        self._load()
        return self._ids.get(article_id)

    def remember(self, article: Article, where: str) -> None:
        """Record an article (its URL and content id) as present in ``where``."""
        urls = self._load()  # during the load itself this is the dict being filled
        if article.url:
            urls.setdefault(normalize_url(article.url), where)
        self._ids.setdefault(article.id, where)


def render_article(ex: Extracted) -> str:
    """The canonical plain-text form of an article, checked to parse back unchanged.

    Layout (as ``corpus/putin-syria-peace-conference-2018-01-30.txt``): title line, date line
    (``January 30, 2018``), an optional credit line (``By <author>``, which the parser drops as
    it drops photo credits), paragraphs split by blank lines, ``Original url:`` and ``<url>``.

    Args:
        ex: A normalised extracted article (see :func:`qa.ingest.fetch.extract_article`).

    Returns:
        The file content.

    Raises:
        FetchError: No layout parses back to the same title, date, URL and text.
    """
    credits = [f"By {ex.author}"] if ex.author and ex.date else []
    credits += ["", _CREDIT_GUARD] if ex.date else [""]
    for credit in credits:
        text = _layout(ex, credit)
        if _round_trips(text, ex):
            return text
    raise FetchError(ex.url, "the article cannot be saved in the plain-text format unchanged")


def _escape(text: str) -> str:
    """Double backslashes: the txt parser undoes markdown escapes (``\\$`` -> ``$``)."""
    return text.replace("\\", "\\\\")


def _layout(ex: Extracted, credit: str) -> str:
    parts = [_escape(ex.title)]
    if ex.date:
        day = date.fromisoformat(ex.date)
        parts.append(f"{day:%B} {day.day}, {day.year}")
    if credit:
        parts.append(credit)
    parts += [_escape(p) for p in ex.text.split("\n\n")]
    parts.append(f"Original url:\n<{ex.url}>")
    return "\n\n".join(parts) + "\n"


def _round_trips(text: str, ex: Extracted) -> bool:
    draft = parse_plain(normalize_text(text))  # what the indexer will read from the file
    got = (draft.title.strip(), draft.date, draft.url, tidy_body(draft.text))
    return got == (ex.title, ex.date, ex.url, ex.text)


def article_of(ex: Extracted) -> Article:
    """The ``Article`` the indexer will read back from the saved file (same id)."""
    return Article(title=ex.title, text=ex.text, date=ex.date, url=ex.url)


def file_name(ex: Extracted) -> str:
    """``<date>-<slug of the title>.txt`` (``<slug>.txt`` when undated)."""
    ascii_title = unicodedata.normalize("NFKD", ex.title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    if len(slug) > _SLUG_CHARS:
        slug = slug[:_SLUG_CHARS].rsplit("-", 1)[0]
    slug = slug or f"article-{article_of(ex).id[:8]}"
    return f"{ex.date}-{slug}.txt" if ex.date else f"{slug}.txt"


def place_file(folder: Path, name: str, fill: Callable[[Path], object]) -> tuple[Path, bool]:
    """Write a new file atomically under ``name``, or ``name-2``... when taken.

    Args:
        folder: Destination folder (created when missing).
        name: Wanted file name.
        fill: Writes the content to the temporary path it is given.

    Returns:
        (path, True) for a new file, or (path, False) when an identical file already exists.
    """
    folder.mkdir(parents=True, exist_ok=True)
    suffix = file_kind(name) or Path(name).suffix
    stem = name[: len(name) - len(suffix)] if suffix else name
    # Hidden, so that neither indexing nor `newsqa watch` ever reads a half-written file; not
    # mkstemp, whose 0600 mode would be kept by the published file.
    tmp = folder / f".newsqa-add-{os.getpid()}-{uuid.uuid4().hex}.tmp"
    try:
        fill(tmp)
        for n in range(1, 10_000):
            target = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
            if target.exists():
                if filecmp.cmp(tmp, target, shallow=False):
                    return target, False
                continue
            if _link_new(tmp, target):
                return target, True
        raise FetchError(name, f"no free file name in {folder}")
    finally:
        tmp.unlink(missing_ok=True)


def _link_new(tmp: Path, target: Path) -> bool:
    """Publish ``tmp`` as ``target`` only if ``target`` does not exist (False when it does)."""
    try:
        os.link(tmp, target)  # atomic and never overwrites: safe against a concurrent add
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system: rename instead (tiny race window)
        if target.exists():
            return False
        os.replace(tmp, target)
        return True


def _is_url(source: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source))


class Adder:
    """Adds sources to a corpus folder: article URLs, feed URLs and local article files.

    Args:
        corpus: The corpus folder (created when missing).
        timeout: Seconds allowed to fetch each page or feed (redirects included).
        fetcher: ``fetch(url, timeout)``; replaceable for tests.
    """

    def __init__(
        self, corpus: Path, timeout: float = 20.0, fetcher: Callable[[str, float], Fetched] = fetch
    ) -> None:
        self.corpus = corpus
        self.timeout = timeout
        self.fetcher = fetcher
        self.catalog = CorpusCatalog(corpus)

    def add_all(self, sources: Iterable[str]) -> AddReport:
        """Add every source in turn; a failing source never stops the others.

        Args:
            sources: URLs and file paths.

        Returns:
            One outcome per source, or per entry for feeds.
        """
        report = AddReport()
        for source in sources:
            report.outcomes.extend(self.add(source))
        return report

    def add(self, source: str) -> list[Outcome]:
        """Add one source.

        Args:
            source: An http(s) URL of an article page or feed, or a local file path.

        Returns:
            The outcomes: one, or one per feed entry.
        """
        if _is_url(source):
            return self._add_url(source)
        return [self._add_file(Path(source))]

    def _add_url(self, url: str) -> list[Outcome]:
        present = self.catalog.by_url(url)
        if present:
            return [Outcome(url, "present", present)]
        try:
            response = self.fetcher(url, self.timeout)
            kind = page_kind(response)
            if kind == "feed":
                links = feed_links(response)
            else:
                return [self._save_page(url, response)]
        except FetchError as exc:
            return [Outcome(url, "failed", exc.reason)]
        if not links:
            return [Outcome(url, "failed", "the feed lists no articles: check the feed URL")]
        return [self._add_entry(link) for link in links]

    def _add_entry(self, link: str) -> Outcome:
        """One feed entry: skipped when its URL is in the corpus, else fetched and saved."""
        present = self.catalog.by_url(link)
        if present:
            return Outcome(link, "present", present)
        try:
            response = self.fetcher(link, self.timeout)
            if page_kind(response) != "html":
                raise FetchError(link, "the entry links to a feed, not to an article page")
            return self._save_page(link, response)
        except FetchError as exc:
            return Outcome(link, "failed", exc.reason)

    def _save_page(self, source: str, response: Fetched) -> Outcome:
        """Extract the page's article and save it unless the corpus already holds it.

        Raises:
            FetchError: No article text, or it cannot be saved unchanged.
        """
        ex = extract_article(response)
        article = article_of(ex)
        present = self.catalog.by_url(ex.url) or self.catalog.by_id(article.id)
        if present:
            return Outcome(source, "present", present)
        content = render_article(ex)
        return self._place(
            source, file_name(ex), [article], lambda tmp: tmp.write_text(content, encoding="utf-8")
        )

    def _add_file(self, path: Path) -> Outcome:
        """Copy a local article file into the corpus once it parses as article(s)."""
        source = str(path)
        if path.is_dir():
            return Outcome(source, "failed", "is a folder: index it with `newsqa index FOLDER`")
        if not path.is_file():
            return Outcome(source, "failed", "no such file")
        if self.corpus.resolve() in path.resolve().parents:
            return Outcome(source, "present", source)
        articles, problems = _read_articles(path)
        if not articles:
            why = problems[0].reason if problems else "no articles"
            return Outcome(source, "failed", f"not an article file ({why})")
        where = [self.catalog.by_id(a.id) for a in articles]
        if all(where):
            return Outcome(source, "present", str(where[0]))
        name = path.name.lstrip(".") or "article.txt"  # hidden files would not be indexed
        return self._place(source, name, articles, lambda tmp: shutil.copyfile(path, tmp))

    def _place(
        self, source: str, name: str, articles: list[Article], fill: Callable[[Path], object]
    ) -> Outcome:
        """Write a new corpus file (see :func:`place_file`) and remember its articles."""
        try:
            target, new = place_file(self.corpus, name, fill)
        except FetchError as exc:
            return Outcome(source, "failed", exc.reason)
        except OSError as exc:
            return Outcome(
                source, "failed", f"cannot write into {self.corpus}: {exc.strerror or exc}"
            )
        for article in articles:
            self.catalog.remember(article, str(target))
        return Outcome(source, "added" if new else "present", str(target), target if new else None)


def _read_articles(path: Path) -> tuple[list[Article], list[Skipped]]:
    """The articles of a local file and the problems of its bad records."""
    items = list(Ingestor().read_file(path))
    articles = [item for item in items if isinstance(item, Article)]
    return articles, [item for item in items if isinstance(item, Skipped)]
