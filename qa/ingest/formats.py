"""Format parsers for ingest: decoded file content in, article fields (``Draft``) out.

Nothing here touches the file system; :mod:`qa.ingest.files` reads, sniffs and decodes files,
then hands text or JSON values to these parsers (HTML pages to :mod:`qa.ingest.html`, dates to
:mod:`qa.ingest.dates`) and turns their output into ``Article`` objects.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from qa.ingest import squad
from qa.ingest.dates import parse_date
from qa.text import one_line

__all__ = [
    "Draft",
    "Problem",
    "normalize_text",
    "parse_json_value",
    "parse_markdown",
    "parse_plain",
    "parse_record",
    "source_from_url",
    "tidy_body",
]


@dataclass(frozen=True)
class Draft:
    """Article fields as parsed, before validation; ``line`` is set for JSONL records."""

    title: str
    text: str
    date: str = ""
    url: str = ""
    source: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Problem:
    """Why a file or one of its records cannot become an article."""

    reason: str
    line: int | None = None


Parsed = Draft | Problem

# ---------------------------------------------------------------------------------------------
# Text normalisation
# ---------------------------------------------------------------------------------------------

_TRAILING_SPACE = re.compile(r"[ \t\f\v]+$", re.MULTILINE)
_MANY_NEWLINES = re.compile(r"\n{3,}")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!$|<>~&\"'])")


def normalize_text(text: str) -> str:
    """Normalise newlines, trailing spaces, runs of blank lines and Unicode (NFC).

    Args:
        text: Any decoded text.

    Returns:
        The text with ``\\n`` newlines, no trailing spaces, at most one blank line in a row,
        composed Unicode, and no leading/trailing whitespace.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    text = _TRAILING_SPACE.sub("", text)
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def tidy_body(text: str) -> str:
    """Normalise a body: paragraphs stripped and separated by exactly one blank line.

    Args:
        text: Body text with paragraphs separated by blank lines.

    Returns:
        The tidied body ("" when nothing but whitespace).
    """
    paragraphs = (p.strip() for p in _BLANK_LINE.split(normalize_text(text)))
    return "\n\n".join(p for p in paragraphs if p)


def _unescape_markdown(text: str) -> str:
    """``\\$300`` -> ``$300``: exported news text is full of markdown escapes."""
    return _MD_ESCAPE.sub(r"\1", text)


