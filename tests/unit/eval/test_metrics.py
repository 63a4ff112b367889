"""The official SQuAD answer scoring (EM/F1) and the percentile, on cases with known values."""

from __future__ import annotations

import random

import pytest

from qa.eval.metrics import exact_match, f1_score, max_over_truths, normalize_answer, percentile


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Cat!", "cat"),
        ("  A  quick,\tbrown\nfox.  ", "quick brown fox"),
        ("an apple and the orange", "apple and orange"),
        ("Theatre, Anne and Thea", "theatre anne and thea"),  # articles only as whole words
        ("U.S.A.", "usa"),  # punctuation is removed, not replaced by a space
        ("rock-and-roll", "rockandroll"),
        ("the-end", "theend"),  # punctuation goes first, so "the" is no longer a word
        ("$1,600 (approx.)", "1600 approx"),
        ("A", ""),
        ("", ""),
        # Only ASCII punctuation (string.punctuation), as in the official script.
        ("“Quoted” — text", "“quoted” — text"),
    ],
)
def test_normalize_answer_is_the_official_one(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


@pytest.mark.parametrize(
    ("prediction", "truth", "em"),
    [
        ("The Eiffel Tower", "eiffel tower", 1.0),
        ("Eiffel Tower.", "  the Eiffel   tower", 1.0),
        ("Eiffel", "Eiffel Tower", 0.0),
        ("Eiffel Towers", "Eiffel Tower", 0.0),
        ("the", "an", 1.0),  # both normalise to ""
    ],
)
def test_exact_match(prediction: str, truth: str, em: float) -> None:
    assert exact_match(prediction, truth) == em


@pytest.mark.parametrize(
    ("prediction", "truth", "f1"),
    [
        ("red dog", "red dog", 1.0),
        # [big, red, dog] vs [red, dog]: P 2/3, R 1.
        ("the big red dog", "red dog", 0.8),
        # [1870] vs [in, 1870]: P 1, R 1/2.
        ("1870", "in 1870", 2 / 3),
        # Token counts clip: [red, red, dog] vs [red, dog, dog] share one red and one dog.
        ("red red dog", "red dog dog", 2 / 3),
        # Both hold "red" twice: it counts twice. [red, red] vs [red, red, dog]: P 1, R 2/3.
        ("red red", "red red dog", 0.8),
        ("blue cat", "red dog", 0.0),
        # [whale, oil, lamps] vs [whale, oil]: P 2/3, R 1; case and punctuation do not count.
        ("Whale oil, lamps.", "WHALE OIL", 0.8),
        ("Whale-oil lamps", "whale oil", 0.0),  # the hyphen goes: "whaleoil" is one token
        # Empty after normalisation: a match only when both are (the SQuAD v2.0 convention).
        ("", "", 1.0),
        ("the", "a", 1.0),
        ("", "dog", 0.0),
        ("dog", "", 0.0),
        ("The", "dog", 0.0),
    ],
)
def test_f1_score(prediction: str, truth: str, f1: float) -> None:
    assert f1_score(prediction, truth) == pytest.approx(f1)


def test_f1_is_symmetric() -> None:
    assert f1_score("the big red dog", "red dog") == f1_score("red dog", "the big red dog")


@pytest.mark.parametrize(
    ("metric", "prediction", "truths", "score"),
    [
        ("em", "Paris", ["London", "paris."], 1.0),
        ("em", "Paris, France", ["London", "Paris"], 0.0),
        # vs "dog": P 1/3, R 1 -> 0.5; vs "red car": P 1/3, R 1/2 -> 0.4; the best counts.
        ("f1", "big red dog", ["dog", "red car"], 0.5),
        ("f1", "big red dog", ["red car", "dog"], 0.5),
        ("f1", "the red dog", ["dog", "Red dog!", "cat"], 1.0),
        # No gold answer (an unanswerable question): only an empty prediction is right.
        ("em", "", [], 1.0),
        ("f1", "", [], 1.0),
        ("em", "a guess", [], 0.0),
        ("f1", "a guess", [], 0.0),
    ],
)
def test_max_over_truths(metric: str, prediction: str, truths: list[str], score: float) -> None:
    assert max_over_truths(metric, prediction, truths) == pytest.approx(score)


def test_max_over_truths_takes_any_iterable() -> None:
    assert max_over_truths("em", "oil", (t for t in ["whale oil", "Oil"])) == 1.0


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, 0.0),
        ([7.0], 0, 7.0),
        ([7.0], 95, 7.0),
        ([3.0, 1.0, 2.0], 0, 1.0),
        ([3.0, 1.0, 2.0], 50, 2.0),
        ([3.0, 1.0, 2.0], 100, 3.0),
        ([0.0, 1.0, 2.0, 3.0, 4.0], 90, 4.0),  # rank 3.6 rounds to 4 (nearest, not floor)
        # 21 values 0..20: rank round(q / 100 * 20).
        (list(range(21)), 50, 10.0),
        (list(range(21)), 95, 19.0),
        (list(range(21)), 90, 18.0),
        (list(range(21)), 99, 20.0),
        # Out-of-range q is clamped to the ends.
        ([3.0, 1.0, 2.0], 150, 3.0),
        ([3.0, 1.0, 2.0], -10, 1.0),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    shuffled = list(values)
    random.Random(0).shuffle(shuffled)
    before = list(shuffled)
    got = percentile(shuffled, q)
    assert got == expected and type(got) is float
    assert shuffled == before  # the input is not sorted in place
