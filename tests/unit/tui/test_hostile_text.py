"""The chat shows text from outside (titles, passages, URLs, questions, saved chats) as text:
no terminal escape reaches the terminal, no markup or emoji is interpreted; and a burst of
Enters asks once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.text import Text
from textual import events
from textual.pilot import Pilot
from textual.widgets import OptionList, Static
from textual.widgets._toast import Toast

from qa.answer import citation_for
from qa.errors import QAError
from qa.search.retriever import Filters
from qa.tui import ArticleView
from qa.tui.app import NewsQAApp
from qa.tui.panels import ErrorPanel
from qa.tui.screens import ChatsScreen, SourceScreen
from qa.tui.widgets import HIGHLIGHT, AnswerCard, PromptInput, SourceRow
from qa.types import Answer, Hit, Passage, Response, Span
from tests.unit.tui.fakes import FakeAnswerer, fake_app, settle

SIZE = (100, 40)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


async def test_a_burst_of_enters_asks_once(tmp_path: Path) -> None:
    """Three Enters in one burst ask (and save) the question once."""
    fake = FakeAnswerer()
    app = fake_app(tmp_path, fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = app.query_one(PromptInput)
        prompt.focus()
        prompt.value = "Who boycotted the Sochi conference?"
        # Three Enters arrive together, as a terminal delivers a burst: no idle between them.
        assert app._driver is not None
        for _ in range(3):
            app._driver.send_message(events.Key("enter", "\r"))
        await settle(app, pilot)
        assert [q for q, _, _ in fake.asked] == ["Who boycotted the Sochi conference?"]
        assert len(app.query(AnswerCard)) == 1
        assert app.chat_store is not None and app.chat_id is not None
        assert len(app.chat_store.turns(app.chat_id)) == 1


# -- text from outside --------------------------------------------------------------------

# The window title (OSC 0), the clipboard (OSC 52), a cleared screen (CSI 2J), a bell, the
# one-byte C1 CSI, DEL; and Rich markup and an emoji code.
TITLE = "Lighthouse \x1b]0;PWNED\x1b\\ [/x] :x: [link=http://evil.example]click[/link]"
SENTENCE = "The lighthouse was built in 1870.\x1b]52;c;cm0gLXJmIH4=\x07 Bell\x9b2J\x7f."
BODY = f"First paragraph \x1b[2J here.\n\n{SENTENCE}\n\nLast [/b] paragraph."
URL = "https://rivertown.example/light\x1b[31mhouse/[/x]"
ARTICLE_ID = "0123456789abcdef"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class HostileAnswerer(FakeAnswerer):
    """Answers from an article whose title, text and URL hold escapes and markup, as an index
    written before ingest cleaned them would give it (the fake bypasses the store)."""

    def ask(
        self,
        question: str,
        k: int = 5,
        filters: Filters | None = None,
        search_query: str | None = None,
    ) -> Response:
        self.asked.append((search_query or question, k, filters))
        start = BODY.index(SENTENCE)
        passage = Passage("p1", ARTICLE_ID, 1, start, start + len(SENTENCE), SENTENCE, TITLE)
        hit = Hit(passage, 0.9, 0, TITLE, "2023-04-11", URL, "River \x1b[5mTimes")
        a = SENTENCE.index("1870")
        answer = Answer("1870", SENTENCE, 0.9, hit, Span(a, a + 4), Span(0, len(SENTENCE)))
        return Response(question, answer, [answer], [citation_for(1, hit, answer)], [hit])

    def article(self, article_id: str) -> ArticleView | None:
        return ArticleView(ARTICLE_ID, TITLE, "2023-04-11", URL, "River \x1b[5mTimes", BODY)


def shown_text(app: NewsQAApp) -> str:
    """Everything the active screen draws (its SVG picture) and every Static's text."""
    parts = [app.export_screenshot()]
    parts += [str(w.render()) for w in app.screen.query(Static)]
    parts += [str(w.border_title or "") for w in app.screen.query("*")]
    return "\n".join(parts)


def assert_clean(text: str) -> None:
    found = RAW.findall(text)
    assert not found, f"control characters reach the terminal: {found!r}"


async def ask(app: NewsQAApp, pilot: Pilot[None], text: str) -> None:
    prompt = app.query_one(PromptInput)
    prompt.focus()
    prompt.value = text
    await pilot.press("enter")
    await settle(app, pilot)


