"""Whole answers with the shipped span reader on the reference article's paragraph."""

from __future__ import annotations

import pytest

from qa.reader.span import SpanReader, context_hit, shipped_reader_available

pytestmark = pytest.mark.skipif(not shipped_reader_available(), reason="no shipped reader")

PARAGRAPH = (
    "Russia has teamed up with fellow Assad supporter Iran as well as Turkey as it attempts "
    "to forge a settlement in Syria. Condemning the U.S. plans, Moscow gave Ankara the green "
    "light earlier this month to attack Syrian Kurds in the northwest."
)
SEVERAL = "Which two countries has Russia teamed up with to forge a settlement in Syria?"


@pytest.fixture(scope="module")
def reader() -> SpanReader:
    reader = SpanReader()
    reader.load()
    return reader


def top(reader: SpanReader, question: str) -> str:
    answers = reader.read(question, [context_hit(PARAGRAPH)])
    assert answers
    return answers[0].text


def test_two_countries_get_the_whole_coordination(reader: SpanReader) -> None:
    assert top(reader, SEVERAL) == "Iran as well as Turkey"
    answer = reader.read(SEVERAL, [context_hit(PARAGRAPH)])[0]
    assert PARAGRAPH[answer.span.start : answer.span.end] == "Iran as well as Turkey"


def test_without_widening_the_reader_picks_one_conjunct(reader: SpanReader) -> None:
    plain = SpanReader(whole_answers=False)
    plain._loaded = reader.load()  # the same model, loaded once
    assert top(plain, SEVERAL) in {"Iran", "Turkey"}


def test_a_question_for_one_country_is_not_widened(reader: SpanReader) -> None:
    assert top(reader, "Which country gave Ankara the green light?") != "Iran as well as Turkey"
    assert "as well as" not in top(reader, "Which country has Russia teamed up with?")
