"""Span-reader latency for the top 5 passages, and F1 of each inference variant.

Usage: python bench/reader_latency.py [--index bench/out/idx-squad-dev] [--questions 200]
                                      [--f1-questions 1000] [--threads 2] [--reader DIR]
                                      [--variants fp32,onnx-int8]

Variants (where the CPU supports bf16): ``bf16``, Linear weights stored in bfloat16 at load
and run under autocast (the default); ``bf16-autocast``, float32 weights cast by autocast on
every call (the default of earlier versions); then float32, and int8 dynamic quantisation of the
Linear layers (float32 activations), and ``onnx-int8``, ONNX Runtime's per-channel int8 copy
of :mod:`qa.reader.onnx` (the default where the CPU has no bf16). Latency: one
``SpanReader.read`` call per question over its top-5 retrieved passages from the index
(SQuAD dev-v1.1 paragraphs), after a warm-up; p50/p95 in ms. F1: reader-only on the first N
dev-v1.1 questions, gold paragraph given. Output: a table and bench/out/reader_latency.txt.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import copy  # noqa: E402

import torch  # noqa: E402

from qa.eval.metrics import max_over_truths, percentile  # noqa: E402
from qa.eval.reader import GoldQuestion, load_gold_questions  # noqa: E402
from qa.hardware import bf16_supported  # noqa: E402
from qa.reader.model import _for_inference  # noqa: E402
from qa.reader.span import SpanReader, context_hit  # noqa: E402
from qa.search.retriever import Retriever  # noqa: E402

DEV = ROOT.parent / "shared/data/squad/dev-v1.1.json.gz"
OUT = ROOT / "bench" / "out"


def variant_reader(name: str, base: tuple[Any, Any], spec: str | None) -> SpanReader:
    """A SpanReader on a copy of the float32 model, set up for the variant.

    ``bf16``: Linear weights stored in bf16 at load (the product's default where supported);
    ``bf16-autocast``: float32 weights cast by autocast on every call (the earlier default).
    """
    model, tokenizer = base
    model = copy.deepcopy(model)
    os.environ["NEWSQA_READER_DTYPE"] = "bf16" if name.startswith("bf16") else "fp32"
    if name == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if name == "bf16":
        model, tokenizer = _for_inference(model, tokenizer)
    if name == "onnx-int8":
        from qa.reader.onnx import OrtQAModel, build

        model = OrtQAModel(build(Path(spec) if spec else None), model.config)
    reader = SpanReader(spec)
    reader._loaded = (model, tokenizer)
    return reader


def latency(reader: SpanReader, retrieved: list[tuple[str, list[Any]]]) -> tuple[float, float]:
    """p50/p95 ms of one read over each question's top passages."""
    reader.read(*retrieved[0])
    times = []
    for question, hits in retrieved:
        t0 = time.perf_counter()
        reader.read(question, hits)
        times.append((time.perf_counter() - t0) * 1000)
    return percentile(times, 50), percentile(times, 95)


def f1(reader: SpanReader, qs: list[GoldQuestion]) -> float:
    """Reader-only F1 (gold paragraph) on the given dev-v1.1 questions."""
    total = 0.0
    for q in qs:
        answers = reader.read(q.question, [context_hit(q.context)])
        total += max_over_truths("f1", answers[0].text if answers else "", q.answers)
    return 100 * total / max(1, len(qs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, default=OUT / "idx-squad-dev")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--f1-questions", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reader", default=None, help="reader folder (default: the shipped one)")
    ap.add_argument("--variants", default=None, help="comma-separated subset, e.g. fp32,onnx-int8")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    retriever = Retriever(args.index)
    dev = load_gold_questions(DEV)
    qs = dev[: args.questions]
    retrieved = [(q.question, retriever.search(q.question, k=5)) for q in qs]
    os.environ["NEWSQA_READER_DTYPE"] = "fp32"  # load float32 weights; variants convert
    os.environ["NEWSQA_READER_BACKEND"] = "torch"
    base = SpanReader(args.reader).load()
    names = (["bf16", "bf16-autocast"] if bf16_supported() else []) + ["fp32", "int8", "onnx-int8"]
    if args.variants:
        names = [n for n in args.variants.split(",") if n in names]
    lines = [
        f"reader latency, top 5 passages, {len(qs)} questions, {args.threads} threads; "
        f"F1 on {args.f1_questions} dev-v1.1 questions (gold paragraph)",
        f"{'variant':8} {'p50 ms':>8} {'p95 ms':>8} {'F1':>6}",
    ]
    for name in names:
        reader = variant_reader(name, base, args.reader)
        p50, p95 = latency(reader, retrieved)
        score = f1(reader, dev[: args.f1_questions]) if args.f1_questions else float("nan")
        lines.append(f"{name:8} {p50:8.1f} {p95:8.1f} {score:6.1f}")
        print(lines[-1], flush=True)
    print("\n".join(lines))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "reader_latency.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
