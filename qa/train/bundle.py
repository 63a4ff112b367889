"""Move what reader training needs to a GPU machine in pieces, and bring the reader back.

The GPU machine this is made for reaches no network and takes at most 64 MiB a call, the
repository included (about 23 MB), so the teacher's base (all-mpnet-base-v2, 419 MB) cannot
travel in one piece. :func:`pack` (here) writes a bundle of about 140 MB split into chunks
that each fit a call:

- all-mpnet-base-v2: 2-D weights as int8 with a float16 scale per row (the teacher is
  fine-tuned from them anyway), the rest float16, plus its config and tokenizer;
- all-MiniLM-L6-v2: its word embeddings (float16; frozen in training) and tokenizer; the
  other weights are the shipped reader's, which travels with the repository;
- SQuAD v1.1 train.

:func:`unpack` (there, once every chunk has arrived) checks the bundle's digest and rebuilds
both base folders; :func:`split` (there) cuts the trained reader into files the tool returns
(16 MiB each at most); :func:`join` (here) puts them back together. The commands are
``python -m qa.train bundle pack|unpack|split|join`` (or ``scripts/gpu_reader.py``); the
whole run there is ``scripts/gpu_train.sh``.

torch and safetensors are imported where weights are handled, so that the bundle's checks
and its tar extraction also run on a Python without them.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from qa.errors import TrainingError

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MPNET = ROOT / "runs/mpnet/all-mpnet-base-v2"
DEFAULT_BUNDLE = ROOT / ".gpu"
DEFAULT_READER = ROOT / "qa/models/reader"
BUNDLE_META = "bundle.json"
MODEL_FILES = (  # what a model folder needs besides its weights
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
WORD_EMB = "embeddings.word_embeddings.weight"
PART_BYTES = 15 * 2**20  # under the tool's 16 MiB a returned file


def quantize(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """2-D float tensors as int8 rows + float16 row scales; everything else float16."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for name, w in weights.items():
        if w.ndim == 2 and w.is_floating_point():
            scale = w.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
            out[name + ".q8"] = torch.round(w.float() / scale).to(torch.int8).contiguous()
            out[name + ".scale"] = scale.to(torch.float16).contiguous()
        elif w.is_floating_point():
            out[name] = w.to(torch.float16).contiguous()
        else:
            out[name] = w.contiguous()
    return out


