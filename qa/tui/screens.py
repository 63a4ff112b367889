"""Screens: the source viewer, the help screen and the list of saved chats."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from qa.chats import ChatStore, ChatSummary
from qa.text import paragraph_spans, printable
from qa.tui.backend import ArticleView
from qa.tui.commands import COMMANDS
from qa.tui.widgets import HIGHLIGHT, AnswerCard, citation_line, shown
from qa.types import Citation

HELP_KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Anywhere",
        (
            ("ctrl+q", "quit"),
            ("f1 / ?", "this help (? when not typing)"),
            ("ctrl+n", "new chat (the current one stays saved)"),
            ("f2 / ctrl+h", "saved chats: reopen or delete one"),
            ("ctrl+p", "command palette"),
            ("tab / shift+tab", "move between the input and the answer cards"),
        ),
    ),
    (
        "Question input",
        (
            ("enter", "ask (or run a /command)"),
            ("up / down", "previous / next question asked"),
            ("escape", "focus the latest answer card"),
        ),
    ),
    (
        "Answer card",
        (
            ("1-9 / click", "open citation n in the source viewer"),
            ("enter", "open the citation the answer comes from"),
            ("c", "copy the answer with its sentence and source"),
            ("y", "copy the citations"),
            ("o", "open the cited article's URL in a browser"),
            ("up / down (k / j)", "previous / next answer card"),
            ("escape / i", "back to the question input"),
        ),
    ),
    (
        "Source viewer",
        (
            ("escape / q", "back to the chat"),
            ("c", "copy the cited passage with its reference"),
            ("y", "copy the URL"),
            ("o", "open the URL in a browser"),
            ("left / right", "previous / next citation of the answer"),
        ),
    ),
    (
        "Saved chats",
        (
            ("enter", "reopen the chat"),
            ("d / delete", "delete the chat"),
            ("escape", "close"),
        ),
    ),
    (
        "Error panel",
        (
            ("i", "index corpus/ now (when there is no index)"),
            ("r", "retry loading the index and models"),
        ),
    ),
)


class SourceViewer(VerticalScroll):
    """The article text, cited paragraph marked, answer span highlighted."""

    DEFAULT_CSS = """
    SourceViewer { padding: 0 2; }
    SourceViewer > .para { margin: 0 0 1 0; }
    SourceViewer > .-cited { background: $boost; border-left: thick $accent; padding: 0 1; }
    """


class SourceScreen(Screen[None]):
    """One cited article: title, date, URL and full text, scrolled to the cited paragraph.

    Args:
        turn_citations: All citations of the answer (left/right step through them).
        n: Number of the citation shown.
        article: The article from the store (None: only the passage is known).
    """

    DEFAULT_CSS = """
    SourceScreen #head { height: auto; padding: 0 2; border-bottom: solid $primary; }
    SourceScreen #title { text-style: bold; color: $text; }
    SourceScreen #meta { color: $text-muted; }
    SourceScreen #url { color: $accent; text-style: underline; }
    SourceScreen #note { color: $warning; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Back"),
        Binding("c", "copy_quote", "Copy passage"),
        Binding("y", "copy_url", "Copy URL"),
        Binding("o", "open_url", "Open URL"),
        Binding("left", "step(-1)", "Prev cite"),
        Binding("right", "step(1)", "Next cite"),
    ]

    def __init__(
        self, citation: Citation, article: ArticleView | None, citations: tuple[Citation, ...] = ()
    ) -> None:
        super().__init__()
        self.citation = citation
        self.article = article
        self.citations = citations or (citation,)

    def compose(self) -> ComposeResult:
        """Header (title, date · source · URL) and the article text."""
        c, a = self.citation, self.article
        with Vertical(id="head"):
            yield Static(shown(f"[{c.n}] {a.title if a else c.title}"), id="title")
            source = a.source if a else c.source
            meta = f"{(a.date if a else c.date) or 'undated'}" + (f" · {source}" if source else "")
            yield Static(shown(meta), id="meta")
            yield Static(shown((a.url if a else c.url) or "no URL"), id="url")
            if a is None:
                yield Static("The article is no longer in the index; the cited passage:", id="note")
        with SourceViewer(id="article"):
            yield from self._paragraphs()
        yield Footer()

    def _paragraphs(self) -> list[Static]:
        c = self.citation
        # One character for one: the offsets of the citation still point into the text.
        text = printable(self.article.text if self.article else c.passage)
        passage = printable(c.passage)
        p_start = c.article_start - (c.start or 0) if self.article else 0
        if text[p_start : p_start + len(passage)] != passage:
            found = text.find(passage)
            p_start = found if found >= 0 else -1
        p_end = p_start + len(passage) if p_start >= 0 else -1
        span = None
        if c.start is not None and c.end is not None and p_start >= 0:
            span = (p_start + c.start, p_start + c.end)
        out = []
        for a, b in paragraph_spans(text) or [(0, len(text))]:
            para = Text(text[a:b])
            cited = p_start >= 0 and a < p_end and b > p_start
            if span and span[0] < b and span[1] > a:
                para.stylize(HIGHLIGHT, max(0, span[0] - a), min(b, span[1]) - a)
            out.append(Static(para, classes="para -cited" if cited else "para"))
        return out

    def on_mount(self) -> None:
        """Bring the cited paragraph into view."""
        self.call_after_refresh(self._scroll_to_cited)

    def _scroll_to_cited(self) -> None:
        cited = self.query(".-cited")
        if cited:
            self.query_one(SourceViewer).scroll_to_center(cited.first(), animate=False)

    def action_copy_quote(self) -> None:
        """Copy the cited passage with its reference."""
        c = self.citation
        url = printable(c.url, single_line=True)
        quote = f"“{printable(c.passage)}”\n— [{c.n}] {citation_line(c)} {url}".rstrip()
        self.app.copy_to_clipboard(quote)
        self.notify("passage copied")

    def action_copy_url(self) -> None:
        """Copy the article URL."""
        self.app.copy_to_clipboard(printable(self.citation.url, single_line=True))
        self.notify("URL copied" if self.citation.url else "no URL to copy")

    def action_open_url(self) -> None:
        """Open the article URL in a browser."""
        if self.citation.url:
            self.app.post_message(AnswerCard.OpenURL(self.citation.url))
        else:
            self.notify("this source has no URL", severity="warning")

    def action_step(self, step: int) -> None:
        """Show the previous/next citation of the same answer."""
        ns = [c.n for c in self.citations]
        i = ns.index(self.citation.n) + step if self.citation.n in ns else -1
        if 0 <= i < len(ns):
            self.app.post_message(SwitchCitation(self.citations[i]))


