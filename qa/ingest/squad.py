"""SQuAD files (v1.1 and v2.0): the one reader of their json, for ingest, eval and training.

A SQuAD document is ``{"data": [article, ...]}``; an article has a ``title`` and
``paragraphs``, a paragraph a ``context`` and ``qas``, a question an ``id``, its ``question``
text, ``answers`` (``text`` and the character offset ``answer_start`` in the context) and, in
v2.0, ``is_impossible`` (with no answers). ``newsqa import`` stores each paragraph as an
article at :func:`paragraph_url`, which is how ``newsqa eval`` finds a question's gold passage.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import UsageError

__all__ = [
    "Malformed",
    "Paragraph",
    "SquadAnswer",
    "SquadQuestion",
    "flatten",
    "is_squad",
    "load_articles",
    "paragraph_url",
    "paragraphs",
    "read_text",
]

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class SquadAnswer:
    """A gold answer: its text and where it starts in the paragraph (characters)."""

    text: str
    start: int


@dataclass(frozen=True)
class SquadQuestion:
    """One question with its paragraph, in file order.

    Attributes:
        id: The question's id (as a string).
        question: The question text.
        context: Its paragraph.
        title: The article's title ("" when the article has none).
        paragraph: Index of the paragraph in its article.
        answers: Gold answers as in the file (empty for most v2.0 unanswerable questions).
        is_impossible: v2.0's mark of a question the paragraph does not answer.
    """

    id: str
    question: str
    context: str
    title: str
    paragraph: int
    answers: tuple[SquadAnswer, ...]
    is_impossible: bool = False

    @property
    def answer_texts(self) -> tuple[str, ...]:
        """The gold answers' texts."""
        return tuple(a.text for a in self.answers)

    @property
    def url(self) -> str:
        """The URL ``newsqa import`` gives this question's paragraph."""
        return paragraph_url(self.title, self.paragraph)


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of a SQuAD article."""

    title: str
    index: int
    context: str
    qas: list[Any]

    @property
    def url(self) -> str:
        """The URL ``newsqa import`` gives this paragraph."""
        return paragraph_url(self.title, self.index)


@dataclass(frozen=True)
class Malformed:
    """An article or paragraph that cannot be read, and why."""

    reason: str


def paragraph_url(title: str, index: int) -> str:
    """``squad://<title>#<paragraph index>``: the stable identity of an imported paragraph."""
    return f"squad://{title}#{index}"


def is_squad(value: object) -> bool:
    """Whether a decoded json document has SQuAD's shape (a ``data`` list of articles)."""
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        return False
    return all(isinstance(item, dict) and "paragraphs" in item for item in value["data"])


def read_text(path: Path) -> str:
    """The text of a file, gunzipped when it is gzip data (whatever its name says).

    Raises:
        OSError: The file cannot be read (or is truncated gzip data).
        UnicodeDecodeError: It is not UTF-8.
    """
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    return data.decode("utf-8")


def load_articles(path: Path) -> list[dict[str, Any]]:
    """The articles (the ``data`` list) of a SQuAD ``.json`` or ``.json.gz`` file.

    Raises:
        UsageError: The file cannot be read, or is not a SQuAD json file.
    """
    try:
        text = read_text(path)
    except (OSError, EOFError) as exc:  # EOFError: a truncated gzip stream
        raise UsageError(f"{path}: cannot read it ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not a SQuAD json file (not UTF-8 text)") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path} is not a SQuAD json file (not json: {exc})") from exc
    if not is_squad(doc):
        raise UsageError(f"{path} is not a SQuAD json file (no 'data' list of articles)")
    articles: list[dict[str, Any]] = doc["data"]
    return articles


def paragraphs(articles: Sequence[object]) -> Iterator[Paragraph | Malformed]:
    """Every paragraph of the articles in file order, or why one cannot be read."""
    for number, item in enumerate(articles):
        raw_title = item.get("title") if isinstance(item, dict) else None
        paras = item.get("paragraphs") if isinstance(item, dict) else None
        if not isinstance(raw_title, str) or not isinstance(paras, list):
            yield Malformed(f"SQuAD article {number}: no title or paragraphs list")
            continue
        for index, para in enumerate(paras):
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str) or not context.strip():
                yield Malformed(f"SQuAD {raw_title!r} paragraph {index}: no context")
                continue
            qas = para.get("qas", [])
            yield Paragraph(raw_title, index, context, qas if isinstance(qas, list) else [])


def flatten(articles: Sequence[object]) -> list[SquadQuestion]:
    """All questions of the articles, in file order.

    Raises:
        UsageError: An article, paragraph or question lacks what SQuAD requires.
    """
    out: list[SquadQuestion] = []
    for para in paragraphs(articles):
        if isinstance(para, Malformed):
            raise UsageError(f"not a SQuAD file: {para.reason}")
        for number, qa in enumerate(para.qas):
            try:
                out.append(_question(para, qa))
            except (KeyError, TypeError, ValueError) as exc:
                where = f"SQuAD {para.title!r} paragraph {para.index} question {number}"
                reason = f"{type(exc).__name__}: {exc}"
                raise UsageError(f"not a SQuAD file: {where} ({reason})") from exc
    return out


def _question(para: Paragraph, qa: dict[str, Any]) -> SquadQuestion:
    return SquadQuestion(
        id=str(qa["id"]),
        question=qa["question"],
        context=para.context,
        title=para.title,
        paragraph=para.index,
        answers=tuple(
            SquadAnswer(a["text"], int(a["answer_start"])) for a in qa.get("answers") or ()
        ),
        is_impossible=bool(qa.get("is_impossible")),
    )
