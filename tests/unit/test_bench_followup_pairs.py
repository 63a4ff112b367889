"""The rules that turn two SQuAD questions into a follow-up pair (bench/followup_pairs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from followup_pairs import article_pairs, pronoun_evidence, replace


@pytest.mark.parametrize(
    ("question", "subject", "pronoun", "expected"),
    [
        (
            "When did Tesla move to New York City?",
            "Tesla",
            "he",
            "When did he move to New York City?",
        ),
        ("Who hired Tesla in New York?", "Tesla", "he", "Who hired him in New York?"),
        ("What was Tesla's reputation?", "Tesla", "he", "What was his reputation?"),
        (
            "How high is the highest point in Warsaw?",
            "Warsaw",
            "it",
            "How high is the highest point there?",
        ),
        (
            "The Rhine first formed a boundary with what?",
            "The Rhine",
            "it",
            "It first formed a boundary with what?",
        ),
        ("Who defeated the Broncos?", "Broncos", "they", "Who defeated them?"),
    ],
)
def test_a_mention_becomes_the_pronoun_a_person_would_type(
    question: str, subject: str, pronoun: str, expected: str
) -> None:
    assert replace(question, subject, pronoun) == expected


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("Who founded the University of Warsaw?", "Warsaw"),  # part of a longer name
        ("Where did water east of the Amazon drainage basin flow?", "Amazon"),  # a modifier
        ("How many Apollo missions were manned?", "Apollo"),  # after a determiner
        ("Which Germans could understand the language Luther used?", "Luther"),
        ("Did Tesla meet Tesla's father?", "Tesla"),  # named twice
    ],
)
def test_unnatural_replacements_are_dropped(question: str, subject: str) -> None:
    assert replace(question, subject, "it") is None


def test_the_pronoun_comes_from_the_next_sentence_of_sentences_that_start_with_the_subject() -> (
    None
):
    sentences = [
        "Tesla was born in 1856.",
        "He studied in Graz.",
        "Tesla moved to Paris.",
        "He worked for Edison.",
        "The Rhine is long.",
        "It flows north.",
    ]
    text = " ".join(sentences)
    assert pronoun_evidence("Tesla", sentences, text) == "he"
    assert pronoun_evidence("Rhine", sentences, text) is None  # one vote is not enough
    plural = "the Huguenots fled. Later the Huguenots settled."
    assert pronoun_evidence("Huguenots", [plural], plural) == "they"
    assert pronoun_evidence("Jones", ["Jones came."], "Jones came.") is None


def test_pairs_are_consecutive_questions_on_one_paragraph() -> None:
    context = "Tesla was born in 1856. He studied in Graz. Tesla moved to Paris. He left."
    article = {
        "title": "Nikola_Tesla",
        "paragraphs": [
            {
                "context": context,
                "qas": [
                    {"id": "1", "question": "When was Tesla born?", "answers": [{"text": "1856"}]},
                    {
                        "id": "2",
                        "question": "Where did Tesla study?",
                        "answers": [{"text": "Graz"}],
                    },
                    {"id": "3", "question": "Where is Graz?", "answers": [{"text": "Austria"}]},
                ],
            }
        ],
    }
    pairs = list(article_pairs(article))
    assert [(p["first"], p["follow_up"], p["answers"]) for p in pairs] == [
        ("When was Tesla born?", "Where did he study?", ["Graz"])
    ]
