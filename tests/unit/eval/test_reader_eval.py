"""Reader calibration and reader-only scoring: the arithmetic, on synthetic numbers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from qa.errors import UsageError
from qa.eval.reader import aggregate_reader, load_gold_questions
from qa.reader.span import Calibration
from qa.train.calibrate import (
    best_threshold,
    expected_calibration_error,
    fit_logistic,
    predict_proba,
    reliability,
)


def test_logistic_fit_recovers_a_known_model() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    true = np.array([-0.5, 2.0, -1.0])
    y = (rng.random(4000) < 1 / (1 + np.exp(-(true[0] + x @ true[1:])))).astype(float)
    w = fit_logistic(x, y)
    assert np.allclose(w, true, atol=0.2)
    p = predict_proba(w, x)
    assert expected_calibration_error(reliability(p, y)) < 0.05


def test_threshold_trades_answered_f1_against_abstention() -> None:
    # Confident answers are right, unanswerables all score low: the threshold separates them.
    p_pos = np.array([0.9, 0.8, 0.7, 0.2])
    f1_pos = np.array([1.0, 1.0, 1.0, 0.0])
    p_neg = np.array([0.1, 0.15, 0.3, 0.05])
    t = best_threshold(p_pos, f1_pos, p_neg)
    assert 0.3 < t <= 0.7


def test_reliability_bins_count_every_question() -> None:
    conf = np.array([0.05, 0.15, 0.95, 1.0, 0.5])
    right = np.array([0, 0, 1, 1, 1])
    rows = reliability(conf, right)
    assert sum(r["n"] for r in rows) == 5
    top = rows[-1]
    assert top["n"] == 2 and top["accuracy"] == 1.0


def _row(answerable: bool, conf: float, em: float) -> dict[str, object]:
    return {"answerable": answerable, "confidence": conf, "em": em, "f1": em, "latency_ms": 10.0}


def test_v2_scoring_abstains_below_threshold() -> None:
    rows = [
        _row(True, 0.9, 1.0),  # answered, right
        _row(True, 0.2, 1.0),  # right span but abstained: scores 0
        _row(False, 0.1, 0.0),  # unanswerable, abstained: scores 1
        _row(False, 0.8, 1.0),  # unanswerable, answered: 0 even if "em" says otherwise
    ]
    m = aggregate_reader(rows, threshold=0.5)
    assert m["protocol"] == "abstain below threshold"
    assert m["em"] == 50.0 and m["has_ans_f1"] == 50.0 and m["no_ans_acc"] == 50.0
    assert m["em_top_span_always"] == 50.0  # only the two answerable rights count


def test_v1_scoring_keeps_the_top_span() -> None:
    m = aggregate_reader([_row(True, 0.1, 1.0), _row(True, 0.9, 0.0)], threshold=0.5)
    assert m["protocol"] == "top span always"
    assert m["em"] == 50.0 and m["no_ans_acc"] is None
    assert m["f1_with_threshold"] == 0.0


def test_reliability_follows_the_calibration_target() -> None:
    """An F1-calibrated reader is judged against F1; ECE against EM is given beside it."""
    rows = [
        {"answerable": True, "confidence": 0.55, "em": 0.0, "f1": 0.5, "latency_ms": 1.0},
        {"answerable": True, "confidence": 0.55, "em": 0.0, "f1": 0.6, "latency_ms": 1.0},
    ]
    by_f1 = aggregate_reader(rows, threshold=0.3, target="f1")
    assert by_f1["reliability_target"] == "f1"
    assert by_f1["reliability"][0]["accuracy"] == pytest.approx(0.55)
    assert by_f1["ece"] == pytest.approx(0.0) and by_f1["ece_em"] == pytest.approx(0.55)
    assert aggregate_reader(rows, threshold=0.3)["ece"] == pytest.approx(0.55)


def test_logistic_fit_takes_soft_targets() -> None:
    """Fitted to fractional labels (expected F1), the model predicts their mean."""
    x = np.zeros((400, 1))
    y = np.array([0.3] * 400)
    w = fit_logistic(x, y)
    assert predict_proba(w, x)[0] == pytest.approx(0.3, abs=1e-3)


def test_calibration_probability_is_monotone_in_log_prob() -> None:
    cal = Calibration(weights=(0.0, 1.0, 0.0), bias=0.0, threshold=0.5)
    assert cal.probability(5.0, -3.0, 0.0) < cal.probability(5.0, -0.1, 0.0) < 1.0
    assert Calibration.from_meta({}) is None


def test_load_gold_questions_v2(tmp_path: Path) -> None:
    doc = {
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Paris is in France.",
                        "qas": [
                            {
                                "id": "a",
                                "question": "Where is Paris?",
                                "answers": [{"text": "France", "answer_start": 12}],
                            },
                            {
                                "id": "b",
                                "question": "Where is Rome?",
                                "answers": [],
                                "is_impossible": True,
                            },
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "dev.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(doc, f)
    qs = load_gold_questions(path)
    assert [q.answerable for q in qs] == [True, False]
    assert qs[0].answers == ("France",) and qs[0].context.startswith("Paris")
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "squad"}')
    with pytest.raises(UsageError, match="not a SQuAD json file"):
        load_gold_questions(bad)
