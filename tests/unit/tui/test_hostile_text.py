"""The chat shows text from outside (titles, passages, URLs, questions, saved chats) as text:
no terminal escape reaches the terminal, no markup or emoji is interpreted; and a burst of
Enters asks once."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot

from qa.tui.app import NewsQAApp
from qa.tui.widgets import AnswerCard, PromptInput
from tests.unit.tui.fakes import FakeAnswerer, fake_app

SIZE = (100, 40)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


async def settle(app: NewsQAApp, pilot: Pilot[None]) -> None:
    """Let workers finish and their messages be handled."""
    for _ in range(3):
        await app.workers.wait_for_complete([w for w in app.workers if w.group != "poll"])
        await pilot.pause()


async def test_a_burst_of_enters_asks_once(tmp_path: Path) -> None:
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
