"""The logistic decision to answer, shared by ``calibrate`` and ``calibrate-open``.

Both fit a logistic model of an answer's F1 (or of its being right) on a mix of answerable
and unanswerable questions, pick the threshold of the grid :data:`THRESHOLDS` that maximises
the SQuAD-2.0-style F1 of the mix (a question scores its answer's F1 when answered and 1 when
rightly abstained), and choose features by forward selection while the F1, cross-validated
over :data:`FOLDS` folds of whole held-out articles, rises by at least :data:`MIN_GAIN` points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# Cross-validation folds (whole held-out articles each) for choosing the features, and the
# least gain in cross-validated SQuAD-2.0-style F1 (points) for which one is kept.
FOLDS = 5
MIN_GAIN = 0.2
# The thresholds tried, lowest first (ties go to the lowest).
THRESHOLDS = np.round(np.arange(0.02, 0.99, 0.01), 2)

# (probabilities, F1 of each answer, answerable) -> the threshold fitted on them.
ThresholdFit = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


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


def mix_score(p: np.ndarray, t: float, f1: np.ndarray, answerable: np.ndarray) -> np.ndarray:
    """Per question: its answer's F1 when ``p >= t``, else 1 when unanswerable, 0 when not."""
    return np.where(p >= t, f1, np.where(answerable, 0.0, 1.0))


def best_on_grid(score: Callable[[float], float]) -> float:
    """The threshold of :data:`THRESHOLDS` with the highest ``score`` (the lowest of ties)."""
    scores = [score(t) for t in THRESHOLDS]
    return float(THRESHOLDS[int(np.argmax(scores))])


def cross_validated(
    x: np.ndarray,
    y: np.ndarray,
    f1: np.ndarray,
    answerable: np.ndarray,
    folds: np.ndarray,
    threshold: ThresholdFit,
) -> tuple[float, float]:
    """Mean :func:`mix_score` (points) and log-loss of the logistic model on ``x``, out of fold.

    Each fold's model (fitted to the labels ``y``) and threshold (``threshold`` of the model's
    probabilities) are fitted on the other folds, and its questions are decided with them.
    """
    decided = np.zeros(len(x))
    loss = np.zeros(len(x))
    for k in np.unique(folds):
        fit, test = folds != k, folds == k
        w = fit_logistic(x[fit], y[fit])
        t = threshold(predict_proba(w, x[fit]), f1[fit], answerable[fit])
        p = np.clip(predict_proba(w, x[test]), 1e-6, 1 - 1e-6)
        decided[test] = mix_score(p, t, f1[test], answerable[test])
        loss[test] = -(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p))
    return 100 * float(decided.mean()), float(loss.mean())


def forward_select(
    names: Sequence[str],
    start: Sequence[str],
    cv: Callable[[Sequence[str]], tuple[float, float]],
    min_gain: float = MIN_GAIN,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Forward selection: from ``start``, add the candidate that raises the cross-validated F1
    most while it raises it by at least ``min_gain`` points.

    Args:
        names: Every feature (the candidates are those not chosen yet).
        start: The features always kept.
        cv: The cross-validated F1 (points) and log-loss of a list of features.
        min_gain: The least gain for which a feature is added.

    Returns:
        The chosen names (in ``names`` order) and one record per round (every candidate's
        cross-validated F1 and log-loss).
    """
    chosen = list(start)
    best = cv(chosen)[0]
    rounds: list[dict[str, Any]] = [{"features": list(chosen), "cv_f1": round(best, 2)}]
    while candidates := [n for n in names if n not in chosen]:
        trials = {n: cv([*chosen, n]) for n in candidates}
        pick = max(trials, key=lambda n: trials[n][0])
        kept = trials[pick][0] >= best + min_gain
        rounds.append(
            {
                "candidates": {
                    n: {"cv_f1": round(v[0], 2), "cv_log_loss": round(v[1], 4)}
                    for n, v in trials.items()
                },
                "best": pick,
                "kept": kept,
            }
        )
        if not kept:
            break
        chosen.append(pick)
        best = trials[pick][0]
    return [n for n in names if n in chosen], rounds
