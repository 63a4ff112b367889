"""Checkpoints, held-out evaluation and export of reader training runs.

The storage side of :mod:`qa.train.loop`: an exact-resume checkpoint (without the frozen
word embeddings, which come from the base), the held-out EM/F1 used to choose checkpoints,
and the export a reader ships as (a small float16 delta over the base encoder, or a plain
Hugging Face folder for a model on another base, e.g. a teacher).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import pickle
import random
import re
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForQuestionAnswering

from qa.errors import TrainingError
from qa.eval.metrics import max_over_truths
from qa.ingest.squad import load_articles
from qa.reader.spans import predict_pairs
from qa.reader.weights import (
    BASE_MODEL_NAME,
    META_FILE,
    WEIGHTS_FILE,
    base_model_path,
    embedding_key,
    load_base_tokenizer,
)
from qa.train.config import CHECKPOINT_FILE, MACHINE_LOCAL, TrainConfig
from qa.train.data import QAExample, flatten, split_articles

MAX_ANSWER_TOKENS = 30
# What torch's restricted unpickler names when it refuses a file (its message spans lines).
_REFUSED = re.compile(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed global|\n|$)")
log = logging.getLogger(__name__)


def base_folder(config: TrainConfig) -> Path:
    """The base encoder of a run: ``--base`` when given (older runs lack it), else the default."""
    return Path(config.base) if config.base else base_model_path()


def is_default_base(config: TrainConfig) -> bool:
    """Whether the run fine-tunes the shipped reader's base (exported as a small delta)."""
    return base_folder(config) == base_model_path()


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    path: Path, model: Any, optim: Any, sched: Any, step: int, config: TrainConfig
) -> None:
    """Write everything needed for an exact resume, atomically (tmp + os.replace)."""
    state = {
        # The frozen embedding matrix is the base's; no need to store it.
        "model": {k: v for k, v in model.state_dict().items() if k != embedding_key(model)},
        "optimizer": optim.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
        "rng_torch": torch.get_rng_state(),
        "rng_python": random.getstate(),
        "args": config.to_dict(),  # the key and the dict checkpoints have always had
        "config": model.config.to_dict(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`: tensors and plain values only.

    ``weights_only=True``: torch's restricted unpickler builds tensors, dicts, lists, tuples,
    strings and numbers and refuses any other object, so a crafted file cannot run code (a
    full unpickle would call whatever the file names). Everything :func:`save_checkpoint`
    stores is of those types, the RNG states and settings included, and so was everything
    earlier versions stored.

    Raises:
        TrainingError: The file holds other objects, is damaged, or is not a checkpoint.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about odd pickle protocols
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _REFUSED.search(str(exc))
        if found and found.group(1).startswith("Unsupported global"):
            raise TrainingError(
                f"{path} refused: it holds objects other than tensors and plain values "
                f"({_printable(found.group(1))}); load only checkpoints that "
                "`python -m qa.train` wrote"
            ) from exc
        raise TrainingError(f"{path} is not a training checkpoint (not a torch file)") from exc
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        why = _printable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise TrainingError(f"{path} is damaged or not a training checkpoint ({why})") from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("args"), dict):
        raise TrainingError(f"{path} is not a training checkpoint (no settings in it)")
    return ckpt


def _printable(text: str) -> str:
    """Text from a file or a library's message on one line, without control characters."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:200]


def init_weights(path: Path) -> dict[str, torch.Tensor]:
    """Weights to start from: a run's ``checkpoint.pt`` or an exported reader folder.

    A folder is rebuilt as the product loads it (checked, with clear errors when its weights
    are missing or corrupt; the frozen word embeddings are the base's).
    """
    if path.is_dir():
        from qa.reader.weights import _load_delta_model

        state: dict[str, torch.Tensor] = _load_delta_model(path).state_dict()
        return state
    weights: dict[str, torch.Tensor] = load_checkpoint(path)["model"]
    return weights


def model_from_checkpoint(ckpt: dict[str, Any]) -> Any:
    """Rebuild the model of a checkpoint (frozen embeddings come from the base)."""
    from qa.reader.weights import _base_word_embeddings

    config = dict(ckpt["config"])
    model = AutoModelForQuestionAnswering.from_config(  # type: ignore[no-untyped-call]
        AutoConfig.for_model(config.pop("model_type", "bert"), **config)
    )
    weights = dict(ckpt["model"])
    base = base_folder(TrainConfig.from_dict(ckpt["args"]))
    weights[embedding_key(model)] = _base_word_embeddings(base)
    model.load_state_dict(weights, strict=False)
    return model


# ----------------------------------------------------------------------------- eval & export


def evaluate(
    model: Any, tokenizer: Any, examples: list[QAExample], config: TrainConfig
) -> dict[str, float]:
    """Held-out EM/F1 (percent) of the top span of each question."""
    if not examples:
        return {"em": 0.0, "f1": 0.0, "n": 0}
    model.eval()
    preds = predict_pairs(
        model,
        tokenizer,
        [(e.question, e.context) for e in examples],
        top_n=1,
        max_answer_tokens=MAX_ANSWER_TOKENS,
        max_length=config.max_length,
        stride=config.stride,
        max_query_tokens=config.max_query,
    )
    em = f1 = 0.0
    for ex, spans in zip(examples, preds, strict=True):
        text = spans[0].text if spans else ""
        em += max_over_truths("em", text, ex.answers)
        f1 += max_over_truths("f1", text, ex.answers)
    return {"em": 100 * em / len(examples), "f1": 100 * f1 / len(examples), "n": len(examples)}


def export(model: Any, dest: Path, meta: dict[str, Any], tokenizer: Any = None) -> None:
    """Write config.json, reader.safetensors (fp16, no word embeddings) and reader.json.

    A model on another base than the shipped reader's (a ``--base`` run, e.g. a teacher)
    is written as a plain Hugging Face folder with its tokenizer instead, loadable by path.
    """
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    model.config.architectures = [type(model).__name__]
    if tokenizer is not None:
        model.save_pretrained(str(dest))
        tokenizer.save_pretrained(str(dest))
        (dest / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return
    weights = {
        k: v.detach().to(torch.float16).cpu().contiguous()
        for k, v in model.state_dict().items()
        if k != embedding_key(model) and "position_ids" not in k
    }
    model.config.save_pretrained(str(dest))
    tmp = dest / (WEIGHTS_FILE + ".tmp")
    save_file(weights, str(tmp), metadata={"format": "pt", "base_model": BASE_MODEL_NAME})
    os.replace(tmp, dest / WEIGHTS_FILE)
    (dest / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def heldout_examples(config: TrainConfig) -> list[QAExample]:
    """The held-out questions (capped by ``--eval-limit``)."""
    _, heldout = split_articles(load_articles(Path(config.data)), config.heldout_articles)
    examples = flatten(heldout)
    return examples[: config.eval_limit] if config.eval_limit else examples


def evaluate_and_export(
    model: Any, config: TrainConfig, step: int, dest: Path, note: dict[str, Any]
) -> dict[str, Any]:
    """Evaluate on the held-out slice, then export the reader with its metadata."""
    torch.set_num_threads(config.threads)
    t0 = time.time()
    tokenizer = load_base_tokenizer(base_folder(config))
    scores = evaluate(model, tokenizer, heldout_examples(config), config)
    log.info(
        "held-out: EM %.2f F1 %.2f n=%d (%.0fs)",
        scores["em"],
        scores["f1"],
        scores["n"],
        time.time() - t0,
    )
    meta = reader_meta(config, scores, step, note)
    export(model, dest, meta, None if is_default_base(config) else tokenizer)
    log.info("exported reader to %s", dest)
    return meta


def reader_meta(
    config: TrainConfig, scores: dict[str, float], step: int, note: dict[str, Any]
) -> dict[str, Any]:
    """The exported reader's ``reader.json``: its windows, held-out scores and training."""
    return {
        "base_model": BASE_MODEL_NAME if is_default_base(config) else str(base_folder(config)),
        "max_length": config.max_length,
        "stride": config.stride,
        "max_query_tokens": config.max_query,
        "max_answer_tokens": MAX_ANSWER_TOKENS,
        "heldout": {
            "articles": config.heldout_articles,
            "rule": "first articles by sha1(title) hex",
            "questions": scores["n"],
            "em": round(scores["em"], 2),
            "f1": round(scores["f1"], 2),
        },
        "training": {
            "steps": step,
            "seed": config.seed,
            "lr": config.lr,
            "batch_size": config.batch_size,
            "epochs": config.epochs,
            "bf16": config.bf16,
            **note,
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def export_checkpoint(ckpt_path: Path, dest: Path, eval_limit: int | None = None) -> None:
    """Held-out evaluation and export of a training checkpoint (``python -m qa.train export``).

    Args:
        ckpt_path: A ``checkpoint.pt`` written by training.
        dest: The reader folder to write.
        eval_limit: Cap on held-out questions (0 = all); None: the run's own.

    Raises:
        TrainingError: There is no checkpoint at ``ckpt_path``.
    """
    if not ckpt_path.is_file():
        raise TrainingError(f"no checkpoint at {ckpt_path}")
    ckpt = load_checkpoint(ckpt_path)
    config = TrainConfig.from_dict(ckpt["args"])
    if eval_limit is not None:
        config = dataclasses.replace(config, eval_limit=eval_limit)
    model = model_from_checkpoint(ckpt)
    note = {**config.train_note, "source_checkpoint": str(ckpt_path)}
    evaluate_and_export(model, config, int(ckpt["step"]), dest, note)


def resumed_config(config: TrainConfig) -> TrainConfig:
    """On ``--resume`` the checkpoint's settings win, so the run continues exactly.

    Only the :data:`MACHINE_LOCAL` settings come from ``config`` (the resuming command);
    without an export folder of its own, the export goes where the original command said,
    not to the shipped reader's folder (a resumed candidate must not replace it silently).

    Raises:
        TrainingError: There is no checkpoint in ``config.out``.
    """
    from qa.reader.weights import DEFAULT_READER_DIR
    from qa.train.export import load_checkpoint

    ckpt_path = Path(config.out) / CHECKPOINT_FILE
    if not ckpt_path.is_file():
        raise TrainingError(f"--resume: no checkpoint at {ckpt_path}")
    saved: dict[str, Any] = load_checkpoint(ckpt_path)["args"]
    keep = {k: getattr(config, k) for k in MACHINE_LOCAL}
    if keep["export_dir"] is None:
        keep["export_dir"] = saved.get("export_dir") or str(DEFAULT_READER_DIR)
    return TrainConfig.from_dict({**saved, **keep, "resume": True})
