"""The bundle that carries reader training to a GPU machine (qa.train.bundle)."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from qa.errors import TrainingError
from qa.train import bundle as gpu

ROOT = Path(__file__).resolve().parents[3]


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


def test_split_and_join_restore_the_reader_files(tmp_path: Path) -> None:
    reader = tmp_path / "reader"
    reader.mkdir()
    (reader / "reader.safetensors").write_bytes(bytes(range(256)) * 11)  # 2,816 bytes
    (reader / "reader.json").write_text('{"a": 1}')
    parts = gpu.split(reader, tmp_path / "out", part_bytes=1000)
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
    with pytest.raises(TrainingError, match="bundle incomplete: chunk-02"):
        gpu.unpack(partial, tmp_path / "w1", DEFAULT_READER_DIR)
    meta = json.loads((folder / "bundle.json").read_text())
    for i in range(2, meta["chunks"] + 1):
        (partial / f"chunk-{i:02d}").write_bytes((folder / f"chunk-{i:02d}").read_bytes())
    (partial / "chunk-02").write_bytes(b"stale")
    with pytest.raises(TrainingError, match="digest mismatch"):
        gpu.unpack(partial, tmp_path / "w2", DEFAULT_READER_DIR)


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def _file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"payload"


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def _folder(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, b""


ESCAPES = {
    "dot-dot": _file("bundle/../../escaped.txt"),
    "absolute": _file("/tmp/newsqa-escaped.txt"),
    "symlink": _link("bundle/passwd", "/etc/passwd", tarfile.SYMTYPE),
    "symlink-out": _link("bundle/up", "../..", tarfile.SYMTYPE),
    "hard-link": _link("bundle/hard", "/etc/passwd", tarfile.LNKTYPE),
}


@pytest.fixture(params=["data filter", "own checks"])
def extraction(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of extracting: the members checked, then tarfile's "data" filter (3.11.4+),
    and the checks alone (3.11.0-3.11.3, which lack the filter: simulated by hiding it)."""
    if request.param == "data filter" and not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile extraction filters")
    if request.param == "own checks":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)  # absent before 3.11.4
    return str(request.param)


def test_a_plain_tar_extracts(extraction: str, tmp_path: Path) -> None:
    gpu.extract_tar(_tar(_folder("bundle"), _file("bundle/a/b.txt")), tmp_path / "dest")
    assert (tmp_path / "dest/bundle/a/b.txt").read_bytes() == b"payload"


@pytest.mark.parametrize("kind", sorted(ESCAPES))
def test_a_member_escaping_the_destination_is_refused(
    extraction: str, kind: str, tmp_path: Path
) -> None:
    dest = tmp_path / "a" / "dest"
    blob = _tar(_folder("bundle"), ESCAPES[kind])
    with pytest.raises(TrainingError, match="bundle refused"):
        gpu.extract_tar(blob, dest)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "a/escaped.txt").exists()
    assert not Path("/tmp/newsqa-escaped.txt").exists()
    assert not (dest / "bundle/passwd").exists() and not (dest / "bundle/up").exists()


def test_unpack_refuses_a_bundle_with_an_escaping_member(tmp_path: Path) -> None:
    """The digest is right, the content is not: nothing lands outside the destination."""
    folder = tmp_path / "bundle"
    gpu.write_chunks(_tar(_folder("bundle"), ESCAPES["dot-dot"]), folder, chunk_mib=1)
    with pytest.raises(TrainingError, match="bundle refused"):
        gpu.unpack(folder, tmp_path / "x" / "work", tmp_path / "reader")
    assert not (tmp_path / "escaped.txt").exists()


def test_the_script_keeps_its_commands(tmp_path: Path) -> None:
    """``scripts/gpu_reader.py split|join`` as gpu_train.sh and the docs call them."""
    reader = tmp_path / "reader"
    reader.mkdir()
    (reader / "reader.json").write_text("{}")
    script = [sys.executable, str(ROOT / "scripts/gpu_reader.py")]
    subprocess.run([*script, "split", str(reader), str(tmp_path / "parts")], check=True)
    subprocess.run([*script, "join", str(tmp_path / "parts"), str(tmp_path / "back")], check=True)
    assert (tmp_path / "back/reader.json").read_text() == "{}"
    missing = subprocess.run(
        [*script, "unpack", "--bundle", str(tmp_path), "--dest", str(tmp_path / "w")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and missing.stderr.startswith("error: no bundle at")
