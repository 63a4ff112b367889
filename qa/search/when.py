"""When a question is asked, and what its time words ask for: the search's time scope.

Every question is asked *as of* a day (today for ``ask`` and the chat, ``--as-of``, or a
question's own date in ``eval --as-of-question-date``): articles published after it are never
searched, and the ranking's recency prior counts an article's age back from it.

Time words in the question narrow that. Two kinds, because news is written *after* the events
it reports, often long after:

- *Relative* words ("today", "yesterday", "this week", "last week", "two days ago", "this
  month", "last month", "this year", "on Monday") name a window that ends at the as-of day:
  only articles from the window's start to the as-of day are searched, most recent first.
- *Named periods* ("in 2019", "in March", "in March 2020", "on June 3", "on January 6, 2021",
  "last year") name a stretch of the calendar. Articles from its start to the as-of day are
  searched, and the prior favours the period itself: an article inside it counts as new, one
  published after it ages from the period's end. So "in 2019" finds 2019's reports first and
  still finds a later article that is the only one to tell ("the insurrection on January 6,
  2021", asked in July 2022, is answered by a 2022 article).

Day-level words start one day early (an article's date and the event's day can differ by time
zone). A period that starts after the as-of day (a future event: "will open in March", "next
week") narrows nothing: articles about the future are written before it. Undated articles are
always searched: a time word cannot tell whether they belong.

Ambiguity is resolved on the side of not filtering: a month is only read as a month when
capitalised and introduced by a preposition or followed by a day ("in May", "May 3"), never
the verbs ("they may", "protesters march"); a year only after "in", "during" or "throughout"
and not followed by a counted noun ("in 2000 words"), so "Windows 2000", "COVID-19", "the
2019 election" and "a card from 1952" narrow nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["Scope", "scope_for"]

MONTHS = (
    "January February March April May June July August September October November December"
).split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
# Words that may follow "in 2019" without making the number a count of something.
_AFTER_YEAR = set(
    "and or but when while after before as the to at for by with from than that which who whom "
    "was were is are did does do has have had so if".split()
)
_FUTURE = re.compile(r"\b(will|won.t|next(?!-)|upcoming|going to|scheduled|plans? to)\b", re.I)

_MONTH = "|".join(MONTHS)
_DAY_RE = re.compile(
    rf"\b(?i:on)\s+(?:(?i:{'|'.join(WEEKDAYS)}),?\s+)?({_MONTH})\s+(\d{{1,2}})"
    rf"(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?"
)
_MONTH_RE = re.compile(
    rf"\b(?i:in|during|throughout)\s+(?i:early\s+|late\s+|mid-?)?({_MONTH})\b"
    rf"(?:,?\s+(?:of\s+)?(\d{{4}})\b)?"
)
_YEAR_RE = re.compile(r"\b(?:in|during|throughout)\s+((?:19|20)\d{2})\b(?!-|\w)(\s+\w+)?", re.I)
# "on Friday, June 3" is the named day, not the last Friday.
_WEEKDAY_RE = re.compile(
    rf"\b(on|last|this past)\s+({'|'.join(WEEKDAYS)})\b(?!,?\s+(?-i:{_MONTH})\s+\d)", re.I
)
_AGO_RE = re.compile(
    r"\b(\d{1,3}|a|an|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(day|week|month|year)s?\s+ago\b",
    re.I,
)
_PAST_RE = re.compile(
    r"\b(?:in|over|during|within)\s+the\s+(?:last|past)\s+"
    r"(?:(\d{1,3}|two|three|four|five|six|seven|eight|nine|ten)\s+)?(day|week|month|year)s?\b",
    re.I,
)
_RELATIVE = (
    (re.compile(r"\btoday\b|\btonight\b|\bthis morning\b", re.I), "today"),
    (re.compile(r"\byesterday\b|\blast night\b", re.I), "yesterday"),
    (re.compile(r"\bthis week(?:end)?\b", re.I), "this week"),
    (re.compile(r"\blast week(?:end)?\b", re.I), "last week"),
    (re.compile(r"\bthis month\b", re.I), "this month"),
    (re.compile(r"\blast month\b", re.I), "last month"),
    (re.compile(r"\bthis year\b", re.I), "this year"),
    (re.compile(r"\blast year\b", re.I), "last year"),
)


@dataclass(frozen=True)
class Scope:
    """What one question searches: articles up to ``as_of``, narrowed by its time words.

    Attributes:
        as_of: The day the question is asked; later articles are never searched.
        since: Dated articles before this day are not searched (None: no lower bound).
        period: A named period ``(start, end)`` the prior favours (None: recency from
            ``as_of``).
        words: The time words that set ``since``/``period`` (empty: none).
    """

    as_of: date
    since: date | None = None
    period: tuple[date, date] | None = None
    words: str = ""

    def age_from(self) -> tuple[date, date]:
        """The days an article's age is counted from: inside is age 0, after it ages."""
        return self.period if self.period is not None else (self.as_of, self.as_of)

    def describe(self) -> str:
        """One line: ``articles up to 2022-06-16, recent first``; ``... , 2019 first``."""
        span = (
            f"articles from {self.since.isoformat()} to {self.as_of.isoformat()}"
            if self.since is not None
            else f"articles up to {self.as_of.isoformat()}"
        )
        said = f' ("{self.words}")' if self.words else ""
        if self.period is None:
            return f"{span}{said}, recent first"
        start, end = self.period
        if start.month == 1 and start.day == 1 and end == date(start.year, 12, 31):
            first = str(start.year)
        elif start.day == 1 and end == _month_end(start):
            first = start.strftime("%Y-%m")
        elif start == end:
            first = start.isoformat()
        else:
            first = f"{start.isoformat()} to {end.isoformat()}"
        return f"{span}{said}, {first} first"


