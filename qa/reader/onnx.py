"""An int8 ONNX Runtime copy of the reader, for CPUs without bfloat16.

On a CPU with AVX512-bf16 or AMX the reader runs in bf16 under torch (p50 about 60 ms for the
top 5 passages). Without them torch runs it in float32 (about 240-270 ms on 2 AVX2 cores), and
torch's own int8 dynamic quantisation costs 3-4 F1. ONNX Runtime's dynamic int8 quantisation
with per-channel weights loses well under one F1 point and reads about 27 % faster
(docs/benchmarks.md, "Reader latency"), so on such CPUs the reader runs through it when its
int8 copy is built.

The copy is derived, not shipped: ``python -m qa.reader`` (run by ``make setup``) exports
the torch reader to ONNX, quantises it and writes ``reader-<digest>-int8.onnx`` into the cache
folder (``NEWSQA_CACHE_DIR``, else ``$XDG_CACHE_HOME/newsqa``, else ``~/.cache/newsqa``). The
digest covers the reader's weights and config, so a retrained reader never runs on a stale copy.

``NEWSQA_READER_BACKEND`` picks the runtime: ``auto`` (default: ONNX Runtime when the CPU has
no bf16 and the copy is built, else torch; an explicit ``NEWSQA_READER_DTYPE`` means torch at
that precision), ``torch`` or ``onnx`` (an error when not built).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from qa import hardware, settings
from qa.errors import ReaderLoadError
from qa.reader.weights import DEFAULT_READER_DIR, WEIGHTS_FILE

_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
# A broken export (seen with torch's legacy TorchScript exporter: padding masks traced as
# constants) moves logits by several units; int8 rounding moves them by a few tenths.
_MAX_MEAN_LOGIT_DIFF = 0.5


def cache_dir() -> Path:
    """Folder of derived model files (the ``NEWSQA_CACHE_DIR`` setting)."""
    return settings.load().cache_dir


def reader_digest(folder: Path) -> str:
    """Short content hash of a delta-format reader's weights and config."""
    h = hashlib.sha256()
    for name in (WEIGHTS_FILE, "config.json"):
        h.update((folder / name).read_bytes())
    return h.hexdigest()[:16]


def onnx_path(folder: Path | None = None, cache: Path | None = None) -> Path:
    """Where the int8 ONNX copy of the reader in ``folder`` (default: shipped) lives."""
    folder = folder or DEFAULT_READER_DIR
    return (cache or cache_dir()) / f"reader-{reader_digest(folder)}-int8.onnx"


