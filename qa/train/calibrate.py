"""Fit the span reader's confidence and no-answer threshold on held-out *train* questions.

Usage::

    python -m qa.train calibrate [--reader qa/models/reader] [--data train-v1.1.json.gz]

The held-out slice is the one training never saw (whole articles, chosen by sha1 of the
title; see :mod:`qa.train.loop`). SQuAD v1.1 has no unanswerable questions, so each held-out
question is also paired with a context that lacks its answer, alternately (a) its own
paragraph with the sentences holding the answer cut out (on topic, answer gone: the closest
to SQuAD 2.0's adversarial questions) and (b) another paragraph of the same article that
holds none of its gold answers. A logistic model of the top span's F1 against the gold
answer (``--label f1``, the default: confidence = expected F1, 0 on the unanswerable twins)
or of "the top span is exactly right" (``--label em``) is fitted on features of the top span,
and the threshold that maximises SQuAD-2.0-style F1 on this 1:1 mix is written with the
weights into the reader's ``reader.json``. With ``--perturbed SHARE`` that share of the
questions also gets a changed question on its own paragraph (:mod:`qa.train.perturb`).
No dev file is read.

The features start with the span's logits (score, log-probability, margin over the null
logit); each text feature of :mod:`qa.reader.decide` (does the span's type fit the question,
question words near the span or absent from the passage, ...) is a candidate, added by
forward selection while it raises the SQuAD-2.0-style F1 by at least :data:`MIN_GAIN` points,
cross-validated over :data:`FOLDS` folds of whole held-out articles (each fold's model and
threshold fitted on the others); only with ``--text-features``, else the three logit features
are fitted alone.

Measured on epoch 3 (2-fold cross-validation over the 2,858 + 2,858 held-out pairs,
SQuAD-2.0-style F1 at the fitted threshold): F1 label 79.2, EM label 76.3.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import TrainingError, UsageError
from qa.eval.metrics import expected_calibration_error, max_over_truths, reliability
from qa.ingest.squad import load_articles
from qa.reader.coordination import DEFAULT_MARGIN
from qa.reader.decide import LOGIT_FEATURES, TEXT_FEATURES, SpanInContext, feature_vector
from qa.reader.model import load_qa_model
from qa.reader.spans import predict_pairs
from qa.reader.weights import META_FILE
from qa.train import fitting
from qa.train.data import QAExample, flatten, split_articles
from qa.train.fitting import (
    FOLDS,
    MIN_GAIN,
    best_on_grid,
    fit_logistic,
    forward_select,
    predict_proba,
)
from qa.train.negatives import negative
from qa.train.perturb import perturbed_negatives

FEATURES = LOGIT_FEATURES
LABELS = {
    "f1": "expected F1 of the top span (0 when there is no answer)",
    "em": "top span exactly right (EM)",
}


def heldout_with_negatives(
    data: Path, n_heldout: int, seed: int, perturbed: float = 0.0
) -> tuple[list[QAExample], list[QAExample], dict[str, int]]:
    """Held-out questions, the same questions on a paragraph without their answer, and the
    held-out article (its index) of every question id, twins included.

    With ``perturbed`` > 0 a seeded share of the questions also gets a changed question on
    its own paragraph (:mod:`qa.train.perturb`), after the context twins.
    """
    _, heldout = split_articles(load_articles(data), n_heldout)
    rng = random.Random(seed)
    positives: list[QAExample] = []
    negatives: list[QAExample] = []
    article: dict[str, int] = {}
    for index, art in enumerate(heldout):
        contexts = [p["context"] for p in art["paragraphs"]]
        for ex in flatten([art]):
            positives.append(ex)
            article[ex.qid] = index
            neg = negative(ex, contexts, rng, own_first=len(positives) % 2 == 1)
            if neg is not None:
                negatives.append(neg)
                article[neg.qid] = index
    for twin in perturbed_negatives(heldout, positives, perturbed, seed):
        negatives.append(twin)
        article[twin.qid] = article[twin.qid.rsplit("-", 1)[0]]
    return positives, negatives, article


def span_features(
    model: Any,
    tokenizer: Any,
    examples: Sequence[QAExample],
    names: Sequence[str] = LOGIT_FEATURES + TEXT_FEATURES,
) -> tuple[np.ndarray, list[str]]:
    """The named features (:data:`qa.reader.decide.FEATURES`) and text of each top span.

    The top span is the product's: whole coordinations are kept for questions that ask for
    several things.
    """
    preds = predict_pairs(
        model,
        tokenizer,
        [(e.question, e.context) for e in examples],
        top_n=1,
        whole_answer_margin=DEFAULT_MARGIN,
    )
    feats, texts = [], []
    for ex, spans in zip(examples, preds, strict=True):
        sp = spans[0]
        span = SpanInContext(
            ex.question, ex.context, sp.start, sp.end, sp.score, sp.log_prob, sp.null_score
        )
        feats.append(feature_vector(span, tuple(names)))
        texts.append(sp.text)
    return np.asarray(feats, dtype=np.float64).reshape(len(feats), len(names)), texts


def best_threshold(p_pos: np.ndarray, f1_pos: np.ndarray, p_neg: np.ndarray) -> float:
    """Threshold maximising SQuAD-2.0 F1 over answerable + unanswerable questions."""
    n = len(p_pos) + len(p_neg)
    return best_on_grid(lambda t: (np.where(p_pos >= t, f1_pos, 0).sum() + (p_neg < t).sum()) / n)


def _split_threshold(p: np.ndarray, f1: np.ndarray, positive: np.ndarray) -> float:
    return best_threshold(p[positive], f1[positive], p[~positive])


def cross_validated(
    x: np.ndarray, y: np.ndarray, f1: np.ndarray, positive: np.ndarray, folds: np.ndarray
) -> tuple[float, float]:
    """SQuAD-2.0-style F1 (points) and log-loss of the logistic model on ``x``, out of fold.

    Each fold's model and threshold are fitted on the other folds, and its pairs are decided
    with them: an answerable pair scores the top span's ``f1`` when answered, an unanswerable
    one 1 when abstained (and 0 when answered, whatever its ``f1``).
    """
    f1_answerable = np.where(positive, f1, 0.0)
    return fitting.cross_validated(x, y, f1_answerable, positive, folds, _split_threshold)


def select_features(
    x: np.ndarray,
    names: Sequence[str],
    y: np.ndarray,
    f1: np.ndarray,
    positive: np.ndarray,
    folds: np.ndarray,
    min_gain: float = MIN_GAIN,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Forward selection: the logit features, plus each text feature that helps out of fold.

    Starting from :data:`LOGIT_FEATURES`, the candidate that raises the cross-validated F1
    most is added while it raises it by at least ``min_gain`` points
    (:func:`qa.train.fitting.forward_select`).

    Returns:
        The chosen names (in ``names`` order) and one record per round (every candidate's
        cross-validated F1 and log-loss).
    """
    column = {n: i for i, n in enumerate(names)}

    def cv(chosen: Sequence[str]) -> tuple[float, float]:
        return cross_validated(x[:, [column[n] for n in chosen]], y, f1, positive, folds)

    start = [n for n in names if n in LOGIT_FEATURES]
    return forward_select(names, start, cv, min_gain)