def source_from_url(url: str) -> str:
    """Publisher host of an http(s) URL without ``www.``, e.g. ``themoscowtimes.com``.

    Args:
        url: Any URL or "".

    Returns:
        The lower-case host, or "" when the URL is not http(s) or has no host.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    return host[4:] if host.startswith("www.") else host


# ---------------------------------------------------------------------------------------------
# Plain text and markdown
# ---------------------------------------------------------------------------------------------

_RELATED = re.compile(r"^\s*Related articles?:", re.IGNORECASE)
_ORIGINAL_URL = re.compile(r"^\s*Original url:\s*(?P<rest>.*)$", re.IGNORECASE)
_BRACKETED_URL = re.compile(r"^<?(?P<url>[a-z][a-z0-9+.-]*://[^\s<>]+)>?$", re.IGNORECASE)
_SENTENCE_MARK = re.compile(r"[.!?:;\"“”]")
_HEADING = re.compile(r"^\s{0,3}(?P<marks>#{1,6})\s+(?P<text>.*?)(?:\s+#+)?\s*$")
_LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(?P<text>\S(?:.*?\S)?)\1")
_CAPTION_MAX_WORDS = 8


def _strip_trailers(lines: list[str]) -> tuple[list[str], str]:
    """Drop "Related article" lines and the "Original url:" trailer; return (lines, url)."""
    kept: list[str] = []
    url = ""
    expecting_url = False
    for line in lines:
        if _RELATED.match(line):
            continue
        trailer = _ORIGINAL_URL.match(line)
        if trailer:
            url_match = _BRACKETED_URL.match(trailer["rest"].strip())
            url, expecting_url = (url_match["url"], False) if url_match else (url, True)
            continue
        if expecting_url and line.strip():
            expecting_url = False
            url_match = _BRACKETED_URL.match(line.strip())
            if url_match:
                url = url_match["url"]
                continue
        kept.append(line)
    return kept, url


def _first_nonblank(lines: list[str]) -> tuple[str, list[str]]:
    """Split off the first non-blank line: (that line stripped, the lines after it)."""
    for index, line in enumerate(lines):
        if line.strip():
            return line.strip(), lines[index + 1 :]
    return "", []


def _take_date_line(lines: list[str]) -> tuple[str, list[str]]:
    """If the first non-blank line is a date, consume it: (ISO date or "", remaining lines)."""
    candidate, rest = _first_nonblank(lines)
    parsed = parse_date(candidate)
    return (parsed, rest) if parsed else ("", lines)


def _paragraphs(lines: list[str]) -> list[str]:
    return [p.strip() for p in _BLANK_LINE.split("\n".join(lines)) if p.strip()]


def _is_caption(paragraph: str) -> bool:
    """A photo credit ("Kremlin Press Service"): one short line without sentence punctuation."""
    return (
        "\n" not in paragraph
        and len(paragraph.split()) < _CAPTION_MAX_WORDS
        and not _SENTENCE_MARK.search(paragraph)
    )


def parse_plain(text: str) -> Draft:
    """Parse a plain-text article: title line, optional date line, then paragraphs.

    Args:
        text: Normalised file content.

    Returns:
        The article fields; a photo credit right after the date is dropped.
    """
    lines, url = _strip_trailers(text.split("\n"))
    title, rest = _first_nonblank(lines)
    date_iso, rest = _take_date_line(rest)
    paragraphs = _paragraphs(rest)
    # Credits only appear under a dateline; without one a short first line may be a real lede.
    if date_iso and len(paragraphs) > 1 and _is_caption(paragraphs[0]):
        paragraphs = paragraphs[1:]
    body = "\n\n".join(_unescape_markdown(p) for p in paragraphs)
    return Draft(title=one_line(_unescape_markdown(title)), text=body, date=date_iso, url=url)


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split ``---``-delimited ``key: value`` front matter from the body."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}, text  # no closing marker: the dashes were a horizontal rule
    meta: dict[str, str] = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        if sep and key.strip() and not line[:1].isspace():
            meta[key.strip().lower()] = value.strip().strip("\"'").strip()
    return meta, "\n".join(lines[end + 1 :])


def _markdown_inline(line: str) -> str:
    """Reduce one markdown line to text: heading marks, links and bold markers removed."""
    heading = _HEADING.match(line)
    if heading:
        line = heading["text"]
    line = _LINK.sub(lambda m: m["text"], line)
    return _unescape_markdown(_EMPHASIS.sub(lambda m: m["text"], line))


def _pop_heading(lines: list[str]) -> tuple[str, list[str]]:
    """Remove the first ``# heading`` (level 1 preferred) and return (its text, other lines)."""
    for level in (1, 6):
        for index, line in enumerate(lines):
            heading = _HEADING.match(line)
            if heading and len(heading["marks"]) <= level:
                return _markdown_inline(line), lines[:index] + lines[index + 1 :]
    return "", lines


def parse_markdown(text: str) -> Draft:
    """Parse a markdown article with optional front matter (title, date, url, source).

    Args:
        text: Normalised file content.

    Returns:
        The article fields; the title falls back to the first heading, the date to a date line
        at the top of the body.
    """
    meta, body = _split_front_matter(text)
    lines, trailer_url = _strip_trailers(body.split("\n"))
    title = one_line(meta.get("title", ""))
    first, rest = _first_nonblank(lines)
    if title and _HEADING.match(first) and _markdown_inline(first).strip() == title:
        lines = rest  # the body repeats the front-matter title as its heading
    elif not title:
        title, lines = _pop_heading(lines)
    date_iso = parse_date(meta.get("date", ""))
    if not date_iso:
        date_iso, lines = _take_date_line(lines)
    paragraphs = _paragraphs([_markdown_inline(line) for line in lines])
    return Draft(
        title=one_line(title),
        text="\n\n".join(paragraphs),
        date=date_iso,
        url=meta.get("url", "") or trailer_url,
        source=meta.get("source", ""),
    )


