"""Time-aware answers with the real embedder and reader, on a small dated corpus.

A yearly race reported three times: the question without a date is about the latest one as of
the day it is asked, later reports are never read, and "in 2020" finds 2020's winner.
"""

from __future__ import annotations

from datetime import date

import pytest
from conftest import SHARED_DIR  # noqa: F401  (keeps the shared conftest loaded first)

from qa.answer import Answerer
from qa.index.embed import Embedder
from qa.index.indexer import Indexer
from qa.reader.span import shipped_reader_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shipped_reader_available(), reason="the span reader is not shipped"),
]

RACES = {
    "2020-06-14": (
        "Anna Berg wins the Rivertown marathon",
        "Anna Berg won the Rivertown marathon on Sunday, finishing in two hours and "
        "thirty-one minutes. Heavy rain slowed the field along the river path.",
    ),
    "2021-06-13": (
        "Rivertown marathon: a first title for Tomas Lind",
        "Tomas Lind won the Rivertown marathon on Sunday after a late sprint past the old "
        "mill. The organisers counted a record four thousand runners.",
    ),
    "2022-06-12": (
        "Maria Okafor is the new Rivertown marathon champion",
        "Maria Okafor won the Rivertown marathon on Sunday, pulling away in the last three "
        "kilometres. The mayor handed out the medals at the harbour.",
    ),
}
QUESTION = "Who won the Rivertown marathon?"


@pytest.fixture(scope="module")
def answerer(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder) -> Answerer:
    corpus = tmp_path_factory.mktemp("races")
    for day, (title, body) in RACES.items():
        y, m, d = (int(x) for x in day.split("-"))
        url = f"https://rivertown.example/{day}/marathon"
        text = f"{title}\n\n{date(y, m, d):%B} {d}, {y}\n\n{body}\n\nOriginal url:\n<{url}>\n"
        (corpus / f"{day}.txt").write_text(text, encoding="utf-8")
    root = tmp_path_factory.mktemp("index")
    assert Indexer(root, real_embedder).update([corpus]).added == 3
    return Answerer(root, embedder=real_embedder)


def test_the_latest_report_as_of_the_day_asked(answerer: Answerer) -> None:
    resp = answerer.ask(QUESTION, k=3, as_of=date(2022, 6, 16))
    assert resp.answer is not None and "Maria Okafor" in resp.answer.text
    assert resp.citations[0].date == "2022-06-12"
    assert resp.scope == "articles up to 2022-06-16, recent first"


def test_later_reports_are_never_read(answerer: Answerer) -> None:
    resp = answerer.ask(QUESTION, k=3, as_of=date(2021, 6, 17))
    assert resp.answer is not None and "Tomas Lind" in resp.answer.text
    assert {c.date for c in resp.citations} == {"2020-06-14", "2021-06-13"}


def test_a_named_year_finds_that_years_report(answerer: Answerer) -> None:
    resp = answerer.ask("Who won the Rivertown marathon in 2020?", k=3, as_of=date(2022, 6, 16))
    assert resp.answer is not None and "Anna Berg" in resp.answer.text
    assert resp.citations[0].date == "2020-06-14"
    assert resp.scope == 'articles from 2020-01-01 to 2022-06-16 ("in 2020"), 2020 first'


def test_last_week_searches_only_last_weeks_report(answerer: Answerer) -> None:
    resp = answerer.ask("Who won the Rivertown marathon last week?", k=3, as_of=date(2021, 6, 18))
    assert [c.date for c in resp.citations] == ["2021-06-13"]
    assert resp.answer is not None and "Tomas Lind" in resp.answer.text
