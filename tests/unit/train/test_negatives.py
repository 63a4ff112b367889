"""No-answer training examples: contexts without the answer, labelled with the null position."""

from __future__ import annotations

from qa.reader.weights import load_base_tokenizer
from qa.train.config import TrainConfig
from qa.train.data import QAExample, build_features, flatten
from qa.train.negatives import holds, training_negatives

ARTICLE = {
    "title": "Sochi",
    "paragraphs": [
        {
            "context": "Russia hosted a summit in Sochi. The main opposition faction boycotted "
            "it. Delegates arrived by plane. The talks lasted one day.",
            "qas": [
                {
                    "id": "q1",
                    "question": "Who boycotted the summit?",
                    "answers": [{"text": "The main opposition faction", "answer_start": 33}],
                }
            ],
        },
        {
            "context": "The Black Sea resort was built for the 2014 Winter Olympics. Hotels "
            "line the coast.",
            "qas": [
                {
                    "id": "q2",
                    "question": "What was the resort built for?",
                    "answers": [{"text": "the 2014 Winter Olympics", "answer_start": 35}],
                }
            ],
        },
    ],
}


def test_every_negative_lacks_the_answer_and_keeps_the_question() -> None:
    examples = flatten([ARTICLE])
    negatives = training_negatives([ARTICLE], examples * 20, share=1.0, seed=3)
    assert negatives, "share 1.0 must give negatives"
    by_question = {e.question: e for e in examples}
    for neg in negatives:
        source = by_question[neg.question]
        assert neg.answers == () and neg.context != source.context
        assert not holds(neg.context, source.answers)
    # Both kinds: the own paragraph with the answer sentence cut, and another paragraph.
    assert any("Delegates arrived" in n.context for n in negatives)
    assert any("Black Sea" in n.context for n in negatives)


def test_no_negatives_at_share_zero() -> None:
    assert training_negatives([ARTICLE], flatten([ARTICLE]), share=0.0, seed=3) == []


def test_negative_windows_point_at_the_null_position() -> None:
    examples = flatten([ARTICLE])
    negatives = training_negatives([ARTICLE], examples, share=1.0, seed=3)
    feats = build_features(load_base_tokenizer(), [*examples, *negatives], TrainConfig())
    n_pos = len(examples)  # these contexts are short: one window per example
    assert all(
        s > 0 and e >= s for s, e in zip(feats.start[:n_pos], feats.end[:n_pos], strict=True)
    )
    assert feats.start[n_pos:] == [0] * len(negatives) and feats.end[n_pos:] == [0] * len(negatives)


def test_positive_example_labels_are_unchanged() -> None:
    ex = QAExample("q", "Who boycotted?", "Rebels boycotted it.", ("Rebels",), 0)
    feats = build_features(load_base_tokenizer(), [ex], TrainConfig())
    assert feats.start[0] > 0
