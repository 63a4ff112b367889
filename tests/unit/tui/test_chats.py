"""Unit tests for saved chats (qa.chats) and the chat's slash commands (qa.tui.commands)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.chats import ChatStore, Turn
from qa.tui.commands import ChatSettings, is_command, run_command
from tests.unit.tui.fakes import ANSWER_SPAN, make_response


def test_turn_from_response_round_trips_json() -> None:
    turn = Turn.from_response(
        make_response("Who boycotted?"),
        searched_for="Who boycotted? x",
        filters="since 2018-01-01",
        k=7,
        seconds=0.5,
    )
    assert turn.answer == ANSWER_SPAN
    a, b = turn.span
    assert turn.sentence[a:b] == ANSWER_SPAN
    assert turn.cited == 2 and turn.citation is not None and turn.citation.n == 2
    assert Turn.from_json(turn.to_json()) == turn
    ex = turn.exchange()
    assert ex.searched_for == "Who boycotted? x" and ex.answer == ANSWER_SPAN
    assert ex.title.startswith("Putin's Syria")


def test_no_answer_turn_keeps_the_best_guess() -> None:
    turn = Turn.from_response(make_response("tungsten?", answered=False))
    assert turn.answer is None and turn.cited is None and turn.citation is None
    assert turn.confidence == pytest.approx(0.21)
    assert len(turn.citations) == 3
    assert Turn.from_json(turn.to_json()) == turn


def test_chat_store(tmp_path: Path) -> None:
    store = ChatStore.for_index(tmp_path / "idx")
    assert (tmp_path / "idx" / "chats.sqlite").exists()
    assert store.chats() == []  # empty chats are not listed
    first = store.new_chat()
    store.add_turn(first, Turn.from_response(make_response("Who boycotted?")))
    store.add_turn(first, Turn.from_response(make_response("Why?")))
    second = store.new_chat()
    store.add_turn(second, Turn.from_response(make_response("tungsten?", answered=False)))
    chats = store.chats()
    assert [c.id for c in chats] == [second, first]
    assert chats[1].title == "Who boycotted?" and chats[1].turns == 2
    assert [t.question for t in store.turns(first)] == ["Who boycotted?", "Why?"]
    assert store.recent_questions() == ["Who boycotted?", "Why?", "tungsten?"]
    store.delete(first)
    assert [c.id for c in store.chats()] == [second]
    store.close()
    reopened = ChatStore.for_index(tmp_path / "idx")
    assert len(reopened.chats()) == 1


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("/since 2022-06-01", "since", "2022-06-01"),
        ("/since June 1, 2022", "since", "2022-06-01"),
        ("/since 2022-06", "since", "2022-06-01"),
        ("/until 2022-02", "until", "2022-02-28"),
        ("/until 2022", "until", "2022-12-31"),
        ("/source  CNN ", "source", "CNN"),
        ("/k 10", "k", 10),
    ],
)
def test_commands_set_values(line: str, field: str, value: object) -> None:
    result = run_command(line, ChatSettings())
    assert not result.error
    assert getattr(result.settings, field) == value


@pytest.mark.parametrize(
    "line", ["/since yesterday", "/since 2022-13", "/k 0", "/k 51", "/k ten", "/nope"]
)
def test_bad_commands_are_errors_and_change_nothing(line: str) -> None:
    before = ChatSettings(since="2020-01-01", k=3)
    result = run_command(line, before)
    assert result.error and result.settings == before and result.message


def test_clearing_and_listing() -> None:
    s = ChatSettings(since="2020-01-01", until="2021-01-01", source="cnn")
    assert run_command("/since off", s).settings.since == ""
    assert run_command("/until", s).settings.until == ""
    assert run_command("/source none", s).settings.source == ""
    assert run_command("/since 2022-01-01", s).error  # after until
    assert "since 2020-01-01, until 2021-01-01, source ~ cnn" in run_command("/filters", s).message
    assert run_command("/clear", s).action == "clear"
    assert run_command("/new", s).action == "clear"
    assert run_command("/index", s).action == "index"
    assert run_command("/help", s).action == "help"
    assert is_command(" /k 3") and not is_command("what is /k?")