def dequantize(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`quantize`, in float32."""
    out: dict[str, torch.Tensor] = {}
    for name, t in packed.items():
        if name.endswith(".scale"):
            continue
        if name.endswith(".q8"):
            base = name[: -len(".q8")]
            out[base] = (t.float() * packed[base + ".scale"].float()).contiguous()
        else:
            out[name] = t.float().contiguous() if t.is_floating_point() else t
    return out


def _copy_model_files(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)


def _bundle_tar(mpnet: Path, data: Path) -> bytes:
    """The bundle's tar, built in memory: ``bundle/{mpnet,minilm,squad}``."""
    import torch
    from safetensors.torch import load_file, save_file

    from qa.reader.weights import _base_word_embeddings, base_model_path

    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "bundle"
        _copy_model_files(mpnet, stage / "mpnet")
        save_file(quantize(load_file(str(mpnet / "model.safetensors"))), str(stage / "mpnet/q8.st"))
        _copy_model_files(base_model_path(), stage / "minilm")
        emb = _base_word_embeddings().to(torch.float16).contiguous()
        save_file({WORD_EMB: emb}, str(stage / "minilm/word_embeddings.st"))
        (stage / "squad").mkdir()
        shutil.copy2(data, stage / "squad" / data.name)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(stage, arcname="bundle")
        return buffer.getvalue()


def write_chunks(blob: bytes, out: Path, chunk_mib: int) -> list[Path]:
    """Write ``blob`` as ``out/chunk-NN`` files and ``out/bundle.json`` (digest, count).

    ``out`` is emptied first, so no chunk of an older bundle stays beside the new ones.
    """
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    size = chunk_mib * 2**20
    chunks = []
    for i in range(0, len(blob), size):
        chunk = out / f"chunk-{i // size + 1:02d}"
        chunk.write_bytes(blob[i : i + size])
        chunks.append(chunk)
    meta = {"sha256": hashlib.sha256(blob).hexdigest(), "chunks": len(chunks), "bytes": len(blob)}
    (out / BUNDLE_META).write_text(json.dumps(meta) + "\n", encoding="utf-8")
    return chunks


def pack(mpnet: Path, data: Path, out: Path, chunk_mib: int) -> list[Path]:
    """Write the bundle into ``out`` (``chunk-NN`` files and ``bundle.json``).

    Raises:
        TrainingError: all-mpnet-base-v2 or the SQuAD file is not there.
    """
    if not (mpnet / "model.safetensors").is_file():
        raise TrainingError(f"no all-mpnet-base-v2 at {mpnet}: run `make teacher-base` first")
    if not data.is_file():
        raise TrainingError(f"no SQuAD train file at {data}")
    return write_chunks(_bundle_tar(mpnet, data), out, chunk_mib)


def read_bundle(bundle: Path) -> bytes:
    """The bundle's tar, put together from its chunks and checked against its digest.

    Raises:
        TrainingError: ``bundle.json`` or a chunk is missing, or the digest does not match.
    """
    meta_path = bundle / BUNDLE_META
    if not meta_path.is_file():
        raise TrainingError(f"no bundle at {bundle}: {BUNDLE_META} is missing")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    chunks = [bundle / f"chunk-{i:02d}" for i in range(1, meta["chunks"] + 1)]
    missing = [c.name for c in chunks if not c.is_file()]
    if missing:
        raise TrainingError(f"bundle incomplete: {', '.join(missing)} not here yet")
    blob = b"".join(c.read_bytes() for c in chunks)
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise TrainingError(
            "bundle digest mismatch: a chunk is stale or damaged; pack and send again"
        )
    return blob


def _checked_member(member: tarfile.TarInfo, dest: Path) -> tarfile.TarInfo:
    """``member`` when it is safe to extract into ``dest``, else :class:`TrainingError`."""
    name = member.name
    if not (member.isfile() or member.isdir()):
        raise TrainingError(f"bundle refused: {name!r} is not a plain file or folder")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("\\") or ".." in path.parts:
        raise TrainingError(f"bundle refused: {name!r} would land outside {dest}")
    root = dest.resolve()
    if not (root / name).resolve().is_relative_to(root):  # through a link already in dest
        raise TrainingError(f"bundle refused: {name!r} would land outside {dest}")
    member.mode &= 0o755  # as the "data" filter does: no setuid/setgid, no group/other write
    return member


def extract_tar(blob: bytes, dest: Path) -> None:
    """Extract the tar ``blob`` into ``dest``, refusing members that could escape it.

    Every member is checked here first: regular files and folders only, no absolute path,
    no ``..``, no links (a bundle holds nothing else). Where tarfile has extraction filters
    (Python 3.11.4 and later) its "data" filter checks them again; earlier 3.11 releases
    (Debian 12 ships 3.11.2) have none, and the checks here are what keeps them safe.

    Raises:
        TrainingError: The tar is unreadable or holds a member that is refused.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            members = [_checked_member(m, dest) for m in tar.getmembers()]
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=members)
    except tarfile.TarError as exc:  # the filter's refusals (FilterError) included
        raise TrainingError(f"bundle refused: {exc}") from exc


def unpack(bundle: Path, dest: Path, reader: Path) -> None:
    """Check and extract the bundle; rebuild ``dest/mpnet`` and ``dest/minilm`` model folders.

    Raises:
        TrainingError: The bundle is incomplete, damaged or holds an unsafe member.
    """
    from safetensors.torch import load_file, save_file

    from qa.reader.weights import WEIGHTS_FILE

    extract_tar(read_bundle(bundle), dest)
    src = dest / "bundle"
    _copy_model_files(src / "mpnet", dest / "mpnet")
    save_file(
        dequantize(load_file(str(src / "mpnet/q8.st"))), str(dest / "mpnet/model.safetensors")
    )
    _copy_model_files(src / "minilm", dest / "minilm")
    # The base's encoder weights are not needed (training starts from the shipped reader's);
    # the reader's own, without their "bert." prefix, stand in for them.
    weights = {
        k.removeprefix("bert."): v.float().contiguous()
        for k, v in load_file(str(reader / WEIGHTS_FILE)).items()
        if k.startswith("bert.")
    }
    weights.update(
        {k: v.float() for k, v in load_file(str(src / "minilm/word_embeddings.st")).items()}
    )
    save_file(weights, str(dest / "minilm/model.safetensors"))
    shutil.move(str(src / "squad"), str(dest / "squad"))
    shutil.rmtree(src)


def split(reader: Path, out: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """Copy a reader folder into ``out``, files over ``part_bytes`` cut into ``.partN`` files."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(reader.iterdir()):
        data = path.read_bytes()
        if len(data) <= part_bytes:
            written.append(out / path.name)
            written[-1].write_bytes(data)
            continue
        for n, i in enumerate(range(0, len(data), part_bytes), start=1):
            written.append(out / f"{path.name}.part{n}")
            written[-1].write_bytes(data[i : i + part_bytes])
    return written


def join(parts: Path, reader: Path) -> None:
    """Inverse of :func:`split`."""
    reader.mkdir(parents=True, exist_ok=True)
    for path in sorted(parts.iterdir()):
        if ".part" in path.name:
            continue
        shutil.copy2(path, reader / path.name)
    pieces: dict[str, list[Path]] = {}
    for path in parts.glob("*.part*"):
        name = path.name.rpartition(".part")[0]
        pieces.setdefault(name, []).append(path)
    for name, files in pieces.items():
        files.sort(key=lambda p: int(p.name.rpartition(".part")[2]))
        (reader / name).write_bytes(b"".join(p.read_bytes() for p in files))
