"""Fakes for the chat app tests (no tests here): canned Responses built from the real types."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.pilot import Pilot

from qa.answer import citation_for
from qa.search.retriever import Filters
from qa.tui import ArticleView, IndexSummary, create_app
from qa.tui.app import NewsQAApp
from qa.types import Answer, Hit, Passage, Response, Span

URL = (
    "https://www.themoscowtimes.com/2018/01/30/"
    "putin-stages-syria-peace-conference-boycotted-by-assad-opponents-a60333"
)
TITLE = "Putin's Syria Peace Conference Boycotted by Assad Opponents"
PARAGRAPHS = (
    [
        "(Bloomberg) — Russia is hosting a Syria peace summit in the Black Sea resort of Sochi, "
        "with its hopes for securing an internationally-backed plan dashed as the opposition "
        "boycotts the initiative.",
        "More than two years since Russia's military intervention in the war-torn country, it's "
        "succeeded in decisively shoring up ally Bashar al-Assad.",
        "President Vladimir Putin declared victory in Syria during a visit to a Russian air base "
        "in December.",
        "The Kremlin invited 1,600 Syrians to Sochi but the main opposition faction said it "
        "wouldn't attend because the conference was an attempt to usurp the role of United "
        "Nations-led talks in Geneva.",
        "\"We understand there's no likelihood of an immediate breakthrough in the political "
        "resolution in Syria,\" Putin's spokesman, Dmitry Peskov, told reporters.",
    ]
    + [f"Filler paragraph {i} about the war in Syria and the talks." for i in range(1, 13)]
    + [
        "Russia will ask the UN to take the lead in discussions on a new constitution for Syria, "
        "said its envoy, Alexander Lavrentiev.",
    ]
)
ARTICLE_TEXT = "\n\n".join(PARAGRAPHS)
ARTICLE_ID = "a1b2c3d4e5f60718"
ANSWER_SPAN = "the main opposition faction"
# A second article: a syndicated wire story, cited between passages of the first.
OTHER_ID = "f0e1d2c3b4a59687"
OTHER_TITLE = "Syrian opposition stays away from Sochi [wire]"
OTHER_URL = "https://wire.example/2018/01/30/sochi-boycott"
OTHER_TEXT = "The opposition said the Sochi meeting would undermine the Geneva talks."
INFO = IndexSummary(articles=1, passages=18, generation=1, updated_at="2025-01-30T10:00:00")


def _hit(paragraph: int, rank: int, score: float) -> Hit:
    text = PARAGRAPHS[paragraph]
    start = ARTICLE_TEXT.index(text)
    passage = Passage(
        id=f"p{paragraph}",
        article_id=ARTICLE_ID,
        paragraph=paragraph,
        start=start,
        end=start + len(text),
        text=text,
        title=TITLE,
    )
    return Hit(
        passage=passage,
        score=score,
        rank=rank,
        title=TITLE,
        date="2018-01-30",
        url=URL,
        source="The Moscow Times",
        dense_score=score,
    )


def _other_hit(rank: int, score: float) -> Hit:
    passage = Passage("q0", OTHER_ID, 2, 0, len(OTHER_TEXT), OTHER_TEXT, OTHER_TITLE)
    return Hit(passage, score, rank, OTHER_TITLE, "2018-01-31", OTHER_URL, "", score)


def make_response(question: str, answered: bool = True, other_article: bool = False) -> Response:
    """A response citing three passages of one article; the answer (if any) is in the second.

    With ``other_article``, a passage of another article is cited second (the answer's
    passage third).
    """
    hits = [_hit(0, 0, 0.71), _hit(3, 1, 0.69), _hit(17, 2, 0.52)]
    if other_article:
        hits.insert(1, _other_hit(1, 0.7))
    answer = None
    answers: list[Answer] = []
    if answered:
        held = hits[2 if other_article else 1]
        text = held.passage.text
        a = text.index(ANSWER_SPAN)
        answer = Answer(
            text=ANSWER_SPAN,
            sentence=text,
            confidence=0.83,
            hit=held,
            span=Span(a, a + len(ANSWER_SPAN)),
            sentence_span=Span(0, len(text)),
        )
        answers = [answer]
    else:
        guess = hits[0].passage.text
        answers = [
            Answer(
                text=guess,
                sentence=guess,
                confidence=0.21,
                hit=hits[0],
                span=Span(0, len(guess)),
                sentence_span=Span(0, len(guess)),
            )
        ]
    citations = [citation_for(i + 1, h, answer) for i, h in enumerate(hits)]
    return Response(question, answer, answers, citations, hits, {"total": 12.0}, question)


class FakeAnswerer:
    """Answers every question with the boycott passage, except off-topic ones (no answer).

    Args:
        gate: When given, ``warm_up`` waits for it (a slow model load).
        fail: Raised by ``warm_up`` (no index, corrupt index ...).
        other_article: Cite a passage of a second article too (see :func:`make_response`).
    """

    def __init__(
        self,
        gate: threading.Event | None = None,
        fail: Exception | None = None,
        other_article: bool = False,
    ) -> None:
        self.gate = gate
        self.fail = fail
        self.other_article = other_article
        self.asked: list[tuple[str, int, Filters | None]] = []
        self.read: list[str] = []

    def warm_up(self) -> None:
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail is not None:
            raise self.fail

    def ask(
        self,
        question: str,
        k: int = 5,
        filters: Filters | None = None,
        search_query: str | None = None,
    ) -> Response:
        # What was searched for (as the retriever sees it), and what the reader read.
        self.asked.append((search_query or question, k, filters))
        self.read.append(question)
        off_topic = any(w in question.lower() for w in ("tungsten", "boiling"))
        return make_response(question, not off_topic, self.other_article)

    def article(self, article_id: str) -> ArticleView | None:
        if article_id != ARTICLE_ID:
            return None
        return ArticleView(ARTICLE_ID, TITLE, "2018-01-30", URL, "The Moscow Times", ARTICLE_TEXT)


def fake_app(
    tmp_path: Path,
    answerer: FakeAnswerer | None = None,
    info: IndexSummary | None = INFO,
    **kwargs: object,
) -> NewsQAApp:
    """The chat app on a fake answerer, chats saved under ``tmp_path``."""
    fake = answerer or FakeAnswerer()
    return create_app(
        answerer_factory=lambda _dir: fake,
        index_dir=tmp_path,
        status_reader=lambda _dir: info,
        **kwargs,
    )  # type: ignore[arg-type]


async def settle(app: NewsQAApp, pilot: Pilot[None]) -> None:
    """Let workers finish and their messages be handled."""
    for _ in range(3):
        await app.workers.wait_for_complete([w for w in app.workers if w.group != "poll"])
        await pilot.pause()
