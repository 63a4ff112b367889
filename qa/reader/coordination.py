"""Whole answers: a question that asks for several things gets the whole coordination.

The span reader was trained on SQuAD, where most answers are one thing, so for "Which two
countries has Russia teamed up with?" it picks one conjunct ("Turkey") of "Iran as well as
Turkey". When the question asks for several things (a number word above one, "both", or a
plural head noun: "which countries", "who were", "what are the ...", "name the ...") and the
picked span is one conjunct of a coordination in its sentence ("X and Y", "X, Y and Z",
"X as well as Y", "both X and Y"), the span is extended to the whole coordination, provided
that

- every conjunct is of the same kind as the pick (capitalised names with names, numbers with
  numbers), and
- the reader itself scores the whole coordination as an answer: it is among the reader's
  candidate spans (its start among the best start tokens, its end among the best end tokens)
  and its start + end logit is at most ``margin`` below the pick's.

"X or Y" offers alternatives, not several things, and is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from qa.text import sentence_spans

# Chosen on SQuAD train questions that ask for several things (bench/whole_answers.py,
# docs/benchmarks.md "Whole answers"): the largest F1 on the train slice.
DEFAULT_MARGIN = 4.0

_NUMBER_WORDS = (
    "two three four five six seven eight nine ten eleven twelve both several multiple"
).split()
_NUMBER_WORD = "|".join(_NUMBER_WORDS)
# A number word above one inside the question's wh-phrase: "which two", "what are the three",
# "name the two", "who were the four", "what 2".
_SEVERAL_COUNT = re.compile(
    rf"\b(?:which|what|who|whom|name|list)\b(?:\s+(?:are|were|is|was|the|of|its|their)){{0,3}}"
    rf"\s+(?:{_NUMBER_WORD}|[2-9]|1\d)\b",
    re.IGNORECASE,
)
# "who were", "who are the", "what are the", "what were the", "name the", "name some", "list".
_SEVERAL_PHRASE = re.compile(
    r"^\s*(?:who\s+(?:were|are)\b|what\s+(?:are|were)\s+(?:the|some|two|three)\b|"
    r"name\s+(?:the|some|two|three)\b|list\b)",
    re.IGNORECASE,
)
_WH_HEAD = re.compile(r"\b(?:which|what)\s+((?:[a-z][\w'-]*\s+){0,3}?)([a-z][\w'-]*)\b")
_AUXILIARIES = frozenset(
    "is are was were did do does has have had can could will would should may might".split()
)
_NOT_PLURAL = frozenset(
    """is was has does this its his us as news series species means status process
    business class crisis thesis analysis basis physics politics economics mathematics
    headquarters gas bus lens""".split()
)
_IRREGULAR_PLURALS = frozenset("people men women children persons feet teeth mice".split())

# Conjuncts: capitalised names (with inner "of", "de", "the" ...) or numbers.
_NAME = (
    r"(?:[Tt]he\s+)?[A-Z][\w'’.&-]*(?:\s+(?:(?:of|de|del|der|des|du|da|di|la|le|van|von|al|"
    r"the|for|on|upon|y)\s+)*[A-Z0-9][\w'’.&-]*)*"
)
_NUMBER = (
    r"[$£€]?\d+(?:[,.]\d+)*(?:\s*(?:%|percent|per cent|million|billion|thousand))?|"
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
    r"fifty|sixty|seventy|eighty|ninety|hundred)(?:[\s-](?:one|two|three|four|five|six|seven|"
    r"eight|nine|hundred|thousand|million))*"
)
_KINDS = {
    "name": re.compile(rf"(?<![\w'’.])(?:{_NAME})"),
    "number": re.compile(rf"(?<![\w.,])(?:{_NUMBER})(?!\w)"),
}
# What may stand between two conjuncts; a coordinator ends the coordination.
_COMMA = re.compile(r"\s*[,;]\s*")
_COORDINATOR = re.compile(r"\s*,?\s*(?:and|as well as|&|and also|along with|plus)\s+")


def asks_for_several(question: str) -> bool:
    """Whether ``question`` asks for several things rather than one.

    Args:
        question: The question as typed.

    Returns:
        True for a number word above one in the wh-phrase ("which two countries"), a plural
        head noun after which/what ("which countries"), or "who were", "what are the",
        "name the"; False for "how many" questions, which ask for a count.
    """
    q = question.strip()
    if re.search(r"\bhow\s+many\b", q, re.IGNORECASE):
        return False
    if _SEVERAL_COUNT.search(q) or _SEVERAL_PHRASE.search(q):
        return True
    m = _WH_HEAD.search(q.lower())
    if not m:
        return False
    words = [*m.group(1).split(), m.group(2)]
    # The head noun is the last word before an auxiliary verb or "of" ("what kinds of ...").
    head = ""
    for word in words:
        if word in _AUXILIARIES or word == "of":
            break
        head = word
    return _is_plural(head)


def _is_plural(word: str) -> bool:
    if word in _IRREGULAR_PLURALS:
        return True
    if len(word) < 4 or word in _NOT_PLURAL or word.endswith(("ss", "us", "is", "'s")):
        return False
    return word.endswith("s")


def span_kind(text: str) -> str | None:
    """``name`` or ``number`` when all of ``text`` is one such conjunct, else None."""
    for kind, pattern in _KINDS.items():
        if pattern.fullmatch(text.strip()):
            return kind
    return None


def coordination_around(context: str, start: int, end: int) -> tuple[int, int] | None:
    """The whole coordination of which ``context[start:end]`` is one conjunct (or a run of them).

    Args:
        context: The passage.
        start: First character of the picked span.
        end: One past its last character.

    Returns:
        ``(start, end)`` of the coordination in ``context``, or None when the span is not
        part of a coordination of conjuncts of its own kind in its sentence (or is all of it).
    """
    sentence = next(((a, b) for a, b in sentence_spans(context) if a <= start and end <= b), None)
    if sentence is None:
        return None
    for pattern in _KINDS.values():
        items = [
            (m.start(), m.end())
            for m in pattern.finditer(context, *sentence)
            if m.end() > m.start()
        ]
        # seps[i - 1] joins items[i - 1] and items[i].
        seps = [_separator(context[items[i - 1][1] : items[i][0]]) for i in range(1, len(items))]
        run = _covering(context, items, seps, start, end)
        if run is not None:
            return _whole(context, sentence[0], items, seps, run)
    return None


def _covering(
    context: str,
    items: list[tuple[int, int]],
    seps: list[str | None],
    start: int,
    end: int,
) -> tuple[int, int] | None:
    """Indexes of the first and last conjunct the pick is made of (a leading "the" aside)."""
    lo = next(
        (i for i, item in enumerate(items) if _core(context, item) == _core(context, (start, end))),
        None,
    )
    hi = next((i for i, (_, b) in enumerate(items) if b == end), None)
    if (
        lo is None
        or hi is None
        or hi < lo
        or any(seps[k - 1] is None for k in range(lo + 1, hi + 1))
    ):
        return None
    return lo, hi


def _whole(
    context: str,
    sentence_start: int,
    items: list[tuple[int, int]],
    seps: list[str | None],
    run: tuple[int, int],
) -> tuple[int, int] | None:
    """The coordination around the conjuncts ``run``, None when there is none beyond them."""
    lo, hi = run
    # The coordination ends at the first conjunct joined by a coordinator, over list commas.
    last = next((k for k in range(max(hi, 1), len(items)) if seps[k - 1] == "and"), None)
    if last is None or any(seps[k - 1] is None for k in range(hi + 1, last)):
        return None
    # Leftwards from the last conjunct over list commas: "X, Y and Z".
    first = last - 1
    while (
        first > 0
        and seps[first - 1] == "comma"
        and not _opener(context, sentence_start, items[first - 1])
    ):
        first -= 1
    if first > lo or (first, last) == (lo, hi):
        return None
    return items[first][0], items[last][1]


def _opener(context: str, sentence_start: int, item: tuple[int, int]) -> bool:
    """A one-word item opening the sentence before a comma ("However, X and Y") is an adverb."""
    return item[0] == sentence_start and " " not in context[item[0] : item[1]]


def _core(context: str, span: tuple[int, int]) -> int:
    """Where a conjunct starts once a leading "the" is skipped."""
    m = re.match(r"\s*(?:[Tt]he\s+)?", context[span[0] : span[1]])
    return span[0] + (m.end() if m else 0)


def _separator(between: str) -> str | None:
    """``and`` for a coordinator, ``comma`` for a list comma, None for anything else."""
    if _COORDINATOR.fullmatch(between):
        return "and"
    if _COMMA.fullmatch(between):
        return "comma"
    return None


def widen(
    question: str,
    context: str,
    picks: list[tuple[tuple[int, int], tuple[float, float]]],
    candidates: Mapping[tuple[int, int], tuple[float, float]],
    margin: float = DEFAULT_MARGIN,
) -> list[tuple[tuple[int, int], tuple[float, float]]]:
    """Replace each pick that is one conjunct by its whole coordination, where it qualifies.

    Args:
        question: The question (nothing changes unless it asks for several things).
        context: The passage the spans index into.
        picks: ``((start, end), (score, log_prob))`` of the reader's best spans, best first.
        candidates: Every span the reader scored in this passage, by offsets.
        margin: How far (in start + end logit) the coordination may score below the pick.

    Returns:
        The picks, best first, a widened pick keeping the pick's score and log-probability
        (the reader's evidence for the answer it chose); a coordination reached from two
        picks is listed once.
    """
    if not asks_for_several(question):
        return picks
    out: dict[tuple[int, int], tuple[float, float]] = {}
    for span, stats in picks:
        whole = coordination_around(context, *span)
        if whole is not None and whole in candidates and candidates[whole][0] >= stats[0] - margin:
            span = whole
        if span not in out or out[span][0] < stats[0]:
            out[span] = stats
    return sorted(out.items(), key=lambda kv: kv[1][0], reverse=True)
