"""Article dates as people write them ("January 30, 2018", "30 Jan 2018 10:00", ISO) as ISO."""

from __future__ import annotations

import email.utils
import re
from datetime import date

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}


_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"


_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"


_YEAR = r"(?P<year>\d{4})"


# An optional time (and zone) may follow a date; anything else means the text is not a date.
_TIME = (
    r"(?:(?:[T\s]|,\s*|\s+at\s+)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[AaPp]\.?[Mm]\.?)?"
    r"\s*(?:Z|[A-Z]{2,5}|(?:UTC|GMT)?[+-]\d{2}:?\d{2})?)?"
)


_WEEKDAY = r"(?:[A-Za-z]{3,9}\.?,?\s+)?"


_DATE_PATTERNS = (
    re.compile(rf"^{_YEAR}[-/.](?P<month>\d{{1,2}})[-/.]{_DAY}{_TIME}$"),
    re.compile(rf"^{_WEEKDAY}{_MONTH}\s+{_DAY},?\s+{_YEAR}{_TIME}$"),
    re.compile(rf"^{_WEEKDAY}{_DAY}\s+{_MONTH},?\s+{_YEAR}{_TIME}$"),
    re.compile(rf"^{_YEAR}(?P<month>\d{{2}})(?P<day>\d{{2}})$"),
)


def _month_number(token: str) -> int | None:
    return int(token) if token.isdigit() else _MONTHS.get(token.lower())


def parse_date(value: str) -> str:
    """Parse a publication date in any common news format.

    Accepts ISO dates and timestamps (``2018-01-30``, ``2018-01-30T10:00:00Z``), slashed dates
    (``2022/06/12``), month names (``January 30, 2018``, ``Jan. 30, 2018``, ``30 Jan 2018``,
    optionally after a weekday) and RFC 2822 (``Tue, 30 Jan 2018 10:00:00 +0000``).

    Args:
        value: The date text.

    Returns:
        ``YYYY-MM-DD``, or "" when the text is not a (valid) date.
    """
    text = " ".join(value.split())
    if not text or len(text) > 64:
        return ""
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            month = _month_number(match["month"])
            try:
                return date(int(match["year"]), month or 0, int(match["day"])).isoformat()
            except ValueError:
                return ""
    try:
        return email.utils.parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError):
        return ""
