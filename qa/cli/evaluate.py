"""``newsqa eval``: score retrieval and answers, or the span reader alone, on a question file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qa.cli.options import backend_option, index_option, reader_option
from qa.errors import UsageError
from qa.search import FUSIONS


@click.command(name="eval")
@click.argument("questions", type=click.Path(exists=True, path_type=Path))
@click.option("-k", "k", default=20, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--as-of-question-date",
    is_flag=True,
    help="Ask each question as of its date: no later articles, recent ones first.",
)
@click.option(
    "--recency-weight",
    type=click.FloatRange(0.0, 10.0),
    default=None,
    help="Weight of the recency prior (0: off).  [default: 0.5]",
)
@click.option("--no-time-words", is_flag=True, help="Ignore time words in the questions.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option("--out", type=click.Path(path_type=Path), help="Per-question JSONL output.")
@click.option("--limit", type=int, default=0, help="Only the first N questions.")
@click.option(
    "--fusion",
    default="linear",
    show_default=True,
    type=click.Choice(FUSIONS),
)
@reader_option
@click.option(
    "--reader-only",
    is_flag=True,
    help="Score the span reader alone with the gold paragraph given (SQuAD files): "
    "EM/F1, HasAns/NoAns, reliability and reader latency. No index needed.",
)
@backend_option
@index_option
def eval_(
    questions: Path,
    k: int,
    as_of_question_date: bool,
    recency_weight: float | None,
    no_time_words: bool,
    as_json: bool,
    out: Path | None,
    limit: int,
    fusion: str,
    reader: str,
    reader_only: bool,
    backend: str | None,
    index_dir: Path,
) -> None:
    """Score retrieval (recall@k, MRR) and answers (EM/F1) on a question file."""
    from qa import settings
    from qa.cli.output import print_eval
    from qa.eval.questions import Evaluator, load_questions

    if reader_only:
        _eval_reader_only(questions, reader, limit, out, as_json)
        return
    items = load_questions(questions)
    if limit:
        items = items[:limit]
    evaluator = Evaluator(
        index_dir,
        k=k,
        fusion=fusion,
        reader=reader,
        as_of_question_date=as_of_question_date,
        recency_weight=settings.RECENCY_WEIGHT if recency_weight is None else recency_weight,
        time_words=not no_time_words,
        backend=backend,
    )
    metrics = evaluator.run(items, out=out)
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        print_eval(metrics)


def _eval_reader_only(
    questions: Path, reader: str, limit: int, out: Path | None, as_json: bool
) -> None:
    from qa.cli.output import print_reader_eval
    from qa.eval.reader import ReaderEvaluator, load_gold_questions
    from qa.reader.span import SpanReader

    if reader == "sentence":
        raise UsageError("--reader-only scores the span reader; use --reader auto|span|PATH")
    items = load_gold_questions(questions)[: limit or None]
    evaluator = ReaderEvaluator(SpanReader(None if reader in ("auto", "span") else reader))
    metrics = evaluator.run(items, out=out)
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        print_reader_eval(metrics)
