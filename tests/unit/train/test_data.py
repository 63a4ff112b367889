"""Reader training data: answer labels of token windows and the batch plan."""

from __future__ import annotations

import numpy as np

from qa.train.data import label_window, plan_batches

# [CLS] q q [SEP] context [SEP]; the context tokens are "The main opposition faction"
SEQ = [None, 0, 0, None, 1, 1, 1, 1, None]
OFFSETS = [(0, 0), (0, 3), (4, 9), (0, 0), (0, 3), (4, 8), (9, 19), (20, 27), (0, 0)]


def test_an_answer_inside_the_window_gets_its_token_span() -> None:
    assert label_window(OFFSETS, SEQ, 4, 27) == (5, 7)  # "main opposition faction"
    assert label_window(OFFSETS, SEQ, 9, 19) == (6, 6)  # "opposition"


def test_an_answer_outside_the_window_points_at_the_null_position() -> None:
    assert label_window(OFFSETS, SEQ, 30, 40) == (0, 0)
    # Only partly inside (runs past the window's last context token): null as well.
    assert label_window(OFFSETS, SEQ, 20, 35) == (0, 0)


def test_the_batch_plan_covers_every_window_once_and_is_reproducible() -> None:
    lengths = np.random.default_rng(3).integers(20, 256, size=1000)
    plan = plan_batches(lengths, 32, seed=14, epoch=0)
    flat = np.concatenate(plan)
    assert sorted(flat.tolist()) == list(range(1000))
    assert all(len(b) <= 32 for b in plan)
    again = plan_batches(lengths, 32, seed=14, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(plan, again, strict=True))
    other = plan_batches(lengths, 32, seed=14, epoch=1)
    assert not all(np.array_equal(a, b) for a, b in zip(plan, other, strict=True))
