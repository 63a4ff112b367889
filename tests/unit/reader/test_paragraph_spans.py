"""Answer spans never run across a blank line between two paragraphs of a passage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qa.reader import spans
from qa.reader.tokens import WordPieces, base_tokenizer_file

CONTEXT = "Sri Lanka\n\nSri Lanka's president fled the country on Wednesday."


@pytest.fixture(scope="module")
def tokenizer() -> WordPieces:
    return WordPieces(base_tokenizer_file())


def _logits_peaking_at(tokenizer: WordPieces, start_char: int, end_char: int) -> Any:
    """A stand-in for the model's logits: high where a span starts at ``start_char`` and ends at
    ``end_char``, a lower peak on "Sri Lanka" of the second paragraph."""
    second = CONTEXT.index("Sri Lanka", 2)

    def fake(model: Any, enc: Any, batch_size: int, use_bf16: bool, pad_id: int = 0) -> Any:
        starts, ends = [], []
        for w in range(len(enc["input_ids"])):
            ids, offs, seq = enc["input_ids"][w], enc["offset_mapping"][w], enc.sequence_ids(w)
            s = np.full(len(ids), -10.0, dtype=np.float32)
            e = np.full(len(ids), -10.0, dtype=np.float32)
            for i, (a, b) in enumerate(offs):
                if seq[i] != 1:
                    continue
                if a == start_char:
                    s[i] = 9.0
                if b == end_char:
                    e[i] = 9.0
                if a == second:
                    s[i] = max(s[i], 5.0)
                if b == second + len("Sri Lanka"):
                    e[i] = max(e[i], 5.0)
            starts.append(s)
            ends.append(e)
        return starts, ends

    return fake


def test_a_span_across_a_blank_line_is_never_a_candidate(
    tokenizer: WordPieces, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model's best start is in the first paragraph and its best end in the second.
    end = CONTEXT.index("Sri Lanka", 2) + len("Sri Lanka")
    monkeypatch.setattr(spans, "_window_logits", _logits_peaking_at(tokenizer, 0, end))
    monkeypatch.setattr("qa.reader.model.runs_bf16", lambda model: False)
    found = spans.predict_candidates(object(), tokenizer, [("Which country?", CONTEXT)])[0]
    assert found.spans, "the reader found no span at all"
    assert all("\n\n" not in CONTEXT[s:e] for s, e in found.spans)
    best = found.top(1)[0]
    assert best.text == "Sri Lanka"
    assert best.start == CONTEXT.index("Sri Lanka", 2)


def test_spans_inside_one_paragraph_are_kept(
    tokenizer: WordPieces, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = CONTEXT.index("Sri Lanka's")
    end = CONTEXT.index(" fled")
    monkeypatch.setattr(spans, "_window_logits", _logits_peaking_at(tokenizer, start, end))
    monkeypatch.setattr("qa.reader.model.runs_bf16", lambda model: False)
    found = spans.predict_candidates(object(), tokenizer, [("Who fled?", CONTEXT)])[0]
    assert found.top(1)[0].text == "Sri Lanka's president"
