"""The open-setting decision: an answer's evidence across passages, and the reader that uses it.

The span reader runs on handmade hits and handmade span predictions (the model is not loaded):
three passages, "Ann Lee" found in two of them, "Bob Stone" in one with a higher span score.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from qa.errors import ReaderLoadError
from qa.reader import spans as spans_module
from qa.reader.evidence import OPEN_FEATURES, Occurrence, OpenDecision, answer_evidence
from qa.reader.span import SpanReader
from qa.reader.spans import SpanPrediction
from qa.types import Hit, Passage

TEXTS = (
    "The mayor, Ann Lee, opened the bridge on Monday.",
    "Ann Lee cut the ribbon at noon.",
    "Bob Stone spoke at the bridge.",
)
# The per-span calibration: probability = sigmoid(span score), threshold 0.35.
CALIBRATION = {"features": ["score", "log_prob", "margin"], "weights": [1.0, 0.0, 0.0]}
CALIBRATION |= {"bias": 0.0, "threshold": 0.35, "target": "f1"}
# The open decision: log-odds of the best span + 2 per passage holding the answer - 2.
OPEN = {"features": ["prob", "passages"], "weights": [1.0, 2.0], "bias": -2.0, "threshold": 0.7}


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _hits() -> list[Hit]:
    out = []
    for i, text in enumerate(TEXTS):
        p = Passage(id=f"p{i}", article_id=f"a{i}", paragraph=0, start=0, end=len(text), text=text)
        out.append(Hit(passage=p, score=1.0, rank=i + 1, title="", date="", url="", source=""))
    return out


def _span(text: str, answer: str, score: float) -> SpanPrediction:
    start = text.index(answer)
    return SpanPrediction(start, start + len(answer), answer, score, -5.0, -1.0)


def _predictions(*args: Any, **kwargs: Any) -> list[list[SpanPrediction]]:
    return [
        [_span(TEXTS[0], "Ann Lee", 0.0)],
        [_span(TEXTS[1], "Ann Lee", -1.0), _span(TEXTS[1], "noon", -3.0)],
        [_span(TEXTS[2], "Bob Stone", 0.5)],
    ]


def _reader(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    open_block: dict[str, Any] | None,
    open_decision: bool | None,
) -> SpanReader:
    meta: dict[str, Any] = {"calibration": CALIBRATION}
    if open_block is not None:
        meta["open"] = open_block
    (tmp_path / "reader.json").write_text(json.dumps(meta))
    monkeypatch.setattr(spans_module, "extract_spans", _predictions)
    reader = SpanReader(model=tmp_path, open_decision=open_decision)
    reader._loaded = (object(), object())  # the handmade predictions need no model
    return reader


def _confidences(reader: SpanReader) -> dict[str, float]:
    return {a.text: a.confidence for a in reader.read("Who opened the bridge?", _hits())}


def test_evidence_counts_each_passage_once_and_compares_with_the_next_answer() -> None:
    merged = {
        "ann lee": [Occurrence(0.5, 0, 1.0), Occurrence(0.3, 0, 1.0), Occurrence(0.2, 3, 0.6)],
        "bob stone": [Occurrence(0.6, 1, 0.9)],
    }
    ev = answer_evidence(merged)
    assert set(ev["ann lee"]) == set(OPEN_FEATURES)
    assert ev["ann lee"]["passages"] == 2.0
    assert ev["ann lee"]["sum_prob"] == pytest.approx(0.7)  # best span of each passage
    assert ev["ann lee"]["prob"] == pytest.approx(0.0)  # log-odds of 0.5
    assert ev["ann lee"]["first_passage"] == 1.0
    assert ev["ann lee"]["retrieval"] == 1.0
    assert ev["ann lee"]["lead"] == pytest.approx(-0.1)
    assert ev["bob stone"]["lead"] == pytest.approx(0.1)
    assert ev["bob stone"]["first_passage"] == 0.5
    assert ev["bob stone"]["retrieval"] == 0.9


def test_a_lone_answer_leads_by_its_own_probability() -> None:
    ev = answer_evidence({"x": [Occurrence(0.8, 2, 0.5)]})
    assert ev["x"]["lead"] == pytest.approx(0.8)
    assert ev["x"]["first_passage"] == pytest.approx(1 / 3)


def test_the_open_decision_is_read_from_reader_json_or_refused() -> None:
    assert OpenDecision.from_meta({"calibration": CALIBRATION}) is None
    decision = OpenDecision.from_meta({"open": OPEN})
    assert decision is not None and decision.threshold == 0.7
    assert decision.probability({"prob": 0.0, "passages": 2.0}) == pytest.approx(sigmoid(2.0))
    with pytest.raises(ReaderLoadError, match="calibrate-open"):
        OpenDecision.from_meta({"open": OPEN | {"features": ["prob", "votes"]}})
    with pytest.raises(ReaderLoadError, match="calibrate-open"):
        OpenDecision.from_meta({"open": OPEN | {"weights": [1.0]}})


def test_without_an_open_block_confidence_is_the_best_span_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = _reader(tmp_path, monkeypatch, None, open_decision=True)
    conf = _confidences(reader)
    assert conf["Ann Lee"] == pytest.approx(0.5)  # max over its two passages, not a sum
    assert conf["Bob Stone"] == pytest.approx(sigmoid(0.5))
    assert reader.threshold == 0.35


def test_the_open_block_weighs_agreement_across_passages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = _reader(tmp_path, monkeypatch, OPEN, open_decision=True)
    answers, evidence = reader.read_with_evidence("Who opened the bridge?", _hits())
    conf = {a.text: a.confidence for a in answers}
    # Ann Lee: log-odds 0 + 2 x 2 passages - 2; Bob Stone: 0.5 + 2 x 1 - 2.
    assert conf["Ann Lee"] == pytest.approx(sigmoid(2.0))
    assert conf["Bob Stone"] == pytest.approx(sigmoid(0.5))
    assert conf["Ann Lee"] > conf["Bob Stone"]
    assert reader.threshold == 0.7
    by_text = {a.text: e for a, e in zip(answers, evidence, strict=True)}
    assert by_text["Ann Lee"]["passages"] == 2.0
    assert by_text["Ann Lee"]["sum_prob"] == pytest.approx(0.5 + sigmoid(-1.0))
    # The ranking is the reader's as before: the higher span score first.
    assert [a.text for a in answers][:2] == ["Bob Stone", "Ann Lee"]


@pytest.mark.parametrize(("flag", "env", "used"), [(False, "on", False), (None, "on", True)])
def test_the_open_block_is_used_only_when_the_decision_is_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: bool | None, env: str, used: bool
) -> None:
    monkeypatch.setenv("NEWSQA_OPEN_DECISION", env)
    reader = _reader(tmp_path, monkeypatch, OPEN, open_decision=flag)
    conf = _confidences(reader)
    assert (conf["Ann Lee"] == pytest.approx(sigmoid(2.0))) is used
    assert reader.threshold == (0.7 if used else 0.35)


def test_the_decision_is_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSQA_OPEN_DECISION", raising=False)
    reader = _reader(tmp_path, monkeypatch, OPEN, open_decision=None)
    assert _confidences(reader)["Ann Lee"] == pytest.approx(0.5)