@dataclass(frozen=True)
class Mix:
    """The held-out pairs as the fit sees them: the answerable questions, then their twins."""

    x: np.ndarray  # the features of each pair's top span
    y: np.ndarray  # the label fitted
    f1: np.ndarray  # the top span's F1 (0 for the twins)
    em: np.ndarray  # the top span's EM, answerable questions only
    positive: np.ndarray  # whether the pair is answerable
    folds: np.ndarray  # the fold of each pair (its held-out article's)


def labelled_mix(
    model: Any,
    tokenizer: Any,
    pos: Sequence[QAExample],
    neg: Sequence[QAExample],
    article: dict[str, int],
    names: Sequence[str],
    label: str,
) -> Mix:
    """Read every pair and label it: ``label`` (a key of :data:`LABELS`) for the answerable
    questions, 0 for their unanswerable twins."""
    x_pos, t_pos = span_features(model, tokenizer, pos, names)
    x_neg, _ = span_features(model, tokenizer, neg, names)
    pairs = list(zip(t_pos, pos, strict=True))
    em_pos = np.array([max_over_truths("em", t, e.answers) for t, e in pairs])
    f1_pos = np.array([max_over_truths("f1", t, e.answers) for t, e in pairs])
    x_all = np.vstack([x_pos, x_neg])
    y = np.concatenate([f1_pos if label == "f1" else em_pos, np.zeros(len(x_neg))])
    f1 = np.concatenate([f1_pos, np.zeros(len(x_neg))])
    positive = np.arange(len(x_all)) < len(pos)
    folds = np.array([article[e.qid] % FOLDS for e in [*pos, *neg]])
    return Mix(x_all, y, f1, em_pos, positive, folds)


