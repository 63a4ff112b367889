"""Training settings: defaults, checkpoints old and new, what a resumed run keeps, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qa.errors import TrainingError, UsageError
from qa.reader.weights import DEFAULT_READER_DIR
from qa.train.__main__ import main, parse_train_args
from qa.train.config import CHECKPOINT_FILE, TrainConfig, train_device
from qa.train.export import resumed_config


def _checkpoint(out: Path, export_dir: str) -> None:
    saved = parse_train_args(["--out", str(out), "--export-dir", export_dir, "--lr", "5e-5"])
    torch.save({"args": saved.to_dict()}, out / CHECKPOINT_FILE)


def test_a_fresh_run_exports_to_the_shipped_folder_by_default(tmp_path: Path) -> None:
    assert parse_train_args(["--out", str(tmp_path)]).export_dir == str(DEFAULT_READER_DIR)
    assert TrainConfig().export_dir == str(DEFAULT_READER_DIR)


def test_the_command_line_defaults_are_the_configs() -> None:
    parsed = parse_train_args([])
    assert parsed == TrainConfig(device=parsed.device, bf16=parsed.bf16)
    assert parsed.device in ("cpu", "cuda")  # decided: never "auto" after parsing
    flags = parse_train_args(["--grad-accum", "4", "--weight-decay", "0.1", "--no-bf16"])
    assert (flags.grad_accum, flags.weight_decay, flags.bf16) == (4, 0.1, False)


def test_resume_keeps_the_runs_own_export_folder(tmp_path: Path) -> None:
    # A resumed candidate once exported over qa/models/reader because --resume without
    # --export-dir took the default instead of the original command's folder.
    _checkpoint(tmp_path, str(tmp_path / "export"))
    config = resumed_config(parse_train_args(["--out", str(tmp_path), "--resume"]))
    assert config.export_dir == str(tmp_path / "export")
    assert config.lr == 5e-5 and config.resume


def test_resume_with_an_explicit_export_folder_uses_it(tmp_path: Path) -> None:
    _checkpoint(tmp_path, str(tmp_path / "export"))
    argv = ["--out", str(tmp_path), "--resume", "--export-dir", str(tmp_path / "other")]
    assert resumed_config(parse_train_args(argv)).export_dir == str(tmp_path / "other")


def test_resume_takes_the_checkpoints_settings_but_this_machines(tmp_path: Path) -> None:
    _checkpoint(tmp_path, str(tmp_path / "export"))
    argv = ["--out", str(tmp_path), "--resume", "--lr", "1.0", "--threads", "7"]
    config = resumed_config(parse_train_args(argv))
    assert config.lr == 5e-5  # the run's, so that it continues exactly
    assert config.threads == 7  # the machine's


def test_resume_without_a_checkpoint_is_a_training_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="--resume: no checkpoint at"):
        resumed_config(TrainConfig(out=str(tmp_path), resume=True))


def test_an_old_checkpoints_settings_load(tmp_path: Path) -> None:
    """Older checkpoints lack later options and may hold keys no longer used."""
    old = {"data": "train.json.gz", "lr": 3e-5, "seed": 15, "device": "cpu", "bf16": True}
    old |= {"export_dir": None, "resume": True, "train_note": {"train_questions": 3}}
    old["retired_option"] = 1
    config = TrainConfig.from_dict(old)
    assert (config.lr, config.seed, config.bf16, config.data) == (3e-5, 15, True, "train.json.gz")
    assert config.negatives == 0.0 and config.base == "" and config.teacher == ""
    assert config.train_note == {"train_questions": 3}


def test_settings_survive_the_checkpoint_dict() -> None:
    config = TrainConfig(lr=2e-5, base="/b", pad_id=1, train_note={"n": 2}, device="cpu")
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_a_stride_leaving_no_new_context_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match="--stride must be smaller"):
        TrainConfig(max_length=128, max_query=64, stride=61)
    with pytest.raises(SystemExit) as exit_:
        parse_train_args(["--max-length", "128", "--stride", "61"])
    assert exit_.value.code == 2 and "--stride must be smaller" in capsys.readouterr().err


def test_cuda_asked_for_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train_device("auto", want_bf16=False) == ("cpu", False)
    with pytest.raises(TrainingError, match="no CUDA GPU"):
        train_device("cuda", want_bf16=True)


def test_the_command_turns_errors_into_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path), "--resume"]) == 1
    expected = f"error: --resume: no checkpoint at {tmp_path / CHECKPOINT_FILE}\n"
    assert capsys.readouterr().err == expected
    missing = tmp_path / "none.json.gz"
    assert main(["calibrate", "--data", str(missing), "--reader", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "SQuAD train is needed" in err and err.count("\n") == 1
    assert main(["bundle", "unpack", "--bundle", str(tmp_path), "--dest", str(tmp_path)]) == 1
    assert "no bundle at" in capsys.readouterr().err


def test_a_data_file_that_is_not_squad_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "train.json"
    bad.write_text('{"not": "squad"}')
    assert main(["--data", str(bad), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 2
    assert "is not a SQuAD json file" in capsys.readouterr().err
