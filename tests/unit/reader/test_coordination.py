"""Whole answers: questions that ask for several things, coordinations, and the logit gate."""

from __future__ import annotations

import pytest

from qa.reader.coordination import asks_for_several, coordination_around, span_kind, widen
from qa.reader.spans import Candidates

TEXT = (
    "Russia has teamed up with fellow Assad supporter Iran as well as Turkey as it attempts "
    "to forge a settlement in Syria. The axis formed by Russia, Turkey and Iran held. "
    "However, Paris and Berlin agree. Prices rose 5% and 7% in 1990 and 1995. "
    "He moved to Paris, France in May. Ankara or Moscow will decide."
)
SEVERAL = "Which two countries has Russia teamed up with to forge a settlement in Syria?"


def at(word: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = TEXT.index(word, start + 1)
    return start, start + len(word)


def whole(word: str, nth: int = 0) -> str | None:
    found = coordination_around(TEXT, *at(word, nth))
    return TEXT[found[0] : found[1]] if found else None


@pytest.mark.parametrize(
    "question",
    [
        SEVERAL,
        "Who were the founders of the band?",
        "What are the main exports of Chile?",
        "Name the three rivers of the city.",
        "Which teams played in Super Bowl 50?",
        "What cities did the tour visit?",
        "Between what two rivers did Lothair receive a kingdom?",
    ],
)
def test_questions_that_ask_for_several(question: str) -> None:
    assert asks_for_several(question)


@pytest.mark.parametrize(
    "question",
    [
        "Which country has Russia teamed up with?",
        "What year did the war end?",
        "How many countries signed the treaty?",
        "What business did he run?",
        "Who is the president of France?",
        "What was the name of the first king?",
        "Who boycotted the Sochi conference?",
    ],
)
def test_questions_that_ask_for_one(question: str) -> None:
    assert not asks_for_several(question)


def test_kinds() -> None:
    assert span_kind("Turkey") == "name"
    assert span_kind("the United States") == "name"
    assert span_kind("1,600") == "number"
    assert span_kind("5%") == "number"
    assert span_kind("the opposition") is None


def test_a_conjunct_reaches_its_whole_coordination() -> None:
    assert whole("Turkey") == "Iran as well as Turkey"
    assert whole("Iran") == "Iran as well as Turkey"
    assert whole("Russia", 1) == "Russia, Turkey and Iran"
    assert whole("Turkey", 1) == "Russia, Turkey and Iran"
    assert whole("Iran", 1) == "Russia, Turkey and Iran"
    assert whole("7%") == "5% and 7%"
    assert whole("1990") == "1990 and 1995"


def test_a_run_of_conjuncts_reaches_the_whole_coordination() -> None:
    start, end = at("Russia", 1)[0], at("Turkey", 1)[1]
    assert TEXT[start:end] == "Russia, Turkey"
    found = coordination_around(TEXT, start, end)
    assert found and TEXT[found[0] : found[1]] == "Russia, Turkey and Iran"
    start, end = at("Turkey", 1)[0], at("Iran", 1)[1]
    found = coordination_around(TEXT, start, end)
    assert found and TEXT[found[0] : found[1]] == "Russia, Turkey and Iran"
    # Already whole: nothing to widen.
    assert coordination_around(TEXT, at("Russia", 1)[0], at("Iran", 1)[1]) is None
    assert coordination_around(TEXT, at("Iran")[0], at("Turkey")[1]) is None


def test_what_is_not_a_coordination_is_left_alone() -> None:
    assert whole("Berlin") == "Paris and Berlin"  # "However," opens the sentence
    assert whole("France") is None  # an apposition, no coordinator
    assert whole("Moscow") is None  # "or" offers alternatives
    assert whole("Syria") is None
    assert whole("Assad") is None  # "supporter" is no separator
    # Names do not join numbers.
    assert coordination_around("Turkey and 1995 came.", 0, 6) is None


def pick(word: str, score: float, nth: int = 0) -> tuple[tuple[int, int], tuple[float, float]]:
    return at(word, nth), (score, -1.0)


def test_widens_when_the_reader_scores_the_whole_within_the_margin() -> None:
    coord = (at("Iran")[0], at("Turkey")[1])
    candidates = {at("Turkey"): (9.0, -1.0), coord: (6.0, -2.0), at("Iran"): (5.0, -3.0)}
    out = widen(SEVERAL, TEXT, [pick("Turkey", 9.0), pick("Iran", 5.0)], candidates, margin=4.0)
    # Both conjuncts lead to the same coordination: one answer, keeping the pick's score.
    assert out == [(coord, (9.0, -1.0))]


def test_no_widening_below_the_margin_or_outside_the_candidates() -> None:
    coord = (at("Iran")[0], at("Turkey")[1])
    picks = [pick("Turkey", 9.0)]
    assert widen(SEVERAL, TEXT, picks, {at("Turkey"): (9.0, -1.0), coord: (4.0, -2.0)}, 4.0) == (
        picks
    )
    assert widen(SEVERAL, TEXT, picks, {at("Turkey"): (9.0, -1.0)}, 4.0) == picks


def test_no_widening_for_a_question_that_asks_for_one() -> None:
    coord = (at("Iran")[0], at("Turkey")[1])
    picks = [pick("Turkey", 9.0)]
    candidates = {at("Turkey"): (9.0, -1.0), coord: (8.9, -2.0)}
    assert widen("Which country joined Russia?", TEXT, picks, candidates, 4.0) == picks


def test_candidates_top_widens_only_when_asked() -> None:
    coord = (at("Iran")[0], at("Turkey")[1])
    found = Candidates(TEXT, {at("Turkey"): (9.0, -1.0), coord: (7.5, -2.0)}, null_score=1.0)
    assert [s.text for s in found.top(5, SEVERAL)] == ["Turkey", "Iran as well as Turkey"]
    top = found.top(5, SEVERAL, whole_answer_margin=4.0)
    assert [s.text for s in top] == ["Iran as well as Turkey"]
    assert (top[0].score, top[0].log_prob, top[0].null_score) == (9.0, -1.0, 1.0)
