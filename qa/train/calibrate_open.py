"""Fit the open-setting decision to answer on held-out *train* articles read through retrieval.

Usage::

    python -m qa.train calibrate-open [--reader qa/models/reader] [--data train-v1.1.json.gz]

The held-out articles are the ones training never saw (the first 15 by sha1 of the title, as
for ``calibrate``). Every other paragraph of each (the first, third, ...) is indexed as an
article, like SQuAD-open; each held-out question is then asked through the product's
retrieval and the span reader (its top passages, per-span calibration only): a question of an
indexed paragraph is answerable, one of a left-out paragraph is asked of an index without its
gold paragraph (on topic, the same article's other paragraphs there: the corpus holds no
answer, unless another paragraph happens to say it too). The label of the top answer is its
F1 against the gold answers (0 where nothing right was found).

A logistic model of that F1 starts from the log-odds of the per-span confidence (``prob``);
each other feature of :mod:`qa.reader.evidence` (agreement across passages, retrieval rank and
score, lead over the next answer) is added by forward selection while it raises the
SQuAD-2.0-style F1 on the mix by at least :data:`MIN_GAIN` points, cross-validated over
:data:`FOLDS` folds of whole articles (each fold decided by a model and threshold fitted on the
others). A question scores its answer's F1 when answered and, when abstained, 1 if its gold
paragraph is not indexed, else 0. The threshold that maximises that score, the features and
weights are written as the ``open`` block of the reader's ``reader.json``, beside the
per-span ``calibration`` (which must be there). No dev file is read.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import TrainingError
from qa.eval.metrics import max_over_truths
from qa.ingest.squad import load_articles
from qa.reader.evidence import BASE_FEATURES, OPEN_FEATURES
from qa.reader.weights import META_FILE, load_reader_meta
from qa.train import fitting
from qa.train.data import split_articles
from qa.train.fitting import (
    FOLDS,
    MIN_GAIN,
    best_on_grid,
    fit_logistic,
    forward_select,
    mix_score,
    predict_proba,
)

log = logging.getLogger(__name__)

# Passages retrieved per question (the product's evaluations use 20; the reader reads the top 5).
K = 20


@dataclass(frozen=True)
class OpenQuestion:
    """A held-out question asked in the open setting."""

    qid: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    article: int


def open_split(
    heldout: Sequence[dict[str, Any]], per_paragraph: int = 0
) -> tuple[list[dict[str, Any]], list[OpenQuestion]]:
    """The articles to index (every other paragraph of each) and the questions.

    Args:
        heldout: The held-out articles (SQuAD's shape).
        per_paragraph: Ask only the first N questions (with answers) of each paragraph
            (0: all): the reading costs about half a CPU second a question.

    Returns:
        SQuAD-shaped articles holding the indexed paragraphs, and each held-out question with
        whether its paragraph is indexed and its article's index (for whole-article folds).
    """
    indexed: list[dict[str, Any]] = []
    questions: list[OpenQuestion] = []
    for number, art in enumerate(heldout):
        kept = []
        for index, para in enumerate(art["paragraphs"]):
            answerable = index % 2 == 0
            if answerable:
                kept.append(para)
            asked = [qa for qa in para.get("qas", []) if qa.get("answers")]
            for qa in asked[:per_paragraph] if per_paragraph else asked:
                answers = tuple(a["text"] for a in qa["answers"])
                questions.append(
                    OpenQuestion(str(qa["id"]), qa["question"], answers, answerable, number)
                )
        indexed.append({"title": art["title"], "paragraphs": kept})
    return indexed, questions


def build_index(articles: Sequence[dict[str, Any]], index_dir: Path, scratch: Path) -> None:
    """Index the SQuAD-shaped ``articles`` (each paragraph an article) into ``index_dir``,
    by way of a SQuAD file written in the folder ``scratch``."""
    from qa.index.folder import embedder_for
    from qa.index.indexer import Indexer

    index_dir.mkdir(parents=True, exist_ok=True)
    source = scratch / "open-paragraphs.json"
    source.write_text(json.dumps({"data": list(articles)}), encoding="utf-8")
    Indexer(index_dir, embedder_for(index_dir, for_index=True)).update([source], prune=False)


def _uncalibrated(reader_dir: Path) -> TrainingError:
    return TrainingError(
        f"{reader_dir} has no per-span calibration: run `python -m qa.train calibrate "
        f"--reader {reader_dir}` first"
    )


def read_open(
    index_dir: Path, reader_dir: Path, questions: Sequence[OpenQuestion], k: int = K
) -> list[dict[str, Any]]:
    """Ask every question of the index; one row per question: the top answer's text, its F1,
    its open features (None when nothing was found), whether it is answerable, its article."""
    from qa.answer import Answerer
    from qa.reader.span import SpanReader
    from qa.search.when import scope_for

    reader = SpanReader(model=reader_dir, open_decision=False)
    if reader.calibration is None:
        raise _uncalibrated(reader_dir)
    answerer = Answerer(index_dir, reader=reader)
    today = date.today()
    rows = []
    for n, q in enumerate(questions, 1):
        if n % 250 == 0:
            log.info("open setting: %d of %d questions read", n, len(questions))
        hits = answerer.retriever.search(q.question, k=k, scope=scope_for(q.question, today))
        answers, evidence = reader.read_with_evidence(q.question, hits)
        text = answers[0].text if answers else ""
        rows.append(
            {
                "id": q.qid,
                "prediction": text,
                "f1": max_over_truths("f1", text, q.answers) if answers else 0.0,
                "confidence": answers[0].confidence if answers else None,
                "features": evidence[0] if answers else None,
                "answerable": q.answerable,
                "article": q.article,
            }
        )
    return rows


def best_threshold(p: np.ndarray, f1: np.ndarray, answerable: np.ndarray) -> float:
    """The threshold that maximises the mean :func:`mix_score`."""
    return best_on_grid(lambda t: float(mix_score(p, t, f1, answerable).mean()))


def cross_validated(
    x: np.ndarray, f1: np.ndarray, answerable: np.ndarray, folds: np.ndarray
) -> tuple[float, float]:
    """Mean :func:`mix_score` (points) and log-loss out of fold (model and threshold fitted
    on the other folds)."""
    return fitting.cross_validated(x, f1, f1, answerable, folds, best_threshold)


def select_features(
    x: np.ndarray,
    f1: np.ndarray,
    answerable: np.ndarray,
    folds: np.ndarray,
    min_gain: float = MIN_GAIN,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Forward selection over :data:`OPEN_FEATURES` (columns of ``x``) from ``prob``
    (:func:`qa.train.fitting.forward_select`).

    Returns:
        The chosen names (in :data:`OPEN_FEATURES` order) and one record per round.
    """

    def cv(names: Sequence[str]) -> tuple[float, float]:
        return cross_validated(x[:, [OPEN_FEATURES.index(n) for n in names]], f1, answerable, folds)

    return forward_select(OPEN_FEATURES, BASE_FEATURES, cv, min_gain)


def decided_summary(
    p: np.ndarray, t: float, f1: np.ndarray, answerable: np.ndarray
) -> dict[str, float]:
    """Mix F1, share answered, precision of what is answered (F1 >= 0.5), HasAns F1, NoAns acc."""
    answered = p >= t
    return {
        "mix_f1": round(100 * float(mix_score(p, t, f1, answerable).mean()), 2),
        "answered": round(float(answered.mean()), 4),
        "precision": round(float((f1[answered] >= 0.5).mean()) if answered.any() else 0.0, 4),
        "has_ans_f1": round(100 * float(np.where(answered, f1, 0)[answerable].mean()), 2),
        "no_ans_acc": round(100 * float((~answered)[~answerable].mean()), 2),
    }


def fit_open(rows: Sequence[dict[str, Any]], span_threshold: float) -> dict[str, Any]:
    """The ``open`` record fitted on :func:`read_open`'s rows.

    Args:
        rows: One row per question.
        span_threshold: The reader's per-span threshold (today's decision, for comparison).
    """
    found = [r for r in rows if r["features"] is not None]
    if len({r["article"] % FOLDS for r in found}) < 2:
        raise TrainingError("too few held-out articles to cross-validate (need 2 or more)")
    x = np.array([[r["features"][n] for n in OPEN_FEATURES] for r in found], dtype=np.float64)
    f1 = np.array([r["f1"] for r in found], dtype=np.float64)
    answerable = np.array([r["answerable"] for r in found])
    folds = np.array([r["article"] % FOLDS for r in found])
    chosen, rounds = select_features(x, f1, answerable, folds, MIN_GAIN)
    cols = [OPEN_FEATURES.index(n) for n in chosen]
    w = fit_logistic(x[:, cols], f1)
    p = predict_proba(w, x[:, cols])
    threshold = best_threshold(p, f1, answerable)
    before = np.array([r["confidence"] for r in found], dtype=np.float64)
    return {
        "features": chosen,
        "weights": [round(float(v), 6) for v in w[1:]],
        "bias": round(float(w[0]), 6),
        "threshold": threshold,
        "label": "F1 of the top answer over the passages read (0 when nothing right)",
        "fitted_on": {
            "questions": len(rows),
            "answerable": int(sum(r["answerable"] for r in rows)),
            "without_gold_paragraph": int(sum(not r["answerable"] for r in rows)),
            "nothing_found": len(rows) - len(found),
            "setting": "held-out train articles, every other paragraph indexed; retrieval "
            f"k={K}, the reader's top passages",
        },
        "selection": {
            "folds": f"{FOLDS} folds of whole held-out articles",
            "min_gain_f1": MIN_GAIN,
            "rounds": rounds,
        },
        "heldout": {
            "per_span_decision": decided_summary(before, span_threshold, f1, answerable),
            "open_decision": decided_summary(p, threshold, f1, answerable),
            "open_decision_cv_f1": round(cross_validated(x[:, cols], f1, answerable, folds)[0], 2),
        },
    }


def calibrate_open(
    reader_dir: Path,
    data: Path,
    n_heldout: int = 15,
    index_dir: Path | None = None,
    rows_out: Path | None = None,
    per_paragraph: int = 0,
) -> dict[str, Any]:
    """Fit the open-setting decision of a reader and write it into its ``reader.json``.

    Args:
        reader_dir: The reader (its ``reader.json`` must hold the per-span calibration).
        data: SQuAD v1.1 train (json or json.gz).
        n_heldout: Held-out articles (the ones training held out).
        index_dir: Where the open index is built (default: a temporary folder); an index
            already there is reused.
        rows_out: Where to write one JSON line per question (optional).
        per_paragraph: Ask only the first N questions of each paragraph (0: all).

    Returns:
        The ``open`` record written.

    Raises:
        TrainingError: The data file is missing, or the reader has no calibration.
    """
    if not data.is_file():
        raise TrainingError(f"{data} not found (SQuAD train is needed to calibrate)")
    if "calibration" not in load_reader_meta(reader_dir):
        raise _uncalibrated(reader_dir)
    _, heldout = split_articles(load_articles(data), n_heldout)
    indexed, questions = open_split(heldout, per_paragraph)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="newsqa-open-") as tmp:
        where = index_dir or Path(tmp) / "index"
        if not (where / "HEAD").is_file():
            build_index(indexed, where, Path(tmp))
        rows = read_open(where, reader_dir, questions)
    if rows_out is not None:
        rows_out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    meta_path = reader_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    record = fit_open(rows, float(meta["calibration"]["threshold"]))
    record["fitted_on"]["heldout_articles"] = n_heldout
    record["fitted_on"]["questions_per_paragraph"] = per_paragraph or "all"
    record["heldout"]["seconds"] = round(time.time() - t0, 1)
    meta["open"] = record
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return record
