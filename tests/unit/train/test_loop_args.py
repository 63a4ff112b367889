"""Command-line settings of the reader's training: what a resumed run keeps."""

from __future__ import annotations

from pathlib import Path

import torch

from qa.train.loop import CHECKPOINT_FILE, DEFAULT_READER_DIR, parse_train_args, resumed_args


def _checkpoint(out: Path, export_dir: str) -> None:
    saved = vars(parse_train_args(["--out", str(out), "--export-dir", export_dir, "--lr", "5e-5"]))
    torch.save({"args": saved}, out / CHECKPOINT_FILE)


def test_a_fresh_run_exports_to_the_shipped_folder_by_default(tmp_path: Path) -> None:
    assert parse_train_args(["--out", str(tmp_path)]).export_dir == str(DEFAULT_READER_DIR)


def test_resume_keeps_the_runs_own_export_folder(tmp_path: Path) -> None:
    # A resumed candidate once exported over qa/models/reader because --resume without
    # --export-dir took the default instead of the original command's folder.
    _checkpoint(tmp_path, str(tmp_path / "export"))
    args = resumed_args(parse_train_args(["--out", str(tmp_path), "--resume"]))
    assert args.export_dir == str(tmp_path / "export")
    assert args.lr == 5e-5


def test_resume_with_an_explicit_export_folder_uses_it(tmp_path: Path) -> None:
    _checkpoint(tmp_path, str(tmp_path / "export"))
    argv = ["--out", str(tmp_path), "--resume", "--export-dir", str(tmp_path / "other")]
    assert resumed_args(parse_train_args(argv)).export_dir == str(tmp_path / "other")
