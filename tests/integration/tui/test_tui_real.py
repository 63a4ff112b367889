"""The chat app on the real pipeline: MiniLM, a real index of the reference article."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from qa.answer import Answerer
from qa.index.embed import Embedder
from qa.index.indexer import Indexer
from qa.tui import create_app
from qa.tui.screens import SourceScreen
from qa.tui.widgets import AnswerCard, PromptInput

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


def _text(card: AnswerCard) -> str:
    return "\n".join(str(s.render()) for s in card.query(Static))


async def test_chat_on_the_reference_article(
    tmp_path: Path, real_embedder: Embedder, reference_article: Path
) -> None:
    Indexer(tmp_path, real_embedder).update([reference_article])
    app = create_app(
        answerer_factory=lambda d: Answerer(d, embedder=real_embedder), index_dir=tmp_path
    )
    async with app.run_test(size=(110, 40)) as pilot:

        async def settle() -> None:
            for _ in range(3):
                await app.workers.wait_for_complete([w for w in app.workers if w.group != "poll"])
                await pilot.pause()

        async def ask(question: str) -> AnswerCard:
            prompt = app.query_one(PromptInput)
            prompt.focus()
            prompt.value = question
            await pilot.press("enter")
            await settle()
            return list(app.query(AnswerCard))[-1]

        await settle()
        assert app.models == "ready"
        card = await ask("Who boycotted the Sochi conference?")
        assert card.turn.answer is not None
        assert "main opposition faction" in _text(card)
        assert "Putin's Syria Peace Conference" in _text(card)
        follow = await ask("Why did they refuse?")
        assert follow.turn.searched_for.startswith("Why did they refuse? ")
        assert "Sochi" in follow.turn.searched_for
        # The source viewer reads the full article from the index store.
        follow.focus()
        await pilot.press("enter")
        await settle()
        screen = app.screen
        assert isinstance(screen, SourceScreen) and screen.article is not None
        assert "Original url" not in screen.article.text
        assert "Rodi Osman" in screen.article.text  # last paragraph: the whole article
        assert screen.query(".-cited")
