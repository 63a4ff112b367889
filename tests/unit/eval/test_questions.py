"""``newsqa eval``'s arithmetic: recall@k, MRR, EM/F1, answered shares and latency percentiles,
on hand-made rows and on a scripted answerer (no index, no model)."""

from __future__ import annotations

import datetime
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Scripted, fake_clock

import qa.eval.questions as questions
from qa import settings
from qa.errors import UsageError
from qa.eval.questions import EvalQuestion, Evaluator, aggregate, load_questions


def row(rank: int | None, latency: float, kind: str | None = "span", **scores: float) -> dict:
    return {"gold_rank": rank, "latency_ms": latency, "kind": kind, **scores}


def test_aggregate_on_hand_made_rows() -> None:
    rows = [
        row(1, 10.0, em=1.0, f1=1.0),
        row(3, 20.0, "sentence", em=0.0, f1=0.5),
        row(None, 30.0, None),  # gold not retrieved; not scored (no extractive answer)
        row(7, 40.0, em=0.0, f1=0.25),
        row(15, 50.0, em=1.0, f1=1.0),
    ]
    m = aggregate(rows)
    assert m["questions"] == 5
    assert (m["recall@1"], m["recall@5"], m["recall@10"], m["recall@20"]) == (0.2, 0.4, 0.6, 0.8)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 7 + 1 / 15) / 5)
    assert m["scored_questions"] == 4
    assert m["em"] == pytest.approx(100 * 2 / 4)
    assert m["f1"] == pytest.approx(100 * (1 + 0.5 + 0.25 + 1) / 4)
    assert m["answered"] == pytest.approx(4 / 5) and m["answered_sentence"] == pytest.approx(1 / 5)
    assert m["answered_precision"] == pytest.approx(3 / 4)  # F1 1, 0.5 and 1 of 1, 0.5, 0.25, 1
    assert (m["latency_ms_p50"], m["latency_ms_p95"]) == (30.0, 50.0)


def test_precision_of_the_answered_leaves_out_abstentions() -> None:
    m = aggregate([row(1, 1.0, em=1.0, f1=1.0), row(1, 1.0, None, em=0.0, f1=0.0)])
    assert m["answered_precision"] == 1.0


def test_recall_at_k_counts_rank_k_and_not_k_plus_1() -> None:
    m = aggregate([row(20, 1.0), row(21, 1.0), row(5, 1.0), row(6, 1.0)])
    assert (m["recall@5"], m["recall@10"], m["recall@20"]) == (0.25, 0.5, 0.75)
    assert m["mrr"] == pytest.approx((1 / 20 + 1 / 21 + 1 / 5 + 1 / 6) / 4)


def test_unscored_questions_do_not_dilute_em_and_f1() -> None:
    m = aggregate([row(1, 1.0, em=1.0, f1=1.0), row(1, 1.0), row(1, 1.0)])
    assert (m["em"], m["f1"], m["scored_questions"]) == (100.0, 100.0, 1)


def test_aggregate_of_nothing_is_zeros() -> None:
    m = aggregate([])
    assert m["questions"] == 0 and m["scored_questions"] == 0
    assert all(m[k] == 0.0 for k in ("recall@1", "recall@20", "mrr", "em", "f1", "answered"))
    assert m["latency_ms_p50"] == 0.0


# -- the Evaluator, on a scripted answerer ------------------------------------------------

EVAL_QUESTIONS = [
    EvalQuestion("e1", "Q1", ("u1",), ("1870",), date="2024-01-05"),
    # Its gold is a syndicated copy of the third hit: found through the hit's other URLs.
    EvalQuestion("e2", "Q2", ("u9",), ("whale oil",)),
    EvalQuestion("e3", "Q3", ("u5",), ("unscored",), scored=False),
    EvalQuestion("e4", "Q4", ("u6", "u7"), ("four kilometres",)),
]
SCRIPT = {
    "Q1": Scripted(("u1", "u2"), "1870"),
    "Q2": Scripted(("u2", "u3", "u4"), "whale oil lamps", "sentence", copies=((), (), ("u9",))),
    "Q3": Scripted(("u1",), confidence=0.2),
    "Q4": Scripted(("u1", "u2", "u3", "u4", "u5", "u6"), confidence=0.3),
}


