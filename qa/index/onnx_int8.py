"""How the int8 passage copy of MiniLM is made: a fused graph, then dynamic quantisation.

ONNX Runtime's transformer optimizer fuses each layer's attention into one ``Attention`` node,
the embeddings into ``EmbedLayerNormalization``, the residual additions into
``SkipLayerNormalization`` and GELU into ``BiasGelu``; it recognises those patterns in the graph
of torch's TorchScript exporter (the dynamo exporter's graph keeps attention unfused). The fused
graph is then quantised dynamically (int8 weights per channel, uint8 activations), MatMul and
Attention only, so that the embedding lookups stay float32; the nodes in ``keep`` stay float32
too (those whose quantisation moves the passage vectors most, ranked on SQuAD train passages:
docs/benchmarks.md, "Variants of the int8 copy").
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# MiniLM-L6: 12 heads of 32 dimensions; the optimizer needs them to fuse attention.
NUM_HEADS = 12
HIDDEN = 384
_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
# Nodes of the fused graph left in float32: the FFN output projections of layers 0, 2 and 1,
# the three nodes whose quantisation alone moved the passage vectors most on SQuAD train
# paragraphs (bench/embed_int8_variants.py); dense recall@5 on SQuAD-open dev 0.0009 below
# float32, against 0.0050 with every node int8.
KEEP: tuple[str, ...] = (
    "/inner/encoder/layer.0/output/dense/MatMul",
    "/inner/encoder/layer.2/output/dense/MatMul",
    "/inner/encoder/layer.1/output/dense/MatMul",
)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and quantiser's chatter (warnings, tips logged as warnings)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def export_fused(model: Any, dest: Path) -> dict[str, int]:
    """Export a BERT-style model's ``last_hidden_state`` to ONNX and fuse its graph.

    Args:
        model: The torch model (``transformers`` ``AutoModel``), in eval mode.
        dest: Where the fused float32 graph goes.

    Returns:
        How many nodes of each fused kind the graph holds (``Attention``: one per layer when
        the fusion took).
    """
    import torch
    from onnxruntime.transformers.optimizer import optimize_model

    if hasattr(model, "set_attn_implementation"):  # the pattern the optimizer fuses
        model.set_attn_implementation("eager")

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: Any, types: Any, mask: Any) -> Any:
            return self.inner(
                input_ids=ids, token_type_ids=types, attention_mask=mask
            ).last_hidden_state

    ids = torch.randint(1000, 20000, (2, 16), generator=torch.Generator().manual_seed(0))
    axes = {0: "batch", 1: "seq"}
    raw = dest.with_name(dest.name + ".raw.onnx")
    with _quiet():
        torch.onnx.export(
            _Hidden(model),
            (ids, torch.zeros_like(ids), torch.ones_like(ids)),
            str(raw),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={k: axes for k in (*_INPUTS, "last_hidden_state")},
            opset_version=14,
            dynamo=False,
        )
        fused = optimize_model(str(raw), model_type="bert", num_heads=NUM_HEADS, hidden_size=HIDDEN)
        fused.save_model_to_file(str(dest))
    raw.unlink()
    stats: dict[str, int] = fused.get_fused_operator_statistics()
    return {k: v for k, v in stats.items() if v}


def quantizable(path: Path) -> list[str]:
    """Names of the nodes :func:`quantize` turns int8 (MatMul with weights, Attention)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {w.name for w in graph.initializer}
    return [
        n.name
        for n in graph.node
        if n.op_type == "Attention" or (n.op_type == "MatMul" and n.input[1] in weights)
    ]


def quantize(
    src: Path,
    dest: Path,
    keep: Sequence[str] = (),
    *,
    reduce_range: bool = True,
    only: Sequence[str] | None = None,
) -> None:
    """Dynamic int8 of a fused graph: per-channel weights, MatMul and Attention nodes.

    Args:
        src: The float32 graph (:func:`export_fused`).
        dest: The int8 copy.
        keep: Node names left in float32.
        reduce_range: 7-bit weights: no overflow in the 16-bit sums of CPUs without VNNI.
        only: Quantise these nodes alone (to rank each node's effect); default all.

    Raises:
        ValueError: A name in ``keep`` or ``only`` is not a quantisable node of ``src``.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = set(quantizable(src))
    unknown = sorted(set(keep) - names | set(only or ()) - names)
    if unknown:
        raise ValueError(f"not quantisable nodes of {src.name}: {', '.join(unknown)}")
    with _quiet():
        quantize_dynamic(
            str(src),
            str(dest),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=list(keep),
            nodes_to_quantize=list(only) if only else None,
            # Shape inference types no output of the fused (contrib) nodes: they are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
