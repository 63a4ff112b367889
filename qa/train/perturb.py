"""Question-perturbation negatives: the gold paragraph kept, the question changed.

SQuAD 2.0's unanswerable questions were written against a paragraph that still holds a
plausible answer of the right type: a negation, an antonym, a swapped name or number. The
twins of :mod:`qa.train.negatives` take the answer out of the context instead, which the
reader learns to spot without learning to read the question. These keep the whole gold
paragraph (answer included) and change the question, by rules that need no model:

- ``entity``: a capitalised name of the question that occurs in the paragraph is replaced by
  a name from another paragraph of the same article (else another article) none of whose
  words occur in this paragraph;
- ``number``: a number or year of the question becomes one that is not in the paragraph;
- ``negation``: the question's first auxiliary ("did", "is", "can", ...) becomes its negated
  contraction ("didn't", "isn't", ...), which keeps the inverted word order grammatical;
- ``antonym``: a word of a small built-in list ("first", "largest", "before", ...) becomes its
  opposite, only if the opposite is not a word of the paragraph.

Every rule has a guard against an accidentally answerable result (the new name, number or
opposite found in the paragraph; a question that is negated already). Built from train
(or held-out train) articles only, deterministic by seed; labelled with the null position
like the other negatives (``python -m qa.train --perturbed SHARE``, ``calibrate
--perturbed SHARE``).
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa.train.data import QAExample

RULES = ("entity", "number", "negation", "antonym")
# How often negation is tried before the other rules (else after them).
NEGATION_FIRST = 0.3

# Capitalised words that start questions or clauses without being names.
_NOT_NAMES = frozenset(
    """what who whom whose which when where why how the a an in on at of for by to from with
    during after before is was were are did does do can could will would has have had should
    this that these those it its there i he she they we his her their if as and or but not
    according also besides other another some many much""".split()
)
# A period or apostrophe only inside a word ("U.S", "O'Neil"), so names stop at sentence ends.
_WORD = r"[A-Z](?:[\w&-]|[.'](?=\w))*"
_NAME_WORD = re.compile(_WORD)
_NAME_RUN = re.compile(_WORD + r"(?:\s+(?:(?:of|the|de|del|von|van|la|and)\s+)?" + _WORD + ")*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"(]\s*)$")
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\w,])|(?<![\w.,])\d+(?:\.\d+)?(?![\w,])")
_NEGATED = re.compile(r"\b(not|never|no|none|nobody|nothing|neither|nor)\b|n't\b", re.I)
_AUXILIARIES = {
    "is": "isn't",
    "was": "wasn't",
    "are": "aren't",
    "were": "weren't",
    "do": "don't",
    "does": "doesn't",
    "did": "didn't",
    "can": "can't",
    "could": "couldn't",
    "will": "won't",
    "would": "wouldn't",
    "has": "hasn't",
    "have": "haven't",
    "had": "hadn't",
    "should": "shouldn't",
}
_AUXILIARY = re.compile(r"\b(" + "|".join(_AUXILIARIES) + r")\b", re.I)
_PAIRS = (
    ("first", "last"),
    ("largest", "smallest"),
    ("biggest", "smallest"),
    ("highest", "lowest"),
    ("most", "least"),
    ("more", "fewer"),
    ("before", "after"),
    ("earliest", "latest"),
    ("oldest", "newest"),
    ("longest", "shortest"),
    ("best", "worst"),
    ("increase", "decrease"),
    ("increased", "decreased"),
    ("won", "lost"),
    ("win", "lose"),
    ("north", "south"),
    ("northern", "southern"),
    ("east", "west"),
    ("eastern", "western"),
    ("maximum", "minimum"),
    ("major", "minor"),
    ("early", "late"),
    ("inside", "outside"),
    ("above", "below"),
    ("upper", "lower"),
    ("positive", "negative"),
    ("start", "end"),
    ("began", "ended"),
    ("opened", "closed"),
    ("rise", "fall"),
    ("strong", "weak"),
    ("ancient", "modern"),
    ("private", "public"),
    ("internal", "external"),
    ("allowed", "banned"),
    ("accepted", "rejected"),
    ("supported", "opposed"),
)
ANTONYMS = {**dict(_PAIRS), **{b: a for a, b in _PAIRS}}
_ANTONYM = re.compile(r"\b(" + "|".join(sorted(ANTONYMS, key=len, reverse=True)) + r")\b", re.I)


def names_in(text: str) -> list[str]:
    """Capitalised name spans of ``text`` (function words such as "What", "The" stripped)."""
    out = []
    for match in _NAME_RUN.finditer(text):
        words = match.group().split()
        if len(words) == 1 and _SENTENCE_START.search(text[: match.start()]):
            continue  # a capitalised first word is rarely a name on its own
        if words[-1].endswith("'s"):
            words[-1] = words[-1][:-2]
        while words and words[0].lower() in _NOT_NAMES:
            words = words[1:]
        while words and words[-1].lower() in _NOT_NAMES:
            words = words[:-1]
        if words:
            out.append(" ".join(words))
    return out


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"\w+", text)}


def _foreign(name: str, context_words: set[str]) -> bool:
    """The guard for a new name: no word of it (capitalised ones) occurs in the paragraph."""
    return not any(w.lower() in context_words for w in _NAME_WORD.findall(name))


def swap_entity(question: str, context: str, pool: Sequence[str], rng: random.Random) -> str | None:
    """Replace a name of ``question`` found in ``context`` by a name of ``pool`` foreign to it."""
    inside = [n for n in names_in(question) if n in context]
    if not inside:
        return None
    old = rng.choice(inside)
    words = _words(context) | _words(question)
    fresh = sorted({n for n in pool if n != old and _foreign(n, words)})
    if not fresh:
        return None
    same_length = [n for n in fresh if len(n.split()) == len(old.split())]
    new = rng.choice(same_length or fresh)
    return question.replace(old, new, 1)


def _numbers_of(text: str) -> set[str]:
    return {m.group().replace(",", "") for m in _NUMBER.finditer(text)}


def change_number(question: str, context: str, rng: random.Random) -> str | None:
    """Change a number or year of ``question`` to one that is not in ``context``."""
    found = list(_NUMBER.finditer(question))
    if not found:
        return None
    match = rng.choice(found)
    text = match.group().replace(",", "")
    taken = _numbers_of(context) | _numbers_of(question)
    value = float(text)
    year = "." not in text and 1000 <= value <= 2100
    for _ in range(20):
        if year:
            new = str(int(value) + rng.choice((-1, 1)) * rng.randint(2, 40))
        elif "." in text:
            new = f"{value * rng.choice((0.5, 2, 3, 1.5)):.{len(text.split('.')[1])}f}"
        else:
            new = str(max(int(value) + rng.randint(2, 9), int(value * rng.choice((2, 3, 10)))))
        if new not in taken and new != text:
            if "," in match.group():
                new = f"{int(new):,}"
            return question[: match.start()] + new + question[match.end() :]
    return None


def negate(question: str, context: str, rng: random.Random) -> str | None:
    """Negate the first auxiliary of ``question`` ("did" -> "didn't"), unless it is negated."""
    del context, rng  # the same negation for every paragraph
    if _NEGATED.search(question):
        return None
    match = _AUXILIARY.search(question)
    if match is None:
        return None
    word = match.group()
    new = _AUXILIARIES[word.lower()]
    if word[0].isupper():
        new = new[0].upper() + new[1:]
    return question[: match.start()] + new + question[match.end() :]


def antonym(question: str, context: str, rng: random.Random) -> str | None:
    """Replace a word of the built-in list by its opposite, if the opposite is not in
    ``context``."""
    words = _words(context)
    found = [m for m in _ANTONYM.finditer(question) if ANTONYMS[m.group().lower()] not in words]
    if not found:
        return None
    match = rng.choice(found)
    new = ANTONYMS[match.group().lower()]
    if match.group()[0].isupper():
        new = new[0].upper() + new[1:]
    return question[: match.start()] + new + question[match.end() :]


def perturb(
    ex: QAExample, pool: Sequence[str], rng: random.Random, rules: Sequence[str] = RULES
) -> QAExample | None:
    """``ex`` with a question its paragraph no longer answers (no answers), or None.

    The ``rules`` are tried in a seeded random order; the first that applies wins.
    """
    apply: dict[str, Callable[[], str | None]] = {
        "entity": lambda: swap_entity(ex.question, ex.context, pool, rng),
        "number": lambda: change_number(ex.question, ex.context, rng),
        "negation": lambda: negate(ex.question, ex.context, rng),
        "antonym": lambda: antonym(ex.question, ex.context, rng),
    }
    # Negation applies to most questions; tried first only sometimes, so that the other
    # rules get their share.
    order = rng.sample([r for r in rules if r != "negation"], len(rules) - ("negation" in rules))
    if "negation" in rules:
        order.insert(0 if rng.random() < NEGATION_FIRST else len(order), "negation")
    for rule in order:
        question = apply[rule]()
        if question is not None and question != ex.question:
            return dataclasses.replace(
                ex, qid=f"{ex.qid}-{rule}", question=question, answers=(), answer_start=0
            )
    return None


def name_pools(articles: list[dict[str, Any]]) -> tuple[dict[str, list[str]], list[str]]:
    """Names of each paragraph's article (keyed by the paragraph's text) and of all articles."""
    by_context: dict[str, list[str]] = {}
    everyone: set[str] = set()
    for art in articles:
        names = sorted({n for p in art["paragraphs"] for n in names_in(p["context"])})
        everyone.update(names)
        by_context.update(dict.fromkeys((p["context"] for p in art["paragraphs"]), names))
    return by_context, sorted(everyone)


def perturbed_negatives(
    articles: list[dict[str, Any]], examples: Sequence[QAExample], share: float, seed: int
) -> list[QAExample]:
    """Perturbed-question twins for a seeded ``share`` of ``examples`` (names from their
    articles, else from any of ``articles``)."""
    if share <= 0:
        return []
    by_context, everyone = name_pools(articles)
    rng = random.Random(f"perturbed-{seed}")
    out: list[QAExample] = []
    for ex in examples:
        if rng.random() >= share:
            continue
        twin = perturb(ex, by_context.get(ex.context, []), rng)
        if twin is None and everyone:  # another article's names
            twin = perturb(ex, rng.sample(everyone, min(200, len(everyone))), rng, ("entity",))
        if twin is not None:
            out.append(twin)
    return out
