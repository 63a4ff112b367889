"""The ONNX Runtime path answers as the torch path does, and a one-shot ask never loads torch.

Real models: the embedder's and reader's ONNX copies (built into the cache folder when
absent, about a minute each), torch in float32 beside them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DIR, needs_shared, run_probe

from qa import hardware
from qa.answer import Answerer
from qa.errors import QAError
from qa.index import embed_onnx
from qa.index.embed import Embedder
from qa.index.embed_onnx import OnnxEmbedder
from qa.index.folder import open_store
from qa.index.indexer import Indexer
from qa.reader import onnx as reader_onnx
from qa.reader.base import FallbackReader
from qa.reader.sentence import SentenceReader
from qa.reader.span import SpanReader, context_hit
from qa.reader.weights import DEFAULT_READER_DIR

# Questions on the reference article (corpus/): what it answers and what it does not.
QUESTIONS = (
    "How many Syrians did the Kremlin invite to Sochi?",
    "Who boycotted the Sochi conference?",
    "Where were the United Nations-led talks held?",
    "Who hosted the Syria peace conference?",
    "What did the opposition call the conference?",
    "When was the conference held?",
    "Who is the UN envoy for Syria?",
    "What is the capital of Australia?",
)


@pytest.fixture(scope="module")
def copies() -> dict[str, Path]:
    """The float32 and int8 embedder copies and the float32 reader copy (built when absent)."""
    return {
        "embed-fp32": embed_onnx.build("fp32"),
        "embed-int8": embed_onnx.build("int8"),
        "embed-int8-fused": embed_onnx.build(embed_onnx.INT8),
        "reader-fp32": reader_onnx.build(precision="fp32"),
    }


@pytest.fixture(scope="module")
def torch_fp32() -> Embedder:
    return Embedder(bf16=False)


@pytest.fixture(scope="module")
def reference_index(
    tmp_path_factory: pytest.TempPathFactory, reference_article: Path, torch_fp32: Embedder
) -> Path:
    root = tmp_path_factory.mktemp("onnx-path") / "index"
    Indexer(root, torch_fp32).update([reference_article])
    return root


def _texts() -> list[str]:
    """Questions and passages: the reference article's paragraphs, SQuAD ones when present."""
    article = (Path(__file__).resolve().parents[2] / "corpus").glob("*.txt")
    paragraphs = [p for f in article for p in f.read_text().split("\n\n") if len(p) > 40]
    return [*QUESTIONS, *paragraphs]


def test_float32_copy_vectors_match_torch(copies: dict[str, Path], torch_fp32: Embedder) -> None:
    texts = _texts()
    want = torch_fp32.embed(texts)
    got = OnnxEmbedder(copies["embed-fp32"], "fp32").embed(texts)
    assert got.shape == want.shape
    assert float((want * got).sum(axis=1).min()) >= 0.999


def test_batches_by_word_pieces_give_each_text_its_own_vector(
    copies: dict[str, Path], torch_fp32: Embedder
) -> None:
    # Texts of many lengths, in small batches: grouping by length reorders them, and every
    # vector must land on its own text's row (as if it had been embedded alone).
    texts = _texts()
    for embedder in (torch_fp32, OnnxEmbedder(copies["embed-fp32"], "fp32")):
        together = embedder.embed(texts, batch_size=3)
        alone = np.vstack([embedder.embed([t]) for t in texts])
        assert float((together * alone).sum(axis=1).min()) >= 0.9999


def test_int8_copy_vectors_stay_close(copies: dict[str, Path], torch_fp32: Embedder) -> None:
    texts = _texts()
    cos = (torch_fp32.embed(texts) * OnnxEmbedder(copies["embed-int8"], "int8").embed(texts)).sum(
        axis=1
    )
    assert float(cos.min()) >= 0.97 and float(np.median(cos)) >= 0.985


