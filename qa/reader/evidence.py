"""The decision to answer over several passages: an answer's evidence beyond its best span.

In the open setting (retrieval, then the span reader over the top passages) one answer may be
found in several passages, in a passage the retriever ranked first or fifth, and ahead of or
close behind another answer. The per-span calibration (:class:`qa.reader.span.Calibration`)
sees one span in one passage; :class:`OpenDecision` weighs, with a second small logistic
model, what the passages read say together about each distinct answer:

- ``prob``: the log-odds of its best per-span calibrated probability (today's confidence);
- ``passages``: how many of the passages read hold it (normalised text);
- ``sum_prob``: its per-span probabilities summed over those passages (best span of each);
- ``first_passage``: 1 / the position (1-based, in retrieval order) of the first passage
  read that holds it;
- ``retrieval``: the best fused retrieval score of those passages, relative to the top hit;
- ``lead``: its best probability minus the best probability of any other distinct answer
  (negative for an answer that another outscores).

``python -m qa.train calibrate-open`` fits it on held-out *train* articles read in an open
setting, keeps a feature only when it raises the cross-validated SQuAD-2.0-style F1, and writes
the ``open`` block into the reader's ``reader.json``. A reader without that block decides as
before: its answers keep the per-span confidence and its threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qa.errors import ReaderLoadError

OPEN_FEATURES = ("prob", "passages", "sum_prob", "first_passage", "retrieval", "lead")
# The feature every open model keeps (the per-span confidence); the others are candidates.
BASE_FEATURES = ("prob",)


@dataclass(frozen=True)
class Occurrence:
    """One passage read that holds a candidate answer.

    Attributes:
        prob: The per-span calibrated probability of its best span there.
        position: The passage's position among the passages read (0 = the retriever's first).
        retrieval: The passage's fused retrieval score relative to the top hit's (<= 1).
    """

    prob: float
    position: int
    retrieval: float


def _log_odds(p: float) -> float:
    q = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(q / (1.0 - q))


def answer_evidence(merged: Mapping[str, Sequence[Occurrence]]) -> dict[str, dict[str, float]]:
    """The open features (:data:`OPEN_FEATURES`) of every distinct answer.

    Args:
        merged: Each distinct (normalised) answer's occurrences in the passages read; an
            answer found twice in one passage is counted once there, with its best span.

    Returns:
        Answer key -> feature name -> value.
    """
    best_in: dict[str, dict[int, Occurrence]] = {}
    for key, found in merged.items():
        per_passage: dict[int, Occurrence] = {}
        for occ in found:
            kept = per_passage.get(occ.position)
            if kept is None or occ.prob > kept.prob:
                per_passage[occ.position] = occ
        best_in[key] = per_passage
    peak = {k: max(o.prob for o in v.values()) for k, v in best_in.items() if v}
    out: dict[str, dict[str, float]] = {}
    for key, per_passage in best_in.items():
        if not per_passage:
            continue
        others = [p for k, p in peak.items() if k != key]
        out[key] = {
            "prob": _log_odds(peak[key]),
            "passages": float(len(per_passage)),
            "sum_prob": sum(o.prob for o in per_passage.values()),
            "first_passage": 1.0 / (1 + min(per_passage)),
            "retrieval": max(o.retrieval for o in per_passage.values()),
            "lead": peak[key] - max(others, default=0.0),
        }
    return out


@dataclass(frozen=True)
class OpenDecision:
    """Logistic model of an answer's F1 on its open features, and its no-answer threshold.

    Attributes:
        features: Names of the features weighed (a subset of :data:`OPEN_FEATURES`).
        weights: Their coefficients.
        bias: Intercept.
        threshold: Confidence under which the product says "no answer".
    """

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float

    def probability(self, evidence: Mapping[str, float]) -> float:
        """The answer's confidence from its open features (:func:`answer_evidence`)."""
        z = self.bias + sum(
            w * evidence[name] for name, w in zip(self.features, self.weights, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> OpenDecision | None:
        """The ``open`` block of a reader's ``reader.json`` (None when it has none).

        Raises:
            ReaderLoadError: It names a feature this version does not know, or its weights do
                not match its features.
        """
        block = meta.get("open")
        if not isinstance(block, dict):
            return None
        features = tuple(str(f) for f in block.get("features", ()))
        weights = tuple(float(v) for v in block.get("weights", ()))
        unknown = [f for f in features if f not in OPEN_FEATURES]
        if unknown or not features or len(weights) != len(features):
            raise ReaderLoadError(
                "the reader's open-setting decision does not fit this version of newsqa "
                f"(features {', '.join(features) or 'none'}; {len(weights)} weights): refit it "
                "with `python -m qa.train calibrate-open --reader DIR`"
            )
        return cls(features, weights, float(block["bias"]), float(block["threshold"]))
