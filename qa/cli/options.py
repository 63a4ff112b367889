"""Options and option values shared by several ``newsqa`` commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from qa.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def _default_index() -> Path:
    from qa import settings

    return settings.load().index_dir


def index_option(fn: F) -> F:
    """``--index-dir`` (default: the NEWSQA_INDEX setting, else ``index``) of every command."""
    return click.option(
        "--index-dir",
        type=click.Path(path_type=Path),
        default=_default_index,
        show_default="index, or NEWSQA_INDEX",
        help="Index folder.",
    )(fn)


def backend_option(fn: F) -> F:
    """``--backend URI`` of the commands that index or search (validated when parsed)."""
    return click.option(
        "--backend",
        metavar="URI",
        default=None,
        callback=_backend_value,
        help="Search backend: embedded, milvus:PATH.db (a Milvus Lite file) or "
        "milvus://HOST:PORT (a Milvus server); default: NEWSQA_BACKEND, else the one the "
        "index was published to (embedded for a new index).",
    )(fn)


def ray_option(fn: F) -> F:
    """``--ray [ADDRESS]`` of ``import``: no value means a local Ray on this machine."""
    return click.option(
        "--ray",
        "ray_address",
        is_flag=False,
        flag_value="local",
        default=None,
        metavar="[ADDRESS]",
        help="Chunk and embed on a Ray cluster: its head's HOST:PORT (or ray://HOST:PORT); "
        "without an address, a local Ray on this machine. Give it after the files.",
    )(fn)


def _backend_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from qa import settings
    from qa.search.uri import parse_backend

    if value is None:
        return settings.load().backend
    try:
        return parse_backend(value).identity
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from exc


def corpus_option(help_text: str) -> Callable[[F], F]:
    """``--corpus`` (default: ``corpus``) of ``add`` and ``chat``, with what it is for."""
    return click.option(
        "--corpus",
        type=click.Path(path_type=Path),
        default=Path("corpus"),
        show_default=True,
        help=help_text,
    )


def reader_option(fn: F) -> F:
    """``--reader`` of ``ask``, ``chat`` and ``eval``."""
    return click.option(
        "--reader",
        default="auto",
        show_default=True,
        help="auto (the trained span reader when shipped, else sentence), span, sentence, "
        "or a QA model folder / Hugging Face id.",
    )(fn)


def search_filters(since: str | None, until: str | None, source: str | None) -> Any:
    """The ``--since``/``--until``/``--source`` options as search filters."""
    from qa.search.retriever import Filters

    out = [iso_date(name, value) for name, value in (("--since", since), ("--until", until))]
    return Filters(since=out[0], until=out[1], source=source or "")


def iso_date(name: str, value: str | None) -> str:
    """``value`` as an ISO date ("" when not given)."""
    from qa.ingest.files import parse_date

    iso = parse_date(value) if value else ""
    if value and not iso:
        raise UsageError(f"{name} {value!r} is not a date (use YYYY-MM-DD)")
    return iso


def as_of_day(name: str, value: str | None) -> Any:
    """``value`` as a date (None when not given)."""
    import datetime

    iso = iso_date(name, value)
    return datetime.date.fromisoformat(iso[:10]) if iso else None
