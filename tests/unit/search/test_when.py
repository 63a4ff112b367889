"""Time words in questions: the scope each one searches, on fixed as-of days."""

from __future__ import annotations

from datetime import date

import pytest

from qa.search.when import Scope, scope_for

AS_OF = date(2022, 6, 16)  # a Thursday
D = date.fromisoformat


def window(question: str, as_of: date = AS_OF) -> tuple[date | None, date | None, date | None]:
    """(since, period start, period end) of a question's scope."""
    s = scope_for(question, as_of)
    assert s.as_of == as_of
    return s.since, *(s.period or (None, None))


def test_no_time_words_searches_everything_up_to_the_as_of_day_recent_first() -> None:
    s = scope_for("Who won the national chess championship?", AS_OF)
    assert s == Scope(AS_OF)
    assert s.describe() == "articles up to 2022-06-16, recent first"


@pytest.mark.parametrize(
    ("question", "since"),
    [
        ("What happened today in Paris?", "2022-06-15"),
        ("Who won the match yesterday?", "2022-06-14"),
        ("Which senators announced a deal this week?", "2022-06-09"),
        ("Which country elected a leftist leader this weekend?", "2022-06-09"),
        ("Who resigned last week?", "2022-06-02"),
        ("What did the court rule two days ago?", "2022-06-13"),
        ("What did the court rule 3 weeks ago?", "2022-05-25"),
        ("What did the company report this month?", "2022-06-01"),
        ("Who has led the polls this year?", "2022-01-01"),
        ("How many titles were banned over the last year?", "2021-06-16"),
        ("How much did prices rise in the past 12 months?", "2021-06-21"),
        ("What did Apple release on Monday?", "2022-06-12"),  # Monday 13, one day early
        ("What did Apple release on thursday?", "2022-06-15"),  # asked on a Thursday
        ("Who spoke last Thursday?", "2022-06-08"),
    ],
)
def test_relative_words_search_from_their_start_recent_first(question: str, since: str) -> None:
    assert window(question) == (D(since), None, None)
    assert scope_for(question, AS_OF).describe().endswith("recent first")


@pytest.mark.parametrize(
    ("question", "since", "start", "end"),
    [
        ("Who won the election in 2019?", "2019-01-01", "2019-01-01", "2019-12-31"),
        ("What happened In 2019, the year of the fire?", "2019-01-01", "2019-01-01", "2019-12-31"),
        ("Who was arrested in March?", "2022-03-01", "2022-03-01", "2022-03-31"),
        ("Who was arrested in May?", "2022-05-01", "2022-05-01", "2022-05-31"),
        # A month still to come this year is last year's.
        ("What flooded in September?", "2021-09-01", "2021-09-01", "2021-09-30"),
        ("What flooded in March 2020?", "2020-03-01", "2020-03-01", "2020-03-31"),
        ("What flooded in early March of 2020?", "2020-03-01", "2020-03-01", "2020-03-31"),
        ("What did the king say on June 3?", "2022-06-02", "2022-06-03", "2022-06-03"),
        ("What did the king say on June 3rd?", "2022-06-02", "2022-06-03", "2022-06-03"),
        ("Who spoke on Friday, June 3?", "2022-06-02", "2022-06-03", "2022-06-03"),
        ("Who spoke on December 3?", "2021-12-02", "2021-12-03", "2021-12-03"),
        ("What happened on January 6, 2021?", "2021-01-05", "2021-01-06", "2021-01-06"),
        ("Who won the Oscar last year?", "2021-01-01", "2021-01-01", "2021-12-31"),
        ("What sold best last month?", "2022-05-01", "2022-05-01", "2022-05-31"),
    ],
)
def test_named_periods_search_from_their_start_and_favour_the_period(
    question: str, since: str, start: str, end: str
) -> None:
    assert window(question) == (D(since), D(start), D(end))


@pytest.mark.parametrize(
    "question",
    [
        "Which version was Windows 2000 built on?",  # a year inside a name
        "Did the Windows 2000 release ship in time?",
        "How many people died of COVID-19 in the city?",
        "Who won the 2019 election?",  # a year as an adjective, not a time
        "A baseball card from 1952 sold for how much?",
        "Who wrote the essay in 2000 words?",  # a count
        "How many people may attend the rally?",  # the verb
        "May the committee publish its report?",
        "Did protesters march to the capitol?",
        "Inflation is the highest in 40 years: how high?",
        "When will the rocket launch in March?",  # the future: its articles come before
        "What will happen on June 30?",
        "Who will speak on Monday?",
        "Who is next in line for the throne in 2025?",  # after the as-of day
        "What is the weather like in mayo?",
    ],
)
def test_no_time_scope_from_names_counts_verbs_and_the_future(question: str) -> None:
    assert scope_for(question, AS_OF) == Scope(AS_OF)


def test_the_latest_start_wins_when_several_time_words_are_given() -> None:
    # The report is this week's; the deaths were counted in 2021.
    q = "How many overdose deaths were there in 2021, according to a report out this week?"
    assert window(q) == (D("2022-06-09"), None, None)
    # The question's own date can fall years after a date it names: the later article stays.
    q = "How many minutes did violence play out during the riot on January 6, 2021?"
    assert window(q, D("2022-07-21")) == (D("2021-01-05"), D("2021-01-06"), D("2021-01-06"))


def test_relative_days_cross_month_and_year_ends() -> None:
    assert window("What happened yesterday?", D("2022-01-01")) == (D("2021-12-30"), None, None)
    assert window("Who won last month?", D("2022-01-10"))[1:] == (D("2021-12-01"), D("2021-12-31"))
    assert window("Who won last month?", D("2022-03-31"))[1:] == (D("2022-02-01"), D("2022-02-28"))
    assert window("Who spoke on February 29?", D("2021-03-01")) == (None, None, None)  # no such day
    assert window("Who spoke on February 29?", D("2024-03-01"))[1] == D("2024-02-29")


def test_descriptions_say_what_was_searched() -> None:
    def said(q: str) -> str:
        return scope_for(q, AS_OF).describe()

    assert said("Who resigned last week?") == (
        'articles from 2022-06-02 to 2022-06-16 ("last week"), recent first'
    )
    assert (
        said("Who won in 2019?") == 'articles from 2019-01-01 to 2022-06-16 ("in 2019"), 2019 first'
    )
    assert said("Who won in March?") == (
        'articles from 2022-03-01 to 2022-06-16 ("in March"), 2022-03 first'
    )
    assert said("What was said on June 3?") == (
        'articles from 2022-06-02 to 2022-06-16 ("on June 3"), 2022-06-03 first'
    )


def test_age_is_counted_from_the_period_or_the_as_of_day() -> None:
    assert scope_for("Who won?", AS_OF).age_from() == (AS_OF, AS_OF)
    assert scope_for("Who won in 2019?", AS_OF).age_from() == (D("2019-01-01"), D("2019-12-31"))
