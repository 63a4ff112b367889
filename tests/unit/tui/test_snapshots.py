"""SVG snapshots of the chat app (pytest-textual-snapshot) on the fake answerer.

Update after an intended change of the look: ``pytest tests/unit/tui/test_snapshots.py
--snapshot-update``, then check the SVGs in ``__snapshots__/`` by eye.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from qa.errors import IndexNotFound
from qa.tui.app import NewsQAApp
from qa.tui.widgets import PromptInput
from tests.unit.tui.fakes import FakeAnswerer, fake_app

SIZE = (100, 34)
Compare = Callable[..., bool]


async def _settle(pilot: Pilot[Any]) -> None:
    app = pilot.app
    for _ in range(3):
        await app.workers.wait_for_complete([w for w in app.workers if w.group != "poll"])
        await pilot.pause()


def asking(*lines: str, keys: tuple[str, ...] = ()) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A run_before that submits ``lines`` then presses ``keys``."""

    async def run(pilot: Pilot[Any]) -> None:
        await _settle(pilot)
        for line in lines:
            prompt = pilot.app.query_one(PromptInput)
            prompt.focus()
            prompt.value = line
            await pilot.press("enter")
            await _settle(pilot)
        if keys:
            await pilot.press(*keys)
            await _settle(pilot)
        # The input's cursor blinks every half second: hold it visible, so that the picture
        # does not depend on how long the steps above took.
        for prompt in pilot.app.screen_stack[0].query(PromptInput):
            prompt.cursor_blink = False
        await pilot.pause()

    return run


def test_empty_chat(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(fake_app(tmp_path), terminal_size=SIZE, run_before=asking())


def test_answer_with_citations(snap_compare: Compare, tmp_path: Path) -> None:
    run = asking("Who boycotted the Sochi conference?", "Why did they refuse?")
    assert snap_compare(fake_app(tmp_path), terminal_size=SIZE, run_before=run)


def test_sources_of_two_articles(snap_compare: Compare, tmp_path: Path) -> None:
    run = asking("Who boycotted the Sochi conference?")
    app = fake_app(tmp_path, FakeAnswerer(other_article=True))
    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_no_answer(snap_compare: Compare, tmp_path: Path) -> None:
    run = asking("/since 2018-01-01", "What is the boiling point of tungsten?")
    assert snap_compare(fake_app(tmp_path), terminal_size=SIZE, run_before=run)


def test_source_viewer(snap_compare: Compare, tmp_path: Path) -> None:
    run = asking("Who boycotted the Sochi conference?", keys=("escape", "2"))
    assert snap_compare(fake_app(tmp_path), terminal_size=SIZE, run_before=run)


def test_error_panel(
    snap_compare: Compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    fake = FakeAnswerer(fail=IndexNotFound("index"))
    app = NewsQAApp(
        lambda _d: fake, tmp_path / "index", Path("corpus"), lambda _d: None, lambda *_a: "", 60
    )
    run = asking("Who boycotted the Sochi conference?")
    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_help(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(
        fake_app(tmp_path), terminal_size=(100, 50), run_before=asking(keys=("f1",))
    )
