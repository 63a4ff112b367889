"""ONNX Runtime copies of the MiniLM embedder: questions without torch, passages in int8.

Importing torch, transformers and sentence-transformers takes seconds, far more than embedding
one question. :class:`OnnxEmbedder` runs all-MiniLM-L6-v2 through ONNX Runtime with the
``tokenizers`` library and pools as sentence-transformers does (mean over the attention mask,
then L2 normalisation), so a one-shot ``newsqa ask`` never imports torch. Two copies:

- ``fp32``: the same model; its vectors are at cosine >= 0.999 to torch's float32 ones, so it
  queries any index whose vectors torch made (float32 or bf16).
- ``int8-fused``: for embedding passages on CPUs without bf16, the graph fused by ONNX
  Runtime's transformer optimizer, then quantised dynamically (per-channel int8 weights), a few
  sensitive nodes kept float32 (:mod:`qa.index.onnx_int8`). An index records that its vectors
  came from it (``embed_runtime`` ``onnx-int8-fused``): later passages of that index come from
  the same copy, and its questions, as every index's, are embedded in float32 (:func:`pick`).
- ``int8``: the earlier int8 recipe (the unfused graph quantised whole). Setup no longer builds
  it; an index whose passages it made (``onnx-int8``) takes more from it where its file is
  still in the cache, else asks for ``newsqa index --rebuild``. int8 vectors of two recipes
  never mix in one index.

The copies are derived, not shipped: ``python -m qa.index`` (run by ``make setup``) exports
the torch model and writes ``minilm-<digest>-<precision>.onnx`` into the cache folder
(``NEWSQA_CACHE_DIR``); the digest covers the weights, config and tokenizer, so other weights
never run on a stale copy. Without the copies everything runs through torch.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa import hardware, settings
from qa.errors import IndexMismatch, ModelLoadError
from qa.index.embed import (
    BATCH,
    DEFAULT_MODEL,
    Vectors,
    _normalize,
    default_model_path,
    length_batches,
    runtime_family,
)

INT8 = "int8-fused"  # the int8 recipe setup builds; its runtime id is ``onnx-int8-fused``
PRECISIONS = ("fp32", INT8)  # what `python -m qa.index` builds
_BUILDABLE = (*PRECISIONS, "int8")  # and the earlier recipe, for benchmarks and tests
_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
# Lowest cosine of a copy's vectors to torch float32 ones on the check texts; below it the
# export is broken. int8 measured 0.99 and more on SQuAD passages (docs/benchmarks.md).
_MIN_COSINE = {"fp32": 0.999, "int8": 0.97, INT8: 0.97}
_CHECK_TEXTS = (
    "How many Syrians did the Kremlin invite to Sochi?",
    "The Kremlin invited 1,600 Syrians to Sochi but the main opposition faction said it "
    "wouldn't attend because the conference was an attempt to usurp the role of United "
    "Nations-led talks in Geneva.",
    "Oil prices rose on Tuesday.",
)


def model_digest(folder: Path | None = None) -> str:
    """Short content hash of the embedder's weights, config and tokenizer."""
    from qa.reader.onnx import files_digest

    folder = folder or default_model_path()
    return files_digest(
        [folder / n for n in ("model.safetensors", "config.json", "tokenizer.json")]
    )


def onnx_path(precision: str, folder: Path | None = None, cache: Path | None = None) -> Path:
    """Where the ``fp32`` or ``int8`` copy of the embedder in ``folder`` lives."""
    root = cache or settings.load().cache_dir
    return root / f"minilm-{model_digest(folder)}-{precision}.onnx"


def find_copy(precision: str, model: str = DEFAULT_MODEL) -> Path | None:
    """The built copy for ``model`` (only the default MiniLM has copies), else None."""
    if model != DEFAULT_MODEL:
        return None
    try:
        import onnxruntime  # noqa: F401

        path = onnx_path(precision)
    except (ImportError, OSError, ModelLoadError):
        return None
    return path if path.is_file() else None


