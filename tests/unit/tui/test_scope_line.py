"""The chat's answer card says which dates were searched (the response's scope)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qa.tui.widgets import AnswerCard
from qa.types import Response
from tests.unit.tui.fakes import FakeAnswerer, fake_app
from tests.unit.tui.test_app import SIZE, ask, settle, text_of

pytestmark = pytest.mark.anyio
SCOPE = 'articles from 2022-06-02 to 2022-06-16 ("last week"), recent first'


class ScopedAnswerer(FakeAnswerer):
    def ask(self, question: str, *args: Any, **kwargs: Any) -> Response:
        return replace(super().ask(question, *args, **kwargs), scope=SCOPE)


@pytest.fixture()
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


async def test_the_card_says_which_dates_were_searched(tmp_path: Path) -> None:
    app = fake_app(tmp_path, ScopedAnswerer())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await ask(app, pilot, "Who boycotted the Sochi conference last week?")
        body = " ".join(text_of(app.query_one(AnswerCard)).split())
        assert SCOPE in body
