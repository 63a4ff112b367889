"""The open-setting decision fitted by the real command on a real index, loaded and used.

``python -m qa.train calibrate-open`` runs on a copy of the shipped reader and the tiny SQuAD
file of ``tests/conftest.py`` (two held-out articles; every other paragraph indexed with the
real embedder, each question asked through retrieval and the real reader). The selection is
told to keep every candidate (the tiny file is far too small to show a gain), so that the
written ``open`` block weighs them all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qa.reader.evidence import OPEN_FEATURES
from qa.reader.span import SpanReader, context_hit, shipped_reader_available
from qa.train import calibrate_open
from qa.train.__main__ import main

pytestmark = pytest.mark.skipif(not shipped_reader_available(), reason="no shipped reader")


@pytest.fixture(scope="module")
def fitted(tiny_squad: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the shipped reader with an open block, and the per-question rows."""
    from qa.reader.weights import DEFAULT_READER_DIR

    base = tmp_path_factory.mktemp("open")
    reader = base / "reader"
    shutil.copytree(DEFAULT_READER_DIR, reader)
    rows = base / "rows.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(calibrate_open, "MIN_GAIN", -1000.0)
        mp.setattr(calibrate_open, "FOLDS", 2)
        argv = ["calibrate-open", "--reader", str(reader), "--data", str(tiny_squad)]
        argv += ["--heldout-articles", "2", "--index-dir", str(base / "index"), "--rows", str(rows)]
        assert main(argv) == 0
    return reader, rows


def test_the_open_block_is_written_beside_the_calibration(fitted: tuple[Path, Path]) -> None:
    reader, rows = fitted
    meta = json.loads((reader / "reader.json").read_text())
    assert "calibration" in meta
    block = meta["open"]
    assert block["features"] == list(OPEN_FEATURES)
    assert len(block["weights"]) == len(OPEN_FEATURES)
    assert 0 < block["threshold"] < 1
    lines = [json.loads(line) for line in rows.read_text().splitlines()]
    assert block["fitted_on"]["questions"] == len(lines) > 0
    assert {r["answerable"] for r in lines} == {True, False}
    # A question whose paragraph is indexed is mostly answered right by the real reader.
    right = [r["f1"] for r in lines if r["answerable"]]
    assert sum(right) / len(right) > 0.5


def test_the_reader_decides_with_the_fitted_block(fitted: tuple[Path, Path]) -> None:
    reader_dir, _ = fitted
    hit = context_hit("The mayor, Ann Lee, opened the bridge on Monday.")
    on = SpanReader(model=reader_dir, open_decision=True)
    off = SpanReader(model=reader_dir, open_decision=False)
    meta = json.loads((reader_dir / "reader.json").read_text())
    assert on.threshold == meta["open"]["threshold"]
    assert off.threshold == meta["calibration"]["threshold"]
    a_on = on.read("Who opened the bridge?", [hit])[0]
    a_off = off.read("Who opened the bridge?", [hit])[0]
    assert a_on.text == a_off.text
    assert 0 < a_on.confidence < 1 and a_on.confidence != a_off.confidence