class OnnxEmbedder:
    """Text -> L2-normalised float32 vectors, through an ONNX Runtime copy of MiniLM.

    Args:
        path: The ``.onnx`` copy (see :func:`onnx_path`).
        precision: ``fp32``, ``int8-fused`` or ``int8`` (the copy's recipe; recorded as the
            runtime ``onnx-<precision>``).
        model: The model name the index records (the default MiniLM).
        threads: ONNX Runtime intra-op threads (None: one per core).
        spin: Whether ONNX Runtime's idle threads spin for work. Off for batches of passages:
            between operators the spinning thread only takes CPU time from the one at work
            (int8 passages/s 1.95x -> 2.06x float32 ``encode`` on an idle 2-core Zen 4, measured
            before batches by word pieces).
    """

    def __init__(
        self,
        path: Path,
        precision: str,
        model: str = DEFAULT_MODEL,
        threads: int | None = None,
        spin: bool = True,
    ) -> None:
        self.name = model
        self.spin = spin
        self.path = path
        self.runtime = f"onnx-{precision}"
        self.threads = threads or hardware.probe().threads
        self.truncated = 0
        folder = default_model_path()
        self.max_seq_length = int(
            json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        )
        self._dim = int(json.loads((folder / "config.json").read_text())["hidden_size"])
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def dim(self) -> int:
        return self._dim

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            import onnxruntime as ort

            from qa.reader.tokens import WordPieces

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if not self.spin:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                session = ort.InferenceSession(
                    str(self.path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own error types for bad files
                raise ModelLoadError(
                    f"ONNX embedder {self.path} is unreadable ({type(exc).__name__}); delete it "
                    "and rebuild with `python -m qa.index`"
                ) from exc
            self._tokenizer = WordPieces(default_model_path())
            self._session = session
        return self._session, self._tokenizer

    def embed(self, texts: Sequence[str], batch_size: int = BATCH) -> Vectors:
        """Embed texts, batched by their number of word pieces (see :data:`BATCH`).

        Args:
            texts: Texts to embed.
            batch_size: Texts per forward pass.

        Returns:
            ``(len(texts), dim)`` float32 array of unit vectors.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        session, tokenizer = self._load()
        enc = tokenizer(list(texts), truncation=True, max_length=self.max_seq_length)
        self.truncated += sum(1 for e in enc._encodings if e.overflowing)
        ids, types = enc["input_ids"], enc["token_type_ids"]
        for rows in length_batches([len(x) for x in ids], batch_size):
            out[rows] = self._pooled(session, [ids[i] for i in rows], [types[i] for i in rows])
        return _normalize(out)

    def _pooled(self, session: Any, ids: list[list[int]], types: list[list[int]]) -> Vectors:
        """Mean of the last hidden states over each text's real tokens."""
        from qa.reader.spans import pad_arrays

        batch = pad_arrays(ids, types, pad_id=0)
        (hidden,) = session.run(["last_hidden_state"], {k: batch[k] for k in _INPUTS})
        mask = batch["attention_mask"][:, :, None].astype(np.float32)
        summed = (hidden * mask).sum(axis=1)
        pooled: Vectors = summed / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled

    def count_truncated(self, texts: Sequence[str]) -> int:
        """How many texts exceed the model window (they would be cut)."""
        _, tokenizer = self._load()
        enc = tokenizer(list(texts))
        return sum(1 for ids in enc["input_ids"] if len(ids) > self.max_seq_length)


def build(precision: str, dest: Path | None = None, *, force: bool = False) -> Path:
    """Export the default MiniLM to ONNX (quantised for int8) and check it against torch.

    Args:
        precision: ``fp32``, ``int8-fused`` (fused graph, int8, :data:`KEEP` in float32) or
            ``int8`` (the earlier recipe: the unfused graph quantised whole).
        dest: Output file (default: :func:`onnx_path` in the cache folder).
        force: Rebuild even when ``dest`` exists.

    Returns:
        The path of the copy; written atomically (a crash leaves no partial file).

    Raises:
        ModelLoadError: The copy's vectors stray from torch's.
    """
    if precision not in _BUILDABLE:
        raise ValueError(f"precision must be one of {_BUILDABLE}, not {precision!r}")
    dest = dest or onnx_path(precision)
    if dest.is_file() and not force:
        return dest
    from transformers import AutoModel

    from qa.index.onnx_int8 import KEEP, export_fused
    from qa.index.onnx_int8 import quantize as quantize_fused
    from qa.reader.onnx import export_graph, quantize

    model = AutoModel.from_pretrained(str(default_model_path())).eval()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".onnx-build-") as tmp:
        out = fp32 = Path(tmp) / "minilm.onnx"
        if precision == INT8:
            out = Path(tmp) / "minilm-int8.onnx"
            export_fused(model, fp32)
            quantize_fused(fp32, out, KEEP)
        else:
            export_graph(model, fp32, ("last_hidden_state", "pooler_output"))
        if precision == "int8":
            out = Path(tmp) / "minilm-int8.onnx"
            quantize(fp32, out)
        _check(out, precision)
        os.replace(out, dest)
    return dest


def _check(path: Path, precision: str) -> None:
    """Refuse a copy whose vectors stray from sentence-transformers' float32 ones."""
    from qa.index.embed import Embedder

    want = Embedder(bf16=False, threads=1).embed(list(_CHECK_TEXTS))
    got = OnnxEmbedder(path, precision, threads=1).embed(list(_CHECK_TEXTS))
    low = float((want * got).sum(axis=1).min())
    if not low >= _MIN_COSINE[precision]:
        raise ModelLoadError(
            f"the {precision} ONNX embedder strays from torch (cosine {low:.4f}); not kept"
        )


def pick(
    model: str, recorded: str | None, for_index: bool, few: bool = False
) -> OnnxEmbedder | None:
    """The ONNX embedder for an index, or None where torch (or a fake) embeds.

    Passages of one index come from one runtime family (float vectors, or one int8 recipe's:
    vectors of two families never mix);
    questions are always embedded in float (the float32 copy when built, else torch), whatever
    made the passages: against int8 passages, float32 questions kept more of float32's dense
    recall than int8 ones (docs/benchmarks.md, "Embedding runtimes").

    Args:
        model: The index's model name.
        recorded: The runtime that made the index's vectors (``embed_runtime``); ``""`` for an
            index that predates the record (torch made it); None when there is no index yet.
        for_index: Embedding passages (``newsqa index``, ``watch``), not questions.
        few: Passages a few at a time (``newsqa watch``): a float index takes them from the
            float32 copy, as questions, so that no torch import delays the start.

    Raises:
        ModelLoadError: Passages for an index embedded by an int8 copy that is not built here
            (the current recipe's: build it; an earlier recipe's: re-embed), or
            ``NEWSQA_EMBED_BACKEND=onnx`` and the float32 copy is not built.
        IndexMismatch: ``NEWSQA_EMBED_DTYPE`` asks for vectors of another family than the
            index's.
    """
    conf = settings.load()
    if for_index and (recorded is None or conf.embed_dtype != "auto"):
        recorded = _passage_runtime(conf.embed_dtype, model, recorded)
    family = runtime_family(recorded or "torch")
    if for_index and family.startswith("int8"):
        return OnnxEmbedder(_int8_copy(family, model), family, model, spin=False)
    if (for_index and not few) or conf.embed_backend == "torch":
        return None  # passages of a float index: torch, in bf16 where the CPU has it
    path = find_copy("fp32", model)
    if path is None and conf.embed_backend == "onnx" and model == DEFAULT_MODEL:
        raise ModelLoadError(
            "NEWSQA_EMBED_BACKEND=onnx but the float32 ONNX embedder is not built: run "
            "`python -m qa.index`"
        )
    return OnnxEmbedder(path, "fp32", model) if path else None


def _passage_runtime(embed_dtype: str, model: str, recorded: str | None) -> str:
    """The runtime for passages that this CPU and ``NEWSQA_EMBED_DTYPE`` choose.

    Raises:
        IndexMismatch: the choice is of another family than the index's ``recorded`` one.
    """
    built = find_copy(INT8, model) is not None
    wanted = hardware.passage_runtime(embed_dtype, built)
    if wanted == "onnx-int8":  # the int8 copy: the recipe that setup builds
        wanted = f"onnx-{INT8}"
    if recorded is not None and runtime_family(wanted) != runtime_family(recorded or "torch"):
        raise IndexMismatch(
            f"this index was embedded by {recorded or 'torch'} but NEWSQA_EMBED_DTYPE="
            f"{embed_dtype} asks for {wanted}: unset it to keep the index's own, or "
            "re-embed with `newsqa index --rebuild`"
        )
    return wanted  # a new index: this CPU's choice


def _int8_copy(family: str, model: str) -> Path:
    """The built int8 copy of recipe ``family`` (the family of an int8 runtime is its recipe).

    Raises:
        ModelLoadError: it is not built here.
    """
    path = find_copy(family, model)
    if path is None and family != INT8:
        raise ModelLoadError(
            f"this index was embedded by an earlier int8 copy of the embedder (onnx-{family}) "
            "that is no longer built: re-embed it with `newsqa index --rebuild`"
        )
    if path is None:
        raise ModelLoadError(
            "this index was embedded by the int8 ONNX copy of the embedder, which is not "
            "built here: run `python -m qa.index` (part of `make setup`), or re-embed with "
            "`newsqa index --rebuild`"
        )
    return path
