"""An int8 ONNX Runtime copy of the reader, for CPUs without bfloat16.

On a CPU with AVX512-bf16 or AMX the reader runs in bf16 under torch (p50 about 60 ms for the
top 5 passages). Without them torch runs it in float32 (about 240-270 ms on 2 AVX2 cores), and
torch's own int8 dynamic quantisation costs 3-4 F1. ONNX Runtime's dynamic int8 quantisation
with per-channel weights reads about 27 % faster (docs/benchmarks.md, "Reader latency"), and
with three FFN output projections left float32 (:data:`KEEP_FLOAT`) it reads as well as the
float32 copy, so on such CPUs the reader runs through it when its int8 copy is built.

The copy is derived, not shipped: ``python -m qa.reader`` (run by ``make setup``) exports
the torch reader to ONNX, quantises it and writes ``reader-<digest>-int8-keep3.onnx`` into the cache
folder (``NEWSQA_CACHE_DIR``, else ``$XDG_CACHE_HOME/newsqa``, else ``~/.cache/newsqa``). The
digest covers the reader's weights and config, so a retrained reader never runs on a stale copy.

``NEWSQA_READER_BACKEND`` picks the runtime: ``auto`` (default: ONNX Runtime when the CPU has
no bf16 and the copy is built, else torch; an explicit ``NEWSQA_READER_DTYPE`` means torch at
that precision), ``torch`` or ``onnx`` (an error when not built).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from qa import hardware, settings
from qa.errors import ReaderLoadError
from qa.reader.weights import DEFAULT_READER_DIR, WEIGHTS_FILE

if TYPE_CHECKING:
    import torch

# torch is imported only to build the copy: running it needs onnxruntime and numpy alone.
_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
# A broken export (seen with torch's legacy TorchScript exporter: padding masks traced as
# constants) moves logits by several units; int8 rounding moves them by a few tenths.
_MAX_MEAN_LOGIT_DIFF = 0.5
# The float32 copy computes what torch computes, up to summation order.
_MAX_FP32_DIFF = 0.01
# The FFN output projections of the first three layers stay float32 in the int8 copy: each of
# them alone moved the logits most when quantised (ranked one node at a time on SQuAD train
# paragraphs; dev-v1.1 F1 80.3 -> 81.9 on an AVX2 CPU, docs/benchmarks.md "The int8 reader
# recipe"). The same three nodes lead the embedder's ranking (qa.index.onnx_int8).
KEEP_FLOAT = 3
# The copy's file tag: a copy of the earlier all-int8 recipe is never reused.
INT8_TAG = f"int8-keep{KEEP_FLOAT}"


def cache_dir() -> Path:
    """Folder of derived model files (the ``NEWSQA_CACHE_DIR`` setting)."""
    return settings.load().cache_dir


def reader_digest(folder: Path) -> str:
    """Short content hash of a delta-format reader's weights and config."""
    return files_digest([folder / WEIGHTS_FILE, folder / "config.json"])


def files_digest(paths: list[Path]) -> str:
    """Short content hash of files, remembered in the cache folder by path, size and mtime.

    Hashing 90 MB of weights took a tenth of a second or more on every question; the memo
    (``digests.json``) turns that into one small read. A file rewritten in place keeps
    neither its mtime nor, in practice, its size, so a stale digest is not handed out.
    """
    stats = [p.stat() for p in paths]
    stamp = "|".join(
        f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}" for p, st in zip(paths, stats, strict=True)
    )
    memo = cache_dir() / "digests.json"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(stamp), str):
        return str(known[stamp])
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    digest = h.hexdigest()[:16]
    known[stamp] = digest
    try:  # best effort: a read-only cache only costs the hashing next time
        memo.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=memo.parent, prefix=".digests-", delete=False, encoding="utf-8"
        ) as fh:
            json.dump(known, fh)
        os.replace(fh.name, memo)
    except OSError:
        pass
    return digest