def test_fused_int8_copy_is_fused_quantised_and_close(
    copies: dict[str, Path], torch_fp32: Embedder
) -> None:
    import onnx

    from qa.index.onnx_int8 import KEEP

    nodes = onnx.load(str(copies["embed-int8-fused"])).graph.node
    kinds = [n.op_type for n in nodes]
    # One quantised attention node per layer: the fusion took, then the quantisation.
    assert kinds.count("QAttention") == 6 and "Attention" not in kinds
    assert kinds.count("EmbedLayerNormalization") == 1  # the lookups stay float32
    assert kinds.count("MatMulInteger") == 18 - sum(1 for k in KEEP if "MatMul" in k)
    float_matmuls = {n.name for n in nodes if n.op_type == "MatMul"}
    assert set(KEEP) <= float_matmuls | {n.name for n in nodes if n.op_type == "Attention"}
    texts = _texts()
    fused = OnnxEmbedder(copies["embed-int8-fused"], embed_onnx.INT8)
    assert fused.runtime == "onnx-int8-fused"
    cos = (torch_fp32.embed(texts) * fused.embed(texts)).sum(axis=1)
    assert float(cos.min()) >= 0.98 and float(np.median(cos)) >= 0.99


def test_int8_passages_are_embedded_without_spinning_threads(copies: dict[str, Path]) -> None:
    picked = embed_onnx.pick(embed_onnx.DEFAULT_MODEL, "onnx-int8-fused", for_index=True)
    assert picked is not None and picked.runtime == "onnx-int8-fused"
    texts = _texts()
    vectors = picked.embed(texts)
    options = picked._load()[0].get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    # Spinning changes when threads wait, never what they compute.
    spinning = OnnxEmbedder(copies["embed-int8-fused"], embed_onnx.INT8)
    assert np.array_equal(spinning.embed(texts), vectors)
    questions = embed_onnx.pick(embed_onnx.DEFAULT_MODEL, "onnx-int8-fused", for_index=False)
    assert questions is not None and questions.spin  # one question at a time: spin as before


def test_an_index_of_the_earlier_int8_copy_grows_or_is_rebuilt(
    copies: dict[str, Path],
    reference_article: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from qa.cli.main import cli

    monkeypatch.setenv("NEWSQA_EMBED_DTYPE", "auto")
    monkeypatch.setattr(hardware, "probe", lambda: hardware.Hardware("avx2", frozenset(), 2))
    monkeypatch.setattr(hardware, "bf16_supported", lambda: False)
    root, corpus = tmp_path / "index", tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(reference_article.read_text())
    Indexer(root, OnnxEmbedder(copies["embed-int8"], "int8")).update([corpus])

    def runtime() -> str:
        with open_store(root) as store:
            return store.get_meta("embed_runtime") or ""

    def index(*extra: str) -> tuple[int, str]:
        """Exit code, and the error that `newsqa` prints (its main turns QAError into a line)."""
        args = ["index", str(corpus), "--index-dir", str(root), *extra]
        result = CliRunner().invoke(cli, args)
        error = result.exception
        return result.exit_code, str(error) if isinstance(error, QAError) else result.output

    lines = reference_article.read_text().split("\n\n")
    (corpus / "b.txt").write_text("\n\n".join(lines[:1] + lines[3:6]))
    assert index()[0] == 0  # its copy is still in the cache: more passages from it
    assert runtime() == "onnx-int8"
    # Without that copy, a later `newsqa index` says in one line what to do, and does it.
    real = embed_onnx.find_copy
    monkeypatch.setattr(
        embed_onnx,
        "find_copy",
        lambda p, m=embed_onnx.DEFAULT_MODEL: None if p == "int8" else real(p, m),
    )
    (corpus / "c.txt").write_text("\n\n".join(lines[:1] + lines[6:9]))
    code, out = index()
    assert code == 1 and "newsqa index --rebuild" in out and len(out.strip().splitlines()) == 1
    assert runtime() == "onnx-int8"  # untouched
    code, out = index("--rebuild")
    assert code == 0, out
    assert runtime() == "onnx-int8-fused"
    (corpus / "d.txt").write_text("\n\n".join(lines[:1] + lines[9:12]))
    assert index()[0] == 0 and runtime() == "onnx-int8-fused"


def test_onnx_embedder_counts_truncation(copies: dict[str, Path], torch_fp32: Embedder) -> None:
    long = " ".join(["word"] * 400)
    onnx = OnnxEmbedder(copies["embed-fp32"], "fp32")
    assert onnx.count_truncated([long, "short"]) == torch_fp32.count_truncated([long, "short"])
    onnx.embed([long, "short"])
    assert onnx.truncated == 1
    before = torch_fp32.truncated  # the torch embedder counts while it embeds, too
    torch_fp32.embed(["short", long, "also short"])
    assert torch_fp32.truncated - before == 1


@pytest.fixture()
def torch_reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[SpanReader]:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "torch")
    monkeypatch.setenv("NEWSQA_READER_DTYPE", "fp32")
    reader = SpanReader()
    reader.load()
    assert reader.runtime == "torch-fp32"
    yield reader


