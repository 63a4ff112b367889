"""Human output of the CLI (rich): progress, index summary, answers with citations, eval tables."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from qa.index.indexer import IndexReport
from qa.text import printable
from qa.types import Citation, Response, by_article

# Outside text (titles, passages, URLs, paths) is never markup: it is printed as Text, cleaned
# of control characters; and no ":name:" becomes an emoji, in our own strings either.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def outside(text: str, style: str = "", single_line: bool = True) -> Text:
    """Text that came from outside, ready to print: not markup, no control characters.

    Args:
        text: A title, passage, URL, path or message naming them.
        style: Rich style of the whole text.
        single_line: Also show newlines as ``␊`` (everything but passages).

    Returns:
        A rich ``Text`` (never parsed for markup or emoji).
    """
    return Text(printable(text, single_line=single_line), style=style)


@contextmanager
def index_progress() -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar (count, rate, ETA) fed by the indexer's callback."""
    columns = (
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]} articles/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("index", total=None, rate="-")

        def update(done: int, total: int | None) -> None:
            speed = bar.tasks[0].speed
            bar.update(
                task,
                completed=done,
                total=max(total or 0, done) or None,
                rate=f"{speed:.0f}" if speed else "-",
            )

        yield update


def print_index_report(r: IndexReport) -> None:
    """Summary line(s) after indexing; skipped files listed one per line on stderr."""
    for line in r.skips:
        # One line each whatever the width (soft_wrap: rich does not wrap it at 80 columns
        # when stderr is not a terminal), so that scripts read whole lines.
        skipped = Text.assemble(("skipped", "yellow"), " ", outside(line))
        err_console.print(skipped, highlight=False, soft_wrap=True)
    console.print(
        f"added {r.added}, updated {r.updated}, removed {r.removed}, unchanged {r.unchanged}, "
        f"skipped {r.skipped}, duplicates {r.duplicates}, near-duplicate copies "
        f"{r.near_duplicates}; passages embedded "
        f"{r.passages_embedded} (reused {r.passages_reused}, truncated {r.truncated}); "
        + (f"headlines added {r.headlines_added}; " if r.headlines_added else "")
        + f"{r.seconds:.1f} s\n"
        f"index: {r.articles} articles, {r.passages} passages (generation {r.generation})",
        highlight=False,
        soft_wrap=True,  # whole lines for scripts, as the skip lines
    )


def print_response(resp: Response) -> None:
    """Answer in its sentence, confidence, then numbered citations."""
    ans = resp.answer
    holding = resp.answer_citations()
    if ans is None:
        console.print("[bold yellow]No answer in the corpus.[/]")
        if resp.answers:
            console.print(
                f"(best guess below threshold: {resp.answers[0].confidence:.2f})", style="dim"
            )
    else:
        sentence = outside(ans.sentence, single_line=False)
        rel_start = ans.span.start - ans.sentence_span.start
        rel_end = ans.span.end - ans.sentence_span.start
        sentence.stylize("bold black on yellow", rel_start, rel_end)
        if ans.kind == "sentence":
            # The sentence is the answer: printing it twice would say nothing more.
            console.print(Text("Answer (best sentence, no exact span):", "bold"))
        else:
            console.print(Text.assemble(("Answer: ", "bold"), outside(ans.text, "bold green")))
        numbers = ", ".join(str(n) for n in holding) or "?"
        console.print(Text.assemble('"', sentence, '"', f" [{numbers}]"))
        console.print(f"confidence {ans.confidence:.2f}", style="dim")
    if resp.scope:
        console.print(Text(f"searched {resp.scope}", style="dim"), highlight=False)
    if resp.citations:
        console.print()
    print_sources(resp.citations, holding)


def print_sources(citations: Sequence[Citation], holding: Collection[int]) -> None:
    """One line per cited article: its citation numbers, title, date, URL and paragraphs.

    Args:
        citations: The numbered citations.
        holding: Numbers of the citations holding the answer (their articles get a ``*``).
    """
    for article in by_article(citations):
        c = article.first
        paragraphs = ", ".join(str(p) for p in article.paragraphs)
        noun = "paragraph" if len(article.paragraphs) == 1 else "paragraphs"
        # Titles and URLs come from the articles: not markup, no control characters.
        line = outside(
            f"{'*' if article.holds(holding) else ' '}{article.label} {c.title} - "
            f"{c.date or 'undated'} - {c.url or c.source or '-'} ({noun} {paragraphs})"
        )
        console.print(line, highlight=False, soft_wrap=True)
        # Duplicates and near-duplicate copies collapsed into a hit: list every URL carrying it.
        if article.other_urls:
            also = outside(f"     also at: {also_at(article.other_urls)}", "dim")
            console.print(also, highlight=False, soft_wrap=True)


ALSO_AT_SHOWN = 5


def also_at(urls: tuple[str, ...]) -> str:
    """The other URLs of a cited article, the first few in full.

    A passage of site boilerplate (a video page's ad survey) is carried by dozens of pages;
    ``--json`` lists every URL.
    """
    shown = ", ".join(urls[:ALSO_AT_SHOWN])
    more = len(urls) - ALSO_AT_SHOWN
    return f"{shown} and {more} more (--json lists them all)" if more > 0 else shown


def print_eval(m: dict[str, Any]) -> None:
    """Metrics as a table."""
    table = Table(title="evaluation")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in m.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


def print_reader_eval(m: dict[str, Any]) -> None:
    """Reader-only metrics, then the reliability table (confidence bins vs accuracy)."""
    print_eval({k: v for k, v in m.items() if k != "reliability"})
    what = "mean F1" if m.get("reliability_target") == "f1" else "exact match"
    table = Table(title=f"reliability (accuracy = {what} of the top span)")
    for col in ("confidence bin", "questions", "mean confidence", "accuracy"):
        table.add_column(col, justify="right")
    for b in m["reliability"]:
        table.add_row(
            f"{b['lo']:.1f}-{b['hi']:.1f}",
            str(b["n"]),
            f"{b['confidence']:.3f}",
            f"{b['accuracy']:.3f}",
        )
    console.print(table)