def onnx_path(
    folder: Path | None = None, cache: Path | None = None, precision: str = "int8"
) -> Path:
    """Where the ONNX copy (``int8`` or ``fp32``) of the reader in ``folder`` lives."""
    folder = folder or DEFAULT_READER_DIR
    tag = INT8_TAG if precision == "int8" else precision
    return (cache or cache_dir()) / f"reader-{reader_digest(folder)}-{tag}.onnx"


class OrtQAModel:
    """An ONNX Runtime session that answers like a transformers QA model.

    Called with the padded batch (numpy arrays or torch tensors), it returns an object with
    ``start_logits`` and ``end_logits`` of the same kind, as ``qa.reader.spans`` expects.
    """

    def __init__(
        self, path: Path, config: Any, threads: int | None = None, precision: str = "int8"
    ) -> None:
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
                f"ONNX reader {path} is unreadable ({type(exc).__name__}); delete it and "
                "rebuild with `python -m qa.reader`"
            ) from exc
        self.config = config
        self.path = path
        self.precision = precision

    def __call__(self, **batch: Any) -> Any:
        feeds = {k: np.asarray(batch[k], dtype=np.int64) for k in _INPUTS if k in batch}
        start, end = self.session.run(["start_logits", "end_logits"], feeds)
        if all(isinstance(v, np.ndarray) for v in batch.values()):
            return SimpleNamespace(start_logits=start, end_logits=end)
        import torch

        return SimpleNamespace(
            start_logits=torch.from_numpy(start), end_logits=torch.from_numpy(end)
        )


