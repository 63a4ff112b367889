"""No-answer examples: SQuAD questions paired with a paragraph that does not answer them.

SQuAD v1.1 has no unanswerable questions. Two kinds of negatives are built from train (or
held-out) articles only, half each: the question's own paragraph minus every sentence that
holds a gold answer (hard: same topic, same words), and another paragraph of the same article
that does not contain the answer. The calibration fits on them; training can learn from them
(``python -m qa.train --negatives SHARE``), labelled with the null (CLS) position.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qa.text import sentence_spans

if TYPE_CHECKING:
    from qa.train.data import QAExample


def holds(context: str, answers: Sequence[str]) -> bool:
    """True if any gold answer occurs in ``context`` (case-insensitive)."""
    low = context.lower()
    return any(a.lower() in low for a in answers)


def without_answer(ex: QAExample) -> str | None:
    """The example's paragraph minus every sentence holding a gold answer (None if too short)."""
    kept = [
        ex.context[a:b]
        for a, b in sentence_spans(ex.context)
        if not holds(ex.context[a:b], ex.answers)
    ]
    text = " ".join(kept)
    # Answers can straddle sentences; a leftover answer would make a false negative.
    return text if len(kept) >= 2 and not holds(text, ex.answers) else None


def negative(
    ex: QAExample, contexts: Sequence[str], rng: random.Random, own_first: bool
) -> QAExample | None:
    """``ex`` on a context without its answer (no answers), or None when there is none."""
    cut = without_answer(ex) if own_first else None
    others = [c for c in contexts if c != ex.context and not holds(c, ex.answers)]
    context = cut or (rng.choice(others) if others else None)
    if context is None:
        return None
    return dataclasses.replace(ex, qid=ex.qid + "-neg", context=context, answers=(), answer_start=0)


def training_negatives(
    articles: list[dict[str, Any]], examples: Sequence[QAExample], share: float, seed: int
) -> list[QAExample]:
    """No-answer twins for a seeded ``share`` of ``examples`` (contexts from their articles)."""
    if share <= 0:
        return []
    article_of: dict[str, list[str]] = {}
    for a in articles:  # one list per article, shared by its paragraphs
        contexts = [p["context"] for p in a["paragraphs"]]
        article_of.update(dict.fromkeys(contexts, contexts))
    rng = random.Random(seed)
    out: list[QAExample] = []
    for ex in examples:
        if rng.random() < share:
            own_first = rng.random() < 0.5  # the two kinds, half each
            neg = negative(ex, article_of.get(ex.context, []), rng, own_first)
            if neg is not None:
                out.append(neg)
    return out
