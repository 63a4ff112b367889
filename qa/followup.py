"""Follow-up questions: carry the conversation's subject into an elliptical question.

No language model: a question is a follow-up when it leans on the previous turn, that is when
it has

* an anaphoric pronoun (they, it, he, she, this, that, those ...) and not two salient words of
  its own that the conversation has not mentioned,
* an elliptical opening ("and in 2019?", "what about Turkey?", "why?"), or
* no content words of its own that the index knows (unless it brings three or more words that
  neither the index nor the conversation has, and no pronoun: "what is the boiling point of
  tungsten?" is another subject), or is short with nothing new and salient and fewer than
  three content words ("how many died?"; "who boycotted the Sochi conference?" asks on its
  own even where the previous turn used all of its words).

A follow-up is rewritten by appending the salient content words and names of the previous
question (as it was searched for, so the subject carries over several turns) and of its answer.
A question with its own rare words or names is a new topic and is searched as typed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from qa.index.keywords import tokenize

if TYPE_CHECKING:
    from qa.search.retriever import Filters, Retriever
    from qa.types import Response

PRONOUNS = frozenset(
    """they them their theirs themselves he him his himself she her hers herself it its itself
    this these those that there such""".split()
)
# Function words (the BM25 stop list is short) and words of questions and chat that say
# nothing about the subject.
GENERIC = frozenset(
    """a an the and or but if of to in on at by for from with without into onto about above
    below over under between through during before after since until upon against among
    as than so because while though although whether either neither nor not no
    i me my mine we us our ours you your yours he him his she her it its they them their
    this that these those there here such what which who whom whose
    is am are was were be been being have has had having will would shall should can could
    may might must ought
    all any both each few more most other some own same too very just only even
    why how what when where who whom whose which much many long often far old exactly really
    happen happened happens happening say said says tell told mean means meant think thought
    know known explain describe list name give show summarize summarise detail details
    else more next then now also ever still yet again reason reasons cause caused result
    thing things way people person one ones someone anyone anything something time times
    do does did done get got go going went make made see seen want wanted like kind sort lot
    last lasted take takes took taken
    yes no ok okay please thanks thank
    monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow""".split()
)
_ELLIPSIS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^(and|but|or|so|also|plus)\b",
        r"^(what|how) about\b",
        r"^(what|who|anything|anyone|anybody|something) else\b",
        r"^any (other|more)\b",
        r"^(in|on|at|during|after|before|since|by|from|until|for)\s+[\w'’-]+(\s+[\w'’-]+)?\s*\??$",
        r"^(why|how|when|where|who|what|which)(\s+(not|so|exactly|then|now))?\s*\??$",
        r"^(really|seriously|how come|is that (so|true|right))\s*\??$",
    )
]
# Unknown words (absent from the index and the previous turn) that make a new topic.
_UNKNOWN_NEW_TOPIC = 3
# Known content words that make a short question with nothing new a question of its own.
_OWN_QUESTION = 3
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.-]*[A-Za-z0-9]|[A-Za-z0-9]")


class TermStats(Protocol):
    """Document frequencies of the index searched (BM25 side)."""

    @property
    def size(self) -> int:
        """Passages in the index."""
        ...

    def doc_freq(self, word: str) -> int:
        """Passages holding the (tokenized) word; 0 when the index does not know it."""
        ...


@dataclass(frozen=True)
class Exchange:
    """What the rewriter needs of a previous turn."""

    question: str
    searched_for: str = ""
    answer: str = ""
    sentence: str = ""
    title: str = ""


@dataclass(frozen=True)
class Rewrite:
    """The query actually searched for a question.

    Attributes:
        question: The question as typed.
        query: What to retrieve with (``question`` itself when not rewritten).
        rewritten: True when context was added.
        reason: Why it was (or was not) treated as a follow-up.
        added: The words appended.
    """

    question: str
    query: str
    rewritten: bool
    reason: str
    added: tuple[str, ...] = ()

    @property
    def leans_back(self) -> bool:
        """A rewritten question that names nothing to read for on its own: it has a pronoun
        ("why did they refuse?") or is elliptical ("and in 2019?")."""
        if not self.rewritten:
            return False
        text = self.question.strip()
        lower = {w.lower().replace("’", "'") for w in words(text)}
        return bool(lower & PRONOUNS) or any(p.search(text) for p in _ELLIPSIS)


def answer_rewritten(
    ask: Callable[..., Response], rw: Rewrite, k: int = 5, filters: Filters | None = None
) -> Response:
    """Answer a chat question after the rewriter.

    Retrieval always uses the rewrite. A question that leans back ("who boycotted it?", "and
    in 2019?") is read as rewritten: as typed it names nothing to read for, and the reader
    picks whatever sentence of the retrieved passages fits the bare question best (the Kurds'
    for "who boycotted it?"). Read with the previous turn's words it answered better on the
    news follow-ups, and as well as as typed on SQuAD follow-up pairs
    (``bench/followup_policies.py``). When the rewrite gets no answer the question is read as
    typed. Other rewritten questions (taken for follow-ups only because
    the index does not know their words) are read as typed: read with the appended words, the
    reader answered a new topic with the previous turn's sentence.

    Args:
        ask: ``Answerer.ask`` (or a stand-in with its signature).
        rw: The rewrite of the question.
        k: Passages retrieved.
        filters: Date/source filters.

    Returns:
        The response (its ``question`` is the question as typed).
    """
    if rw.leans_back:
        resp = ask(rw.query, k=k, filters=filters)
        if resp.answer is not None:
            return replace(resp, question=rw.question)
    search = rw.query if rw.rewritten else None
    return ask(rw.question, k=k, filters=filters, search_query=search)


def words(text: str) -> list[str]:
    """Surface words of a text (keeps case, hyphens and inner apostrophes)."""
    return [w.rstrip(".") for w in _WORD.findall(text)]


def _stems(word: str) -> list[str]:
    return [s for s in tokenize(word) if s not in GENERIC]


def _content(word: str) -> bool:
    """True for a word that says something about the subject (years count; other numbers not)."""
    if word.isdigit():
        return len(word) == 4
    return word.lower() not in GENERIC and bool(_stems(word))


def _capitalised(word: str) -> bool:
    """A name-like word: ``Sochi``, ``McRib``, ``NATO`` (not a lone capital like ``I``)."""
    return word[:1].isupper() and (not word.isupper() or len(word) > 1)


class QueryRewriter:
    """Rewrites follow-up questions with the subject of the conversation.

    Args:
        stats: Document frequencies of the index (optional): words the index does not know
            are not counted as the question's own, and only rare ones count as salient.
        max_terms: Most words appended to a follow-up.
        rare_df: Document-frequency fraction under which a word counts as rare.
        name_df: The same for names (capitalised words), which say more than plain words.
        title_terms: Rarest words of the cited article's title added (needs ``stats``).
    """

    def __init__(
        self,
        stats: TermStats | None = None,
        max_terms: int = 8,
        rare_df: float = 0.02,
        name_df: float = 0.1,
        title_terms: int = 2,
    ) -> None:
        self.stats = stats
        self.max_terms = max_terms
        self.rare_df = rare_df
        self.name_df = name_df
        self.title_terms = title_terms

    # -- public -----------------------------------------------------------------------------
    def rewrite(self, question: str, history: Sequence[Exchange]) -> Rewrite:
        """The query to retrieve with for ``question`` after ``history``.

        Args:
            question: The question as typed.
            history: Earlier turns, oldest first (only the last one is used).

        Returns:
            The rewrite; ``query`` is the question itself unless it is a follow-up.
        """
        question = " ".join(question.split())
        if not history:
            return Rewrite(question, question, False, "first question")
        previous = history[-1]
        follow, reason = self.is_follow_up(question, previous)
        context = self.context_terms(previous)
        if not follow:
            return Rewrite(question, question, False, reason)
        own = {s for w in words(question) for s in _stems(w)}
        added: list[str] = []
        seen = set(own)
        for term in context:
            stems = set(_stems(term))
            if not stems or stems <= seen:
                continue
            seen |= stems
            added.append(term)
            if len(added) >= self.max_terms:
                break
        if not added:
            return Rewrite(question, question, False, f"{reason}; nothing to add")
        query = f"{question} {' '.join(added)}"
        return Rewrite(question, query, True, reason, tuple(added))

    def is_follow_up(self, question: str, previous: Exchange | None = None) -> tuple[bool, str]:
        """Whether ``question`` leans on the previous turn, and why.

        Args:
            question: The question as typed.
            previous: The previous turn (its words are not new to the conversation).

        Returns:
            ``(follow_up, reason)``.
        """
        text = question.strip()
        ws = words(text)
        if any(p.search(text) for p in _ELLIPSIS):
            return True, "elliptical"
        lower = [w.lower().replace("’", "'") for w in ws]
        pronouns = [w for w in lower if w in PRONOUNS]
        content = [w for w in ws if _content(w)]
        known = [w for w in content if self._known(w)]
        seen: set[str] = set()
        if previous is not None:
            for text in (
                previous.question,
                previous.searched_for,
                previous.answer,
                previous.sentence,
                previous.title,
            ):
                seen.update(tokenize(text))
        if not known:
            # Three or more words that neither the index nor the conversation has ("the
            # boiling point of tungsten"), and no pronoun: another subject, not a follow-up.
            unseen = [w for w in content if not set(_stems(w)) <= seen]
            if not pronouns and len(unseen) >= _UNKNOWN_NEW_TOPIC:
                return False, "new topic (words the index does not know)"
            return True, "no words of its own"
        salient = [w for i, w in enumerate(ws) if w in known and self._salient(w, i == 0)]
        new = [w for w in salient if not set(_stems(w)) <= seen]
        if pronouns and len(new) < 2:
            return True, f"refers back ({pronouns[0]})"
        # Short with nothing new: "how many died?". Three known content words of its own
        # ("who boycotted the Sochi conference?") make a question of its own even when the
        # previous turn used them all (in a small index, or words of the cited title).
        if not new and len(ws) <= 6 and len(known) < _OWN_QUESTION:
            return True, "short, nothing new"
        return False, "new topic" if new else "own words"

    def context_terms(self, turn: Exchange) -> list[str]:
        """Salient words of a previous turn, most useful first.

        The content words of what was searched for, then the answer (when short), then names
        in the answer's sentence and in the cited article's title (rarest first).
        """
        out: list[str] = []
        seen: set[str] = set()

        def add(ws: Sequence[str]) -> None:
            for w in ws:
                stems = frozenset(_stems(w))
                if not stems or stems <= seen or not _content(w):
                    continue
                seen.update(stems)
                out.append(w)

        query = turn.searched_for or turn.question
        add([w for w in words(query) if w.lower() not in PRONOUNS])
        if turn.answer and len(words(turn.answer)) <= 8:
            add(words(turn.answer))
        ws = words(turn.sentence)
        names = [w for i, w in enumerate(ws) if i > 0 and _capitalised(w)]
        add(sorted(names, key=self._df) if self.stats else names)
        if self.stats is not None and self.title_terms:
            # Titles are often Title Cased: take their rarest words rather than "names".
            ranked = sorted(
                (w for w in words(turn.title) if _content(w) and self._known(w)), key=self._df
            )
            add(ranked[: self.title_terms])
        return out

    # -- word statistics ---------------------------------------------------------------------
    def _df(self, word: str) -> int:
        return self.stats.doc_freq(word) if self.stats is not None else 0

    def _known(self, word: str) -> bool:
        return self.stats is None or self._df(word) > 0

    def _salient(self, word: str, first: bool) -> bool:
        """A name that is not everywhere (``US`` is not salient in US news) or a rare word."""
        name = _capitalised(word) and (not first or word.isupper())
        if self.stats is None:
            return True
        df = self._df(word) / max(self.stats.size, 1)
        return 0 < df <= (self.name_df if name else self.rare_df)


class RetrieverStats:
    """:class:`TermStats` read from a Retriever's current keyword index (cached per generation).

    Args:
        retriever: A :class:`qa.search.retriever.Retriever`; its search view gives the
            counts, so no second copy of the BM25 index is loaded.
    """

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self._cache: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Passages in the index searched now."""
        return self.retriever.view().size

    def doc_freq(self, word: str) -> int:
        """Passages holding a stem of ``word`` (BM25 vocabulary); 0 when unknown."""
        view = self.retriever.view()
        key = (view.generation, word.lower())
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        n = view.doc_freq(word)
        with self._lock:
            self._cache[key] = n
        return n
