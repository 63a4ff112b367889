"""Panels around the transcript: the error panel, the spinner line and the status bar."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, ProgressBar, Static

from qa.index.summary import IndexSummary
from qa.text import printable

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


class ErrorPanel(Vertical):
    """A readable error with what to do about it, and buttons to act on it."""

    DEFAULT_CSS = """
    ErrorPanel {
        height: auto; margin: 1 0 0 2; padding: 0 1; border: heavy $error;
        border-title-color: $error; border-title-style: bold;
    }
    ErrorPanel .message { text-style: bold; }
    ErrorPanel .fix { color: $text-muted; margin: 1 0 0 0; }
    ErrorPanel Horizontal { height: auto; margin: 1 0 0 0; }
    ErrorPanel Button { margin: 0 2 0 0; }
    ErrorPanel ProgressBar { margin: 1 0 0 0; }
    ErrorPanel .progress { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "press('index')", "Index corpus"),
        Binding("r", "press('retry')", "Retry"),
    ]

    class Action(Message):
        """A button of the panel was chosen: ``index`` or ``retry``."""

        def __init__(self, action: str) -> None:
            super().__init__()
            self.action = action

    def __init__(
        self, title: str, message: str, fix: str, offer_index: str = "", retry: bool = True
    ) -> None:
        super().__init__()
        self.border_title = title
        self.message = message
        self.fix = fix
        self.offer_index = offer_index
        self.retry = retry

    def compose(self) -> ComposeResult:
        """Message, fix, buttons and a hidden progress bar."""
        yield Static(Text(printable(self.message, single_line=True)), classes="message")
        yield Static(Text(f"Fix: {self.fix}"), classes="fix")
        with Horizontal():
            if self.offer_index:
                label = Text(printable(f"Index {self.offer_index} now (i)", single_line=True))
                yield Button(label, id="index", variant="primary")
            if self.retry:
                yield Button("Retry (r)", id="retry")
        yield ProgressBar(total=None, show_eta=False, id="index-progress")
        yield Static("", classes="progress")

    def on_mount(self) -> None:
        """Progress stays hidden until indexing starts."""
        self.query_one(ProgressBar).display = False

    def show_progress(self, done: int, total: int | None, note: str = "") -> None:
        """Show indexing progress."""
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=total if total else None, progress=done)
        note = printable(note or f"indexing: {done} articles", single_line=True)
        self.query_one(".progress", Static).update(Text(note))
        for b in self.query(Button):
            b.disabled = True

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.Action(event.button.id or ""))

    def action_press(self, action: str) -> None:
        """Keyboard shortcut of a button."""
        if self.query(f"#{action}") and not self.query_one(f"#{action}", Button).disabled:
            self.post_message(self.Action(action))


class WorkingLine(Static):
    """Spinner with what is going on (hidden when idle)."""

    DEFAULT_CSS = """
    WorkingLine { height: 1; padding: 0 1; color: $accent; display: none; }
    WorkingLine.-busy { display: block; }
    """

    def __init__(self) -> None:
        super().__init__("", id="working")
        self._label = ""
        self._since = 0.0
        self._frame = 0

    def on_mount(self) -> None:
        """Animate at 10 frames a second."""
        self._timer = self.set_interval(0.1, self._tick, pause=True)

    def start(self, label: str) -> None:
        """Show the spinner with ``label``."""
        if not self.has_class("-busy"):
            self._since = time.monotonic()
        self._label = label
        self.add_class("-busy")
        self._timer.resume()
        self._tick()

    def stop(self) -> None:
        """Hide the spinner."""
        self.remove_class("-busy")
        self._timer.pause()

    def _tick(self) -> None:
        self._frame = (self._frame + 1) % len(SPINNER)
        took = time.monotonic() - self._since
        label = printable(self._label, single_line=True)
        self.update(Text(f"{SPINNER[self._frame]} {label}  {took:.1f} s"))


class StatusBar(Static):
    """One line: models, index counts and last update, filters, k."""

    DEFAULT_CSS = """
    StatusBar { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """

    def show(
        self, models: str, info: IndexSummary | None, index_note: str, filters: str, k: int
    ) -> None:
        """Redraw the bar."""
        colour = {"ready": "green", "loading": "yellow", "indexing": "yellow"}.get(models, "red")
        label = {"loading": "loading models"}.get(models, models)
        text = Text.assemble(("● ", colour), (label, ""), (" │ ", "dim"))
        if info is None:
            text.append(printable(index_note or "no index", single_line=True), style="red")
        else:
            updated = info.updated_at.replace("T", " ")[:16] or "-"
            text.append(
                f"{_count(info.articles, 'article')} · "
                f"{_count(info.passages, 'passage')} · gen {info.generation} · "
                f"updated {updated}"
            )
        text.append(" │ ", style="dim")
        text.append(printable(f"k {k}" + (f" · {filters}" if filters else ""), single_line=True))
        self.update(text)
