"""Turning reader logits into answer spans: question truncation, windows, batched decoding."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

# torch (and qa.reader.model, which needs it) is imported only for a torch model: the
# ONNX Runtime reader takes and returns numpy arrays.

# How many start/end candidates per window are paired up; 20 is the usual choice.
_N_BEST_PER_WINDOW = 20


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


def pad_arrays(
    input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]], pad_id: int = 0
) -> dict[str, np.ndarray]:
    """Pad a batch to its longest member (dynamic padding) and build the masks (int64 arrays)."""
    width = max(len(ids) for ids in input_ids)
    ids = np.full((len(input_ids), width), pad_id, dtype=np.int64)
    types = np.zeros((len(input_ids), width), dtype=np.int64)
    mask = np.zeros((len(input_ids), width), dtype=np.int64)
    for row, (seq, typ) in enumerate(zip(input_ids, token_type_ids, strict=True)):
        ids[row, : len(seq)] = seq
        types[row, : len(typ)] = typ
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def pad_batch(
    input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]], pad_id: int = 0
) -> dict[str, torch.Tensor]:
    """:func:`pad_arrays` as torch tensors (what a torch model takes)."""
    import torch

    arrays = pad_arrays(input_ids, token_type_ids, pad_id)
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def _window_logits(
    model: Any, enc: Any, batch_size: int, use_bf16: bool, pad_id: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start/end logits (float32, unpadded) for every window in ``enc``."""
    n = len(enc["input_ids"])
    order = sorted(range(n), key=lambda i: len(enc["input_ids"][i]))  # less padding
    starts: list[np.ndarray] = [np.empty(0)] * n
    ends: list[np.ndarray] = [np.empty(0)] * n
    run = _runner(model, use_bf16)
    for lo in range(0, n, batch_size):
        rows = order[lo : lo + batch_size]
        batch = pad_arrays(
            [enc["input_ids"][i] for i in rows], [segment_ids(enc, i) for i in rows], pad_id
        )
        s_all, e_all = run(batch)
        for k, i in enumerate(rows):
            length = len(enc["input_ids"][i])
            starts[i], ends[i] = s_all[k, :length], e_all[k, :length]
    return starts, ends


def _runner(
    model: Any, use_bf16: bool
) -> Callable[[dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """Padded numpy batch -> float32 start and end logits, for an ONNX or a torch model."""
    from qa.reader.onnx import OrtQAModel

    if isinstance(model, OrtQAModel):

        def run_onnx(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            out = model(**batch)
            return out.start_logits, out.end_logits

        return run_onnx
    import torch

    from qa.reader.model import autocast, model_device, model_inputs

    device = model_device(model)

    def run_torch(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        batch = {k: torch.from_numpy(v) for k, v in arrays.items()}
        if device.type != "cpu":  # a reader being trained on a GPU, evaluated in place
            batch = {k: v.to(device) for k, v in batch.items()}
        with torch.inference_mode(), autocast(use_bf16 and device.type == "cpu"):
            out = model(**model_inputs(model, batch))
            return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()

    return run_torch


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


def _crosses_paragraph(context: str, start: int, end: int) -> bool:
    """True when a span runs across a blank line: an answer is a phrase of one paragraph, while a
    passage of several paragraphs invites spans like "Sri Lanka\n\nSri Lanka" (a headline-like
    first line repeated by the next paragraph)."""
    return "\n\n" in context[start:end]


def _logsumexp(x: np.ndarray) -> float:
    peak = float(x.max())
    return peak + math.log(float(np.exp(x - peak).sum()))


@dataclass(frozen=True)
class Candidates:
    """Every span the reader scored in one context.

    Attributes:
        context: The context the offsets index into.
        spans: ``(start, end) -> (score, log_prob)`` of every candidate (best of its windows).
        null_score: CLS start + end logit (lowest over the context's windows).
    """

    context: str
    spans: dict[tuple[int, int], tuple[float, float]]
    null_score: float

    def top(
        self, top_n: int, question: str = "", whole_answer_margin: float | None = None
    ) -> list[SpanPrediction]:
        """The ``top_n`` best spans, best first.

        With ``whole_answer_margin`` set, a pick that is one conjunct of a coordination is
        widened to the whole coordination when ``question`` asks for several things
        (:mod:`qa.reader.coordination`).
        """
        ranked = sorted(self.spans.items(), key=lambda kv: kv[1][0], reverse=True)[:top_n]
        if whole_answer_margin is not None:
            from qa.reader.coordination import widen

            ranked = widen(question, self.context, ranked, self.spans, whole_answer_margin)
        return [
            SpanPrediction(
                start=s,
                end=e,
                text=self.context[s:e],
                score=score,
                null_score=self.null_score,
                log_prob=log_prob,
            )
            for (s, e), (score, log_prob) in ranked
        ]


def predict_candidates(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    max_answer_tokens: int = 30,
    max_length: int = 256,
    stride: int = 96,
    max_query_tokens: int = 64,
    batch_size: int = 64,
) -> list[Candidates]:
    """Every candidate span of many (question, context) pairs, batched over all their windows."""
    if not pairs:
        return []
    questions = truncate_questions(tokenizer, [q for q, _ in pairs], max_query_tokens)
    contexts = [c for _, c in pairs]
    enc = encode_windows(tokenizer, questions, contexts, max_length, stride)
    from qa.reader.model import runs_bf16

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
            if _crosses_paragraph(contexts[p], c_start, c_end):
                continue
            # The same span seen in two overlapping windows keeps its best score.
            if score > best[p].get((c_start, c_end), (-math.inf, 0.0))[0]:
                best[p][(c_start, c_end)] = (score, log_prob)
    return [Candidates(contexts[p], best[p], nulls[p]) for p in range(len(pairs))]


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
    whole_answer_margin: float | None = None,
) -> list[list[SpanPrediction]]:
    """Best spans for many (question, context) pairs, batched over all their windows.

    Args:
        whole_answer_margin: When set, widen a conjunct to its whole coordination for
            questions that ask for several things (see :meth:`Candidates.top`).

    Returns:
        For each pair, up to ``top_n`` spans, best first, with character offsets
        into that pair's context.
    """
    found = predict_candidates(
        model,
        tokenizer,
        pairs,
        max_answer_tokens=max_answer_tokens,
        max_length=max_length,
        stride=stride,
        max_query_tokens=max_query_tokens,
        batch_size=batch_size,
    )
    return [
        c.top(top_n, question, whole_answer_margin)
        for c, (question, _) in zip(found, pairs, strict=True)
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
    whole_answer_margin: float | None = None,
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
        whole_answer_margin: When set, a conjunct is widened to its whole coordination for
            questions that ask for several things (:mod:`qa.reader.coordination`).

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
        whole_answer_margin=whole_answer_margin,
    )
