"""Move what reader training needs to a GPU machine in pieces, and bring the reader back.

The GPU machine this is made for reaches no network and takes at most 64 MiB of files a
call, the repository included (about 23 MB), so the teacher's base
(all-mpnet-base-v2, 419 MB) cannot travel in one piece. ``pack`` (here) writes a bundle of
about 140 MB split into chunks that each fit a call:

- all-mpnet-base-v2: 2-D weights as int8 with a float16 scale per row (the teacher is
  fine-tuned from them anyway), the rest float16, plus its config and tokenizer;
- all-MiniLM-L6-v2: its word embeddings (float16; frozen in training) and tokenizer; the
  other weights are the shipped reader's, which travels with the repository;
- SQuAD v1.1 train.

``unpack`` (there, once every chunk has arrived) checks the bundle's digest and rebuilds
both base folders; ``split`` (there) cuts the trained reader into files the tool returns
(16 MiB each at most); ``join`` (here) puts them back together. The whole run there is
``scripts/gpu_train.sh``; docs/training.md ("Training on a GPU machine") gives the calls.

Usage:
    python scripts/gpu_reader.py pack [--mpnet DIR] [--data FILE] [--out .gpu] [--chunk-mib 34]
    python scripts/gpu_reader.py unpack [--bundle .gpu] --dest DIR
    python scripts/gpu_reader.py split READER_DIR OUT_DIR
    python scripts/gpu_reader.py join PARTS_DIR READER_DIR
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def pack(mpnet: Path, data: Path, out: Path, chunk_mib: int) -> list[Path]:
    """Write ``out/chunk-NN`` files and ``out/bundle.json`` (digest, chunk count)."""
    from qa.reader.weights import _base_word_embeddings, base_model_path

    if not (mpnet / "model.safetensors").is_file():
        sys.exit(f"no all-mpnet-base-v2 at {mpnet}: run `make teacher-base` first")
    if not data.is_file():
        sys.exit(f"no SQuAD train file at {data}")
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
        blob = buffer.getvalue()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    size = chunk_mib * 2**20
    chunks = []
    for i in range(0, len(blob), size):
        chunk = out / f"chunk-{i // size + 1:02d}"
        chunk.write_bytes(blob[i : i + size])
        chunks.append(chunk)
    meta = {"sha256": hashlib.sha256(blob).hexdigest(), "chunks": len(chunks), "bytes": len(blob)}
    (out / "bundle.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    return chunks


def unpack(bundle: Path, dest: Path, reader: Path) -> None:
    """Check and extract the bundle; rebuild ``dest/mpnet`` and ``dest/minilm`` model folders."""
    from qa.reader.weights import WEIGHTS_FILE

    meta = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    chunks = [bundle / f"chunk-{i:02d}" for i in range(1, meta["chunks"] + 1)]
    missing = [c.name for c in chunks if not c.is_file()]
    if missing:
        sys.exit(f"bundle incomplete: {', '.join(missing)} not here yet")
    blob = b"".join(c.read_bytes() for c in chunks)
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        sys.exit("bundle digest mismatch: a chunk is stale or damaged; pack and send again")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
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


def split(reader: Path, out: Path) -> list[Path]:
    """Copy a reader folder into ``out``, its weights cut into parts the tool returns."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(reader.iterdir()):
        data = path.read_bytes()
        if len(data) <= PART_BYTES:
            written.append(out / path.name)
            written[-1].write_bytes(data)
            continue
        for n, i in enumerate(range(0, len(data), PART_BYTES), start=1):
            written.append(out / f"{path.name}.part{n}")
            written[-1].write_bytes(data[i : i + PART_BYTES])
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/gpu_reader.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--mpnet", default=str(ROOT / "runs/mpnet/all-mpnet-base-v2"))
    a.add_argument("--data", default=str(ROOT.parent / "shared/data/squad/train-v1.1.json.gz"))
    a.add_argument("--out", default=str(ROOT / ".gpu"))
    a.add_argument("--chunk-mib", type=int, default=34)
    b = sub.add_parser("unpack")
    b.add_argument("--bundle", default=str(ROOT / ".gpu"))
    b.add_argument("--dest", required=True)
    b.add_argument("--reader", default=str(ROOT / "qa/models/reader"))
    c = sub.add_parser("split")
    c.add_argument("reader")
    c.add_argument("out")
    d = sub.add_parser("join")
    d.add_argument("parts")
    d.add_argument("reader")
    args = p.parse_args(argv)
    if args.cmd == "pack":
        chunks = pack(Path(args.mpnet), Path(args.data), Path(args.out), args.chunk_mib)
        for chunk in chunks:
            print(f"{chunk} {chunk.stat().st_size / 2**20:.1f} MiB")
    elif args.cmd == "unpack":
        unpack(Path(args.bundle), Path(args.dest), Path(args.reader))
        print(f"unpacked into {args.dest}")
    elif args.cmd == "split":
        for path in split(Path(args.reader), Path(args.out)):
            print(path)
    else:
        join(Path(args.parts), Path(args.reader))
        print(f"joined into {args.reader}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
