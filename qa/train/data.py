"""SQuAD training data for the reader: examples, labelled token windows, batches.

The data side of :mod:`qa.train.loop` (and of :mod:`qa.train.calibrate`, which holds the
same train articles apart): the questions of the official json (read by
:mod:`qa.ingest.squad`), whole articles split into train and held-out, questions tokenised
with their contexts into overlapping windows labelled with the answer's token span, and
length-bucketed batches.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.ingest import squad
from qa.reader.spans import encode_windows, segment_ids, truncate_questions

if TYPE_CHECKING:
    from qa.train.config import TrainConfig

# Windows are length-sorted inside pools of this many batches: little padding,
# yet batches still mix questions from all over the data set.
_POOL_BATCHES = 64


@dataclass(frozen=True)
class QAExample:
    """One SQuAD question with its context and gold answers."""

    qid: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_start: int


@dataclass
class Features:
    """Tokenised training windows (ragged, unpadded)."""

    input_ids: list[np.ndarray] = field(default_factory=list)
    token_type_ids: list[np.ndarray] = field(default_factory=list)
    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)

    def lengths(self) -> np.ndarray:
        """Token count of every window."""
        return np.array([len(x) for x in self.input_ids], dtype=np.int64)


def split_articles(
    articles: list[dict[str, Any]], n_heldout: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split into (train, held-out): held-out = the ``n_heldout`` articles whose
    sha1(title) hex digest sorts first. Deterministic, independent of file order."""
    ranked = sorted(articles, key=lambda a: hashlib.sha1(a["title"].encode("utf-8")).hexdigest())
    heldout = {a["title"] for a in ranked[:n_heldout]}
    train = [a for a in articles if a["title"] not in heldout]
    return train, [a for a in ranked[:n_heldout]]


def flatten(articles: list[dict[str, Any]]) -> list[QAExample]:
    """All questions of the articles, in file order (answer offset 0 when there is none).

    Raises:
        UsageError: The articles are not SQuAD's.
    """
    return [
        QAExample(
            qid=q.id,
            question=q.question,
            context=q.context,
            answers=q.answer_texts,
            answer_start=q.answers[0].start if q.answers else 0,
        )
        for q in squad.flatten(articles)
    ]


def subsample(examples: list[QAExample], limit: int | None, seed: int) -> list[QAExample]:
    """A seeded random subset of at most ``limit`` examples, file order kept."""
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def label_window(
    offsets: Sequence[tuple[int, int]], seq_ids: Sequence[int | None], ans_start: int, ans_end: int
) -> tuple[int, int]:
    """Token (start, end) of the answer in one window, or (0, 0) = CLS if it is not inside."""
    ctx_start = seq_ids.index(1)
    ctx_end = len(seq_ids) - 1 - list(reversed(seq_ids)).index(1)
    if offsets[ctx_start][0] > ans_start or offsets[ctx_end][1] < ans_end:
        return 0, 0
    i = ctx_start
    while i <= ctx_end and offsets[i][0] <= ans_start:
        i += 1
    j = ctx_end
    while j >= ctx_start and offsets[j][1] >= ans_end:
        j -= 1
    return i - 1, j + 1


def build_features(
    tokenizer: Any, examples: list[QAExample], config: TrainConfig, chunk: int = 2000
) -> Features:
    """Tokenise examples into labelled windows (chunked to bound peak memory).

    ``config`` gives the window: ``max_length``, ``stride`` and ``max_query`` tokens.
    """
    feats = Features()
    for lo in range(0, len(examples), chunk):
        part = examples[lo : lo + chunk]
        questions = truncate_questions(tokenizer, [e.question for e in part], config.max_query)
        enc = encode_windows(
            tokenizer, questions, [e.context for e in part], config.max_length, config.stride
        )
        for w, p in enumerate(enc["overflow_to_sample_mapping"]):
            ex = part[p]
            if ex.answers:
                ans_end = ex.answer_start + len(ex.answers[0])
                s, e = label_window(
                    enc["offset_mapping"][w], enc.sequence_ids(w), ex.answer_start, ans_end
                )
            else:  # a no-answer example: every window points at the null (CLS) position
                s, e = 0, 0
            feats.input_ids.append(np.asarray(enc["input_ids"][w], dtype=np.int32))
            feats.token_type_ids.append(np.asarray(segment_ids(enc, w), dtype=np.int8))
            feats.start.append(s)
            feats.end.append(e)
    return feats


def plan_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Length-bucketed batches of window indices for one epoch (deterministic)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    pool = batch_size * _POOL_BATCHES
    batches: list[np.ndarray] = []
    for lo in range(0, len(order), pool):
        part = order[lo : lo + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