async def test_escapes_and_markup_in_answers_and_sources_are_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("qa.tui.workers.can_open_browser", lambda: True)
    monkeypatch.setattr("webbrowser.open", lambda url, new=0: opened.append(url) or True)
    app = fake_app(tmp_path, HostileAnswerer())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "When was the lighthouse built?")
        card = app.query_one(AnswerCard)
        body = shown_text(app)
        assert_clean(body)
        assert "built in 1870.␛]52;c;cm0gLXJmIH4=␇ Bell�2J␡." in body
        row = str(card.query_one(SourceRow).query_one(".title", Static).render())
        assert "Lighthouse ␛]0;PWNED␛\\ [/x] :x: [link=http://evil.example]click[/link]" in row
        # The answer span is still highlighted where it is (cleaning keeps the offsets).
        rendered = card.query_one(".answer", Static).content
        assert isinstance(rendered, Text)
        assert any(
            rendered.plain[s.start : s.end] == "1870" and s.style == HIGHLIGHT
            for s in rendered.spans
        )
        assert app.clipboard == ""  # nothing but the copy keys writes the clipboard
        # The source viewer: title, URL, source and the article text, answer highlighted.
        await pilot.press("escape", "1")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, SourceScreen)
        viewer = shown_text(app)
        assert_clean(viewer)
        assert "[1] Lighthouse ␛]0;PWNED␛\\ [/x] :x:" in viewer
        assert "https://rivertown.example/light␛[31mhouse/[/x]" in viewer
        assert "River ␛[5mTimes" in viewer and "First paragraph ␛[2J here." in viewer
        cited = screen.query_one(".-cited", Static).content
        assert isinstance(cited, Text)
        assert any(cited.plain[s.start : s.end] == "1870" for s in cited.spans)
        await pilot.press("c")
        assert_clean(app.clipboard)
        assert "␛]52;c;cm0gLXJmIH4=␇" in app.clipboard
        await pilot.press("o")  # "opened <URL>": the URL is no markup
        await settle(app, pilot)
        assert len(opened) == 1
        await pilot.press("escape")
        await pilot.pause()
        card.focus()
        await pilot.press("c")
        assert_clean(app.clipboard)
        assert "Lighthouse ␛]0;PWNED␛\\ [/x]" in app.clipboard
        await pilot.press("y")
        assert_clean(app.clipboard)


async def test_a_saved_chat_with_escapes_reopens_clean(tmp_path: Path) -> None:
    app = fake_app(tmp_path, HostileAnswerer())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # A pasted question may carry escapes too (a paste is one line, but not cleaned).
        prompt = app.query_one(PromptInput)
        prompt.focus()
        prompt.post_message(events.Paste("When was the \x1b]0;Q\x07 [/x] lighthouse built?"))
        await pilot.pause()
        await pilot.press("enter")
        await settle(app, pilot)
        assert_clean(shown_text(app))
        assert "› When was the ␛]0;Q␇ [/x] lighthouse built?" in shown_text(app)
        assert app.chat_store is not None and app.chat_id is not None
        # The store keeps what was shown to it as it was: the chat is saved with raw escapes.
        saved = app.chat_store.turns(app.chat_id)[0]
        assert "\x1b" in saved.question and "\x1b" in saved.citations[0].title
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, ChatsScreen)
        assert_clean(shown_text(app))
        label = str(app.screen.query_one(OptionList).get_option_at_index(0).prompt)
        assert label.startswith("When was the ␛]0;Q␇ [/x] lighthouse built?")
        await pilot.press("enter")
        await settle(app, pilot)
        assert len(app.query(AnswerCard)) == 1
        body = shown_text(app)
        assert_clean(body)
        assert "Lighthouse ␛]0;PWNED␛\\ [/x] :x:" in body and "1870.␛]52;c;" in body
        assert app.clipboard == ""


async def test_errors_naming_hostile_paths_are_text(tmp_path: Path) -> None:
    """An error message naming a file (here: a failed model load) is no markup either."""
    error = QAError("cannot read /corpus/[/x] \x1b]0;E\x07.txt")
    app = fake_app(tmp_path, FakeAnswerer(fail=error))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(ErrorPanel)
        text = shown_text(app)
        assert_clean(text)
        assert "cannot read /corpus/[/x] ␛]0;E␇.txt" in str(
            panel.query_one(".message", Static).render()
        )


class MarkupAnswerer(HostileAnswerer):
    """Titles and URLs with markup only (no control character)."""

    def __init__(self, title: str, url: str) -> None:
        super().__init__()
        self.title, self.url = title, url

    def ask(
        self,
        question: str,
        k: int = 5,
        filters: Filters | None = None,
        search_query: str | None = None,
    ) -> Response:
        r = super().ask(question, k, filters, search_query)
        hit = Hit(r.hits[0].passage, 0.9, 0, self.title, "2023-04-11", self.url, "")
        assert r.answer is not None
        answer = Answer("1870", SENTENCE, 0.9, hit, r.answer.span, r.answer.sentence_span)
        return Response(question, answer, [answer], [citation_for(1, hit, answer)], [hit])

    def article(self, article_id: str) -> ArticleView | None:
        return ArticleView(ARTICLE_ID, self.title, "2023-04-11", self.url, "", SENTENCE)


@pytest.mark.parametrize(
    ("title", "url"),
    [
        ("Election results [/x] announced", "https://news.example/[/x]"),
        ("[bold red]Loud[/] :x: title", "https://news.example/[b]bold"),
        ("[link=http://evil.example]click[/link]", "https://news.example/[link=http://e.example]"),
        ("[@click=app.quit]Quit[/]", "https://news.example/[@click=app.quit]q[/]"),
    ],
)
async def test_markup_in_titles_and_urls_is_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, title: str, url: str
) -> None:
    monkeypatch.setattr("qa.tui.workers.can_open_browser", lambda: True)
    monkeypatch.setattr("webbrowser.open", lambda url, new=0: True)
    app = fake_app(tmp_path, MarkupAnswerer(title, url))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "When was the lighthouse built?")
        card = app.query_one(AnswerCard)
        assert title in str(card.query_one(SourceRow).query_one(".title", Static).render())
        card.focus()
        await pilot.press("o")  # notifies "opened <URL>"
        await settle(app, pilot)
        toasts = [str(t.render()) for t in app.screen.query(Toast)]
        assert f"opened {url}" in toasts
        await pilot.press("1")
        await settle(app, pilot)
        assert isinstance(app.screen, SourceScreen)
        assert url in str(app.screen.query_one("#url", Static).render())
        assert title in str(app.screen.query_one("#title", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and len(app.query(AnswerCard)) == 1