@pytest.fixture()
def evaluated(
    tmp_path: Path, fake_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    made = fake_pipeline(SCRIPT)
    fake_clock(monkeypatch, questions, [10.0, 30.0, 30.0, 40.0])
    evaluator = Evaluator(tmp_path / "idx", k=7, fusion="rrf", reader="sentence")
    out = tmp_path / "rows.jsonl"
    metrics = evaluator.run(EVAL_QUESTIONS, out=out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return metrics, rows, made


def test_evaluator_metrics(evaluated: tuple[dict[str, Any], list[dict[str, Any]], Any]) -> None:
    m, _, _ = evaluated
    # Gold ranks 1, 3, none, 6; EM/F1 on e1, e2, e4 (e3 is not scored): 1/1, 0/0.8, 0/0.
    assert m["questions"] == 4
    assert (m["recall@1"], m["recall@5"], m["recall@10"], m["recall@20"]) == (
        0.25,
        0.5,
        0.75,
        0.75,
    )
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 6) / 4)
    assert m["scored_questions"] == 3
    assert m["em"] == pytest.approx(100 / 3)
    assert m["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)
    assert (m["answered"], m["answered_sentence"]) == (0.5, 0.25)
    assert m["latency_ms_p50"] == pytest.approx(30.0)
    assert m["latency_ms_p95"] == pytest.approx(40.0)


def test_evaluator_rows(evaluated: tuple[dict[str, Any], list[dict[str, Any]], Any]) -> None:
    _, rows, _ = evaluated
    got = [
        (r["id"], r["gold_rank"], r["prediction"], r["kind"], r["confidence"], r["scored"])
        for r in rows
    ]
    assert got == [
        ("e1", 1, "1870", "span", 0.9, True),
        ("e2", 3, "whale oil lamps", "sentence", 0.9, True),
        ("e3", None, "", None, 0.2, False),
        ("e4", 6, "", None, 0.3, True),
    ]
    assert [(r.get("em"), r.get("f1")) for r in rows] == [
        (1.0, 1.0),
        (0.0, pytest.approx(0.8)),
        (None, None),
        (0.0, 0.0),
    ]
    assert [r["latency_ms"] for r in rows] == pytest.approx([10.0, 30.0, 30.0, 40.0])


def test_evaluator_builds_and_drives_the_pipeline(
    tmp_path: Path, evaluated: tuple[Any, Any, dict[str, Any]]
) -> None:
    _, _, made = evaluated
    retriever = dict(made["retriever"])
    # With no backend named, the index's own: the embedded one for a new index.
    assert type(retriever.pop("backend")).__name__ == "LocalBackend"
    assert retriever == {
        "index_dir": tmp_path / "idx",
        "fusion": "rrf",
        "recency_weight": settings.RECENCY_WEIGHT,
    }
    args = made["answerer_args"]
    assert args["time_words"] is True
    assert args["reader"] == "sentence" and args["index_dir"] == tmp_path / "idx"
    answerer = made["answerer"]
    assert answerer.warmed
    # k is passed on; asked as of today (None) unless as of the question's date.
    assert [c[:2] for c in answerer.calls] == [("Q1", 7), ("Q2", 7), ("Q3", 7), ("Q4", 7)]
    assert [c[2:] for c in answerer.calls] == [(None, None)] * 4


def test_evaluator_as_of_question_date_asks_dated_questions_as_of_their_date(
    tmp_path: Path, fake_pipeline: Any
) -> None:
    made = fake_pipeline(SCRIPT)
    Evaluator(tmp_path / "idx", as_of_question_date=True, recency_weight=0.0, time_words=False).run(
        EVAL_QUESTIONS
    )
    assert [c[3] for c in made["answerer"].calls] == [datetime.date(2024, 1, 5), None, None, None]
    assert [c[2] for c in made["answerer"].calls] == [None] * 4
    assert made["retriever"]["recency_weight"] == 0.0
    assert made["answerer_args"]["time_words"] is False


# -- question files -----------------------------------------------------------------------

SQUAD_V2 = {
    "version": "v2.0",
    "data": [
        {
            "title": "Lighthouses",
            "paragraphs": [
                {
                    "context": "Built in 1870.",
                    "qas": [
                        {
                            "id": "a",
                            "question": "When?",
                            "answers": [
                                {"text": "1870", "answer_start": 9},
                                {"text": "in 1870", "answer_start": 6},
                            ],
                        }
                    ],
                },
                {
                    "context": "Lit by whale oil.",
                    "qas": [
                        {"id": "b", "question": "Who?", "answers": [], "is_impossible": True},
                    ],
                },
            ],
        }
    ],
}


@pytest.mark.parametrize("gz", [False, True])
def test_load_squad_questions(tmp_path: Path, gz: bool) -> None:
    data = json.dumps(SQUAD_V2).encode()
    path = tmp_path / ("q.json.gz" if gz else "q.json")
    path.write_bytes(gzip.compress(data) if gz else data)
    a, b = load_questions(path)
    assert a == EvalQuestion(
        "a", "When?", ("squad://Lighthouses#0",), ("1870", "in 1870"), context="Built in 1870."
    )
    assert b.gold_urls == ("squad://Lighthouses#1",) and b.answers == ()
    assert b.is_impossible and b.scored and b.context == "Lit by whale oil."


def test_load_realtime_qa_questions(tmp_path: Path) -> None:
    lines = [
        {
            "id": 7,
            "question": "Who won?",
            "gold_urls": ["https://a.example/1", "https://b.example/2"],
            "answer": "Ann Lee",
            "extractive": True,
            "question_date": "2022/06/12",
        },
        {"id": "x", "question": "Why?", "gold_urls": [], "answer": "Because"},
    ]
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(lines[0]) + "\n\n" + json.dumps(lines[1]) + "\n", encoding="utf-8")
    first, second = load_questions(path)
    assert first == EvalQuestion(
        "7",
        "Who won?",
        ("https://a.example/1", "https://b.example/2"),
        ("Ann Lee",),
        scored=True,
        date="2022-06-12",
    )
    assert (second.id, second.scored, second.date) == ("x", False, "")


@pytest.mark.parametrize(
    "text",
    [
        "just some notes\n",
        '{"data": [{"title": "T"}]}',  # SQuAD-like, no paragraphs
        '{"id": 1, "question": "q?"}\n',  # RealTime QA-like, no gold_urls
    ],
)
def test_a_file_that_is_not_questions_is_a_usage_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=r"not a SQuAD or RealTime QA question file"):
        load_questions(path)
