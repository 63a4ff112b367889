"""The text features of the decision to answer: the answer typer, proximity, the loader."""

from __future__ import annotations

import numpy as np
import pytest

from qa.errors import ReaderLoadError
from qa.reader.decide import (
    FEATURES,
    LOGIT_FEATURES,
    SpanInContext,
    content_words,
    expected_type,
    feature_vector,
    fits_type,
)
from qa.reader.span import Calibration
from qa.train.calibrate import cross_validated, select_features


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many Syrians did the Kremlin invite to Sochi?", "number"),
        ("How much did the stadium cost?", "number"),
        ("What percentage of voters stayed home?", "number"),
        ("When did the congress open?", "date"),
        ("In what year was the treaty signed?", "date"),
        ("Which century saw the cathedral built?", "date"),
        ("Who boycotted the Sochi conference?", "name"),
        ("By whom was the law passed?", "name"),
        ("Where was the conference held?", "place"),
        ("In which country is Sochi?", "place"),
        ("What did the opposition do?", None),
        ("Why was the congress called?", None),
    ],
)
def test_expected_type(question: str, kind: str | None) -> None:
    assert expected_type(question) == kind


@pytest.mark.parametrize(
    ("kind", "span", "fits"),
    [
        ("number", "1,600", True),
        ("number", "sixteen hundred", True),
        ("number", "the Kremlin", False),
        ("date", "in 1998", True),
        ("date", "March", True),
        ("date", "the 12th century", True),
        ("date", "the opposition", False),
        ("date", "1,600", False),
        ("name", "Staffan de Mistura", True),
        ("name", "the main opposition faction", False),
        ("place", "Sochi", True),
        ("place", "the northern city", True),
        ("place", "quickly", False),
    ],
)
def test_fits_type(kind: str, span: str, fits: bool) -> None:
    assert fits_type(kind, span) is fits


def test_fits_type_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown answer kind"):
        fits_type("colour", "red")


def test_content_words_drop_function_words_and_join_plurals() -> None:
    assert content_words("Who boycotted the Sochi conferences?") == content_words(
        "boycotted Sochi conference"
    )
    assert "the" not in content_words("the the the")


CONTEXT = (
    "Russia hosted a congress on Syria in Sochi. "
    "The main opposition faction boycotted the Sochi congress, its leaders said. "
    "Some 1,600 Syrians were invited by the Kremlin."
)


def _span(question: str, text: str) -> SpanInContext:
    start = CONTEXT.index(text)
    return SpanInContext(question, CONTEXT, start, start + len(text), 7.0, -0.5, 1.0)


def test_type_features_of_a_fitting_and_a_misfitting_span() -> None:
    q = "How many Syrians were invited?"
    right, wrong = _span(q, "1,600"), _span(q, "the Kremlin")
    assert FEATURES["type_match"](right) == 1.0 and FEATURES["type_mismatch"](right) == 0.0
    assert FEATURES["type_match"](wrong) == 0.0 and FEATURES["type_mismatch"](wrong) == 1.0
    untyped = _span("What did the opposition do?", "boycotted")
    assert FEATURES["type_match"](untyped) == FEATURES["type_mismatch"](untyped) == 0.0


def test_question_words_near_the_span() -> None:
    q = "Who boycotted the Sochi congress?"
    near = _span(q, "The main opposition faction")
    far = _span(q, "the Kremlin")
    # boycotted, sochi, congress all stand in the first span's sentence; none in the third's.
    assert FEATURES["near_sentence"](near) == pytest.approx(1.0)
    assert FEATURES["near_sentence"](far) == pytest.approx(0.0)
    assert FEATURES["near_window"](near) > FEATURES["near_window"](far)


def test_window_counts_only_words_close_to_the_span() -> None:
    context = "Sochi " + "filler " * 20 + "ANSWER here."
    start = context.index("ANSWER")
    s = SpanInContext("Where is Sochi?", context, start, start + 6)
    assert FEATURES["near_window"](s) == 0.0
    assert FEATURES["near_sentence"](s) == 1.0  # one sentence: Sochi is in it


