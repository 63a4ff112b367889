"""Dates of saved web pages: from the page's metadata or a visible dateline, never from noise
in the source (inline base64 images, scripts) or a date a sentence mentions."""

from __future__ import annotations

import base64
import random

import pytest

from qa.ingest.html import parse_html

BODY = (
    "<p>The harbour bakery won the national sourdough prize for its rye loaf this spring.</p>"
    "<p>Another paragraph of text about the boats in the harbour and the weather today.</p>"
)


def page(head: str = "", body: str = BODY) -> str:
    return (
        f"<html><head><title>Harbour news</title>{head}</head><body><article>"
        f"<h1>Harbour news</h1>{body}</article></body></html>"
    )


def data_uri_image(seed: int) -> str:
    data = base64.b64encode(random.Random(seed).randbytes(100_000)).decode()
    return f'<img src="data:image/png;base64,{data}">'


# Seeds whose images gave 2018-01-01, 2026-01-01, 2000-01-01 and 2003-01-01 before.
@pytest.mark.parametrize("seed", [5, 9, 14, 19])
def test_an_inline_image_gives_no_date(seed: int) -> None:
    assert parse_html(page(body=BODY + data_uri_image(seed))).date == ""


def test_digits_in_a_data_uri_or_a_script_give_no_date() -> None:
    noise = '<img src="data:image/png;base64,AAAA20170404BBBB2017-04-04CCCC">'
    script = '<script>var build = "2016-05-06"; var v = 20150102;</script>'
    assert parse_html(page(body=BODY + noise + script)).date == ""


def test_a_date_a_sentence_mentions_is_not_the_page_date() -> None:
    body = "<p>The war in Europe ended on May 8, 1945, and the harbour was rebuilt.</p>" + BODY
    assert parse_html(page(body=body)).date == ""


@pytest.mark.parametrize(
    ("head", "body", "expected"),
    [
        (
            '<meta property="article:published_time" content="2021-03-03T10:00:00Z">',
            BODY,
            "2021-03-03",
        ),
        ("", '<time datetime="2020-02-02">2 Feb</time>' + BODY, "2020-02-02"),
        (
            '<script type="application/ld+json">{"@type": "NewsArticle", '
            '"datePublished": "2019-09-09"}</script>',
            BODY,
            "2019-09-09",
        ),
        ("", "<p>Published: March 3, 2021</p>" + BODY, "2021-03-03"),
        ("", "<p>June 3, 2023</p>" + BODY, "2023-06-03"),
    ],
    ids=["meta", "time", "json-ld", "labelled-dateline", "dateline"],
)
def test_metadata_and_datelines_still_give_the_date(head: str, body: str, expected: str) -> None:
    image = data_uri_image(5)
    assert parse_html(page(head, body + image)).date == expected