def scope_for(question: str, as_of: date) -> Scope:
    """The time scope of ``question`` asked on ``as_of``.

    Several time words narrow together: the latest start wins, and with it its period ("how
    many died in 2021, according to a report this week" searches this week).

    Args:
        question: The question as typed.
        as_of: The day it is asked.

    Returns:
        The scope; without time words, every article up to ``as_of``, recent first.
    """
    found = [
        s
        for s in _candidates(question, as_of)
        if s.since is not None and (s.period[0] if s.period else s.since) <= as_of
    ]
    if not found:
        return Scope(as_of)
    best = max(found, key=lambda s: s.since or as_of)
    return best


def _candidates(question: str, as_of: date) -> list[Scope]:
    future = bool(_FUTURE.search(question))
    return _windows(question, as_of, future) + _periods(question, as_of, future)


def _windows(question: str, as_of: date, future: bool) -> list[Scope]:
    """Relative words: windows ending at ``as_of`` (and last month / last year)."""
    out = [_relative(name, m.group(0), as_of) for r, name in _RELATIVE if (m := r.search(question))]
    for m in _AGO_RE.finditer(question):
        days = _count(m.group(1)) * _UNIT_DAYS[m.group(2).lower()]
        out.append(Scope(as_of, as_of - timedelta(days=days + 1), words=m.group(0)))
    for m in _PAST_RE.finditer(question):
        days = _count(m.group(1) or "1") * _UNIT_DAYS[m.group(2).lower()]
        out.append(Scope(as_of, as_of - timedelta(days=days), words=m.group(0)))
    for m in [] if future else _WEEKDAY_RE.finditer(question):
        back = (as_of.weekday() - WEEKDAYS.index(m.group(2).capitalize())) % 7
        if back == 0 and m.group(1).lower() != "on":
            back = 7  # "last Monday", asked on a Monday
        out.append(Scope(as_of, as_of - timedelta(days=back + 1), words=m.group(0)))
    return out


def _periods(question: str, as_of: date, future: bool) -> list[Scope]:
    """Named days, months and years."""
    out = []
    for m in _DAY_RE.finditer(question):
        year = int(m.group(3)) if m.group(3) else None
        day = _day(year, MONTHS.index(m.group(1)) + 1, int(m.group(2)), as_of, future)
        if day is not None:
            out.append(Scope(as_of, day - timedelta(days=1), (day, day), m.group(0)))
    for m in _MONTH_RE.finditer(question):
        year = int(m.group(2)) if m.group(2) else None
        start = _month(year, MONTHS.index(m.group(1)) + 1, as_of, future)
        out.append(Scope(as_of, start, (start, _month_end(start)), m.group(0)))
    for m in _YEAR_RE.finditer(question):
        after = (m.group(2) or "").strip()
        if after and after.isalpha() and after.lower() not in _AFTER_YEAR:
            continue  # "in 2000 words": a count, not a year
        first, last = date(int(m.group(1)), 1, 1), date(int(m.group(1)), 12, 31)
        out.append(Scope(as_of, first, (first, last), f"{m.group(0).split()[0]} {first.year}"))
    return out


def _relative(name: str, words: str, as_of: date) -> Scope:
    """A window ending at ``as_of`` (recent first), or last month / last year (a period)."""
    if name == "today":
        return Scope(as_of, as_of - timedelta(days=1), words=words)
    if name == "yesterday":
        return Scope(as_of, as_of - timedelta(days=2), words=words)
    if name in ("this week", "last week"):
        # Measured on the dated news questions: "this week" is the seven days before the
        # question, whatever weekday it is asked on.
        back = 7 if name == "this week" else 14
        return Scope(as_of, as_of - timedelta(days=back), words=words)
    if name == "this month":
        return Scope(as_of, as_of.replace(day=1), words=words)
    if name == "this year":
        return Scope(as_of, date(as_of.year, 1, 1), words=words)
    if name == "last month":
        start = (as_of.replace(day=1) - timedelta(days=1)).replace(day=1)
        return Scope(as_of, start, (start, _month_end(start)), words)
    start = date(as_of.year - 1, 1, 1)  # last year
    return Scope(as_of, start, (start, date(as_of.year - 1, 12, 31)), words)


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word.lower()]


def _month_end(start: date) -> date:
    nxt = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def _month(year: int | None, month: int, as_of: date, future: bool) -> date:
    """The first day of the month named: the latest one up to ``as_of`` unless a year is
    given (the next one, after ``as_of``, for a question about the future)."""
    if year is not None:
        return date(year, month, 1)
    if future:
        return date(as_of.year + (month <= as_of.month), month, 1)
    return date(as_of.year - (month > as_of.month), month, 1)


def _day(year: int | None, month: int, day: int, as_of: date, future: bool) -> date | None:
    """The day named (None when there is no such day)."""
    try:
        if year is not None:
            return date(year, month, day)
        this = date(as_of.year, month, day)
        if future:
            return this if this > as_of else date(as_of.year + 1, month, day)
        return this if this <= as_of else date(as_of.year - 1, month, day)
    except ValueError:
        return None
