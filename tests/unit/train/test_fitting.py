"""The shared decision fitting: threshold grid, out-of-fold scoring, forward selection."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from qa.train import calibrate, calibrate_open
from qa.train.fitting import THRESHOLDS, best_on_grid, cross_validated, forward_select


def test_ties_on_the_grid_go_to_the_lowest_threshold() -> None:
    assert best_on_grid(lambda t: float(0.3 <= t <= 0.6)) == 0.3
    assert best_on_grid(lambda t: -abs(t - 0.42)) == 0.42
    assert THRESHOLDS[0] == 0.02 and THRESHOLDS[-1] == 0.98 and len(THRESHOLDS) == 97


def _cv(scores: dict[tuple[str, ...], float]) -> Callable[[Sequence[str]], tuple[float, float]]:
    def cv(names: Sequence[str]) -> tuple[float, float]:
        return scores[tuple(sorted(names))], 0.5

    return cv


def test_forward_selection_adds_the_best_candidate_while_it_gains_enough() -> None:
    scores = {
        ("a",): 50.0,
        ("a", "b"): 51.0,
        ("a", "c"): 53.0,
        ("a", "d"): 50.1,
        ("a", "b", "c"): 53.1,
        ("a", "c", "d"): 54.0,
        ("a", "b", "c", "d"): 54.2,
    }
    chosen, rounds = forward_select(["d", "c", "b", "a"], ["a"], _cv(scores), min_gain=0.5)
    assert chosen == ["d", "c", "a"]  # in the order of the names given
    assert rounds[0] == {"features": ["a"], "cv_f1": 50.0}
    assert [(r["best"], r["kept"]) for r in rounds[1:]] == [("c", True), ("d", True), ("b", False)]
    assert rounds[1]["candidates"]["b"] == {"cv_f1": 51.0, "cv_log_loss": 0.5}


def test_forward_selection_stops_when_every_feature_is_chosen() -> None:
    scores = {("a",): 1.0, ("a", "b"): 2.0}
    chosen, rounds = forward_select(["a", "b"], ["a"], _cv(scores), min_gain=-100)
    assert chosen == ["a", "b"] and len(rounds) == 2


def test_an_answered_twin_without_gold_scores_zero_in_calibrate_but_its_f1_in_the_open() -> None:
    # One feature separates nothing: every fold answers everything at the lowest threshold
    # or abstains on everything; the two settings differ only in how an answered
    # unanswerable question scores.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1))
    answerable = np.arange(200) % 2 == 0
    f1 = np.where(answerable, 1.0, 0.5)
    folds = np.arange(200) % 4
    y = np.where(answerable, 1.0, 0.0)
    always = lambda p, f, a: 0.02  # noqa: E731
    span, _ = cross_validated(x, y, np.where(answerable, f1, 0.0), answerable, folds, always)
    open_setting, _ = cross_validated(x, y, f1, answerable, folds, always)
    assert span == 50.0 and open_setting == 75.0
    # calibrate's twins score 0 when answered, whatever F1 they are given.
    zeroed = np.where(answerable, f1, 0.0)
    assert calibrate.cross_validated(x, y, f1, answerable, folds) == calibrate.cross_validated(
        x, y, zeroed, answerable, folds
    )
    assert calibrate_open.cross_validated(x, f1, answerable, folds) != (
        calibrate_open.cross_validated(x, zeroed, answerable, folds)
    )
