"""What the decision to answer may weigh besides the span's logits.

The span reader's confidence is a logistic model (:class:`qa.reader.span.Calibration`) on
features of its top span. The first three come from the logits (span logit, its
log-probability in the window, its margin over the no-answer logit); the others look at the
text, with small rules and no model:

- ``type_match`` / ``type_mismatch``: the question expects a kind of answer ("how many" a
  number, "when" / "what year" a date, "who" a name, "where" a place) and the span is / is
  not of that kind (both 0 when the question expects no particular kind);
- ``near_sentence``: the share of the question's content words found in the span's sentence
  (the span itself left out): an answer stands where the question's words are;
- ``near_window``: the same within :data:`WINDOW_WORDS` words on either side of the span;
- ``in_question``: the share of the span's content words that the question itself holds (a
  span that repeats the question rarely answers it);
- ``absent``: the share of the question's content words found nowhere in the passage;
- ``absent_names``: the share of the question's capitalised words (names, after its first
  word) found nowhere in the passage: a question about someone the passage never names.

``python -m qa.train calibrate`` keeps only the candidates that raise the cross-validated
SQuAD-2.0-style F1 on held-out *train* pairs; the chosen names are written into the reader's
``reader.json`` with their weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from qa.text import sentence_spans

# The logit features every calibration has had, and the text features that may join them.
LOGIT_FEATURES = ("score", "log_prob", "margin")
TEXT_FEATURES = (
    *("type_match", "type_mismatch", "near_sentence", "near_window", "in_question"),
    *("absent", "absent_names"),
)
# Words on either side of the span that count as "near" for ``near_window``.
WINDOW_WORDS = 10

_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our out over own
    same she should so some such than that the their theirs them then there these they this
    those through to too under until up very was we were what when where which while who whom
    whose why will with would you your yours called name named kind type one many much""".split()
)
_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    "eighty|ninety|hundred|thousand|million|billion|trillion|dozen|dozens|hundreds|thousands|"
    "millions|half|quarter|single|double|twice|several|few|many"
)
_IS_NUMBER = re.compile(rf"\d|\b(?:{_NUMBER_WORDS})\b", re.IGNORECASE)
_IS_DATE = re.compile(
    rf"\b(?:1\d{{3}}|20\d{{2}})s?\b|\b\d{{1,2}}(?:st|nd|rd|th)?\b.*\bcentury\b|"
    rf"\b(?:{_MONTHS})\b|\b(?:century|centuries|decade|bc|bce|ad|ce|today|yesterday|"
    rf"spring|summer|autumn|fall|winter|monday|tuesday|wednesday|thursday|friday|saturday|"
    rf"sunday|age|era|period|dynasty)\b",
    re.IGNORECASE,
)
# A name: a capitalised word that is not just the first word of the span being a function word.
_IS_NAME = re.compile(r"(?<![\w'])[A-Z][\w'&.-]*")
_PLACE_WORDS = re.compile(
    r"\b(?:city|town|village|country|state|province|region|island|river|mountain|street|"
    r"road|avenue|square|building|house|hall|church|school|university|college|park|airport|"
    r"station|hospital|coast|north|south|east|west|northern|southern|eastern|western|"
    r"central|near|outside|inside|abroad|overseas|home|border)\b",
    re.IGNORECASE,
)

# What a question expects, tried in order; the first match wins ("how many" before "how").
_EXPECTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "number",
        re.compile(
            r"\bhow\s+(?:many|much|long|old|far|large|big|tall|high|deep|wide|often|fast|"
            r"heavy|few)\b|\bwhat\s+(?:percentage|percent|proportion|share|number|amount|"
            r"fraction|size|population|temperature|speed|distance|price|cost|rate)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "date",
        re.compile(
            r"^\s*when\b|\bwhen\s+(?:did|was|were|is|does|do|will|had|has)\b|"
            r"\b(?:what|which|in\s+what|in\s+which)\s+(?:year|years|date|month|day|century|"
            r"decade|era|period|time)\b|\bhow\s+long\s+ago\b",
            re.IGNORECASE,
        ),
    ),
    ("name", re.compile(r"^\s*(?:who|whom|whose)\b|\b(?:by|to|of|with)\s+whom\b", re.IGNORECASE)),
    (
        "place",
        re.compile(
            r"^\s*where\b|\bwhere\s+(?:did|was|were|is|are|does|do|will|had|has)\b|"
            r"\b(?:what|which|in\s+what|in\s+which)\s+(?:city|country|state|town|region|"
            r"province|continent|place|location|island|county|nation|village|area)\b",
            re.IGNORECASE,
        ),
    ),
)


