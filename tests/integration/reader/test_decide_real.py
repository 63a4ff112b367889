"""A reader calibrated with text features: fitted by the real command, loaded, and read with.

``python -m qa.train calibrate`` runs on a copy of the shipped reader and the tiny SQuAD file
of ``tests/conftest.py``; the selection is told to keep every candidate (the tiny file is far
too small to show a gain), so that the written ``reader.json`` weighs the text features.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qa.reader.decide import LOGIT_FEATURES, TEXT_FEATURES
from qa.reader.span import Calibration, SpanReader, context_hit, shipped_reader_available
from qa.train import calibrate
from qa.train.__main__ import main

pytestmark = pytest.mark.skipif(not shipped_reader_available(), reason="no shipped reader")

PARAGRAPH = (
    "More than 1,600 Syrians were invited to the congress in Sochi, the Kremlin said. "
    "The main opposition faction boycotted the talks. Staffan de Mistura represented the "
    "United Nations at the congress, which opened on January 30."
)
QUESTIONS = (
    "How many Syrians were invited to Sochi?",
    "Who boycotted the talks?",
    "Who represented the UN at the congress?",
    "When did the congress open?",
    "What is the population of Sochi?",
)


@pytest.fixture(scope="module")
def calibrated(tiny_squad: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped reader, calibrated with every text feature kept."""
    from qa.reader.weights import DEFAULT_READER_DIR

    reader = tmp_path_factory.mktemp("decide") / "reader"
    shutil.copytree(DEFAULT_READER_DIR, reader)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(calibrate, "MIN_GAIN", -1000.0)
        argv = ["calibrate", "--reader", str(reader), "--data", str(tiny_squad), "--text-features"]
        assert main([*argv, "--heldout-articles", "2"]) == 0
    return reader


def test_the_fitted_reader_json_names_the_text_features(calibrated: Path) -> None:
    cal = json.loads((calibrated / "reader.json").read_text())["calibration"]
    assert cal["features"] == [*LOGIT_FEATURES, *TEXT_FEATURES]
    assert len(cal["weights"]) == len(cal["features"])
    assert cal["selection"]["rounds"][0]["features"] == list(LOGIT_FEATURES)
    assert all(r["kept"] for r in cal["selection"]["rounds"][1:])


def test_a_reader_with_text_features_gives_confidences_in_unit_range(calibrated: Path) -> None:
    reader = SpanReader(model=calibrated)
    cal = reader.calibration
    assert cal is not None and cal.features == (*LOGIT_FEATURES, *TEXT_FEATURES)
    logits_only = SpanReader(model=calibrated)
    logits_only.calibration = Calibration(
        cal.weights[:3], cal.bias, cal.threshold, cal.target, LOGIT_FEATURES
    )
    logits_only._loaded = reader.load()  # the same model, loaded once
    differ = 0
    for question in QUESTIONS:
        answers = reader.read(question, [context_hit(PARAGRAPH)])
        assert answers
        assert all(0.0 <= a.confidence <= 1.0 for a in answers)
        plain = logits_only.read(question, [context_hit(PARAGRAPH)])
        differ += abs(answers[0].confidence - plain[0].confidence) > 1e-6
    # The text features' weights move the confidence (they are not all zero).
    assert differ >= 1


def test_the_shipped_reader_json_loads() -> None:
    reader = SpanReader()
    cal = reader.calibration
    assert cal is not None and cal.features[:3] == LOGIT_FEATURES
    answers = reader.read(QUESTIONS[0], [context_hit(PARAGRAPH)])
    assert answers and all(0.0 <= a.confidence <= 1.0 for a in answers)
    assert "1,600" in answers[0].text