class OrtQAModel:
    """An ONNX Runtime session that answers like a transformers QA model.

    Called with the padded batch tensors, it returns an object with ``start_logits`` and
    ``end_logits`` tensors, as ``qa.reader.spans._window_logits`` expects.
    """

    def __init__(self, path: Path, config: Any, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or hardware.probe().threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own error types for bad files
            raise ReaderLoadError(
                f"int8 reader {path} is unreadable ({type(exc).__name__}); delete it and "
                "rebuild with `python -m qa.reader`"
            ) from exc
        self.config = config
        self.path = path

    def __call__(self, **batch: torch.Tensor) -> Any:
        feeds = {k: batch[k].numpy() for k in _INPUTS if k in batch}
        start, end = self.session.run(["start_logits", "end_logits"], feeds)
        return SimpleNamespace(
            start_logits=torch.from_numpy(start), end_logits=torch.from_numpy(end)
        )


def maybe_onnx(
    folder: Path, config: Callable[[], Any], backend: str | None = None
) -> OrtQAModel | None:
    """The ONNX Runtime reader for ``folder`` when the backend choice calls for it, else None.

    Args:
        folder: The delta-format reader folder.
        config: Loads the reader's config (called only when the ONNX reader is used).
        backend: ``auto``, ``torch`` or ``onnx``; default: the ``NEWSQA_READER_BACKEND`` setting.

    Raises:
        ReaderLoadError: ``NEWSQA_READER_BACKEND=onnx`` but the copy is not built or
            onnxruntime is missing.
    """
    conf = settings.load()
    choice = backend or conf.reader_backend
    # auto: only where the CPU has no bf16, and not when a torch precision was asked for.
    if choice == "torch" or (
        choice == "auto" and (conf.reader_dtype != "auto" or hardware.bf16_supported())
    ):
        return None
    try:
        path = onnx_path(folder)
    except OSError:  # unreadable reader files: the torch loader reports them clearly
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        if choice == "onnx":
            raise ReaderLoadError("onnxruntime is not installed: run `make setup`") from exc
        return None
    if not path.is_file():
        if choice == "onnx":
            raise ReaderLoadError(
                f"no int8 ONNX reader at {path}: build it with `python -m qa.reader`"
            )
        return None
    return OrtQAModel(path, config())


def build(folder: Path | None = None, dest: Path | None = None, *, force: bool = False) -> Path:
    """Export the reader in ``folder`` to ONNX, quantise it to int8 and check it.

    Args:
        folder: A delta-format reader folder (default: the shipped reader).
        dest: Output file (default: :func:`onnx_path` in the cache folder).
        force: Rebuild even when ``dest`` exists.

    Returns:
        The path of the int8 model; written atomically (a crash leaves no partial file).
    """
    from qa.reader.weights import _load_delta_model

    folder = folder or DEFAULT_READER_DIR
    if not (folder / WEIGHTS_FILE).is_file():
        raise ReaderLoadError(f"no reader weights at {folder / WEIGHTS_FILE}")
    dest = dest or onnx_path(folder)
    if dest.is_file() and not force:
        return dest
    model = _load_delta_model(folder)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".onnx-build-") as tmp:
        fp32 = Path(tmp) / "reader.onnx"
        _export(model, fp32)
        int8 = Path(tmp) / "reader-int8.onnx"
        _quantize(fp32, int8)
        _check(model, int8)
        os.replace(int8, dest)
    return dest


def _export(model: Any, path: Path) -> None:
    """float32 ONNX graph with dynamic batch and sequence axes (torch's dynamo exporter)."""
    import contextlib
    import io

    # Plain attention (matmul, softmax, matmul) exports to a graph ONNX Runtime runs faster
    # than the decomposed scaled_dot_product_attention: p50 about 20 % lower measured here.
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:  # older transformers
        model.config._attn_implementation = "eager"
    batch = _sample_batch()
    dim = {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq", max=512)}
    # The exporter prints progress to stdout; keep `make setup` quiet.
    with contextlib.redirect_stdout(io.StringIO()), torch.inference_mode(False):
        torch.onnx.export(
            model,
            (),
            str(path),
            kwargs=batch,
            input_names=list(_INPUTS),
            output_names=["start_logits", "end_logits"],
            dynamic_shapes={k: dim for k in _INPUTS},
            opset_version=18,
            dynamo=True,
        )


def _quantize(src: Path, dest: Path) -> None:
    """Dynamic int8: per-channel weights, reduced range (the variant that kept F1)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it logs a pre-processing tip as a warning on every run
    try:
        quantize_dynamic(
            str(src), str(dest), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True
        )
    finally:
        root.setLevel(level)


def _sample_batch(rows: int = 3, width: int = 48) -> dict[str, torch.Tensor]:
    """A padded batch with both segments (what the reader feeds), fixed seed."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (rows, width), generator=gen)
    mask = torch.ones_like(ids)
    types = torch.zeros_like(ids)
    types[:, 12:] = 1
    for row in range(1, rows):
        mask[row, width - 9 * row :] = 0
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def _check(model: Any, path: Path) -> None:
    """Refuse a copy whose logits stray from the torch model's on a padded batch."""
    batch = _sample_batch(rows=2, width=70)
    with torch.inference_mode():
        ref = model(**batch)
    out = OrtQAModel(path, model.config, threads=1)(**batch)
    valid = batch["attention_mask"].bool()
    diff = (
        float(
            np.abs((out.start_logits - ref.start_logits.float())[valid].numpy()).mean()
            + np.abs((out.end_logits - ref.end_logits.float())[valid].numpy()).mean()
        )
        / 2
    )
    if not diff < _MAX_MEAN_LOGIT_DIFF:
        raise ReaderLoadError(
            f"the int8 ONNX reader strays from torch (mean logit diff {diff:.2f})"
        )
