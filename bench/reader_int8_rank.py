"""Rank the reader's weight MatMul nodes by how far int8 quantisation of each alone moves its
logits, on SQuAD TRAIN paragraphs (dev is not used), and score keep-N recipes the same way.

Usage: python bench/reader_int8_rank.py [--train ../shared/data/squad/train-v1.1.json.gz]
           [--pairs 40] [--keep 3,6]

The float32 ONNX copy of the shipped reader (``python -m qa.reader``, built by ``make setup``)
is the reference. For each weight MatMul, a copy with that node alone quantised by the
product's ``qa.reader.onnx.quantize`` (per-channel, reduced range) reads ``--pairs`` seeded
(question, paragraph) pairs of the train file, 256 word pieces each; the score is the mean
absolute change of the start and end logits over the real positions. Then the whole int8 copy
and the copies with the ``--keep`` highest-ranked nodes left float32. Output: a table and
bench/out/reader_int8_rank.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.index.embed import default_model_path  # noqa: E402
from qa.reader.onnx import OrtQAModel, onnx_path, quantize, read_config  # noqa: E402
from qa.reader.weights import DEFAULT_READER_DIR  # noqa: E402

TRAIN = ROOT.parent / "shared" / "data" / "squad" / "train-v1.1.json.gz"
OUT = ROOT / "bench" / "out" / "reader_int8_rank.json"


def pairs_feeds(train: Path, n: int) -> dict[str, np.ndarray]:
    """Seeded (question, paragraph) pairs of the train file, tokenised as one padded batch."""
    from transformers import AutoTokenizer

    with gzip.open(train, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    rng = random.Random(5)
    pairs = []
    for art in rng.sample(data, n):
        para = rng.choice(art["paragraphs"])
        pairs.append((rng.choice(para["qas"])["question"], para["context"]))
    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    enc = tok(
        [q for q, _ in pairs],
        [c for _, c in pairs],
        truncation="only_second",
        max_length=256,
        padding="max_length",
        return_tensors="np",
    )
    return {k: enc[k].astype(np.int64) for k in ("input_ids", "token_type_ids", "attention_mask")}


def logits(path: Path, feeds: dict[str, np.ndarray]) -> list[Any]:
    """Start and end logits of the ONNX reader at ``path``, as the product runs it."""
    out = OrtQAModel(path, read_config(DEFAULT_READER_DIR), threads=2)(**feeds)
    return [out.start_logits, out.end_logits]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=Path, default=TRAIN)
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--keep", default="3,6")
    args = ap.parse_args()
    import onnx

    fp32 = onnx_path(precision="fp32")
    if not fp32.is_file():
        raise SystemExit(f"no float32 reader copy at {fp32}: run `python -m qa.reader` first")
    feeds = pairs_feeds(args.train, args.pairs)
    valid = feeds["attention_mask"].astype(bool)
    ref = logits(fp32, feeds)

    def moved(path: Path) -> float:
        out = logits(path, feeds)
        return float(np.mean([np.abs(o - r)[valid].mean() for o, r in zip(out, ref, strict=True)]))

    graph = onnx.load(str(fp32), load_external_data=False).graph
    shapes = {w.name: list(w.dims) for w in graph.initializer}
    nodes = [
        (n.name, shapes[n.input[1]])
        for n in graph.node
        if n.op_type == "MatMul" and n.input[1] in shapes
    ]
    doc: dict[str, Any] = {"pairs": args.pairs, "nodes": [], "recipes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in nodes:
            one = Path(tmp) / "one.onnx"
            quantize(fp32, one, [], only=[name])
            score = moved(one)
            doc["nodes"].append({"node": name, "weight": shape, "moved": score})
            print(f"{name} {shape} {score:.4f}", flush=True)
        ranked = sorted(doc["nodes"], key=lambda r: -r["moved"])
        for n in [0, *(int(k) for k in args.keep.split(",") if k)]:
            keep = [r["node"] for r in ranked[:n]]
            copy = Path(tmp) / f"keep{n}.onnx"
            quantize(fp32, copy, keep)
            score = moved(copy)
            doc["recipes"][f"keep{n}"] = {"kept": keep, "moved": score}
    print("| recipe | nodes kept float32 | mean logit change |\n|---|---|---|")
    for name, rec in doc["recipes"].items():
        print(f"| {name} | {', '.join(rec['kept']) or '-'} | {rec['moved']:.4f} |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
