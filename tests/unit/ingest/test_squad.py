"""The one SQuAD reader (qa.ingest.squad) and its users: import, eval, reader eval, training."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_shared

from qa.errors import UsageError
from qa.ingest import squad

DOC: dict[str, Any] = {
    "version": "v2.0",
    "data": [
        {
            "title": "Black_Sea",
            "paragraphs": [
                {
                    "context": "Sochi lies on the Black Sea. It hosted the 2014 Winter Olympics.",
                    "qas": [
                        {
                            "id": "s1",
                            "question": "Where does Sochi lie?",
                            "answers": [
                                {"text": "the Black Sea", "answer_start": 14},
                                {"text": "Black Sea", "answer_start": 18},
                            ],
                        },
                        {
                            "id": "s2",
                            "question": "When did Sochi host the Summer Olympics?",
                            "answers": [],
                            "is_impossible": True,
                        },
                    ],
                },
                {
                    "context": "The resort has a subtropical climate.",
                    "qas": [
                        {
                            "id": 7,  # not a string in the file: read as "7"
                            "question": "What climate does the resort have?",
                            "answers": [{"text": "subtropical", "answer_start": 17}],
                        }
                    ],
                },
            ],
        },
        {
            "title": "Kremlin",
            "paragraphs": [
                {
                    "context": "The Kremlin invited 1,600 Syrians.",
                    "qas": [
                        {
                            "id": "k1",
                            "question": "How many Syrians were invited?",
                            "answers": [{"text": "1,600", "answer_start": 20}],
                        }
                    ],
                }
            ],
        },
    ],
}


@pytest.fixture(params=[".json", ".json.gz"])
def squad_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """:data:`DOC` written as plain json and as gzipped json."""
    path = tmp_path / f"dev-v2.0{request.param}"
    text = json.dumps(DOC)
    if request.param == ".json.gz":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_questions_come_in_file_order_with_their_offsets(squad_file: Path) -> None:
    questions = squad.flatten(squad.load_articles(squad_file))
    assert [q.id for q in questions] == ["s1", "s2", "7", "k1"]
    first = questions[0]
    assert first.answers == (
        squad.SquadAnswer("the Black Sea", 14),
        squad.SquadAnswer("Black Sea", 18),
    )
    for q in questions:
        for answer in q.answers:
            assert q.context[answer.start : answer.start + len(answer.text)] == answer.text
    assert [q.is_impossible for q in questions] == [False, True, False, False]
    assert questions[1].answers == () and questions[1].answer_texts == ()
    assert [(q.title, q.paragraph) for q in questions] == [
        ("Black_Sea", 0),
        ("Black_Sea", 0),
        ("Black_Sea", 1),
        ("Kremlin", 0),
    ]
    assert questions[2].url == "squad://Black_Sea#1"


def test_a_file_that_is_not_squad_is_a_usage_error(tmp_path: Path) -> None:
    not_squad = tmp_path / "a.json"
    not_squad.write_text('{"not": "squad"}')
    with pytest.raises(UsageError, match="is not a SQuAD json file"):
        squad.load_articles(not_squad)
    not_json = tmp_path / "b.json.gz"
    not_json.write_bytes(gzip.compress(b"{broken"))
    with pytest.raises(UsageError, match="not json"):
        squad.load_articles(not_json)
    with pytest.raises(UsageError, match="cannot read"):
        squad.load_articles(tmp_path / "missing.json")


def test_a_question_without_its_text_is_a_usage_error() -> None:
    articles = [{"title": "T", "paragraphs": [{"context": "C.", "qas": [{"id": "x"}]}]}]
    with pytest.raises(UsageError, match=r"'T' paragraph 0 question 0 \(KeyError"):
        squad.flatten(articles)


def test_malformed_articles_and_paragraphs_are_named() -> None:
    articles: list[object] = [
        {"title": "Good", "paragraphs": [{"context": "Text.", "qas": []}, {"context": " "}]},
        {"paragraphs": []},
    ]
    found = list(squad.paragraphs(articles))
    assert found == [
        squad.Paragraph("Good", 0, "Text.", []),
        squad.Malformed("SQuAD 'Good' paragraph 1: no context"),
        squad.Malformed("SQuAD article 1: no title or paragraphs list"),
    ]
    assert squad.is_squad({"data": articles}) and not squad.is_squad({"data": [{"x": 1}]})
    with pytest.raises(UsageError, match="paragraph 1: no context"):
        squad.flatten(articles)


def test_the_four_users_read_the_same_questions(squad_file: Path) -> None:
    """Import (paragraph articles), eval, reader-only eval and training agree on the file."""
    from qa.eval.questions import load_questions
    from qa.eval.reader import load_gold_questions
    from qa.ingest.formats import Draft, parse_json_value
    from qa.train.data import flatten

    ids = ["s1", "s2", "7", "k1"]
    evals = load_questions(squad_file)
    assert [q.id for q in evals] == ids
    assert evals[0].gold_urls == ("squad://Black_Sea#0",) and evals[1].is_impossible
    assert evals[0].answers == ("the Black Sea", "Black Sea")
    gold = load_gold_questions(squad_file)
    assert [q.id for q in gold] == ids
    assert [q.answerable for q in gold] == [True, False, True, True]
    assert gold[3].title == "Kremlin" and gold[3].context.startswith("The Kremlin")
    examples = flatten(squad.load_articles(squad_file))
    assert [e.qid for e in examples] == ids
    assert (examples[0].answers, examples[0].answer_start) == (("the Black Sea", "Black Sea"), 14)
    drafts = list(parse_json_value(DOC))
    assert all(isinstance(d, Draft) for d in drafts)
    urls = {q.gold_urls[0] for q in evals}
    assert [d.url for d in drafts if isinstance(d, Draft)] == sorted(urls)
    assert [d.title for d in drafts if isinstance(d, Draft)] == ["Black Sea"] * 2 + ["Kremlin"]


@needs_shared("squad", "dev-v2.0.json.gz")
def test_the_shared_squad_files_hold_the_documented_questions(shared_dir: Path) -> None:
    """The counts the shared data's README gives."""
    train = squad.load_articles(shared_dir / "squad/train-v1.1.json.gz")
    assert len(train) == 442 and len(squad.flatten(train)) == 87_599
    dev2 = squad.flatten(squad.load_articles(shared_dir / "squad/dev-v2.0.json.gz"))
    assert len(dev2) == 11_873 and sum(q.is_impossible for q in dev2) == 5_945
