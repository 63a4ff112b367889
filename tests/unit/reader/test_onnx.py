"""Choosing the reader's runtime, and the int8 ONNX copy's cache rules (no export here)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from qa import hardware, settings
from qa.errors import SettingError
from qa.reader import onnx as reader_onnx
from qa.reader.model import ReaderLoadError, uses_bf16
from qa.reader.onnx import maybe_onnx, onnx_path, reader_digest
from qa.reader.weights import DEFAULT_READER_DIR, WEIGHTS_FILE

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_ort = pytest.mark.skipif(not HAS_ORT, reason="onnxruntime is not installed")


def _no_config() -> Any:
    raise AssertionError("the config is loaded only when the ONNX reader is used")


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSQA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU without native bf16, whatever this machine has (the case ``auto`` serves)."""
    monkeypatch.setattr(hardware, "bf16_supported", lambda: False)
    monkeypatch.delenv("NEWSQA_READER_DTYPE", raising=False)


@pytest.fixture()
def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU with native bf16, whatever this machine has."""
    monkeypatch.setattr(hardware, "bf16_supported", lambda: True)
    monkeypatch.delenv("NEWSQA_READER_DTYPE", raising=False)


@pytest.fixture()
def planted(cache: Path) -> Path:
    """A file where the shipped reader's copy belongs, not an ONNX model: reading it fails."""
    cache.mkdir()
    path = onnx_path(DEFAULT_READER_DIR)
    path.write_bytes(b"\x00garbage, not a protobuf")
    return path


def test_backend_choice_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "ONNX")
    assert settings.load().reader_backend == "onnx"
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "tensorrt")
    with pytest.raises(SettingError, match=r"NEWSQA_READER_BACKEND.*auto, torch, onnx"):
        maybe_onnx(DEFAULT_READER_DIR, _no_config)


def test_torch_choice_never_looks_for_a_copy(
    planted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "torch")
    assert maybe_onnx(DEFAULT_READER_DIR, _no_config) is None


@needs_ort
def test_auto_on_a_cpu_without_bf16_uses_the_copy(
    planted: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The planted copy is garbage: that auto tried to load it shows it chose ONNX Runtime.
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    with pytest.raises(ReaderLoadError, match=r"unreadable"):
        maybe_onnx(DEFAULT_READER_DIR, dict)


def test_auto_on_a_bf16_cpu_runs_torch_even_with_a_copy(
    planted: Path, bf16_cpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    assert maybe_onnx(DEFAULT_READER_DIR, _no_config) is None


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_auto_with_a_torch_precision_asked_for_runs_torch(
    dtype: str, planted: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without bf16 and with a copy present, auto would take the copy: the dtype alone says torch.
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    monkeypatch.setenv("NEWSQA_READER_DTYPE", dtype)
    assert maybe_onnx(DEFAULT_READER_DIR, _no_config) is None


def test_auto_without_onnxruntime_runs_torch(
    planted: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    assert maybe_onnx(DEFAULT_READER_DIR, _no_config) is None


def test_onnx_choice_without_onnxruntime_says_how_to_install(
    planted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    with pytest.raises(ReaderLoadError, match=r"onnxruntime is not installed"):
        maybe_onnx(DEFAULT_READER_DIR, _no_config)


def test_an_explicit_backend_overrides_the_environment(
    planted: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    assert maybe_onnx(DEFAULT_READER_DIR, _no_config, backend="torch") is None


@needs_ort
def test_auto_without_a_copy_runs_torch(
    cache: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    assert maybe_onnx(DEFAULT_READER_DIR, _no_config) is None


@needs_ort
def test_onnx_choice_without_a_copy_says_how_to_build(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    with pytest.raises(ReaderLoadError, match=r"python -m qa\.reader"):
        maybe_onnx(DEFAULT_READER_DIR, _no_config)


@needs_ort
def test_an_unreadable_copy_is_a_clear_error(
    planted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    with pytest.raises(ReaderLoadError, match=r"unreadable.*rebuild"):
        maybe_onnx(DEFAULT_READER_DIR, dict)


def test_the_copy_is_named_by_the_weights(tmp_path: Path) -> None:
    folder = tmp_path / "reader"
    shutil.copytree(DEFAULT_READER_DIR, folder)
    before = reader_digest(folder)
    assert before == reader_digest(DEFAULT_READER_DIR)
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")  # a retrained (or damaged) reader
    assert reader_digest(folder) != before
    assert onnx_path(folder, tmp_path) != onnx_path(DEFAULT_READER_DIR, tmp_path)


def test_missing_reader_files_leave_the_error_to_the_torch_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    assert maybe_onnx(tmp_path / "nothing-here", _no_config) is None


def test_a_failed_build_leaves_no_file(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def export_then_crash(model: Any, path: Path) -> None:
        path.write_bytes(b"half an export")
        raise RuntimeError("killed mid-export")

    monkeypatch.setattr(reader_onnx, "_export", export_then_crash)
    with pytest.raises(RuntimeError, match="mid-export"):
        reader_onnx.build()
    assert list(cache.iterdir()) == []  # no copy, no temporary folder


def test_the_onnx_reader_is_not_a_bf16_torch_model() -> None:
    assert uses_bf16(object()) is False
