"""Variants of the int8 ONNX passage embedder: dense recall@5 on SQuAD-open and speed vs float32.

Usage: python bench/embed_int8_variants.py [--squad ../shared/data/squad/dev-v1.1.json.gz]
           [--variants rr-pc,pc,...] [--rounds 3] [--sample 400] [--skip-recall] [--skip-speed]
           [--no-own-questions]

SQuAD-open as in bench/embed_runtimes.py (every dev-v1.1 paragraph an article, chunked as the
indexer chunks it; a question's gold is its paragraph). Every variant is an int8 copy quantised
from the float32 ONNX copy of MiniLM (qa.index.embed_onnx), or the current int8 copy with other
ONNX Runtime session settings:

- recall: all passages embedded by the variant; dense recall@5 and @20 of every question
  embedded (a) by the same variant and (b) by the float32 ONNX copy (int8 passages, float
  questions); mean and minimum cosine of its passage vectors to the float32 copy's;
- speed: ``--rounds`` interleaved rounds over ``--sample`` passages spread over the set; each
  round runs plain float32 ``SentenceTransformer.encode`` first (``st-fp32``: batches of 64
  sorted by characters, the baseline of every ratio; ``st-bf16`` the same in bf16, when
  listed), then the product's torch embedder in
  float32 and bf16 (``torch-fp32``, ``torch-bf16``: batches grouped by word pieces), then every
  variant, so a changing load hits all of them alike; the median of the per-round ratios is
  reported.

Quantisation variants (``quantize_dynamic``, int8 weights, uint8 activations):
``rr-pc`` (the shipped copy: reduced range, per-channel), ``pc`` (full range, per-channel),
``pt`` (full range, per-tensor), ``pc-matmul`` (per-channel, MatMul only: the embedding
lookups stay float32), ``pc-matmul-keep-ffn5`` (and the last layer's FFN in float32),
``pc-matmul-keep-ffnout`` (every FFN output projection in float32). Session settings
after ``@``, joined by ``+``: ``bsN`` (N texts a batch; default the product's), ``nospin`` (no
busy-waiting of the intra-op threads, as the product embeds passages), ``chars`` (the earlier
batching: 64 texts a batch sorted by characters), e.g. ``fused-rr-pc-keep3@nospin+chars``.
Fused recipes (:mod:`qa.index.onnx_int8`): ``fused-fp32`` (the TorchScript export fused by ONNX
Runtime's transformer optimizer: one Attention node per layer, EmbedLayerNormalization,
SkipLayerNormalization, BiasGelu; float32), ``fused-rr-pc`` / ``fused-pc`` (that graph
quantised, reduced or full range, MatMul and Attention only), ``fused-rr-pc-keepN`` (the N
nodes whose quantisation alone moves the passage vectors most, ranked on 200 SQuAD TRAIN
paragraphs, left float32; the ranking is kept in WORK/ranking-fused-rr-pc.json).
``--no-own-questions`` measures recall with float32 questions only (what the product does).
Output: a table and ``--out`` (bench/out/embed_int8_variants.json).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.embed_runtimes import StEncode, recall_at, squad_open  # noqa: E402
from qa import hardware  # noqa: E402
from qa.index.embed import BATCH, Embedder, _normalize  # noqa: E402
from qa.index.embed_onnx import OnnxEmbedder, build  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json.gz"
TRAIN = DEV.with_name("train-v1.1.json.gz")
OUT = ROOT / "bench" / "out"
WORK = OUT / "int8-variants"


def _ffn_out_nodes(model_path: Path) -> list[str]:
    """Names of the FFN output projections (the MatMul that follows each GELU), by layer."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    out = []
    for node in graph.node:  # GELU is exported as x * 0.5 * (1 + erf(x / sqrt 2))
        if node.op_type != "Erf":
            continue
        frontier = list(node.output)
        for _ in range(8):  # a few element-wise steps from erf to the projection
            following = [c for name in frontier for c in consumers.get(name, [])]
            matmuls = [c.name for c in following if c.op_type == "MatMul"]
            if matmuls:
                out.extend(matmuls)
                break
            frontier = [o for c in following for o in c.output]
    return out


