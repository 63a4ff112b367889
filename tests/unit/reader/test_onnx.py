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
from qa.reader.onnx import maybe_onnx, onnx_path, reader_digest, reader_precision
from qa.reader.weights import DEFAULT_READER_DIR, WEIGHTS_FILE

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_ort = pytest.mark.skipif(not HAS_ORT, reason="onnxruntime is not installed")


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSQA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU without native bf16, whatever this machine has (the case ``auto`` serves)."""
    monkeypatch.setattr(hardware, "probe", lambda: hardware.Hardware("AVX2", frozenset(), 2))
    monkeypatch.setattr(hardware, "bf16_supported", lambda: False)
    monkeypatch.delenv("NEWSQA_READER_DTYPE", raising=False)


@pytest.fixture()
def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU with native bf16, whatever this machine has."""
    flags = frozenset({"avx512_bf16"})
    monkeypatch.setattr(hardware, "probe", lambda: hardware.Hardware("Zen 4", flags, 2))
    monkeypatch.setattr(hardware, "bf16_supported", lambda: True)
    monkeypatch.delenv("NEWSQA_READER_DTYPE", raising=False)


@pytest.fixture()
def planted(cache: Path) -> Path:
    """A file where the shipped reader's int8 copy belongs, not an ONNX model: reading fails."""
    cache.mkdir()
    path = onnx_path(DEFAULT_READER_DIR)
    path.write_bytes(b"\x00garbage, not a protobuf")
    return path


@pytest.fixture()
def planted_fp32(cache: Path) -> Path:
    """The same where the float32 copy belongs (``int8`` and ``fp32`` are told apart)."""
    cache.mkdir(exist_ok=True)
    path = onnx_path(DEFAULT_READER_DIR, precision="fp32")
    path.write_bytes(b"\x00garbage, not a protobuf")
    return path


def test_backend_choice_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "ONNX")
    assert settings.load().reader_backend == "onnx"
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "tensorrt")
    with pytest.raises(SettingError, match=r"NEWSQA_READER_BACKEND.*auto, torch, onnx, onnx-fp32"):
        maybe_onnx(DEFAULT_READER_DIR)


def test_torch_choice_never_looks_for_a_copy(
    planted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "torch")
    assert maybe_onnx(DEFAULT_READER_DIR) is None


@needs_ort
def test_auto_on_a_cpu_without_bf16_uses_the_copy(
    planted: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The planted copy is garbage: that auto tried to load it shows it chose ONNX Runtime.
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    with pytest.raises(ReaderLoadError, match=r"unreadable"):
        maybe_onnx(DEFAULT_READER_DIR)


def test_auto_on_a_bf16_cpu_without_the_float32_copy_runs_torch(
    planted: Path, bf16_cpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the int8 copy is there: with bf16, auto wants the float32 one, so torch reads.
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    assert reader_precision() == "fp32"
    assert maybe_onnx(DEFAULT_READER_DIR) is None


@needs_ort
def test_auto_on_a_bf16_cpu_uses_the_float32_copy(
    planted_fp32: Path, bf16_cpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    with pytest.raises(ReaderLoadError, match=r"-fp32\.onnx is unreadable"):
        maybe_onnx(DEFAULT_READER_DIR)


@needs_ort
def test_onnx_fp32_names_the_float32_copy(
    planted: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The int8 copy is there, the float32 one is not: onnx-fp32 never takes the int8 one.
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx-fp32")
    with pytest.raises(ReaderLoadError, match=r"no fp32 ONNX reader"):
        maybe_onnx(DEFAULT_READER_DIR)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_auto_with_a_torch_precision_asked_for_runs_torch(
    dtype: str, planted: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without bf16 and with a copy present, auto would take the copy: the dtype alone says torch.
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    monkeypatch.setenv("NEWSQA_READER_DTYPE", dtype)
    assert maybe_onnx(DEFAULT_READER_DIR) is None


def test_auto_without_onnxruntime_runs_torch(
    planted: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    assert maybe_onnx(DEFAULT_READER_DIR) is None


def test_onnx_choice_without_onnxruntime_says_how_to_install(
    planted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    with pytest.raises(ReaderLoadError, match=r"onnxruntime is not installed"):
        maybe_onnx(DEFAULT_READER_DIR)


def test_an_explicit_backend_overrides_the_environment(
    planted: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    assert maybe_onnx(DEFAULT_READER_DIR, backend="torch") is None


@needs_ort
def test_auto_without_a_copy_runs_torch(
    cache: Path, no_bf16: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    assert maybe_onnx(DEFAULT_READER_DIR) is None


@needs_ort
def test_onnx_choice_without_a_copy_says_how_to_build(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    with pytest.raises(ReaderLoadError, match=r"python -m qa\.reader"):
        maybe_onnx(DEFAULT_READER_DIR)


@needs_ort
def test_an_unreadable_copy_is_a_clear_error(
    planted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    with pytest.raises(ReaderLoadError, match=r"unreadable.*rebuild"):
        maybe_onnx(DEFAULT_READER_DIR)


def test_the_copy_is_named_by_the_weights(tmp_path: Path) -> None:
    folder = tmp_path / "reader"
    shutil.copytree(DEFAULT_READER_DIR, folder)
    before = reader_digest(folder)
    assert before == reader_digest(DEFAULT_READER_DIR)
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")  # a retrained (or damaged) reader
    assert reader_digest(folder) != before
    assert onnx_path(folder, tmp_path) != onnx_path(DEFAULT_READER_DIR, tmp_path)


def test_the_digest_memo_follows_the_file(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "reader"
    shutil.copytree(DEFAULT_READER_DIR, folder)
    before = reader_digest(folder)
    assert (cache / "digests.json").is_file() and reader_digest(folder) == before
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes() + b"\x01")  # rewritten: new size and mtime
    assert reader_digest(folder) != before


def test_missing_reader_files_leave_the_error_to_the_torch_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    assert maybe_onnx(tmp_path / "nothing-here") is None


def test_a_failed_build_leaves_no_file(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def export_then_crash(model: Any, path: Path, outputs: tuple[str, ...]) -> None:
        path.write_bytes(b"half an export")
        raise RuntimeError("killed mid-export")

    monkeypatch.setattr(reader_onnx, "export_graph", export_then_crash)
    with pytest.raises(RuntimeError, match="mid-export"):
        reader_onnx.build()
    # No copy, no temporary folder; only the memo of the weights' digest.
    assert [p.name for p in cache.iterdir()] == ["digests.json"]


def test_the_onnx_reader_is_not_a_bf16_torch_model() -> None:
    assert uses_bf16(object()) is False