# ---------------------------------------------------------------------------------------------
# JSON records
# ---------------------------------------------------------------------------------------------

_TITLE_KEYS = ("title", "headline")
_TEXT_KEYS = ("text", "body", "content")
_DATE_KEYS = ("publish_date", "date", "published", "published_at")


def _first_str(record: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def parse_record(record: object, line: int | None = None, where: str = "") -> Parsed:
    """Turn one JSON object (``url, title, publish_date|date, text|body``) into fields.

    Args:
        record: A decoded JSON value.
        line: Line number for JSONL records.
        where: Prefix for problem reasons of records without a line (e.g. ``record 3: ``).

    Returns:
        A ``Draft``, or a ``Problem`` when the value is not an object or lacks title/body.
    """
    if not isinstance(record, dict):
        return Problem(f"{where}not a JSON object ({type(record).__name__})", line)
    title = _first_str(record, _TITLE_KEYS)
    text = _first_str(record, _TEXT_KEYS)
    url = _first_str(record, ("url",)).strip()
    if not text.strip():
        return Problem(f"{where}no article body", line)
    if not title.strip():
        # Real feeds drop headlines (e.g. many CNN records of the shared corpus) while the
        # body is fine: name the article after its URL slug, else its first words.
        title = fallback_title(url, text)
    return Draft(
        title=one_line(title),
        text=text,
        date=parse_date(_first_str(record, _DATE_KEYS)),
        url=url,
        source=one_line(_first_str(record, ("source",))),
        line=line,
    )


_SLUG_NOISE = re.compile(r"^(index|article|story|news|amp|live-news|\d+|[a-z]{1,2})(\.html?)?$")


def fallback_title(url: str, text: str, max_words: int = 12) -> str:
    """A title for an article that has none: its URL slug, else its first words.

    Args:
        url: The article URL ("" when unknown).
        text: The body.
        max_words: Longest title taken from the body.

    Returns:
        A one-line title, e.g. ``Whats in senate gun reform agreement``.
    """
    path = urlsplit(url).path if url else ""
    slugs = [seg for seg in path.split("/") if seg and not _SLUG_NOISE.match(seg.lower())]
    slug = max(slugs, key=len, default="")
    slug = re.sub(r"\.html?$", "", slug)
    if slug.count("-") + slug.count("_") >= 2:
        words = re.sub(r"[-_]+", " ", slug).split()
        return " ".join(words).capitalize()
    words = text.split()
    return " ".join(words[:max_words]) + (" ..." if len(words) > max_words else "")


def _parse_squad(value: dict[str, Any]) -> Iterator[Parsed]:
    """Each SQuAD paragraph is an article; ``squad://title#n`` gives it a stable identity."""
    for para in squad.paragraphs(value["data"]):
        if isinstance(para, squad.Malformed):
            yield Problem(para.reason)
        else:
            title = one_line(para.title.replace("_", " "))
            yield Draft(title=title, text=para.context, url=para.url)


def parse_json_value(value: object) -> Iterator[Parsed]:
    """Articles in a whole ``.json`` document: one object, a list of objects, or SQuAD.

    Args:
        value: The decoded JSON document.

    Yields:
        A ``Draft`` or ``Problem`` per record.
    """
    if squad.is_squad(value):
        assert isinstance(value, dict)  # narrowed by is_squad, for the type checker
        yield from _parse_squad(value)
    elif isinstance(value, list):
        for number, record in enumerate(value):
            yield parse_record(record, where=f"record {number}: ")
    else:
        yield parse_record(value)
