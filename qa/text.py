"""Sentence and paragraph boundaries with character offsets (rule-based, no model),
whitespace folding for one-line values, and the cleaning of control characters.

News text is full of abbreviations ("U.S.", "Mr.", "Jan.") and quotes; a sentence ends at
., ! or ? (optionally followed by closing quotes/brackets) and white space, then an upper-case
letter, digit or opening quote, unless the word before the period is a known abbreviation or a
single initial.
"""

from __future__ import annotations

import re
import unicodedata

_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft gen col lt sgt capt cmdr adm gov sen rep rev hon pres
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun
    inc corp co ltd llc bros no vs etc al fig dept est approx ave blvd rd univ u.s u.k u.n e.g i.e
    a.m p.m""".split()
)

# Candidate boundary: terminal punctuation, optional closers, white space.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


# Control characters (Unicode category Cc: C0, DEL, C1) and what shows instead: C0 as its
# Unicode control picture (ESC -> U+241B), DEL as U+2421, C1 as U+FFFD. One character for one,
# so that passage offsets, citation offsets and answer spans stay valid on cleaned text.
_PICTURES = {code: 0x2400 + code for code in range(0x20)} | {0x7F: 0x2421}
_PICTURES |= {code: 0xFFFD for code in range(0x80, 0xA0)}
_MULTI_LINE = {k: v for k, v in _PICTURES.items() if k not in (0x09, 0x0A)}
_SINGLE_LINE = {k: v for k, v in _PICTURES.items() if k != 0x09}
_MULTI_LINE_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SINGLE_LINE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str, *, single_line: bool = False) -> str:
    """``text`` with every control character but tab (and newline) replaced by a visible one.

    Text from outside (article titles and bodies, URLs, feed fields, file names) may hold
    terminal escape sequences (``ESC ]52;`` sets the clipboard, ``ESC [2J`` clears the screen,
    the C1 byte ``\\x9b`` is a CSI of its own); shown as they are, the terminal runs them.
    Each C0 character becomes its Unicode control picture (``ESC`` -> ``␛``), DEL ``␡`` and
    each C1 character ``�``, one character for one, so offsets into the text still hold.

    Args:
        text: Any text.
        single_line: Also replace newlines (``␊``), for values shown on one line (paths,
            titles, URLs, error lines).

    Returns:
        The text, unchanged when it holds no control character (the common case, cheaply).
    """
    if single_line:
        return text.translate(_SINGLE_LINE) if _SINGLE_LINE_CONTROL.search(text) else text
    return text.translate(_MULTI_LINE) if _MULTI_LINE_CONTROL.search(text) else text


def one_line(text: str) -> str:
    """Collapse all whitespace of ``text`` (titles, metadata values) to single spaces, in NFC.

    Args:
        text: Any text, possibly spread over several lines.

    Returns:
        The text on one line, without leading or trailing whitespace.
    """
    return " ".join(unicodedata.normalize("NFC", text).split())


def _is_abbreviation(text: str, end: int) -> bool:
    """True when the period ending at ``end`` closes an abbreviation or an initial."""
    m = _WORD_BEFORE.search(text, max(0, end - 12), end)
    if not m:
        return False
    word = m.group(1).lower()
    return len(word) == 1 or word in _ABBREVIATIONS or word.rstrip(".") in _ABBREVIATIONS


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into sentences.

    Args:
        text: The full text.
        start: Where to begin (character offset).
        end: Where to stop (exclusive); the end of ``text`` when None.

    Returns:
        ``(start, end)`` character offsets into ``text`` of each sentence, white space trimmed,
        covering every non-space character of the range in order.
    """
    stop = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for m in _BOUNDARY.finditer(text, start, stop):
        single_period = m.group(0).startswith(".") and len(m.group(0).rstrip("\"'”’)]")) == 1
        if single_period and _is_abbreviation(text, m.start() + 1):
            continue
        _append_trimmed(text, cursor, m.end(), spans)
        cursor = m.end()
    # Paragraph breaks inside the range also end sentences.
    _append_trimmed(text, cursor, stop, spans)
    return _split_on_newlines(text, spans)


def _append_trimmed(text: str, a: int, b: int, out: list[tuple[int, int]]) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if b > a:
        out.append((a, b))


def _split_on_newlines(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in spans:
        cursor = a
        for m in re.finditer(r"\n\s*\n", text[a:b]):
            _append_trimmed(text, cursor, a + m.start(), out)
            cursor = a + m.end()
        _append_trimmed(text, cursor, b, out)
    return out


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Offsets of the paragraphs of ``text`` (blocks separated by blank lines), trimmed."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for m in re.finditer(r"\n[ \t]*\n\s*", text):
        _append_trimmed(text, cursor, m.start(), spans)
        cursor = m.end()
    _append_trimmed(text, cursor, len(text), spans)
    return spans