def test_span_repeating_the_question() -> None:
    q = "Who boycotted the Sochi congress?"
    assert FEATURES["in_question"](_span(q, "the Sochi congress")) == pytest.approx(1.0)
    assert FEATURES["in_question"](_span(q, "The main opposition faction")) == 0.0


def test_logit_features_and_their_order() -> None:
    s = _span("Who?", "the Kremlin")
    assert feature_vector(s, LOGIT_FEATURES) == [7.0, -0.5, 6.0]
    assert feature_vector(s, ("margin", "score")) == [6.0, 7.0]


def _meta(**cal: object) -> dict[str, object]:
    return {"calibration": {"weights": [0.1, 0.2, 0.3], "bias": -1.0, "threshold": 0.4, **cal}}


def test_an_older_calibration_loads_with_the_logit_features() -> None:
    old = Calibration.from_meta(_meta())
    assert old is not None and old.features == LOGIT_FEATURES
    s = _span("Who?", "the Kremlin")
    assert old.of_span(s) == pytest.approx(old.probability(7.0, -0.5, 1.0))


def test_a_calibration_with_text_features_weighs_them() -> None:
    cal = Calibration.from_meta(
        _meta(
            features=["score", "log_prob", "margin", "type_mismatch"],
            weights=[0.1, 0.2, 0.3, -3.0],
        )
    )
    assert cal is not None
    q = "How many Syrians were invited?"
    assert cal.of_span(_span(q, "1,600")) > cal.of_span(_span(q, "the Kremlin"))
    with pytest.raises(ValueError, match="of_span"):
        cal.probability(7.0, -0.5, 1.0)


def test_a_calibration_naming_an_unknown_feature_is_refused() -> None:
    with pytest.raises(ReaderLoadError, match="recalibrate"):
        Calibration.from_meta(_meta(features=["score", "log_prob", "colour"]))
    with pytest.raises(ReaderLoadError, match="recalibrate"):
        Calibration.from_meta(_meta(features=["score", "log_prob"]))


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs whose answerability shows in a text feature (column 3) beyond the logits."""
    rng = np.random.default_rng(seed)
    positive = rng.random(n) < 0.5
    helpful = (positive ^ (rng.random(n) < 0.1)).astype(float)  # right 90 % of the time
    noise = rng.normal(size=n)
    logits = rng.normal(size=(n, 3)) + 0.5 * positive[:, None]
    x = np.column_stack([logits, helpful, noise])
    f1 = np.where(positive, 0.9, 0.0)
    return x, f1, positive, np.arange(n) % 5


def test_selection_keeps_a_helpful_feature_and_drops_noise() -> None:
    x, f1, positive, folds = _synthetic(3000, 0)
    names = [*LOGIT_FEATURES, "type_mismatch", "near_window"]
    chosen, rounds = select_features(x, names, f1, f1, positive, folds)
    assert chosen == [*LOGIT_FEATURES, "type_mismatch"]
    assert rounds[1]["best"] == "type_mismatch" and rounds[1]["kept"]
    assert not rounds[-1]["kept"]


def test_cross_validated_f1_rises_with_a_helpful_feature() -> None:
    x, f1, positive, folds = _synthetic(3000, 1)
    logits_only, _ = cross_validated(x[:, :3], f1, f1, positive, folds)
    with_text, _ = cross_validated(x[:, :4], f1, f1, positive, folds)
    assert with_text > logits_only + 5


def test_question_words_absent_from_the_passage() -> None:
    assert FEATURES["absent"](_span("Who boycotted the Sochi congress?", "the Kremlin")) == 0.0
    half = _span("Who boycotted the Geneva congress?", "the Kremlin")  # geneva is not there
    assert FEATURES["absent"](half) == pytest.approx(1 / 3)


def test_names_of_the_question_absent_from_the_passage() -> None:
    # "Who" opens the question and is no name; Sochi is in the passage, Geneva is not.
    assert FEATURES["absent_names"](_span("Who went to Sochi?", "the Kremlin")) == 0.0
    assert FEATURES["absent_names"](_span("Who went to Geneva?", "the Kremlin")) == 1.0
    assert FEATURES["absent_names"](_span("how many went to Geneva or Sochi?", "1,600")) == 0.5
    assert FEATURES["absent_names"](_span("Who went there?", "the Kremlin")) == 0.0
