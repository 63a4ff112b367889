"""Pilot tests of the chat app (qa.tui) on a fake answerer: no models, no index."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Static

from qa.errors import CorruptIndex, IndexNotFound, QAError
from qa.search.retriever import Filters
from qa.tui import IndexSummary
from qa.tui.app import NewsQAApp
from qa.tui.panels import ErrorPanel, WorkingLine
from qa.tui.screens import ChatsScreen, HelpScreen, SourceScreen
from qa.tui.widgets import HIGHLIGHT, AnswerCard, PromptInput, SourceRow, SystemLine
from qa.types import Response
from tests.unit.tui.fakes import (
    ANSWER_SPAN,
    INFO,
    OTHER_TITLE,
    OTHER_URL,
    TITLE,
    URL,
    FakeAnswerer,
    fake_app,
    settle,
)

SIZE = (100, 40)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


async def ask(app: NewsQAApp, pilot: Pilot[None], text: str) -> None:
    """Put a line into the input and submit it (keys are typed in one test only: slow)."""
    prompt = app.query_one(PromptInput)
    prompt.focus()
    prompt.value = text
    await pilot.press("enter")
    await settle(app, pilot)


def text_of(widget: object) -> str:
    """Plain text of everything rendered under a widget."""
    from textual.widget import Widget

    assert isinstance(widget, Widget)
    parts = [str(s.render()) for s in widget.query(Static)]
    if isinstance(widget, Static):
        parts.insert(0, str(widget.render()))
    return "\n".join(parts)


async def test_answer_card_with_highlight_and_citations(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.models == "ready"
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        card = app.query_one(AnswerCard)
        assert not card.has_class("-none")
        body = text_of(card)
        assert "main opposition faction" in body
        assert "confidence 0.83" in body
        # Three passages of one article: one line, with each passage's number and paragraph.
        assert f"*[1, 2, 3] {TITLE}" in body
        assert "2018-01-30 · The Moscow Times · ¶0, 3, 17" in body
        assert body.count(TITLE) == 1
        # The answer span is highlighted inside its sentence.
        rendered = card.query_one(".answer", Static).content
        assert isinstance(rendered, Text)
        assert any(
            rendered.plain[s.start : s.end] == ANSWER_SPAN and s.style == HIGHLIGHT
            for s in rendered.spans
        )
        assert "searched for" not in body  # first question: not rewritten


async def test_no_answer_looks_different(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "What is the boiling point of tungsten?")
        card = app.query_one(AnswerCard)
        assert card.has_class("-none")
        assert card.border_title == "No answer"
        assert "No answer in the corpus." in text_of(card)
        assert "Closest passages" in text_of(card)


async def test_follow_up_is_rewritten_and_shown(tmp_path: Path) -> None:
    fake = FakeAnswerer()
    app = fake_app(tmp_path, fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        await ask(app, pilot, "Why did they refuse?")
        await ask(app, pilot, "What is the capital of France?")
        queries = [q for q, _, _ in fake.asked]
        assert queries[1].startswith("Why did they refuse? ") and "Sochi" in queries[1]
        assert queries[2] == "What is the capital of France?"
        # A question that leans back is read with the added words too; others as typed.
        assert fake.read == [
            "Who boycotted the Sochi conference?",
            queries[1],
            "What is the capital of France?",
        ]
        cards = list(app.query(AnswerCard))
        assert f"searched for: {queries[1]}" in text_of(cards[1])
        assert cards[1].turn.question == "Why did they refuse?"
        assert "searched for" not in text_of(cards[2])


async def test_slash_commands_and_invalid_values(tmp_path: Path) -> None:
    fake = FakeAnswerer()
    app = fake_app(tmp_path, fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for line in ("/since 2022-06-01", "/until 2022", "/source cnn", "/k 10"):
            await ask(app, pilot, line)
        assert (app.settings.since, app.settings.until) == ("2022-06-01", "2022-12-31")
        assert (app.settings.source, app.settings.k) == ("cnn", 10)
        status = str(app.query_one("#status", Static).render())
        assert "k 10 · since 2022-06-01, until 2022-12-31, source ~ cnn" in status
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        assert fake.asked[-1][1:] == (10, Filters("2022-06-01", "2022-12-31", "cnn"))
        for bad in ("/since yesterday", "/k 0", "/k many", "/frobnicate", "/until 2021-01-01"):
            await ask(app, pilot, bad)
        errors = [text_of(w) for w in app.query(SystemLine) if w.has_class("-error")]
        assert len(errors) == 5
        assert "not a date" in errors[0] and "1 to 50" in errors[1]
        assert "unknown command /frobnicate" in errors[3]
        assert "after until" in errors[4]
        assert app.settings.k == 10  # unchanged by the bad values
        await ask(app, pilot, "/source off")
        assert app.settings.source == ""
        await ask(app, pilot, "/help")
        assert "/since DATE" in text_of(list(app.query(SystemLine))[-1])
        await ask(app, pilot, "/clear")
        assert not app.query(AnswerCard) and app.turns == [] and app.chat_id is None


async def test_history_up_down_and_multiline_paste(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "first question")
        await ask(app, pilot, "second question")
        prompt = app.query_one(PromptInput)
        await pilot.press(*"draft")
        await pilot.press("up")
        assert prompt.value == "second question"
        await pilot.press("up", "up")
        assert prompt.value == "first question"
        await pilot.press("down")
        assert prompt.value == "second question"
        await pilot.press("down")
        assert prompt.value == "draft"
        prompt.value = ""
        from textual import events

        prompt.post_message(events.Paste("Who boycotted\nthe Sochi\n\nconference?"))
        await pilot.pause()
        assert prompt.value == "Who boycotted the Sochi conference?"


async def test_source_viewer_by_key_and_click(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        await pilot.press("escape")  # focus the answer card
        assert isinstance(app.focused, AnswerCard)
        await pilot.press("2")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, SourceScreen)
        assert TITLE in str(screen.query_one("#title", Static).render())
        assert URL in str(screen.query_one("#url", Static).render())
        assert "2018-01-30" in str(screen.query_one("#meta", Static).render())
        cited = list(screen.query(".-cited"))
        assert len(cited) == 1 and ANSWER_SPAN in str(cited[0].render())
        assert len(screen.query(".para")) > 10  # the full article, not just the passage
        assert screen.query_one("#article").scroll_y > 0 or cited[0].region.y < SIZE[1]
        await pilot.press("c")
        assert "main opposition faction" in app.clipboard and URL in app.clipboard
        await pilot.press("right")
        await settle(app, pilot)
        assert isinstance(app.screen, SourceScreen) and app.screen.citation.n == 3
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SourceScreen)
        # Clicking the article's row opens it too, at the passage holding the answer.
        await pilot.click("SourceRow", offset=(3, 0))
        await settle(app, pilot)
        assert isinstance(app.screen, SourceScreen) and app.screen.citation.n == 2


async def test_sources_are_grouped_by_article(tmp_path: Path) -> None:
    app = fake_app(tmp_path, FakeAnswerer(other_article=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        card = app.query_one(AnswerCard)
        rows = [text_of(r) for r in card.query(SourceRow)]
        assert len(rows) == 2
        # The answer's [3] points at the first line; the other article keeps its number 2.
        assert str(card.query_one(".answer", Static).render()).endswith("[3]")
        assert f"*[1, 3, 4] {TITLE}" in rows[0] and "¶0, 3, 17" in rows[0]
        assert f" [2] {OTHER_TITLE}" in rows[1]  # "[wire]" in the title stays text
        assert "2018-01-31 · wire.example · ¶2" in rows[1]
        # Number keys still open one passage each.
        for key, n, title in (("2", 2, OTHER_TITLE), ("3", 3, TITLE)):
            card.focus()
            await pilot.press(key)
            await settle(app, pilot)
            assert isinstance(app.screen, SourceScreen) and app.screen.citation.n == n
            assert title in str(app.screen.query_one("#title", Static).render())
            await pilot.press("escape")
            await pilot.pause()
        # A row opens the answer's passage when it holds it, else the article's first.
        for row, n in ((1, 2), (0, 3)):
            await pilot.click(list(card.query(SourceRow))[row], offset=(3, 0))
            await settle(app, pilot)
            assert isinstance(app.screen, SourceScreen) and app.screen.citation.n == n
            await pilot.press("escape")
            await pilot.pause()
        card.focus()
        await pilot.press("y")
        assert app.clipboard.splitlines() == [
            f"[1, 3, 4] {TITLE} · 2018-01-30 · The Moscow Times · ¶0, 3, 17 {URL}",
            f"[2] {OTHER_TITLE} · 2018-01-31 · wire.example · ¶2 {OTHER_URL}",
        ]


async def test_copy_answer_and_open_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("qa.tui.workers.can_open_browser", lambda: True)
    monkeypatch.setattr("webbrowser.open", lambda url, new=0: opened.append(url) or True)
    app = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        await pilot.press("escape", "c")
        assert "A: the main opposition faction" in app.clipboard
        assert "[2]" in app.clipboard and URL in app.clipboard
        await pilot.press("y")
        assert (
            app.clipboard == f"[1, 2, 3] {TITLE} · 2018-01-30 · The Moscow Times · ¶0, 3, 17 {URL}"
        )
        await pilot.press("o")
        await settle(app, pilot)
        assert opened == [URL]
        monkeypatch.setattr("qa.tui.workers.can_open_browser", lambda: False)
        app.copy_to_clipboard("")
        await pilot.press("o")
        await settle(app, pilot)
        assert opened == [URL] and app.clipboard == URL  # no browser: the URL is copied


async def test_question_before_models_are_ready_waits(tmp_path: Path) -> None:
    gate = threading.Event()
    app = fake_app(tmp_path, FakeAnswerer(gate=gate))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.models == "loading"
        await pilot.press(*"Who boycotted the Sochi conference?", "enter")
        await pilot.pause()
        working = app.query_one(WorkingLine)
        assert working.has_class("-busy") and "waiting for the models" in str(working.render())
        # The input stays usable meanwhile.
        await pilot.press(*"abc")
        assert app.query_one(PromptInput).value == "abc"
        gate.set()
        await settle(app, pilot)
        assert "main opposition faction" in text_of(app.query_one(AnswerCard))
        assert not working.has_class("-busy")


async def test_no_index_offers_indexing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    state: dict[str, object] = {"indexed": False}
    fake = FakeAnswerer()

    def factory(_dir: Path) -> FakeAnswerer:
        if not state["indexed"]:
            raise IndexNotFound(str(tmp_path / "index"))
        return fake

    def runner(index_dir: Path, corpus_dir: Path, progress: object) -> str:
        assert corpus_dir == corpus
        progress(1, 1)  # type: ignore[operator]
        state["indexed"] = True
        return "indexed corpus: 1 articles"

    app = NewsQAApp(factory, tmp_path / "index", corpus, lambda _d: None, runner, 60)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(ErrorPanel)
        body = text_of(panel)
        assert "no index in" in body and "Fix: Index your articles" in body
        assert "Traceback" not in body
        assert app.focused is app.query_one("#index")  # nothing typed yet: offer focused
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        assert any("not answered" in text_of(w) for w in app.query(SystemLine))
        await ask(app, pilot, "/index")  # or the button, or i on it
        await settle(app, pilot)
        await settle(app, pilot)
        assert app.models == "ready"
        assert not app.query(ErrorPanel)
        assert any("indexed corpus" in text_of(w) for w in app.query(SystemLine))


@pytest.mark.parametrize(
    "error", [CorruptIndex("index files in x are unreadable"), RuntimeError("boom")]
)
async def test_error_panel_and_retry(tmp_path: Path, error: Exception) -> None:
    calls: list[int] = []

    def factory(_dir: Path) -> FakeAnswerer:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return FakeAnswerer()

    app = NewsQAApp(factory, tmp_path, tmp_path / "nope", lambda _d: INFO, lambda *a: "", 60)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        body = text_of(app.query_one(ErrorPanel))
        assert ("unreadable" in body) if isinstance(error, QAError) else "unexpected" in body
        assert not app.query("#index")  # no corpus folder to offer
        app.query_one("#retry").focus()
        await pilot.press("r")
        await settle(app, pilot)
        assert app.models == "ready" and not app.query(ErrorPanel)


async def test_ask_error_is_a_panel_not_a_crash(tmp_path: Path) -> None:
    class Failing(FakeAnswerer):
        def ask(
            self,
            question: str,
            k: int = 5,
            filters: Filters | None = None,
            search_query: str | None = None,
        ) -> Response:
            raise QAError("the index changed under us")

    app = fake_app(tmp_path, Failing())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        assert "the index changed under us" in text_of(app.query_one(ErrorPanel))
        await ask(app, pilot, "again?")
        assert len(app.query(ErrorPanel)) == 2  # still answering questions


async def test_new_chat_saved_chats_and_reopen(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        await ask(app, pilot, "Why did they refuse?")
        first_chat = app.chat_id
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not app.query(AnswerCard) and app.chat_id is None
        await ask(app, pilot, "What is the boiling point of tungsten?")
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, ChatsScreen)
        # Most recent first: the tungsten chat, then the Sochi chat.
        await pilot.press("down", "enter")
        await settle(app, pilot)
        assert app.chat_id == first_chat
        cards = list(app.query(AnswerCard))
        assert len(cards) == 2 and cards[1].turn.searched_for.startswith("Why did they refuse?")
        await ask(app, pilot, "Where was it held?")  # follow-up of the reopened chat
        assert "searched for:" in text_of(list(app.query(AnswerCard))[-1])
    # A new session sees the saved chats and the question history.
    app2 = fake_app(tmp_path)
    async with app2.run_test(size=SIZE) as pilot:
        await settle(app2, pilot)
        assert app2.chat_store is not None and len(app2.chat_store.chats()) == 2
        await pilot.press("up")
        assert app2.query_one(PromptInput).value == "Where was it held?"


async def test_new_chat_on_an_empty_chat_is_not_a_crash(tmp_path: Path) -> None:
    # ctrl+n while the welcome text showed once mounted a second "#welcome" before the first
    # was gone, and the app died with DuplicateIds.
    app = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert len(app.query(".welcome")) == 1
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        assert not app.query(".welcome") and len(app.query(AnswerCard)) == 1


async def test_new_chat_while_the_models_failed_shows_one_error_panel(tmp_path: Path) -> None:
    def factory(_dir: Path) -> FakeAnswerer:
        raise CorruptIndex("index files in x are unreadable")

    app = NewsQAApp(factory, tmp_path, tmp_path / "nope", lambda _d: INFO, lambda *a: "", 60)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert len(app.query(ErrorPanel)) == 1
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert len(app.query(ErrorPanel)) == 1


async def test_index_generation_change_is_picked_up(tmp_path: Path) -> None:
    infos = [INFO]
    app = fake_app(tmp_path, poll_seconds=0.05)
    app.status_reader = lambda _d: infos[-1]
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "gen 1" in str(app.query_one("#status", Static).render())
        infos.append(IndexSummary(articles=5, passages=40, generation=2, updated_at="2025-02-01"))
        for _ in range(100):  # polled every 0.05 s; allow a loaded machine 5 s
            await pilot.pause(0.05)
            status = str(app.query_one("#status", Static).render())
            if "gen 2" in status:
                break
        assert "5 articles · 40 passages · gen 2" in status
        assert any("generation 2" in str(n.message) for n in app._notifications)


async def test_help_screen_and_quit(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await ask(app, pilot, "Who boycotted the Sochi conference?")
        await pilot.press("escape", "question_mark")  # ? types into the input, not on a card
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


def test_help_lists_every_binding() -> None:
    from qa.tui.screens import HELP_KEYS, SourceScreen

    helped = " ".join(k for _, rows in HELP_KEYS for k, _ in rows).lower()
    for cls in (NewsQAApp, AnswerCard, SourceScreen, ErrorPanel, ChatsScreen):
        for b in cls.BINDINGS:
            assert not isinstance(b, tuple)
            for key in b.key.split(","):
                name = {"question_mark": "?"}.get(key, key)
                if name.isdigit():
                    name = "1-9"
                assert name in helped, f"{cls.__name__}: {key} missing from help"


async def test_index_built_elsewhere_is_picked_up(tmp_path: Path) -> None:
    infos: list[IndexSummary | None] = [None]

    def factory(_dir: Path) -> FakeAnswerer:
        if infos[-1] is None:
            raise IndexNotFound("index")
        return FakeAnswerer()

    app = NewsQAApp(factory, tmp_path, tmp_path / "nope", lambda _d: infos[-1], lambda *a: "", 0.05)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.models == "failed" and app.query(ErrorPanel)
        infos.append(INFO)  # `newsqa index` ran in a shell
        for _ in range(100):
            await pilot.pause(0.05)
            if app.models == "ready":
                break
        await settle(app, pilot)
        assert app.models == "ready" and not app.query(ErrorPanel)
