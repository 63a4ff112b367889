"""Fit the sentence reader's ranking weight and confidence calibration on a tuning set.

Usage: python bench/fit_sentence_reader.py INDEX_DIR QUESTIONS.json [--limit N]

Use a SQuAD *train* slice (never dev). Label of a candidate sentence: it contains one of the
gold answers. Prints answer-in-sentence accuracy for several ranking weights, then fits a
logistic regression (numpy, L2) of the label of the chosen sentence on (coverage, cosine) and
prints a reliability table. The printed constants go into ``qa.reader.sentence.SentenceWeights``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from qa.eval.metrics import normalize_answer
from qa.eval.questions import load_questions
from qa.reader.sentence import SentenceReader
from qa.search.retriever import Retriever


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--limit", type=int, default=2000)
    args = ap.parse_args()
    qs = load_questions(args.questions)[: args.limit]
    retriever = Retriever(args.index_dir)
    reader = SentenceReader()
    data = []
    for q in qs:
        hits = retriever.search(q.question, k=5)
        gold = [normalize_answer(a) for a in q.answers]
        cands = []
        for hit, span, cov, rel in reader.features(q.question, hits):
            sent = normalize_answer(hit.passage.text[span.start : span.end])
            label = any(g and g in sent for g in gold)
            cands.append((cov, rel, hit.dense_score or 0.0, label))
        data.append(cands)
    print(f"{'retrieval weight':>17}{'acc':>7}")
    best = (0.0, 0.0)
    for w in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0):
        acc = np.mean([max(c, key=lambda x: x[0] + w * x[1])[3] if c else 0 for c in data])
        print(f"{w:17.2f}{acc:7.3f}")
        best = max(best, (float(acc), w))
    w = best[1]
    chosen = [max(c, key=lambda x: x[0] + w * x[1]) for c in data if c]
    x = np.array([[c[0], c[2]] for c in chosen])
    y = np.array([float(c[3]) for c in chosen])
    coef = fit_logistic(x, y)
    print(
        f"best retrieval weight {w}; conf_coverage={coef[0]:.3f} conf_cosine={coef[1]:.3f} "
        f"conf_bias={coef[2]:.3f}"
    )
    p = 1 / (1 + np.exp(-(x @ coef[:2] + coef[2])))
    print(f"{'confidence':>12}{'n':>6}{'accuracy':>10}")
    for lo in np.arange(0, 1, 0.1):
        m = (p >= lo) & (p < lo + 0.1)
        if m.any():
            print(f"{lo:5.1f}-{lo + 0.1:4.1f}{int(m.sum()):8d}{y[m].mean():10.3f}")


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 5000) -> np.ndarray:
    """Plain gradient descent on the logistic loss; returns (w1, w2, bias)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    coef = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xb @ coef)))
        grad = xb.T @ (p - y) / len(y) + l2 * coef
        coef -= 1.0 * grad
    return coef


if __name__ == "__main__":
    main()
