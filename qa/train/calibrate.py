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
weights into the reader's ``reader.json``. No dev file is read.

Measured on epoch 3 (2-fold cross-validation over the 2,858 + 2,858 held-out pairs,
SQuAD-2.0-style F1 at the fitted threshold): F1 label 79.2, EM label 76.3.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import TrainingError, UsageError
from qa.eval.metrics import expected_calibration_error, max_over_truths, reliability
from qa.ingest.squad import load_articles
from qa.reader.model import load_qa_model
from qa.reader.spans import predict_pairs
from qa.reader.weights import META_FILE
from qa.train.data import QAExample, flatten, split_articles
from qa.train.negatives import negative

FEATURES = ("score", "log_prob", "margin")
LABELS = {
    "f1": "expected F1 of the top span (0 when there is no answer)",
    "em": "top span exactly right (EM)",
}


def heldout_with_negatives(
    data: Path, n_heldout: int, seed: int
) -> tuple[list[QAExample], list[QAExample]]:
    """Held-out questions, and the same questions on a paragraph without their answer."""
    _, heldout = split_articles(load_articles(data), n_heldout)
    rng = random.Random(seed)
    positives: list[QAExample] = []
    negatives: list[QAExample] = []
    for article in heldout:
        contexts = [p["context"] for p in article["paragraphs"]]
        for ex in flatten([article]):
            positives.append(ex)
            neg = negative(ex, contexts, rng, own_first=len(positives) % 2 == 1)
            if neg is not None:
                negatives.append(neg)
    return positives, negatives


def span_features(
    model: Any, tokenizer: Any, examples: Sequence[QAExample]
) -> tuple[np.ndarray, list[str]]:
    """Features (score, log_prob, margin) and text of each example's top span."""
    preds = predict_pairs(model, tokenizer, [(e.question, e.context) for e in examples], top_n=1)
    feats, texts = [], []
    for spans in preds:
        sp = spans[0]
        feats.append((sp.score, sp.log_prob, sp.score - sp.null_score))
        texts.append(sp.text)
    return np.asarray(feats, dtype=np.float64), texts


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Logistic regression by Newton's method; returns [bias, w1, ..., wd]."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -60, 60)))
        grad = xb.T @ (p - y) + l2 * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def predict_proba(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Probabilities of the logistic model ``w`` (bias first)."""
    z = w[0] + x @ w[1:]
    return np.asarray(1 / (1 + np.exp(-np.clip(z, -60, 60))))


def best_threshold(p_pos: np.ndarray, f1_pos: np.ndarray, p_neg: np.ndarray) -> float:
    """Threshold maximising SQuAD-2.0 F1 over answerable + unanswerable questions."""
    grid = np.round(np.arange(0.02, 0.99, 0.01), 2)
    scores = [
        (np.where(p_pos >= t, f1_pos, 0).sum() + (p_neg < t).sum()) / (len(p_pos) + len(p_neg))
        for t in grid
    ]
    return float(grid[int(np.argmax(scores))])


def calibrate(
    reader_dir: Path, data: Path, n_heldout: int, seed: int, label: str = "f1"
) -> dict[str, Any]:
    """Fit the confidence model and threshold; returns the ``calibration`` record."""
    # Fitted on torch's logits, the reference every runtime is checked against (not on a
    # machine's int8 copy).
    model, tokenizer = load_qa_model(reader_dir, backend="torch")
    pos, neg = heldout_with_negatives(data, n_heldout, seed)
    t0 = time.time()
    x_pos, t_pos = span_features(model, tokenizer, pos)
    x_neg, _ = span_features(model, tokenizer, neg)
    pairs = list(zip(t_pos, pos, strict=True))
    em_pos = np.array([max_over_truths("em", t, e.answers) for t, e in pairs])
    f1_pos = np.array([max_over_truths("f1", t, e.answers) for t, e in pairs])
    x = np.vstack([x_pos, x_neg])
    y = np.concatenate([f1_pos if label == "f1" else em_pos, np.zeros(len(x_neg))])
    w = fit_logistic(x, y)
    p = predict_proba(w, x)
    threshold = best_threshold(p[: len(pos)], f1_pos, p[len(pos) :])
    rows = reliability(p, y)
    answered = p[: len(pos)] >= threshold
    return {
        "features": list(FEATURES),
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
            "of the same article without the answer (alternating)",
            "seed": seed,
        },
        "heldout": {
            "em": round(100 * float(em_pos.mean()), 2),
            "f1": round(100 * float(f1_pos.mean()), 2),
            "has_ans_f1_at_threshold": round(100 * float(np.where(answered, f1_pos, 0).mean()), 2),
            "no_ans_acc_at_threshold": round(100 * float((p[len(pos) :] < threshold).mean()), 2),
            "ece": round(expected_calibration_error(rows), 4),
            "seconds": round(time.time() - t0, 1),
        },
    }


def calibrate_reader(
    reader_dir: Path, data: Path, n_heldout: int = 15, seed: int = 13, label: str = "f1"
) -> dict[str, Any]:
    """Calibrate a reader folder and write the record into its ``reader.json``.

    Args:
        reader_dir: The reader to calibrate (its ``reader.json`` gains ``calibration``).
        data: SQuAD v1.1 train (json or json.gz).
        n_heldout: Held-out articles (the ones training held out).
        seed: Seed of the unanswerable twins.
        label: What the confidence predicts (a key of :data:`LABELS`).

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
    cal = calibrate(reader_dir, data, n_heldout, seed, label)
    meta_path = reader_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    meta["calibration"] = cal
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return cal
