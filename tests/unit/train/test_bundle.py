"""The bundle that carries reader training to a GPU machine (scripts/gpu_reader.py)."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[3]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_reader", ROOT / "scripts/gpu_reader.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu = _load_script()


def test_int8_rows_come_back_within_half_a_step() -> None:
    gen = torch.Generator().manual_seed(0)
    weights = {
        "w": torch.randn(6, 40, generator=gen),
        "b": torch.randn(40, generator=gen),
        "ids": torch.arange(5),
    }
    packed = gpu.quantize(weights)
    assert packed["w.q8"].dtype == torch.int8 and "w" not in packed
    back = gpu.dequantize(packed)
    step = weights["w"].abs().amax(dim=1, keepdim=True) / 127
    assert ((back["w"] - weights["w"]).abs() <= step * 0.51 + 1e-3).all()
    assert torch.allclose(back["b"], weights["b"], atol=1e-2)
    assert torch.equal(back["ids"], weights["ids"])


def test_split_and_join_restore_the_reader_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu, "PART_BYTES", 1000)
    reader = tmp_path / "reader"
    reader.mkdir()
    (reader / "reader.safetensors").write_bytes(bytes(range(256)) * 11)  # 2,816 bytes
    (reader / "reader.json").write_text('{"a": 1}')
    parts = gpu.split(reader, tmp_path / "out")
    assert sorted(p.name for p in parts) == [
        "reader.json",
        "reader.safetensors.part1",
        "reader.safetensors.part2",
        "reader.safetensors.part3",
    ]
    gpu.join(tmp_path / "out", tmp_path / "back")
    for name in ("reader.safetensors", "reader.json"):
        assert (tmp_path / "back" / name).read_bytes() == (reader / name).read_bytes()


@pytest.fixture(scope="module")
def bundle(tiny_mpnet: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A bundle packed from a tiny MPNet and a tiny data file: (bundle, mpnet, data)."""
    root = tmp_path_factory.mktemp("bundle")
    data = root / "train.json.gz"
    with gzip.open(data, "wt", encoding="utf-8") as handle:
        json.dump({"data": []}, handle)
    gpu.pack(tiny_mpnet, data, root / ".gpu", chunk_mib=8)
    return root / ".gpu", tiny_mpnet, data


def test_unpack_rebuilds_both_bases(bundle: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from qa.reader.weights import DEFAULT_READER_DIR, base_model_path

    folder, mpnet, data = bundle
    meta = json.loads((folder / "bundle.json").read_text())
    assert meta["chunks"] >= 3  # the MiniLM embeddings alone are 23 MB
    assert all((folder / f"chunk-{i:02d}").stat().st_size <= 8 * 2**20 for i in range(1, 4))
    dest = tmp_path / "work"
    gpu.unpack(folder, dest, DEFAULT_READER_DIR)
    # The teacher's base: every weight back within int8 rounding.
    original = load_file(str(mpnet / "model.safetensors"))
    rebuilt = load_file(str(dest / "mpnet/model.safetensors"))
    assert original.keys() == rebuilt.keys()
    for key, value in original.items():
        assert torch.allclose(rebuilt[key], value.float(), atol=0.02), key
    # The student's base: the package's word embeddings, the shipped reader's encoder.
    minilm = load_file(str(dest / "minilm/model.safetensors"))
    emb = load_file(str(base_model_path() / "model.safetensors"))[gpu.WORD_EMB]
    assert torch.allclose(minilm[gpu.WORD_EMB], emb, atol=1e-3)
    reader = load_file(str(DEFAULT_READER_DIR / "reader.safetensors"))
    key = "encoder.layer.0.attention.self.query.weight"
    assert torch.equal(minilm[key], reader["bert." + key].float())
    assert (dest / "minilm/vocab.txt").is_file() and (dest / "mpnet/config.json").is_file()
    assert (dest / "squad" / data.name).read_bytes() == data.read_bytes()


def test_unpack_refuses_a_partial_or_damaged_bundle(
    bundle: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from qa.reader.weights import DEFAULT_READER_DIR

    folder, _, _ = bundle
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "bundle.json").write_bytes((folder / "bundle.json").read_bytes())
    (partial / "chunk-01").write_bytes((folder / "chunk-01").read_bytes())
    with pytest.raises(SystemExit, match="bundle incomplete: chunk-02"):
        gpu.unpack(partial, tmp_path / "w1", DEFAULT_READER_DIR)
    meta = json.loads((folder / "bundle.json").read_text())
    for i in range(2, meta["chunks"] + 1):
        (partial / f"chunk-{i:02d}").write_bytes((folder / f"chunk-{i:02d}").read_bytes())
    (partial / "chunk-02").write_bytes(b"stale")
    with pytest.raises(SystemExit, match="digest mismatch"):
        gpu.unpack(partial, tmp_path / "w2", DEFAULT_READER_DIR)


def test_cuda_asked_for_without_a_gpu_is_a_clear_error() -> None:
    from qa.train.loop import train_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert train_device("auto", want_bf16=False) == ("cpu", False)
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        train_device("cuda", want_bf16=True)
