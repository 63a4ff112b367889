"""Widgets of the chat transcript: prompt, question, answer card with citations, inline lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Static

from qa.chats import Turn
from qa.text import printable
from qa.types import Citation, CitedArticle, by_article

HIGHLIGHT = "bold #1a1a1a on #e5c07b"


def shown(text: str, single_line: bool = True) -> Text:
    """Outside text (a title, URL, passage, question, error) as the chat shows it: never
    markup, with control characters made visible (terminal escapes never reach the terminal).

    Args:
        text: The text.
        single_line: Also show newlines as ``␊`` (everything but article text).
    """
    return Text(printable(text, single_line=single_line))


def citation_line(c: Citation) -> str:
    """``Title · 2018-01-30 · source · ¶4`` of a citation."""
    return printable(f"{c.title or '(untitled)'} · {_where(c, [c.paragraph])}", single_line=True)


def article_line(article: CitedArticle) -> str:
    """``[1, 3] Title · 2018-01-30 · source · ¶4, 9 URL`` of a cited article."""
    c = article.first
    line = f"{article.label} {c.title or '(untitled)'} · {_where(c, article.paragraphs)} {c.url}"
    return printable(line, single_line=True)


def _where(c: Citation, paragraphs: Sequence[int]) -> str:
    """``2018-01-30 · source · ¶4, 9``: when, who and where in the article."""
    where = c.source or _host(c.url) or "-"
    line = f"{c.date or 'undated'} · {where} · ¶{', '.join(str(p) for p in paragraphs)}"
    return printable(line, single_line=True)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    host = urlsplit(url).netloc
    return host[4:] if host.startswith("www.") else host


def answer_text(turn: Turn) -> Text:
    """The answer's sentence with the answer span highlighted and its citation number."""
    start, end = turn.span
    text = Text("“", style="dim")
    sentence = shown(turn.sentence, single_line=False)
    if end > start:
        sentence.stylize(HIGHLIGHT, start, end)
    text.append_text(sentence)
    text.append("”", style="dim")
    if turn.cited is not None:
        text.append(f" [{turn.cited}]", style="bold cyan")
    return text


def confidence_text(confidence: float) -> Text:
    """``confidence 0.83 ▰▰▰▰▱`` coloured by level."""
    filled = max(0, min(5, round(confidence * 5)))
    colour = "green" if confidence >= 0.8 else "yellow" if confidence >= 0.6 else "red"
    return Text.assemble(
        ("confidence ", "dim"),
        (f"{confidence:.2f} ", colour),
        ("▰" * filled, colour),
        ("▱" * (5 - filled), "dim"),
    )


def copy_text(turn: Turn) -> str:
    """What ``c`` copies: the answer, its sentence and its source."""
    cite = turn.citation
    question = printable(turn.question, single_line=True)
    if turn.answer is None:
        return f"Q: {question}\nNo answer in the corpus."
    url = printable(cite.url, single_line=True) if cite else ""
    ref = f"\n[{cite.n}] {citation_line(cite)} {url}".rstrip() if cite else ""
    answer, sentence = printable(turn.answer), printable(turn.sentence)
    return f"Q: {question}\nA: {answer}\n“{sentence}”{ref}"


