"""Saved web pages: the article's title, date and body out of the HTML (trafilatura, with
the page's own metadata as a fallback)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from qa.ingest.dates import (
    parse_date,
)
from qa.ingest.formats import (
    Draft,
    source_from_url,
)
from qa.text import one_line

# Inline images and fonts: kilobytes of base64 in which a date search finds "dates".
_DATA_URI = re.compile(r"""data:[^"'\s>)]*""", re.IGNORECASE)
# A visible date line may carry a label: "Published: March 3, 2021".
_DATE_LABEL = re.compile(r"^(?:published|updated|posted|date)(?:\s+on)?\s*:?\s*", re.IGNORECASE)


class _PageScanner(HTMLParser):
    """Stdlib fallback: <title>, date/url meta tags, canonical link and <p> paragraphs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self.paragraphs: list[str] = []
        self._open: str | None = None  # "title" or "p" while inside one
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key.lower(): value or "" for key, value in attrs}
        if tag == "meta":
            name = (values.get("property") or values.get("name") or "").lower()
            if name and values.get("content") and name not in self.meta:
                self.meta[name] = values["content"]
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.meta.setdefault("canonical", values.get("href", ""))
        elif tag in ("title", "p"):
            self._open, self._buffer = tag, []

    def handle_data(self, data: str) -> None:
        if self._open:
            self._buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != self._open:
            return
        text = one_line("".join(self._buffer))
        if tag == "title" and not self.title:
            self.title = text
        elif tag == "p" and text:
            self.paragraphs.append(text)
        self._open = None


def _trafilatura_fields(html: str) -> tuple[str, dict[str, str]]:
    """Main text (paragraphs one per line) and metadata via trafilatura; empty when unusable."""
    try:
        import trafilatura  # heavy import (lxml, htmldate), only needed for HTML
    except ImportError:
        return "", {}
    try:
        text = trafilatura.extract(html, include_comments=False, output_format="txt") or ""
        # The date from the page's metadata and date markup only: htmldate's extensive
        # search guessed years from any digits in the source (base64 images, scripts).
        doc = trafilatura.extract_metadata(_DATA_URI.sub("", html), extensive=False)
    except Exception:  # a parser crash on one odd page must not stop a whole ingest run
        return "", {}
    fields = {key: getattr(doc, key, None) or "" for key in ("title", "date", "url", "sitename")}
    return text, fields


def parse_html(html: str) -> Draft:
    """Parse an HTML page: main text and metadata via trafilatura, stdlib fallbacks.

    Args:
        html: The decoded page.

    Returns:
        The article fields (text "" when no main text was found).
    """
    text, fields = _trafilatura_fields(html)
    scanner = _PageScanner()
    scanner.feed(html)
    scanner.close()
    meta = scanner.meta
    # trafilatura's plain-text output puts one paragraph per line.
    paragraphs = [p for p in text.split("\n") if p.strip()] or scanner.paragraphs
    title = one_line(fields.get("title") or meta.get("og:title") or scanner.title)
    if paragraphs and one_line(paragraphs[0]).casefold() == title.casefold():
        paragraphs = paragraphs[1:]  # the page's <h1> repeats the headline
    date_iso = (
        parse_date(fields.get("date", ""))
        or parse_date(meta.get("article:published_time", "") or meta.get("date", ""))
        or _visible_date(paragraphs[:5])
    )
    url = fields.get("url") or meta.get("og:url") or meta.get("canonical", "")
    source = source_from_url(url) or one_line(fields.get("sitename") or "")
    return Draft(title=title, text="\n\n".join(paragraphs), date=date_iso, url=url, source=source)


def _visible_date(paragraphs: list[str]) -> str:
    """The date of a dateline among the first paragraphs: a paragraph that is only a date,
    perhaps labelled ("Published: March 3, 2021"); never a date mentioned in a sentence."""
    for paragraph in paragraphs:
        found = parse_date(_DATE_LABEL.sub("", one_line(paragraph)))
        if found:
            return found
    return ""