class SwitchCitation(Message):
    """Replace the source viewer with another citation of the same answer."""

    def __init__(self, citation: Citation) -> None:
        super().__init__()
        self.citation = citation


def help_table() -> Table:
    """All key bindings and slash commands as one table."""
    table = Table(box=None, show_header=False, padding=(0, 2), expand=True)
    table.add_column(style="bold cyan", no_wrap=True, width=20)
    table.add_column(ratio=1)
    for section, rows in HELP_KEYS:
        table.add_row(Text(section, style="bold underline"), "")
        for key, what in rows:
            table.add_row(key, what)
        table.add_row("", "")
    table.add_row(Text("Slash commands (type in the input)", style="bold underline"), "")
    for usage, what in COMMANDS:
        table.add_row(usage, what)
    return table


class HelpScreen(ModalScreen[None]):
    """Every binding and command."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 95%; height: 90%; border: thick $primary; padding: 0 1;
        background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f1,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        """The table in a scrollable frame."""
        with VerticalScroll() as frame:
            frame.border_title = "newsqa chat · help"
            yield Static(help_table())


def chat_label(chat: ChatSummary) -> Text:
    """``title  · 3 turns · 2025-11-25 02:40`` for the chat list."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(chat.updated))
    return Text.assemble(
        (printable(chat.title, single_line=True) or "(untitled)", "bold"),
        (f"  · {chat.turns} turn{'s' if chat.turns != 1 else ''} · {when}", "dim"),
    )


class ChatsScreen(ModalScreen[int | None]):
    """Saved chats; dismisses with the id of the one to reopen.

    Args:
        store: The chat store.
        current: Id of the chat on screen (marked).
    """

    DEFAULT_CSS = """
    ChatsScreen { align: center middle; }
    ChatsScreen > OptionList {
        width: 90; max-width: 95%; height: 70%; border: thick $primary; background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("d,delete", "delete", "Delete"),
    ]

    def __init__(self, store: ChatStore, current: int | None = None) -> None:
        super().__init__()
        self.store = store
        self.current = current

    def compose(self) -> ComposeResult:
        """The list (most recent first)."""
        chats = self.store.chats()
        options = [Option(chat_label(c), id=str(c.id)) for c in chats]
        lst = OptionList(*options, id="chats")
        lst.border_title = "Saved chats · enter reopen · d delete · esc close"
        if not chats:
            lst.add_option(Option("No saved chats yet.", disabled=True))
        yield lst

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Reopen the chosen chat."""
        if event.option.id:
            self.dismiss(int(event.option.id))

    def action_delete(self) -> None:
        """Delete the highlighted chat."""
        lst = self.query_one(OptionList)
        option = lst.highlighted_option
        if option is None or not option.id:
            return
        self.store.delete(int(option.id))
        lst.remove_option(option.id)
        self.notify("chat deleted")
