"""Question-perturbation negatives: the gold paragraph kept, the question made unanswerable."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from qa.train.__main__ import parse_train_args
from qa.train.calibrate import heldout_with_negatives
from qa.train.data import QAExample, flatten
from qa.train.perturb import (
    antonym,
    change_number,
    names_in,
    negate,
    perturb,
    perturbed_negatives,
    swap_entity,
)

PARAGRAPH = (
    "In 1998 Gerhard Schroeder defeated Helmut Kohl and became the first chancellor of the "
    "Social Democrats since 1982. The coalition won 345 seats."
)
OTHER = "Angela Merkel led the Christian Democrats from 2000. Kohl endorsed Wolfgang Schaeuble."


def rng() -> random.Random:
    return random.Random(5)


def test_entity_swap_takes_a_name_the_paragraph_lacks() -> None:
    pool = names_in(OTHER)
    assert "Angela Merkel" in pool and "Wolfgang Schaeuble" in pool
    new = swap_entity("Whom did Gerhard Schroeder defeat in 1998?", PARAGRAPH, pool, rng())
    assert new in {
        "Whom did Angela Merkel defeat in 1998?",
        "Whom did Wolfgang Schaeuble defeat in 1998?",
    }


def test_entity_guard_refuses_names_that_share_a_word_with_the_paragraph() -> None:
    # "Kohl" is in the paragraph, and "Christian Democrats" shares "Democrats" with it.
    pool = ["Helmut Kohl", "Kohl", "Christian Democrats", "Gerhard Schroeder"]
    assert swap_entity("Whom did Gerhard Schroeder defeat?", PARAGRAPH, pool, rng()) is None


def test_entity_swap_needs_a_name_of_the_question_in_the_paragraph() -> None:
    assert swap_entity("Whom did Tony Blair defeat?", PARAGRAPH, ["Angela Merkel"], rng()) is None


def test_names_skip_question_words_sentence_starts_and_possessives() -> None:
    assert names_in("What did Schroeder's party win?") == ["Schroeder"]
    assert names_in("Unlike others, he left. Ingrid Michaelson sang.") == ["Ingrid Michaelson"]


def test_year_and_number_change_to_values_the_paragraph_lacks() -> None:
    for seed in range(20):
        year = change_number("Who won in 1998?", PARAGRAPH, random.Random(seed))
        assert year is not None and year.startswith("Who won in ") and "1998" not in year
        assert year[11:15] not in PARAGRAPH and year[11:15].isdigit()
        seats = change_number("Which coalition won 345 seats?", PARAGRAPH, random.Random(seed))
        assert seats is not None and seats.split()[3] != "345"
        assert seats.split()[3] not in PARAGRAPH.split()
    assert change_number("Who won the election?", PARAGRAPH, rng()) is None


def test_negation_contracts_the_first_auxiliary() -> None:
    assert negate("Whom did Schroeder defeat?", PARAGRAPH, rng()) == "Whom didn't Schroeder defeat?"
    assert negate("Who is the chancellor?", PARAGRAPH, rng()) == "Who isn't the chancellor?"
    assert negate("Was Kohl defeated?", PARAGRAPH, rng()) == "Wasn't Kohl defeated?"


def test_negation_guard_leaves_negated_questions_and_questions_without_auxiliary() -> None:
    assert negate("Who did not win?", PARAGRAPH, rng()) is None
    assert negate("Who wasn't defeated?", PARAGRAPH, rng()) is None
    assert negate("Who defeated Kohl?", PARAGRAPH, rng()) is None


def test_antonym_replaces_a_listed_word() -> None:
    assert antonym("Who was the first chancellor?", "Schroeder ruled.", rng()) == (
        "Who was the last chancellor?"
    )
    results = {antonym("Which party won most seats?", "Seats.", random.Random(n)) for n in range(9)}
    assert results == {"Which party lost most seats?", "Which party won least seats?"}


def test_antonym_guard_refuses_an_opposite_found_in_the_paragraph() -> None:
    context = "Schroeder was the first and Merkel the last chancellor of the decade."
    assert antonym("Who was the first chancellor?", context, rng()) is None


def test_perturbed_twin_keeps_the_paragraph_and_has_no_answer() -> None:
    ex = QAExample(
        "q1", "Whom did Gerhard Schroeder defeat in 1998?", PARAGRAPH, ("Helmut Kohl",), 29
    )
    for seed in range(30):
        twin = perturb(ex, names_in(OTHER), random.Random(seed))
        assert twin is not None
        assert twin.context == PARAGRAPH and twin.answers == () and twin.answer_start == 0
        assert twin.question != ex.question and twin.qid.startswith("q1-")
        assert twin.qid.rsplit("-", 1)[1] in {"entity", "number", "negation", "antonym"}


ARTICLES = [
    {
        "title": "Chancellors",
        "paragraphs": [
            {
                "context": PARAGRAPH,
                "qas": [
                    {
                        "id": f"c{i}",
                        "question": q,
                        "answers": [{"text": "Helmut Kohl", "answer_start": 35}],
                    }
                    for i, q in enumerate(
                        [
                            "Whom did Gerhard Schroeder defeat in 1998?",
                            "Whom did Schroeder defeat?",
                            "Who lost to Gerhard Schroeder?",
                        ]
                    )
                ],
            },
            {
                "context": OTHER,
                "qas": [
                    {
                        "id": "m1",
                        "question": "Who led the Christian Democrats from 2000?",
                        "answers": [{"text": "Angela Merkel", "answer_start": 0}],
                    }
                ],
            },
        ],
    }
]


def test_perturbed_negatives_are_seeded_and_follow_the_share() -> None:
    examples = flatten(ARTICLES) * 10
    first = perturbed_negatives(ARTICLES, examples, 0.5, seed=3)
    assert first == perturbed_negatives(ARTICLES, examples, 0.5, seed=3)
    assert first != perturbed_negatives(ARTICLES, examples, 0.5, seed=4)
    assert 8 <= len(first) <= 32
    assert len(perturbed_negatives(ARTICLES, examples, 1.0, seed=3)) == len(examples)
    assert perturbed_negatives(ARTICLES, examples, 0.0, seed=3) == []
    for twin in first:
        assert twin.answers == () and twin.context in {PARAGRAPH, OTHER}


def test_entity_twins_never_name_what_their_paragraph_holds() -> None:
    examples = flatten(ARTICLES) * 20
    twins = [t for t in perturbed_negatives(ARTICLES, examples, 1.0, seed=1) if "entity" in t.qid]
    assert twins
    for twin in twins:
        source = next(e.question for e in examples if twin.qid.startswith(e.qid + "-"))
        new = set(twin.question.replace("?", "").split()) - set(source.replace("?", "").split())
        assert new and not any(w in twin.context for w in new)


def test_training_option_parses() -> None:
    config = parse_train_args(["--perturbed", "0.5", "--negatives", "0.25", "--no-export"])
    assert config.perturbed == 0.5 and config.negatives == 0.25


def test_calibration_mix_adds_perturbed_twins_of_held_out_questions(tmp_path: Path) -> None:
    data = tmp_path / "train.json.gz"
    with gzip.open(data, "wt", encoding="utf-8") as handle:
        json.dump({"data": ARTICLES}, handle)
    pos, neg, _ = heldout_with_negatives(data, 1, seed=2)
    pos_p, neg_p, article_p = heldout_with_negatives(data, 1, seed=2, perturbed=1.0)
    assert pos_p == pos and neg_p[: len(neg)] == neg
    extra = neg_p[len(neg) :]
    assert len(extra) == len(pos)
    assert all(t.context in {PARAGRAPH, OTHER} and t.answers == () for t in extra)
    assert all(article_p[t.qid] == 0 for t in extra)
    assert heldout_with_negatives(data, 1, seed=2, perturbed=1.0) == (pos_p, neg_p, article_p)