def calibrate(
    reader_dir: Path,
    data: Path,
    n_heldout: int,
    seed: int,
    label: str = "f1",
    text_features: bool = False,
    perturbed: float = 0.0,
) -> dict[str, Any]:
    """Fit the confidence model and threshold; returns the ``calibration`` record."""
    # Fitted on torch's logits, the reference every runtime is checked against (not on a
    # machine's int8 copy).
    model, tokenizer = load_qa_model(reader_dir, backend="torch")
    pos, neg, article = heldout_with_negatives(data, n_heldout, seed, perturbed)
    names = list(LOGIT_FEATURES + (TEXT_FEATURES if text_features else ()))
    t0 = time.time()
    mix = labelled_mix(model, tokenizer, pos, neg, article, names, label)
    chosen: list[str] = list(LOGIT_FEATURES)
    rounds: list[dict[str, Any]] = []
    if text_features and len(np.unique(mix.folds)) > 1:
        chosen, rounds = select_features(
            mix.x, names, mix.y, mix.f1, mix.positive, mix.folds, MIN_GAIN
        )
    x = mix.x[:, [names.index(n) for n in chosen]]
    w = fit_logistic(x, mix.y)
    p = predict_proba(w, x)
    threshold = best_threshold(p[: len(pos)], mix.f1[: len(pos)], p[len(pos) :])
    return {
        "features": chosen,
        "weights": [round(float(v), 6) for v in w[1:]],
        "bias": round(float(w[0]), 6),
        "threshold": threshold,
        "label": LABELS[label],
        "target": label,
        "fitted_on": {
            "heldout_articles": n_heldout,
            "answerable": len(pos),
            "unanswerable": len(neg),
            "negatives": "own paragraph minus the answer sentences, or another paragraph "
            "of the same article without the answer (alternating)"
            + (
                f"; plus a changed question on its own paragraph for {perturbed:g} of the questions"
                if perturbed > 0
                else ""
            ),
            "perturbed_share": perturbed,
            "perturbed": sum(1 for e in neg if not e.qid.endswith("-neg")),
            "seed": seed,
        },
        "selection": {
            "folds": f"{FOLDS} folds of whole held-out articles",
            "min_gain_f1": MIN_GAIN,
            "rounds": rounds,
        },
        "heldout": heldout_scores(mix, p, threshold, t0, [not e.qid.endswith("-neg") for e in neg]),
    }


def heldout_scores(
    mix: Mix, p: np.ndarray, threshold: float, t0: float, perturbed: Sequence[bool]
) -> dict[str, float | None]:
    """EM and F1 of the top spans, the decision's scores at ``threshold`` (``p``: the fitted
    probabilities; ``perturbed``: which unanswerable twins are changed questions), the
    calibration error, and the seconds since ``t0``."""
    n = len(mix.em)
    f1_pos = mix.f1[:n]
    rows = reliability(p, mix.y)
    answered = p[:n] >= threshold
    return {
        "em": round(100 * float(mix.em.mean()), 2),
        "f1": round(100 * float(f1_pos.mean()), 2),
        "has_ans_f1_at_threshold": round(100 * float(np.where(answered, f1_pos, 0).mean()), 2),
        "no_ans_acc_at_threshold": round(100 * float((p[n:] < threshold).mean()), 2),
        "perturbed_no_ans_acc_at_threshold": _share_below(p[n:], perturbed, threshold),
        "ece": round(expected_calibration_error(rows), 4),
        "seconds": round(time.time() - t0, 1),
    }


def _share_below(p: np.ndarray, mask: Sequence[bool], threshold: float) -> float | None:
    """Percentage of the masked probabilities under ``threshold`` (None if none is masked)."""
    picked = p[np.asarray(mask, dtype=bool)]
    return round(100 * float((picked < threshold).mean()), 2) if len(picked) else None


def calibrate_reader(
    reader_dir: Path,
    data: Path,
    n_heldout: int = 15,
    seed: int = 13,
    label: str = "f1",
    text_features: bool = False,
    perturbed: float = 0.0,
) -> dict[str, Any]:
    """Calibrate a reader folder and write the record into its ``reader.json``.

    Args:
        reader_dir: The reader to calibrate (its ``reader.json`` gains ``calibration``).
        data: SQuAD v1.1 train (json or json.gz).
        n_heldout: Held-out articles (the ones training held out).
        seed: Seed of the unanswerable twins.
        label: What the confidence predicts (a key of :data:`LABELS`).
        text_features: Whether the text features (:mod:`qa.reader.decide`) are candidates
            (default: the logit features alone).
        perturbed: Share of the held-out questions also paired with a changed question on
            their own paragraph (:mod:`qa.train.perturb`; 0: the context twins alone).

    Returns:
        The ``calibration`` record written.

    Raises:
        TrainingError: The data file is missing.
        UsageError: ``label`` is not one of :data:`LABELS`.
    """
    if label not in LABELS:
        raise UsageError(f"label must be one of {', '.join(sorted(LABELS))}, not {label!r}")
    if not data.is_file():
        raise TrainingError(f"{data} not found (SQuAD train is needed to calibrate)")
    cal = calibrate(reader_dir, data, n_heldout, seed, label, text_features, perturbed)
    meta_path = reader_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    meta["calibration"] = cal
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return cal