def quantised(name: str, fp32: Path) -> Path:
    """Build (once) the int8 copy of quantisation variant ``name`` from the float32 copy."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dest = WORK / f"{name}.onnx"
    if dest.is_file():
        return dest
    WORK.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"weight_type": QuantType.QInt8, "per_channel": True}
    if name == "rr-pc":
        kwargs["reduce_range"] = True
    elif name == "pt":
        kwargs["per_channel"] = False
    if "matmul" in name:
        kwargs["op_types_to_quantize"] = ["MatMul"]
    ffn = _ffn_out_nodes(fp32)
    if name.endswith("keep-ffn5"):
        kwargs["nodes_to_exclude"] = ffn[-1:]
    elif name.endswith("keep-ffnout"):
        kwargs["nodes_to_exclude"] = ffn
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(str(fp32), str(dest), **kwargs)
    return dest


class Variant(OnnxEmbedder):
    """The ONNX embedder with a batch size and spinning of its own; ``chars``: batches of the
    earlier ordering (by characters, as sentence-transformers sorts, not by word pieces)."""

    def __init__(self, path: Path, batch: int = BATCH, spin: bool = True, chars: bool = False):
        super().__init__(path, "int8", spin=spin)
        self.batch, self.chars = batch, chars

    def embed(self, texts: Any, batch_size: int = BATCH) -> np.ndarray:
        if not self.chars:
            return super().embed(texts, batch_size=self.batch)
        session, tokenizer = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for lo in range(0, len(order), self.batch):
            rows = order[lo : lo + self.batch]
            enc = tokenizer(
                [texts[i] for i in rows], truncation=True, max_length=self.max_seq_length
            )
            out[rows] = self._pooled(session, enc["input_ids"], enc["token_type_ids"])
        return _normalize(out)


def session(spec: str) -> dict[str, Any]:
    """Session settings of a variant: ``nospin``, ``bsN``, ``chars`` joined by ``+``."""
    opts: dict[str, Any] = {"spin": True}
    for part in filter(None, spec.split("+")):
        if part == "nospin":
            opts["spin"] = False
        elif part == "chars":
            opts["chars"] = True
            opts.setdefault("batch", 64)
        elif part.startswith("bs"):
            opts["batch"] = int(part[2:])
        else:
            raise SystemExit(f"unknown session setting {part!r}")
    return opts


def fused_fp32() -> Path:
    """The fused float32 graph (TorchScript export + ONNX Runtime's transformer optimizer)."""
    from transformers import AutoModel

    from qa.index.embed import default_model_path
    from qa.index.onnx_int8 import export_fused

    dest = WORK / "fused-fp32.onnx"
    if not dest.is_file():
        WORK.mkdir(parents=True, exist_ok=True)
        model = AutoModel.from_pretrained(str(default_model_path())).eval()
        print("fused:", export_fused(model, dest), flush=True)
    return dest


def train_passages(count: int = 200) -> list[str]:
    """``count`` SQuAD train-v1.1 paragraphs spread over the file (title, then text)."""
    with gzip.open(TRAIN, "rt", encoding="utf-8") as fh:
        data = json.load(fh)["data"]
    paras = [
        f"{a['title'].replace('_', ' ')}\n{p['context']}" for a in data for p in a["paragraphs"]
    ]
    return paras[:: max(1, len(paras) // count)][:count]


def ranking(base: str) -> list[str]:
    """The quantisable nodes of the fused graph, most sensitive first: each quantised alone
    (the rest float32), by the mean ``1 - cosine`` of its passage vectors to float32's on SQuAD
    TRAIN passages (never dev, on which the recipes are compared)."""
    from qa.index.onnx_int8 import quantizable, quantize

    cache = WORK / f"ranking-{base}.json"
    if cache.is_file():
        return list(json.loads(cache.read_text()))
    src = fused_fp32()
    texts = train_passages()
    ref = OnnxEmbedder(src, "fp32").embed(texts)
    errors: dict[str, float] = {}
    for node in quantizable(src):
        dest = WORK / "one-node.onnx"
        quantize(src, dest, reduce_range=base.startswith("fused-rr"), only=[node])
        vecs = OnnxEmbedder(dest, "int8").embed(texts)
        errors[node] = float(1 - (vecs * ref).sum(axis=1).mean())
        print(f"  {node}: {errors[node]:.2e}", flush=True)
    ranked = dict(sorted(errors.items(), key=lambda kv: -kv[1]))
    cache.write_text(json.dumps(ranked, indent=1))
    return list(ranked)


def fused_quantised(name: str) -> Path:
    """``fused-rr-pc`` / ``fused-pc`` (reduced or full range), ``-keepN``: the N most sensitive
    nodes (:func:`ranking`) left float32."""
    from qa.index.onnx_int8 import quantize

    dest = WORK / f"{name}.onnx"
    if dest.is_file():
        return dest
    base, _, keep = name.partition("-keep")
    kept = ranking(base)[: int(keep)] if keep else []
    quantize(fused_fp32(), dest, kept, reduce_range=base == "fused-rr-pc")
    return dest


def fp32_vectors(fp32: Path, questions: list[str], texts: list[str]) -> tuple[Any, Any]:
    """Question and passage vectors of the float32 copy, kept in WORK (keyed by their texts)."""
    import hashlib

    key = hashlib.sha256(json.dumps([fp32.name, questions, texts]).encode()).hexdigest()[:12]
    cache = WORK / f"fp32-vectors-{key}.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            return saved["q"], saved["p"]
    onnx32 = OnnxEmbedder(fp32, "fp32")
    q32, p32 = onnx32.embed(questions, batch_size=256), onnx32.embed(texts)
    WORK.mkdir(parents=True, exist_ok=True)
    np.savez(cache, q=q32, p=p32)
    return q32, p32


def make(name: str, fp32: Path) -> Any:
    """The embedder of a variant name (``quant`` or ``quant@session``)."""
    if name.partition("@")[0] == "fused-fp32":
        return OnnxEmbedder(fused_fp32(), "fp32")
    if name in ("st-fp32", "st-bf16"):
        return StEncode(bf16=name == "st-bf16")
    if name in ("torch-fp32", "torch-bf16"):
        return Embedder(bf16=name == "torch-bf16")
    if name == "onnx-fp32":
        return OnnxEmbedder(fp32, "fp32")
    quant, _, sess = name.partition("@")
    path = fused_quantised(quant) if quant.startswith("fused-") else quantised(quant, fp32)
    return Variant(path, **session(sess))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", type=Path, default=DEV)
    ap.add_argument(
        "--variants",
        default="rr-pc,pc,pc-matmul,pc-matmul-keep-ffnout",
    )
    ap.add_argument("--speed-variants", default="", help="default: --variants")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sample", type=int, default=400)
    ap.add_argument("--skip-recall", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument(
        "--no-own-questions",
        action="store_true",
        help="recall with float32 questions only (the product's), not the variant's own",
    )
    ap.add_argument("--out", type=Path, default=OUT / "embed_int8_variants.json")
    ap.add_argument("--paragraphs", type=int, default=0, help="first N paragraphs (0: all)")
    args = ap.parse_args()
    variants = args.variants.split(",")
    speed_variants = args.speed_variants.split(",") if args.speed_variants else variants
    fp32 = build("fp32")

    _, texts, purls, qs, gold = squad_open(args.squad, args.paragraphs)
    questions = [q.question for q in qs]
    print(f"{len(texts)} passages, {len(qs)} questions, load {os.getloadavg()}", flush=True)
    doc: dict[str, Any] = {"cpu": hardware.probe().model, "recall": {}, "speed": {}}

    if not args.skip_recall:
        # The float32 copy's vectors stand for torch float32's (cosine >= 0.999 to them).
        q32, p32 = fp32_vectors(fp32, questions, texts)
        ref = p32
        base = {
            "recall@5": recall_at(q32, p32, gold, purls, 5),
            "recall@20": recall_at(q32, p32, gold, purls, 20),
        }
        doc["recall"]["onnx-fp32"] = base
        print("onnx-fp32", base, flush=True)
        for name in variants:
            emb = make(name, fp32)
            pv = emb.embed(texts)
            cos = (pv * ref).sum(axis=1)
            row = {}
            if not args.no_own_questions:
                qv = emb.embed(questions, batch_size=256)
                row["recall@5"] = recall_at(qv, pv, gold, purls, 5)
                row["recall@20"] = recall_at(qv, pv, gold, purls, 20)
            row |= {
                "recall@5 fp32 questions": recall_at(q32, pv, gold, purls, 5),
                "recall@20 fp32 questions": recall_at(q32, pv, gold, purls, 20),
                "cos mean": float(cos.mean()),
                "cos min": float(cos.min()),
            }
            doc["recall"][name] = row
            print(name, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
            args.out.write_text(json.dumps(doc, indent=1))

    if args.skip_speed:
        return
    step = max(1, len(texts) // args.sample)
    sample = texts[::step][: args.sample]
    always = ["st-fp32", "torch-fp32", "torch-bf16"]
    embedders = {n: make(n, fp32) for n in dict.fromkeys([*always, *speed_variants])}
    for emb in embedders.values():
        emb.embed(sample[:8])  # load and warm up
    rates: dict[str, list[float]] = {n: [] for n in embedders}
    cpu_rates: dict[str, list[float]] = {n: [] for n in embedders}
    loads = []
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for name, emb in embedders.items():
            t, c = time.perf_counter(), time.process_time()  # CPU: all threads of this process
            emb.embed(sample)
            rates[name].append(len(sample) / (time.perf_counter() - t))
            cpu_rates[name].append(len(sample) / (time.process_time() - c))
        print(f"round {r}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in rates.items()), flush=True)
    for name, values in rates.items():
        ratios = [v / b for v, b in zip(values, rates["st-fp32"], strict=True)]
        cpu_ratios = [v / b for v, b in zip(cpu_rates[name], cpu_rates["st-fp32"], strict=True)]
        doc["speed"][name] = {
            "passages_s": values,
            "median_ratio": statistics.median(ratios),
            "ratios": ratios,
            "passages_per_cpu_s": cpu_rates[name],
            "median_cpu_ratio": statistics.median(cpu_ratios),
        }
    doc["load_1min"] = loads
    args.out.write_text(json.dumps(doc, indent=1))

    print(f"\nload average (1 min) at each round: {loads}")
    print(
        "| variant | passages/s (median) | x st-fp32 encode (median of rounds) | x in CPU s "
        "| recall@5 own q "
        "| recall@5 fp32 q | recall@20 fp32 q | cos mean / min |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys([*rates, *doc["recall"]]):
        sp, rc = doc["speed"].get(name, {}), doc["recall"].get(name, {})
        med = statistics.median(sp["passages_s"]) if sp else float("nan")
        print(
            f"| {name} | {med:.1f} | {sp.get('median_ratio', float('nan')):.2f} | "
            f"{sp.get('median_cpu_ratio', float('nan')):.2f} | "
            f"{rc.get('recall@5', float('nan')):.4f} | "
            f"{rc.get('recall@5 fp32 questions', float('nan')):.4f} | "
            f"{rc.get('recall@20 fp32 questions', float('nan')):.4f} | "
            f"{rc.get('cos mean', float('nan')):.4f} / {rc.get('cos min', float('nan')):.4f} |"
        )


if __name__ == "__main__":
    main()