def expected_type(question: str) -> str | None:
    """The kind of answer ``question`` asks for: number, date, name, place, or None.

    Args:
        question: The question as typed.

    Returns:
        ``number`` for "how many/much/long ...", ``date`` for "when" and "what year",
        ``name`` for "who", ``place`` for "where" and "which country"; None otherwise.
    """
    for kind, pattern in _EXPECTS:
        if pattern.search(question):
            return kind
    return None


def fits_type(kind: str, span: str) -> bool:
    """Whether the span ``span`` can be an answer of kind ``kind``.

    A number holds a digit or a number word; a date a year, a month, a century or a season;
    a name (person or organisation) a capitalised word; a place a capitalised word or a
    place noun ("the city", "north").
    """
    if kind == "number":
        return bool(_IS_NUMBER.search(span))
    if kind == "date":
        return bool(_IS_DATE.search(span))
    if kind == "name":
        return bool(_IS_NAME.search(span))
    if kind == "place":
        return bool(_IS_NAME.search(span) or _PLACE_WORDS.search(span))
    raise ValueError(f"unknown answer kind: {kind!r}")


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` without function words, cut to a crude stem."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


def _stem(word: str) -> str:
    # Six letters keep "election" and "elected" apart but join "elections" and "election".
    return word[:6] if len(word) > 6 else word.rstrip("s") or word


@dataclass(frozen=True)
class SpanInContext:
    """A candidate span, its question and passage: what the text features look at.

    Attributes:
        question: The question.
        context: The passage read.
        start: First character of the span in ``context``.
        end: One past its last character.
        score: Start + end logit of the span.
        log_prob: Its log-probability in its window.
        null_score: The passage's no-answer logit.
    """

    question: str
    context: str
    start: int
    end: int
    score: float = 0.0
    log_prob: float = 0.0
    null_score: float = 0.0

    @cached_property
    def text(self) -> str:
        """The span's text."""
        return self.context[self.start : self.end]

    @cached_property
    def question_words(self) -> set[str]:
        """The question's content words."""
        return content_words(self.question)


def _type_match(s: SpanInContext) -> float:
    kind = expected_type(s.question)
    return float(kind is not None and fits_type(kind, s.text))


def _type_mismatch(s: SpanInContext) -> float:
    kind = expected_type(s.question)
    return float(kind is not None and not fits_type(kind, s.text))


def _share_found(question_words: set[str], text: str) -> float:
    if not question_words:
        return 0.0
    return len(question_words & content_words(text)) / len(question_words)


def _near_sentence(s: SpanInContext) -> float:
    spans = sentence_spans(s.context)
    first = next((a for a, b in spans if a <= s.start < b), s.start)
    last = next((b for a, b in spans if a < s.end <= b), s.end)
    around = s.context[first : s.start] + " " + s.context[s.end : last]
    return _share_found(s.question_words, around)


def _near_window(s: SpanInContext) -> float:
    before = _WORD.findall(s.context[: s.start])[-WINDOW_WORDS:]
    after = _WORD.findall(s.context[s.end :])[:WINDOW_WORDS]
    return _share_found(s.question_words, " ".join(before + after))


def _in_question(s: SpanInContext) -> float:
    words = content_words(s.text)
    return len(words & s.question_words) / len(words) if words else 0.0


def _absent(s: SpanInContext) -> float:
    return 1.0 - _share_found(s.question_words, s.context) if s.question_words else 0.0


def _absent_names(s: SpanInContext) -> float:
    first = len(s.question) - len(s.question.lstrip())
    names = {
        m.group().lower().rstrip(".")
        for m in _IS_NAME.finditer(s.question)
        if m.start() != first and m.group().lower() not in _STOP
    }
    if not names:
        return 0.0
    low = s.context.lower()
    return sum(name not in low for name in names) / len(names)


FEATURES: dict[str, Callable[[SpanInContext], float]] = {
    "score": lambda s: s.score,
    "log_prob": lambda s: s.log_prob,
    "margin": lambda s: s.score - s.null_score,
    "type_match": _type_match,
    "type_mismatch": _type_mismatch,
    "near_sentence": _near_sentence,
    "near_window": _near_window,
    "in_question": _in_question,
    "absent": _absent,
    "absent_names": _absent_names,
}


def feature_vector(span: SpanInContext, names: tuple[str, ...]) -> list[float]:
    """The named features of ``span``, in the order of ``names``.

    Raises:
        KeyError: A name is not one of :data:`FEATURES`.
    """
    return [FEATURES[name](span) for name in names]
