"""The web side of ``newsqa add``: fetch a URL, tell article pages from feeds, extract.

HTTP is :mod:`qa.ingest.web` (one GET per call, a deadline for the whole fetch, every redirect
checked, a size cap); article pages are extracted with trafilatura (title, date, author, main
text) and feeds are read with feedparser. Nothing here writes files: :mod:`qa.ingest.add` saves
what these functions return. Every problem is raised as :class:`~qa.errors.FetchError` with a
reason that says what to do.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin

from qa.errors import FetchError
from qa.ingest.dates import parse_date
from qa.ingest.formats import fallback_title, source_from_url, tidy_body
from qa.ingest.web import Fetched, fetch
from qa.text import one_line, printable

__all__ = ["Extracted", "Fetched", "extract_article", "feed_links", "fetch", "page_kind"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
    }
)
# Types that say too little to decide: the body is sniffed (servers often send feeds as
# text/html or text/plain, and pages without any type).
_SNIFFED_TYPES = HTML_TYPES | FEED_TYPES | {"", "text/plain", "application/octet-stream"}
_PROLOG = re.compile(rb"^(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:rdf)[\s>]")
_HTML_ROOT = re.compile(rb"<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])")
# A real article has sentences: at least this many words on lines of at least _PROSE_LINE
# words. Navigation, cookie notes and "enable JavaScript" pages do not.
_MIN_PROSE_WORDS = 25
_PROSE_LINE = 8
_TRAILER_LINE = re.compile(r"^\s*(?:Related articles?|Original url):", re.IGNORECASE)


@dataclass(frozen=True)
class Extracted:
    """An article as extracted from a page, normalised for the canonical text format.

    Attributes:
        title: One-line headline.
        text: Body, paragraphs separated by one blank line.
        date: ISO date or "".
        url: The article's URL (the page's canonical URL when on the same host).
        author: Author names as the page gives them, or "".
    """

    title: str
    text: str
    date: str
    url: str
    author: str = ""


def page_kind(response: Fetched) -> Literal["html", "feed"]:
    """Whether a response is an HTML page or an RSS/Atom feed.

    The first markup of the body decides where the content type is vague or generic;
    a clearly different type (PDF, images, JSON...) is refused without looking further.

    Args:
        response: A fetched resource.

    Returns:
        ``"html"`` or ``"feed"``.

    Raises:
        FetchError: Neither an HTML page nor a feed.
    """
    ctype = response.content_type
    if ctype in _SNIFFED_TYPES:
        rest = response.body[:4096].lstrip(b"\xef\xbb\xbf")
        prolog = _PROLOG.match(rest)  # XML declaration, processing instructions, comments
        rest = rest[prolog.end() if prolog else 0 :].lower()
        if _FEED_ROOT.match(rest):
            return "feed"
        if _HTML_ROOT.match(rest) or ctype in HTML_TYPES:
            return "html"
        if ctype in FEED_TYPES:
            return "feed"  # XML of some other root: feedparser says whether it is a feed
    shown = ctype or "none"
    raise FetchError(
        response.url,
        f"not an HTML page or a feed (content type {shown}): "
        "give the URL of an article page or of an RSS/Atom feed",
    )


def _decoded(response: Fetched) -> str | bytes:
    """The page as text when the server named a known charset, else bytes for trafilatura."""
    if response.charset:
        try:
            return response.body.decode(response.charset, errors="replace")
        except LookupError:
            pass
    return response.body


def extract_article(response: Fetched) -> Extracted:
    """Extract one article (title, date, author, main text) from an HTML page.

    Args:
        response: A fetched HTML page.

    Returns:
        The article, normalised: one-line title, tidy body without "Related article" or
        "Original url" lines, ISO date.

    Raises:
        FetchError: The page holds no article text.
    """
    import trafilatura  # heavy (lxml, htmldate): only loaded when a page is extracted

    try:
        doc = trafilatura.bare_extraction(
            _decoded(response),
            url=response.url,
            with_metadata=True,
            include_comments=False,
            include_tables=False,
        )
    except Exception as exc:  # a parser crash on one odd page must not stop a feed run
        raise FetchError(response.url, f"the page could not be parsed ({exc})") from exc
    title = one_line(str(getattr(doc, "title", None) or ""))
    lines = [line.strip() for line in str(getattr(doc, "text", None) or "").split("\n")]
    if lines and title and lines[0].casefold() == title.casefold():
        lines = lines[1:]  # the page's <h1> repeats the headline
    body = tidy_body("\n\n".join(ln for ln in lines if ln and not _TRAILER_LINE.match(ln)))
    if not _has_prose(body):
        raise FetchError(
            response.url,
            "no article text found on the page: give the URL of "
            "an article itself, not of a home, section or video page",
        )
    url = _article_url(response.url, str(getattr(doc, "url", None) or ""))
    # The HTML parser drops most control characters; clean what is left here too, not only
    # when indexed: the saved corpus file is newsqa's own output, and a person reading it with
    # `cat` must not have the page's escapes run by the terminal.
    return Extracted(
        title=printable(title or one_line(fallback_title(url, body)), single_line=True),
        text=printable(body),
        date=parse_date(str(getattr(doc, "date", None) or "")),
        url=printable(url, single_line=True),
        author=printable(one_line(str(getattr(doc, "author", None) or "")), single_line=True),
    )


def _has_prose(body: str) -> bool:
    lines = (line.split() for line in body.split("\n"))
    return sum(len(words) for words in lines if len(words) >= _PROSE_LINE) >= _MIN_PROSE_WORDS


def _article_url(fetched: str, declared: str) -> str:
    """The page's canonical URL when it stays on the fetched host (a canonical URL that points
    elsewhere, e.g. at a home page, is a site bug we do not want to copy), else the final URL."""
    if (
        declared
        and source_from_url(declared)
        and source_from_url(declared) == source_from_url(fetched)
    ):
        return declared
    return fetched


def feed_links(response: Fetched) -> list[str]:
    """The article links of an RSS/Atom feed, in feed order, each once.

    Args:
        response: A fetched feed.

    Returns:
        Absolute URLs (relative links resolved against the feed's URL); entries without a
        link are left out. Links of other schemes than http(s) (``file:``, ``ftp:``...) are
        kept, so that fetching them fails with a reason the person sees, instead of the entry
        vanishing without a word; :func:`~qa.ingest.web.fetch` never reads them.

    Raises:
        FetchError: The body is not a feed.
    """
    import feedparser

    # A stream, never a str: feedparser fetches str arguments that look like URLs or paths.
    parsed = feedparser.parse(
        io.BytesIO(response.body),
        response_headers={
            "content-location": response.url,
            "content-type": response.content_type or "application/xml",
        },
    )
    if not parsed.get("version") and not parsed.get("entries"):
        raise FetchError(response.url, "not an RSS or Atom feed (it could not be parsed as one)")
    links: list[str] = []
    for entry in parsed.get("entries", []):
        raw = str(entry.get("link") or "").strip()
        link = urljoin(response.url, raw) if raw else ""
        if link and link not in links:
            links.append(link)
    return links
