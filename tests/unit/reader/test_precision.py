"""bf16 weights stored at load give the same logits as casting them under autocast per call."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForQuestionAnswering

from qa.reader.model import _for_inference, uses_bf16
from qa.reader.spans import _window_logits


def tiny_model() -> BertForQuestionAnswering:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return BertForQuestionAnswering(config).eval()


def windows() -> dict[str, list[list[int]]]:
    rng = np.random.default_rng(0)
    ids = [[2, *rng.integers(5, 50, n).tolist(), 3] for n in (7, 12, 30)]
    return {"input_ids": ids, "token_type_ids": [[0] * 4 + [1] * (len(x) - 4) for x in ids]}


def test_bf16_weights_match_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    # NEWSQA_READER_DTYPE=bf16 runs bf16 on any CPU (emulated where it lacks the instructions),
    # so this runs everywhere.
    monkeypatch.setenv("NEWSQA_READER_DTYPE", "bf16")
    reference = tiny_model()
    stored, _ = _for_inference(copy.deepcopy(reference), None)
    assert uses_bf16(stored) and not uses_bf16(reference)
    assert stored.bert.embeddings.word_embeddings.weight.dtype == torch.float32
    want = _window_logits(reference, windows(), 64, True)
    got = _window_logits(stored, windows(), 64, True)
    for w, g in zip(want[0] + want[1], got[0] + got[1], strict=True):
        assert np.array_equal(w, g)


def test_fp32_setting_keeps_float32_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSQA_READER_DTYPE", "fp32")
    model, _ = _for_inference(tiny_model(), None)
    assert not uses_bf16(model)
    starts, _ = _window_logits(model, windows(), 64, False)
    assert starts[0].dtype == np.float32 and len(starts[2]) == 32