class PromptInput(Input):
    """Question input: up/down walk the history, a multi-line paste becomes one line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Previous question", show=False),
        Binding("down", "history(1)", "Next question", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.history: list[str] = []
        self._pos = 0
        self._draft = ""

    def remember(self, text: str) -> None:
        """Add a submitted line to the history (no immediate repeats)."""
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._pos = len(self.history)
        self._draft = ""

    def action_history(self, step: int) -> None:
        """Show the previous (-1) or next (+1) history entry; past the end, the draft."""
        if not self.history:
            return
        if self._pos == len(self.history):
            self._draft = self.value
        self._pos = max(0, min(len(self.history), self._pos + step))
        self.value = self.history[self._pos] if self._pos < len(self.history) else self._draft
        self.cursor_position = len(self.value)

    async def action_submit(self) -> None:
        """Submit the line and empty the input at once: Enters that arrive in the same burst,
        before the app has handled the first, find it empty and ask nothing more."""
        await super().action_submit()
        self.value = ""

    def _on_paste(self, event: events.Paste) -> None:
        text = " ".join(event.text.split())
        if text:
            self.insert_text_at_cursor(text)
        event.stop()
        event.prevent_default()


class QuestionView(Static):
    """A question as asked."""

    DEFAULT_CSS = """
    QuestionView { margin: 1 0 0 0; padding: 0 1; color: $text; text-style: bold; }
    """

    def __init__(self, question: str) -> None:
        super().__init__(Text.assemble(("› ", "bold cyan"), shown(question)))


class SystemLine(Static):
    """An inline line: command feedback (dim) or an error (red, class ``-error``)."""

    DEFAULT_CSS = """
    SystemLine { padding: 0 1 0 3; color: $text-muted; }
    SystemLine.-error { color: $error; }
    """

    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__(shown(("✗ " if error else "· ") + text), classes="-error" if error else "")


class SourceRow(Horizontal):
    """One cited article: its citation numbers and title (cut to fit), then date · source ·
    paragraphs; a click opens the passage holding the answer when it is here, else the first."""

    DEFAULT_CSS = """
    SourceRow { height: 1; padding: 0 0 0 1; }
    SourceRow:hover { background: $boost; }
    SourceRow .title { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    SourceRow .where { width: auto; height: 1; color: $text-muted; padding: 0 0 0 2; }
    """

    def __init__(self, article: CitedArticle, cited: int | None) -> None:
        super().__init__()
        self.article = article
        self.marked = cited is not None and article.holds([cited])
        self.opens = article.opens(cited)

    def compose(self) -> ComposeResult:
        """Numbers and title, then where it is from."""
        c = self.article.first
        title = printable(c.title, single_line=True) or "(untitled)"
        yield Static(
            Text.assemble(
                ("*" if self.marked else " ", "bold cyan"),
                (f"{self.article.label} ", "bold cyan"),
                (title, "bold" if self.marked else ""),
            ),
            classes="title",
        )
        yield Static(Text(_where(c, self.article.paragraphs)), classes="where")

    def on_click(self, event: events.Click) -> None:
        """Open the row's passage."""
        event.stop()
        card = next((a for a in self.ancestors if isinstance(a, AnswerCard)), None)
        if card is not None:
            card.focus()
            card.post_message(AnswerCard.OpenCitation(card.turn, self.opens.n))


class AnswerCard(Vertical, can_focus=True):
    """The answer to one question: highlighted sentence, confidence, numbered citations."""

    DEFAULT_CSS = """
    AnswerCard {
        height: auto; margin: 0 0 0 2; padding: 0 1; border: round $success 60%;
        border-title-color: $success; border-subtitle-color: $text-muted;
    }
    AnswerCard:focus { border: round $success; background: $boost; }
    AnswerCard.-none { border: dashed $warning 60%; border-title-color: $warning; }
    AnswerCard.-none:focus { border: dashed $warning; }
    AnswerCard .meta { color: $text-muted; }
    AnswerCard .none { color: $warning; text-style: bold; }
    AnswerCard .searched { color: $text-muted; text-style: italic; }
    AnswerCard .sources { margin: 1 0 0 0; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "open_citation(1)", "Source", key_display="1-9"),
        *(Binding(str(n), f"open_citation({n})", show=False) for n in range(2, 10)),
        Binding("enter", "open_citation(0)", "Open cited", show=False),
        Binding("c", "copy_answer", "Copy"),
        Binding("y", "copy_citations", "Copy cites"),
        Binding("o", "open_url", "Open URL"),
        Binding("up,k", "step(-1)", "Previous", show=False),
        Binding("down,j", "step(1)", "Next", show=False),
        Binding("escape,i", "to_input", "Ask", show=False),
    ]

    class OpenCitation(Message):
        """Open citation ``n`` of ``turn`` in the source viewer."""

        def __init__(self, turn: Turn, n: int) -> None:
            super().__init__()
            self.turn = turn
            self.n = n

    class OpenURL(Message):
        """Open a URL in the browser."""

        def __init__(self, url: str) -> None:
            super().__init__()
            self.url = url

    def __init__(self, turn: Turn) -> None:
        super().__init__(classes="-none" if turn.answer is None else "")
        self.turn = turn
        self.border_title = (
            "No answer"
            if turn.answer is None
            else "Answer (best sentence, no exact span)"
            if turn.kind == "sentence"
            else "Answer"
        )
        self.border_subtitle = "1-9 source · c copy · o open"

    def compose(self) -> ComposeResult:
        """Answer (or the no-answer notice), rewrite note and citations."""
        t = self.turn
        took = f" · {t.seconds:.2f} s" if t.seconds else ""
        where = f" · {t.filters}" if t.filters else ""
        if t.answer is not None:
            yield Static(answer_text(t), classes="answer")
            meta = confidence_text(t.confidence)
            meta.append(printable(f"{took}{where}", single_line=True), style="dim")
            yield Static(meta, classes="meta")
        else:
            yield Static("No answer in the corpus.", classes="none")
            yield Static(
                shown(
                    f"Nothing cleared the confidence threshold (best guess "
                    f"{t.confidence:.2f}){took}{where}"
                ),
                classes="meta",
            )
        if t.searched_for:
            yield Static(shown(f"searched for: {t.searched_for}"), classes="searched")
        if t.citations:
            label = "Sources" if t.answer is not None else "Closest passages"
            yield Static(label, classes="sources")
        for article in by_article(t.citations):
            yield SourceRow(article, t.cited)

    def action_open_citation(self, n: int) -> None:
        """Open citation ``n`` (0: the one the answer comes from, else the first)."""
        if n == 0:
            n = self.turn.cited or 1
        if any(c.n == n for c in self.turn.citations):
            self.post_message(self.OpenCitation(self.turn, n))
        else:
            self.notify(f"no citation [{n}] on this answer", severity="warning", markup=False)

    def action_copy_answer(self) -> None:
        """Copy the answer with its sentence and source (OSC 52)."""
        self.app.copy_to_clipboard(copy_text(self.turn))
        self.notify("answer copied")

    def action_copy_citations(self) -> None:
        """Copy the numbered citations, one line per article."""
        lines = [article_line(a).rstrip() for a in by_article(self.turn.citations)]
        self.app.copy_to_clipboard("\n".join(lines))
        self.notify(f"{len(self.turn.citations)} citation(s) copied")

    def action_open_url(self) -> None:
        """Open the URL of the cited (or first) source."""
        cite = self.turn.citation or (self.turn.citations[0] if self.turn.citations else None)
        if cite is None or not cite.url:
            self.notify("this source has no URL", severity="warning")
            return
        self.post_message(self.OpenURL(cite.url))

    def action_step(self, step: int) -> None:
        """Focus the previous/next answer card."""
        cards = list(self.screen.query(AnswerCard))
        i = cards.index(self) + step
        if 0 <= i < len(cards):
            cards[i].focus()
            cards[i].scroll_visible()
        elif step > 0:
            self.action_to_input()

    def action_to_input(self) -> None:
        """Back to the question input."""
        self.screen.query_one(PromptInput).focus()
