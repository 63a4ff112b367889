"""The int8 ONNX Runtime copy of the shipped reader: built, checked, and answering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from qa import hardware
from qa.reader.model import load_qa_model, uses_bf16
from qa.reader.onnx import KEEP_FLOAT, OrtQAModel, build, onnx_path
from qa.reader.span import SpanReader, context_hit
from qa.reader.spans import pad_batch
from qa.reader.weights import DEFAULT_READER_DIR, _load_config, _load_delta_model

PARAGRAPH = (
    "The Kremlin invited 1,600 Syrians to Sochi but the main opposition faction said it "
    "wouldn't attend because the conference was an attempt to usurp the role of United "
    "Nations-led talks in Geneva."
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The copy, built from the shipped reader into a fresh cache folder (~30 s)."""
    cache = tmp_path_factory.mktemp("cache")
    return build(dest=onnx_path(DEFAULT_READER_DIR, cache))


def test_build_is_int8_and_small(built: Path) -> None:
    assert built.is_file() and built.suffix == ".onnx"
    assert built.stat().st_size < 30e6  # int8: about a third of the 90 MB float32 graph
    assert build(dest=built) == built  # built once; a second call keeps it


def test_copy_keeps_the_first_ffn_outputs_float(built: Path) -> None:
    import onnx

    graph = onnx.load(str(built)).graph
    shapes = {w.name: tuple(w.dims) for w in graph.initializer}
    float_weights = [
        shapes[n.input[1]] for n in graph.node if n.op_type == "MatMul" and n.input[1] in shapes
    ]
    # The three FFN output projections (1536 -> 384) of layers 0-2; every other weight is int8.
    assert KEEP_FLOAT == 3 and float_weights == [(1536, 384)] * 3
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 37 - 3
    assert built.name.endswith("-int8-keep3.onnx")


def test_copy_logits_follow_torch_on_real_text(built: Path) -> None:
    model, tokenizer = _load_delta_model(DEFAULT_READER_DIR), SpanReader(None).load()[1]
    enc = tokenizer(
        ["How many Syrians did the Kremlin invite?", "Who said it would not attend?"],
        [PARAGRAPH, PARAGRAPH[:80]],
    )
    batch = pad_batch(enc["input_ids"], enc["token_type_ids"])
    with torch.inference_mode():
        want = model(**batch)
    got = OrtQAModel(built, model.config)(**batch)
    mask = batch["attention_mask"].bool()
    diff = (got.start_logits - want.start_logits)[mask].abs().mean().item()
    assert diff < 0.5
    assert np.array_equal(
        got.start_logits.masked_fill(~mask, -1e4).argmax(1).numpy(),
        want.start_logits.masked_fill(~mask, -1e4).argmax(1).numpy(),
    )


def test_span_reader_on_the_copy_finds_the_span(built: Path) -> None:
    reader = SpanReader(None)
    reader._loaded = (OrtQAModel(built, _load_config(DEFAULT_READER_DIR)), reader.load()[1])
    answers = reader.read(
        "How many Syrians did the Kremlin invite to Sochi?", [context_hit(PARAGRAPH)]
    )
    assert answers and answers[0].text == "1,600"
    assert 0.5 < answers[0].confidence <= 1.0


def test_onnx_backend_loads_the_copy_from_the_cache(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSQA_CACHE_DIR", str(built.parent))
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx")
    model, _ = load_qa_model(None)
    assert isinstance(model, OrtQAModel) and model.path == built
    assert SpanReader(None).runtime == "onnx-int8"
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "torch")
    model, _ = load_qa_model(None)
    assert isinstance(model, torch.nn.Module)


def _auto_on(bf16: bool, built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``NEWSQA_READER_BACKEND=auto`` with the copy built, on a CPU with or without bf16."""
    flags = frozenset({"avx512_bf16"} if bf16 else set())
    monkeypatch.setattr(hardware, "probe", lambda: hardware.Hardware("test", flags, 2))
    monkeypatch.setattr(hardware, "bf16_supported", lambda: bf16)
    monkeypatch.setenv("NEWSQA_CACHE_DIR", str(built.parent))
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "auto")
    monkeypatch.delenv("NEWSQA_READER_DTYPE", raising=False)


def test_auto_backend_on_a_cpu_without_bf16_loads_the_copy(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _auto_on(False, built, monkeypatch)
    model, _ = load_qa_model(None)
    assert isinstance(model, OrtQAModel) and model.path == built
    assert SpanReader(None).runtime == "onnx-int8"


def test_auto_backend_on_a_bf16_cpu_without_the_float32_copy_loads_torch_in_bf16(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the int8 copy is in this cache: a bf16 CPU wants the float32 one, so torch reads.
    _auto_on(True, built, monkeypatch)
    model, _ = load_qa_model(None)
    assert isinstance(model, torch.nn.Module) and uses_bf16(model)
    assert SpanReader(None).runtime == "torch-bf16"
