"""Official SQuAD answer scoring (EM/F1) and small ranking metrics.

The normalisation follows the official SQuAD v1.1 evaluation script: lower-case,
strip punctuation, drop the articles a/an/the, collapse white space.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Normalise an answer the way the official SQuAD script does."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """Token-level F1 between a prediction and one gold answer."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(truth).split()
    if not pred_tokens or not gold_tokens:
        # SQuAD v2 convention: both empty is a match, one empty is not.
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def max_over_truths(metric: str, prediction: str, truths: Iterable[str]) -> float:
    """Best score of ``prediction`` against any gold answer (``metric`` is "em" or "f1")."""
    fn = exact_match if metric == "em" else f1_score
    scores = [fn(prediction, t) for t in truths]
    return max(scores) if scores else fn(prediction, "")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty sequence; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return float(ordered[rank])


def reliability(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per confidence bin: count, mean confidence and accuracy."""
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = (conf >= lo) & ((conf < hi) if b < bins - 1 else (conf <= hi))
        if sel.any():
            rows.append(
                {
                    "lo": lo,
                    "hi": hi,
                    "n": int(sel.sum()),
                    "confidence": float(conf[sel].mean()),
                    "accuracy": float(correct[sel].mean()),
                }
            )
    return rows


def expected_calibration_error(rows: list[dict[str, float]]) -> float:
    """ECE: count-weighted mean |accuracy - confidence| over the bins."""
    n = sum(r["n"] for r in rows) or 1
    return float(sum(r["n"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / n)