@pytest.fixture()
def onnx_reader(copies: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> SpanReader:
    monkeypatch.setenv("NEWSQA_READER_BACKEND", "onnx-fp32")
    reader = SpanReader()
    reader.load()
    assert reader.runtime == "onnx-fp32"
    return reader


def test_the_onnx_path_answers_as_the_torch_path(
    reference_index: Path,
    copies: dict[str, Path],
    torch_fp32: Embedder,
    torch_reader: SpanReader,
    onnx_reader: SpanReader,
) -> None:
    paths = {
        "torch": Answerer(
            reference_index, torch_fp32, FallbackReader(torch_reader, SentenceReader())
        ),
        "onnx": Answerer(
            reference_index,
            OnnxEmbedder(copies["embed-fp32"], "fp32"),
            FallbackReader(onnx_reader, SentenceReader()),
        ),
    }
    for question in QUESTIONS:
        torch_resp, onnx_resp = (paths[k].ask(question) for k in ("torch", "onnx"))
        assert [h.passage.id for h in onnx_resp.hits] == [h.passage.id for h in torch_resp.hits]
        for want, got in zip(torch_resp.answers[:3], onnx_resp.answers[:3], strict=True):
            assert (got.text, got.kind) == (want.text, want.kind), question
            assert got.hit.passage.id == want.hit.passage.id, question
            assert abs(got.confidence - want.confidence) <= 0.02, question
        assert (onnx_resp.answer is None) == (torch_resp.answer is None), question


@needs_shared("squad", "dev-v1.1.json.gz")
def test_the_onnx_reader_reads_squad_as_torch_does(
    torch_reader: SpanReader, onnx_reader: SpanReader
) -> None:
    from qa.eval.reader import load_gold_questions

    items = load_gold_questions(SHARED_DIR / "squad" / "dev-v1.1.json.gz")[::97][:60]
    contexts = [item.context for item in items]
    for i, item in enumerate(items):
        # The gold paragraph among four others, as the top 5 of a search would be.
        hits = [context_hit(contexts[(i + j) % len(contexts)], ident=str(j)) for j in range(5)]
        want, got = torch_reader.read(item.question, hits), onnx_reader.read(item.question, hits)
        assert [a.text for a in got[:3]] == [a.text for a in want[:3]], item.question
        assert abs(got[0].confidence - want[0].confidence) <= 0.02, item.question


def test_a_one_shot_ask_imports_no_torch(
    copies: dict[str, Path], tmp_path: Path, reference_article: Path
) -> None:
    precision = hardware.reader_onnx_precision()
    if not reader_onnx.onnx_path(DEFAULT_READER_DIR, precision=precision).is_file():
        pytest.skip(f"the {precision} reader copy is not built (python -m qa.reader)")
    root = tmp_path / "index"
    Indexer(root, OnnxEmbedder(copies["embed-fp32"], "fp32")).update([reference_article])
    with open_store(root) as store:
        assert store.get_meta("embed_runtime") == "onnx-fp32"
    question = "How many Syrians did the Kremlin invite to Sochi?"
    out, heavy, code = run_probe(["ask", question, "--json", "--index-dir", str(root)], tmp_path)
    assert code in ("0", "None"), out
    assert json.loads(out)["answer"]["text"] == "1,600"
    assert heavy == [], f"imported {heavy}"
