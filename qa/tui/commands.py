"""Slash commands of the chat input: ``/since``, ``/until``, ``/source``, ``/k``, ``/clear`` ...

Parsing is pure (no UI), so every command and every bad value is unit-testable; the app turns
a :class:`CommandResult` into a settings change, a new chat or an inline line.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace

MAX_K = 50
CLEAR_WORDS = frozenset({"", "off", "none", "any", "all", "clear", "-"})

COMMANDS: tuple[tuple[str, str], ...] = (
    ("/since DATE", "only articles on or after DATE (2022-06-01, 2022-06, 2022; off)"),
    ("/until DATE", "only articles on or before DATE (off to clear)"),
    ("/source TEXT", "only articles whose source contains TEXT (cnn; off to clear)"),
    ("/k N", f"passages retrieved and cited (1-{MAX_K})"),
    ("/filters", "show the filters and k in force"),
    ("/clear", "start a new chat (the old one stays saved; also /new)"),
    ("/index", "index the corpus folder now (offered when there is no index)"),
    ("/reload", "load the index and models again"),
    ("/help", "list these commands"),
)


@dataclass(frozen=True)
class ChatSettings:
    """Retrieval settings of the chat (shown in the status bar)."""

    since: str = ""
    until: str = ""
    source: str = ""
    k: int = 5

    def describe(self) -> str:
        """Filters in force as short text ("" when none)."""
        parts = []
        if self.since:
            parts.append(f"since {self.since}")
        if self.until:
            parts.append(f"until {self.until}")
        if self.source:
            parts.append(f"source ~ {self.source}")
        return ", ".join(parts)


@dataclass(frozen=True)
class CommandResult:
    """What a slash command asks for.

    Attributes:
        settings: The new settings (unchanged when the command does not touch them).
        message: A line to show in the transcript.
        error: True when the command or its value was invalid (the line says why).
        action: ``clear`` (new chat), ``index``, ``retry``, ``help`` or "".
    """

    settings: ChatSettings
    message: str
    error: bool = False
    action: str = ""


def _date(value: str, end: bool) -> str:
    """ISO date of a full date, a month (``2022-06``) or a year; end picks the last day."""
    m = re.fullmatch(r"(\d{4})(?:[-/](\d{1,2}))?", value)
    if m:
        year = int(m.group(1))
        month = int(m.group(2)) if m.group(2) else (12 if end else 1)
        if not 1 <= month <= 12:
            return ""
        day = calendar.monthrange(year, month)[1] if end else 1
        return f"{year:04d}-{month:02d}-{day:02d}"
    from qa.ingest.dates import parse_date

    return parse_date(value)


def _with_date(settings: ChatSettings, field: str, iso: str) -> ChatSettings:
    return replace(settings, since=iso) if field == "since" else replace(settings, until=iso)


def is_command(text: str) -> bool:
    """True when the input is a slash command (not a question)."""
    return text.lstrip().startswith("/")


def _date_command(name: str, arg: str, settings: ChatSettings) -> CommandResult:
    """``/since`` or ``/until`` (``name``) with its argument."""
    field = name[1:]
    if arg.lower() in CLEAR_WORDS:
        return CommandResult(_with_date(settings, field, ""), f"{field}: off")
    iso = _date(arg, end=field == "until")
    if not iso:
        return CommandResult(
            settings,
            f"{name} {arg!r} is not a date: use YYYY-MM-DD, YYYY-MM or YYYY",
            error=True,
        )
    new = _with_date(settings, field, iso)
    if new.since and new.until and new.since > new.until:
        return CommandResult(settings, f"since {new.since} is after until {new.until}", error=True)
    return CommandResult(new, f"{field}: {iso}")


def run_command(text: str, settings: ChatSettings) -> CommandResult:
    """Apply one slash command.

    Args:
        text: The input, starting with ``/``.
        settings: The settings in force.

    Returns:
        The new settings and the line to show; invalid input gives ``error=True``.
    """
    name, _, arg = text.strip().partition(" ")
    name = name.lower()
    arg = " ".join(arg.split())
    if name in ("/since", "/until"):
        return _date_command(name, arg, settings)
    if name == "/source":
        value = "" if arg.lower() in CLEAR_WORDS else arg
        return CommandResult(replace(settings, source=value), f"source: {value or 'any'}")
    if name == "/k":
        if not arg.isdigit() or not 1 <= int(arg) <= MAX_K:
            return CommandResult(settings, f"/k needs a whole number from 1 to {MAX_K}", error=True)
        return CommandResult(replace(settings, k=int(arg)), f"k: {int(arg)}")
    if name == "/filters":
        return CommandResult(settings, f"filters: {settings.describe() or 'none'}; k {settings.k}")
    if name in ("/clear", "/new"):
        return CommandResult(settings, "new chat", action="clear")
    if name == "/index":
        return CommandResult(settings, "indexing", action="index")
    if name in ("/reload", "/retry"):
        return CommandResult(settings, "reloading", action="retry")
    if name in ("/help", "/?"):
        lines = [f"{usage:14} {what}" for usage, what in COMMANDS]
        return CommandResult(settings, "\n".join(lines), action="help")
    return CommandResult(settings, f"unknown command {name}: try /help", error=True)
