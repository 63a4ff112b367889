"""``newsqa`` in process with the real MiniLM embedder and the shipped span reader.

The embedder is the ``real_embedder`` fixture's: the CLI's model lookup is pointed at it, so
that the model loads once for the whole run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import NewsQA

from qa.reader.span import shipped_reader_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shipped_reader_available(), reason="the span reader is not shipped"),
]

REFERENCE_TITLE = "Putin's Syria Peace Conference Boycotted by Assad Opponents"
REFERENCE_URL = (
    "https://www.themoscowtimes.com/2018/01/30/"
    "putin-stages-syria-peace-conference-boycotted-by-assad-opponents-a60333"
)


@pytest.fixture()
def reference_index(
    tmp_path: Path, reference_article: Path, newsqa: NewsQA, shared_model: None
) -> Path:
    root = tmp_path / "index"
    run = newsqa("index", str(reference_article), "--index-dir", str(root))
    assert run.code == 0, run.err
    assert "added 1" in run.flat_out
    return root


def test_ask_the_boycott_question(reference_index: Path, newsqa: NewsQA) -> None:
    question = "Who boycotted the Sochi conference?"
    run = newsqa("ask", question, "--index-dir", str(reference_index))
    assert run.code == 0 and run.err == ""
    assert "main opposition faction said it wouldn't attend" in run.flat_out
    assert REFERENCE_TITLE in run.out and REFERENCE_URL in run.out

    as_json = newsqa("ask", question, "--json", "--index-dir", str(reference_index))
    assert as_json.code == 0 and as_json.err == ""
    doc = json.loads(as_json.out)
    answer = doc["answer"]
    assert "main opposition faction" in answer["sentence"]
    cited = doc["citations"][answer["citation"] - 1]
    assert (cited["title"], cited["url"], cited["date"]) == (
        REFERENCE_TITLE,
        REFERENCE_URL,
        "2018-01-30",
    )
    assert cited["passage"][cited["start"] : cited["end"]] == answer["text"]


def test_ask_gives_the_exact_span(reference_index: Path, newsqa: NewsQA) -> None:
    run = newsqa(
        "ask",
        "How many Syrians did the Kremlin invite to Sochi?",
        "--json",
        "--index-dir",
        str(reference_index),
    )
    assert run.code == 0, run.err
    answer = json.loads(run.out)["answer"]
    assert answer["kind"] == "span" and "1,600" in answer["text"] and len(answer["text"]) < 30
    assert answer["text"] in answer["sentence"]


def test_ask_an_unrelated_question(reference_index: Path, newsqa: NewsQA) -> None:
    run = newsqa(
        "ask", "What is the boiling point of tungsten?", "--index-dir", str(reference_index)
    )
    assert run.code == 0 and run.err == ""
    assert "No answer in the corpus" in run.out
    assert REFERENCE_URL in run.out  # the passages searched are still cited


SQUAD_V2 = {
    "version": "v2.0",
    "data": [
        {
            "title": "Lighthouses",
            "paragraphs": [
                {
                    "context": "The Gull Point lighthouse was built in 1870 by the harbour board. "
                    "Its lantern was lit by whale oil until 1921.",
                    "qas": [
                        {
                            "id": "s1",
                            "question": "When was the Gull Point lighthouse built?",
                            "answers": [{"text": "1870", "answer_start": 39}],
                        },
                        {
                            "id": "s2",
                            "question": "What fuel lit the lantern of the lighthouse?",
                            "answers": [{"text": "whale oil", "answer_start": 89}],
                        },
                    ],
                },
                {
                    "context": "Glaciers in the northern valley retreated four kilometres during "
                    "the last century, exposing bare granite.",
                    "qas": [
                        {
                            "id": "s3",
                            "question": "How far did the glaciers in the northern valley retreat?",
                            "answers": [{"text": "four kilometres", "answer_start": 42}],
                        },
                        {
                            "id": "s4",
                            "question": "Who designed the lantern of the lighthouse?",
                            "answers": [],
                            "is_impossible": True,
                        },
                    ],
                },
            ],
        }
    ],
}


def test_eval_reader_only_on_squad_v2(tmp_path: Path, newsqa: NewsQA) -> None:
    squad = tmp_path / "tiny-v2.json"
    squad.write_text(json.dumps(SQUAD_V2), encoding="utf-8")
    rows_file = tmp_path / "rows.jsonl"
    run = newsqa(
        "eval", str(squad), "--reader-only", "--json", "--reader", "span", "--out", str(rows_file)
    )
    assert run.code == 0, run.err
    m = json.loads(run.out)
    assert (m["questions"], m["has_ans"], m["no_ans"]) == (4, 3, 1)
    assert m["protocol"] == "abstain below threshold"
    rows = {r["id"]: r for r in map(json.loads, rows_file.read_text().splitlines())}
    # Easy questions, each on its own paragraph: the exact golds, confidently.
    assert [rows[i]["prediction"] for i in ("s1", "s2", "s3")] == [
        "1870",
        "whale oil",
        "four kilometres",
    ]
    assert all(rows[i]["confidence"] >= m["threshold"] for i in ("s1", "s2", "s3"))
    assert m["has_ans_em"] == m["has_ans_f1"] == 100.0
    assert sum(b["n"] for b in m["reliability"]) == 4
    # The lantern's designer is in neither paragraph: the reader abstains, which scores 1.
    assert rows["s4"]["confidence"] < m["threshold"]
    assert m["no_ans_acc"] == 100.0 and m["em"] == m["f1"] == 100.0
    assert m["em_top_span_always"] == 75.0  # without abstaining, its guess scores 0


def test_eval_reader_only_refuses_a_file_that_is_not_squad(
    reference_article: Path, newsqa: NewsQA
) -> None:
    run = newsqa("eval", str(reference_article), "--reader-only")
    assert run.code == 2 and run.out == ""
    lines = [line for line in run.err.splitlines() if line.startswith("newsqa:")]
    assert len(lines) == 1 and "not a SQuAD json file" in lines[0]
