"""The settings of a reader training run, and what a resumed run keeps of them.

One :class:`TrainConfig` travels through training (``python -m qa.train``), checkpoints and
export. A checkpoint stores it as a plain dict (:meth:`TrainConfig.to_dict`, the same keys
checkpoints have always held), so any checkpoint, older ones included, rebuilds its run's
settings with :meth:`TrainConfig.from_dict`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import TrainingError, UsageError

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared/data/squad/train-v1.1.json.gz"
CHECKPOINT_FILE = "checkpoint.pt"
DEVICES = ("auto", "cpu", "cuda")
# Settings of the machine a run resumes on, not of the run: the resumed command's win.
MACHINE_LOCAL = (
    "out",
    "export_dir",
    "no_export",
    "stop_after",
    "log_every",
    "threads",
    "adaptive_threads",
    "device",  # the machine it resumes on decides where and in what precision
    "bf16",
)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (the options of ``python -m qa.train``, same names).

    The last four are derived: ``device`` is "auto" until :func:`on_device` decides it (and
    ``bf16`` with it), ``pad_id`` comes from the base's tokenizer and ``train_note`` from
    the data, both set by training before the first checkpoint.
    """

    data: str = str(DEFAULT_DATA)
    out: str = "runs/reader"
    export_dir: str | None = None  # None: the shipped reader's folder (on resume: the run's)
    no_export: bool = False
    resume: bool = False
    base: str = ""
    init: str = ""
    teacher: str = ""
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0
    epochs: int = 1
    max_steps: int = 0
    stop_after: int = 0
    limit_examples: int = 0
    negatives: float = 0.0
    perturbed: float = 0.0
    max_train_questions: int | None = None
    heldout_articles: int = 15
    eval_limit: int = 0
    max_length: int = 256
    stride: int = 96
    max_query: int = 64
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    seed: int = 13
    threads: int = 2
    adaptive_threads: bool = False
    save_every: int = 300
    log_every: int = 50
    no_bf16: bool = False
    device: str = "auto"
    bf16: bool = False
    pad_id: int = 0
    train_note: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check what the command-line parser cannot, and fill in the default export folder.

        Raises:
            UsageError: The stride leaves no new context per window, or the device is unknown.
        """
        if self.max_length - self.max_query - 3 <= self.stride:
            raise UsageError(
                "--stride must be smaller than the context room (max_length - max_query - 3)"
            )
        if self.device not in DEVICES:
            raise UsageError(f"--device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.export_dir is None and not self.resume:
            from qa.reader.weights import DEFAULT_READER_DIR

            object.__setattr__(self, "export_dir", str(DEFAULT_READER_DIR))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a checkpoint stores them."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> TrainConfig:
        """Settings from a checkpoint's dict: unknown keys are ignored, missing ones default."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})


def train_device(choice: str, want_bf16: bool) -> tuple[str, bool]:
    """``(device, bf16)`` for ``--device``: bf16 autocast where the device supports it.

    Raises:
        TrainingError: ``cuda`` was asked for and torch sees no CUDA GPU.
    """
    import torch

    from qa.hardware import bf16_supported

    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError("--device cuda: no CUDA GPU is visible to torch")
        return choice, want_bf16 and torch.cuda.is_bf16_supported()
    return choice, want_bf16 and bf16_supported()


def on_device(config: TrainConfig) -> TrainConfig:
    """``config`` with ``device`` and ``bf16`` decided for this machine (see train_device)."""
    device, bf16 = train_device(config.device, not config.no_bf16)
    return dataclasses.replace(config, device=device, bf16=bf16)
