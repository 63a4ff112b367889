"""Reader calibration and reader-only scoring: the arithmetic, on synthetic numbers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeSpanReader, fake_clock

import qa.eval.reader as reader_eval
from qa.errors import UsageError
from qa.eval.metrics import expected_calibration_error, reliability
from qa.eval.reader import GoldQuestion, ReaderEvaluator, aggregate_reader, load_gold_questions
from qa.reader.span import Calibration
from qa.train.calibrate import best_threshold, fit_logistic, predict_proba


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
    # Every question is scored right for any t in (0.3, 0.7]; the grid's first such value wins.
    assert t == 0.31


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


# -- ReaderEvaluator, on a scripted reader ------------------------------------------------

GOLD = [
    GoldQuestion("g1", "Q1", "Built in 1870.", "T", ("1870",)),
    GoldQuestion("g2", "Q2", "Lit by whale oil.", "T", ("whale oil", "oil")),
    GoldQuestion("g3", "Q3", "Four kilometres.", "T", ("four kilometres",)),
    GoldQuestion("g4", "Q4", "Bare granite.", "T", ()),
    GoldQuestion("g5", "Q5", "The lantern.", "T", ()),
    GoldQuestion("g6", "Q6", "Nothing here.", "T", ()),
]
# (text, confidence) per question; the threshold is 0.5. None: the reader finds no span.
READ: dict[str, tuple[str, float] | None] = {
    "Q1": ("1870", 0.95),  # answered, right
    "Q2": ("whale oil lamps", 0.65),  # answered, F1 0.8 (best of the two golds)
    "Q3": ("four kilometres", 0.35),  # right, but abstained: scores 0
    "Q4": ("bare granite", 0.25),  # unanswerable, abstained: scores 1
    "Q5": ("the lantern", 0.75),  # unanswerable, answered: scores 0
    "Q6": None,  # unanswerable, nothing found (confidence 0): abstained, scores 1
}


def test_reader_evaluator_on_squad_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = FakeSpanReader(READ, threshold=0.5)
    fake_clock(monkeypatch, reader_eval, [10.0, 20.0, 30.0, 30.0, 50.0, 60.0])
    seen: list[tuple[int, int]] = []
    out = tmp_path / "rows.jsonl"
    m = ReaderEvaluator(reader).run(GOLD, out=out, progress=lambda i, n: seen.append((i, n)))
    assert reader.loaded == 1 and reader.questions[0] == "warm up"
    assert reader.questions[1:] == [q.question for q in GOLD]
    assert seen == [(i, 6) for i in range(1, 7)]

    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["answerable"], r["prediction"], r["confidence"]) for r in rows] == [
        ("g1", True, "1870", 0.95),
        ("g2", True, "whale oil lamps", 0.65),
        ("g3", True, "four kilometres", 0.35),
        ("g4", False, "bare granite", 0.25),
        ("g5", False, "the lantern", 0.75),
        ("g6", False, "", 0.0),
    ]
    # Per row, against the gold (an unanswerable's gold is ""): the empty prediction matches.
    assert [r["em"] for r in rows] == [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert [r["f1"] for r in rows] == pytest.approx([1.0, 0.8, 1.0, 0.0, 0.0, 1.0])

    assert (m["questions"], m["has_ans"], m["no_ans"]) == (6, 3, 3)
    assert (m["threshold"], m["protocol"]) == (0.5, "abstain below threshold")
    # With abstention, per question: EM 1 0 0 1 0 1, F1 1 0.8 0 1 0 1.
    assert m["em"] == 50.0 and m["f1"] == 63.33 and m["f1_with_threshold"] == 63.33
    assert m["has_ans_em"] == 33.33 and m["has_ans_f1"] == 60.0
    assert m["no_ans_acc"] == 66.67  # g4 and g6 abstained, g5 answered
    # Top span always, an answer never right where there is none: EM 1 0 1 0 0 0.
    assert m["em_top_span_always"] == 33.33 and m["f1_top_span_always"] == 46.67
    assert m["answered"] == 50.0
    # No calibration: reliability against exact match, one question a bin.
    assert m["reliability_target"] == "em"
    bins = [(b["lo"], b["n"], b["confidence"], b["accuracy"]) for b in m["reliability"]]
    assert bins == [
        (0.0, 1, 0.0, 0.0),
        (0.2, 1, 0.25, 0.0),
        (0.3, 1, 0.35, 1.0),
        (0.6, 1, 0.65, 0.0),
        (0.7, 1, 0.75, 0.0),
        (0.9, 1, 0.95, 1.0),
    ]
    # ECE: mean |accuracy - confidence| = (0 + .25 + .65 + .65 + .75 + .05) / 6.
    assert m["ece"] == m["ece_em"] == round(2.35 / 6, 4)
    assert (m["latency_ms_p50"], m["latency_ms_p95"]) == pytest.approx((30.0, 60.0))
    assert m["reader_runtime"] == "fake"


def test_reader_evaluator_on_squad_v1_keeps_the_top_span() -> None:
    reader = FakeSpanReader({"Q1": ("1870", 0.95), "Q3": ("four kilometres", 0.35)})
    m = ReaderEvaluator(reader).run([GOLD[0], GOLD[2]])
    assert m["protocol"] == "top span always" and m["no_ans"] == 0
    assert m["em"] == m["has_ans_em"] == 100.0 and m["no_ans_acc"] is None
    assert m["f1_with_threshold"] == 50.0 and m["answered"] == 50.0