def read_config(folder: Path) -> SimpleNamespace:
    """The reader's ``config.json`` as attributes, without transformers (``model.config``)."""
    try:
        return SimpleNamespace(**json.loads((folder / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise ReaderLoadError(
            f"reader config unreadable in {folder} ({exc.__class__.__name__}); re-export the reader"
        ) from exc


def reader_precision(backend: str | None = None) -> str | None:
    """Which ONNX copy of the reader runs (``fp32`` or ``int8``), or None for torch.

    Args:
        backend: ``auto``, ``torch``, ``onnx`` (the int8 copy) or ``onnx-fp32``; default: the
            ``NEWSQA_READER_BACKEND`` setting. ``auto`` is the choice of
            :func:`qa.hardware.reader_onnx_precision` for this CPU, and torch when a torch
            precision (``NEWSQA_READER_DTYPE``) was asked for.
    """
    conf = settings.load()
    choice = backend or conf.reader_backend
    if choice == "torch" or (choice == "auto" and conf.reader_dtype != "auto"):
        return None
    if choice == "auto":
        return hardware.reader_onnx_precision()
    return "fp32" if choice == "onnx-fp32" else "int8"


def maybe_onnx(folder: Path, backend: str | None = None) -> OrtQAModel | None:
    """The ONNX Runtime reader for ``folder`` when the backend choice calls for it, else None.

    Args:
        folder: The delta-format reader folder.
        backend: See :func:`reader_precision`.

    Raises:
        ReaderLoadError: An ONNX backend was named but its copy is not built or onnxruntime
            is missing (``auto`` falls back to torch instead).
    """
    precision = reader_precision(backend)
    if precision is None:
        return None
    forced = (backend or settings.load().reader_backend) != "auto"
    try:
        path = onnx_path(folder, precision=precision)
    except OSError:  # unreadable reader files: the torch loader reports them clearly
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        if forced:
            raise ReaderLoadError("onnxruntime is not installed: run `make setup`") from exc
        return None
    if not path.is_file():
        if forced:
            raise ReaderLoadError(
                f"no {precision} ONNX reader at {path}: build it with `python -m qa.reader`"
            )
        return None
    return OrtQAModel(path, read_config(folder), precision=precision)


def build(
    folder: Path | None = None,
    dest: Path | None = None,
    *,
    force: bool = False,
    precision: str = "int8",
) -> Path:
    """Export the reader in ``folder`` to ONNX (quantised to int8 unless ``fp32``) and check it.

    Args:
        folder: A delta-format reader folder (default: the shipped reader).
        dest: Output file (default: :func:`onnx_path` in the cache folder).
        force: Rebuild even when ``dest`` exists.
        precision: ``int8`` (dynamic quantisation) or ``fp32`` (the same numbers as torch).

    Returns:
        The path of the model; written atomically (a crash leaves no partial file).
    """
    from qa.reader.weights import _load_delta_model

    folder = folder or DEFAULT_READER_DIR
    if not (folder / WEIGHTS_FILE).is_file():
        raise ReaderLoadError(f"no reader weights at {folder / WEIGHTS_FILE}")
    dest = dest or onnx_path(folder, precision=precision)
    if dest.is_file() and not force:
        return dest
    model = _load_delta_model(folder)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".onnx-build-") as tmp:
        out = fp32 = Path(tmp) / "reader.onnx"
        export_graph(model, fp32, ("start_logits", "end_logits"))
        if precision == "int8":
            out = Path(tmp) / "reader-int8.onnx"
            quantize(fp32, out)
        _check(model, out, _MAX_MEAN_LOGIT_DIFF if precision == "int8" else _MAX_FP32_DIFF)
        os.replace(out, dest)
    return dest


def export_graph(model: Any, path: Path, outputs: tuple[str, ...]) -> None:
    """float32 ONNX graph of a BERT-style model (its ``outputs`` named), dynamic batch and length.

    torch's dynamo exporter; the inputs are ids, segment ids and the attention mask.
    """
    import contextlib
    import io

    import torch

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
            output_names=list(outputs),
            dynamic_shapes={k: dim for k in _INPUTS},
            opset_version=18,
            dynamo=True,
            external_data=False,  # one self-contained file (the float32 copy is kept as is)
        )


def ffn_outputs(path: Path) -> list[str]:
    """The FFN output projections of the graph at ``path`` (MatMul nodes whose weight maps the
    intermediate size back to the hidden size), in layer order."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {w.name: tuple(w.dims) for w in graph.initializer}
    matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    weighted = [
        (n.name, shapes[n.input[1]]) for n in matmuls if len(shapes.get(n.input[1], ())) == 2
    ]
    if not weighted:
        return []
    hidden = weighted[0][1][0]  # the first layer's query projection reads the hidden size
    return [name for name, (rows, cols) in weighted if cols == hidden and rows > hidden]


def quantize(
    src: Path,
    dest: Path,
    keep: Sequence[str] | None = None,
    *,
    only: Sequence[str] | None = None,
) -> None:
    """Dynamic int8: per-channel weights, reduced range (the variant that kept F1).

    Args:
        src: The float32 graph.
        dest: The int8 copy.
        keep: Node names left float32; default the first :data:`KEEP_FLOAT` FFN output
            projections (:func:`ffn_outputs`).
        only: Quantise these nodes alone (to rank each node's effect); default all.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = ffn_outputs(src)[:KEEP_FLOAT] if keep is None else keep
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it logs a pre-processing tip as a warning on every run
    try:
        quantize_dynamic(
            str(src),
            str(dest),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=list(keep),
            nodes_to_quantize=list(only) if only else None,
        )
    finally:
        root.setLevel(level)


def _sample_batch(rows: int = 3, width: int = 48) -> dict[str, torch.Tensor]:
    """A padded batch with both segments (what the reader feeds), fixed seed."""
    import torch

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (rows, width), generator=gen)
    mask = torch.ones_like(ids)
    types = torch.zeros_like(ids)
    types[:, 12:] = 1
    for row in range(1, rows):
        mask[row, width - 9 * row :] = 0
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def _check(model: Any, path: Path, limit: float = _MAX_MEAN_LOGIT_DIFF) -> None:
    """Refuse a copy whose logits stray from the torch model's on a padded batch."""
    import torch

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
    if not diff < limit:
        raise ReaderLoadError(
            f"the ONNX reader {path.name} strays from torch (mean logit diff {diff:.3f})"
        )
