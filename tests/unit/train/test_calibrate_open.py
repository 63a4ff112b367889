"""Fitting the open-setting decision: the split, the mix score, the feature selection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qa.errors import TrainingError
from qa.reader.evidence import OPEN_FEATURES
from qa.train import calibrate_open as co


def _article(title: str, n: int) -> dict[str, Any]:
    paragraphs = []
    for i in range(n):
        qas = [{"id": f"{title}{i}", "question": f"q {i}?", "answers": [{"text": f"a{i}"}]}]
        qas.append({"id": f"{title}{i}x", "question": "none?", "answers": []})
        paragraphs.append({"context": f"Paragraph {i} of {title}, a{i}.", "qas": qas})
    return {"title": title, "paragraphs": paragraphs}


def test_every_other_paragraph_is_indexed_and_the_others_questions_lack_their_gold() -> None:
    indexed, questions = co.open_split([_article("A", 3), _article("B", 2)])
    assert [len(a["paragraphs"]) for a in indexed] == [2, 1]
    assert indexed[0]["paragraphs"][1]["context"].startswith("Paragraph 2 of A")
    assert [(q.qid, q.answerable, q.article) for q in questions] == [
        ("A0", True, 0),
        ("A1", False, 0),
        ("A2", True, 0),
        ("B0", True, 1),
        ("B1", False, 1),
    ]
    assert questions[0].answers == ("a0",)


def test_per_paragraph_asks_only_the_first_questions_with_answers() -> None:
    art = _article("A", 2)
    art["paragraphs"][0]["qas"].insert(0, {"id": "none", "question": "?", "answers": []})
    art["paragraphs"][0]["qas"].append({"id": "A0b", "question": "b?", "answers": [{"text": "b"}]})
    _, questions = co.open_split([art], per_paragraph=1)
    assert [q.qid for q in questions] == ["A0", "A1"]
    _, questions = co.open_split([art])
    assert [q.qid for q in questions] == ["A0", "A0b", "A1"]


def test_abstaining_scores_only_where_the_gold_paragraph_is_missing() -> None:
    p = np.array([0.9, 0.2, 0.9, 0.2])
    f1 = np.array([0.5, 1.0, 0.0, 0.0])
    answerable = np.array([True, True, False, False])
    assert co.mix_score(p, 0.5, f1, answerable).tolist() == [0.5, 0.0, 0.0, 1.0]


def test_the_threshold_separates_right_answers_from_answers_without_gold() -> None:
    p = np.array([0.8, 0.7, 0.4, 0.3])
    f1 = np.array([1.0, 1.0, 0.0, 0.0])
    answerable = np.array([True, True, False, False])
    t = co.best_threshold(p, f1, answerable)
    assert 0.4 < t <= 0.7
    assert co.mix_score(p, t, f1, answerable).mean() == 1.0


def _rows(n: int, seed: int, informative: str) -> list[dict[str, Any]]:
    """Rows whose F1 follows ``informative`` (a passage count) far more than ``prob``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        answerable = bool(i % 2)
        agree = float(rng.integers(2, 6) if answerable else rng.integers(1, 3))
        feats = {name: float(rng.normal()) for name in OPEN_FEATURES}
        feats[informative] = agree
        feats["prob"] = float(rng.normal(0.3 if answerable else 0.0, 1.0))
        f1 = float(answerable and agree >= 3)
        rows.append(
            {"features": feats, "f1": f1, "answerable": answerable, "article": i % 6}
            | {"confidence": 1 / (1 + np.exp(-feats["prob"]))}
        )
    return rows


def test_selection_keeps_the_feature_that_decides_and_leaves_out_noise() -> None:
    rows = _rows(600, 1, "passages")
    x = np.array([[r["features"][n] for n in OPEN_FEATURES] for r in rows])
    f1 = np.array([r["f1"] for r in rows])
    answerable = np.array([r["answerable"] for r in rows])
    folds = np.array([r["article"] % co.FOLDS for r in rows])
    chosen, rounds = co.select_features(x, f1, answerable, folds)
    assert chosen[:2] == ["prob", "passages"]
    assert "first_passage" not in chosen and "lead" not in chosen  # noise columns
    assert rounds[1]["best"] == "passages" and rounds[1]["kept"]
    assert not rounds[-1]["kept"]


def test_the_fitted_record_beats_the_per_span_decision_on_such_data() -> None:
    record = co.fit_open(_rows(600, 2, "passages"), span_threshold=0.5)
    assert "passages" in record["features"]
    assert len(record["weights"]) == len(record["features"])
    assert 0 < record["threshold"] < 1
    held = record["heldout"]
    assert held["open_decision"]["mix_f1"] > held["per_span_decision"]["mix_f1"] + 10
    assert record["fitted_on"]["answerable"] == 300


def test_one_article_cannot_be_cross_validated() -> None:
    rows = [r | {"article": 0} for r in _rows(40, 3, "passages")]
    with pytest.raises(TrainingError, match="cross-validate"):
        co.fit_open(rows, 0.5)
