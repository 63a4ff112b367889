"""``qa.text.printable``: the one cleaning of control characters, and where articles get it."""

from __future__ import annotations

import unicodedata

import pytest

from qa.text import printable
from qa.types import Article

CONTROLS = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"]


def test_every_control_character_but_tab_and_newline_is_replaced_one_for_one() -> None:
    assert len(CONTROLS) == 65  # C0 (32), DEL, C1 (32)
    text = "".join(f"a{c}" for c in CONTROLS)
    out = printable(text)
    assert len(out) == len(text)
    kept = [c for c in out if unicodedata.category(c) == "Cc"]
    assert kept == ["\t", "\n"]
    assert out[0::2] == "a" * len(CONTROLS)  # everything else in its place


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]0;PWNED\x1b\\", "␛]0;PWNED␛\\"),  # OSC 0: window title
        ("\x1b]52;c;cm0gLXJmIH4=\x07", "␛]52;c;cm0gLXJmIH4=␇"),  # OSC 52: clipboard
        ("\x1b[2J\x1b[H", "␛[2J␛[H"),  # CSI: clear screen, cursor home
        ("\x9b31m", "�31m"),  # C1 CSI, one byte
        ("\x9d0;x\x9c", "�0;x�"),  # C1 OSC ... ST
        ("\x00\x08\x7f\r\x0b\x0c", "␀␈␡␍␋␌"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
    ],
)
def test_escape_sequences_become_visible(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_single_line_also_shows_newlines() -> None:
    assert printable("a/b\nc.txt", single_line=True) == "a/b␊c.txt"
    assert printable("a\tb", single_line=True) == "a\tb"


def test_ordinary_text_is_returned_as_is() -> None:
    for text in ("", "Plain news text.", "Zürich “quotes” — 東京 [/x] :x: ␛", "\u202eRTL"):
        assert printable(text) is text
        assert printable(text, single_line=True) is text


def test_cleaning_twice_changes_nothing() -> None:
    once = printable("a\x1b[2J\x9b\x00\nb", single_line=True)
    assert printable(once, single_line=True) == once


def test_an_article_is_cleaned_when_it_is_built() -> None:
    a = Article(
        title="T\x1b]0;x\x07\nline",
        text="Body\x1b[2J one.\n\nTwo\x9b.",
        date="2023-01-02\x1b",
        url="https://x.example/\x1b[31m",
        source="S\x07",
    )
    assert (a.title, a.date, a.url, a.source) == (
        "T␛]0;x␇␊line",
        "2023-01-02␛",
        "https://x.example/␛[31m",
        "S␇",
    )
    assert a.text == "Body␛[2J one.\n\nTwo�."
    # The id is the cleaned article's: the same article read again gets the same id.
    assert Article(title=a.title, text=a.text).id == a.id
