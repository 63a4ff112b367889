"""Fuzzing the file parsers (hypothesis): whatever bytes a file holds, reading it yields
articles and skip records, never another exception, and every article's passages keep the
token budget with offsets that slice back to their text.

Bounded by example counts (the ``default`` profile of tests/conftest.py: a few seconds per
test); ``pytest --hypothesis-profile=fuzz-long tests/unit -k fuzz`` searches far longer.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from qa.index.chunk import Chunker, tiktoken_counter
from qa.ingest.files import Ingestor, Skipped
from qa.types import Article

COUNT = tiktoken_counter()
CHUNKER = Chunker(max_tokens=60, min_tokens=10, counter=COUNT, model_max_tokens=None)
INGESTOR = Ingestor(max_article_bytes=200_000)

# Pieces that the parsers treat specially, mixed with any text.
SPECIAL = st.sampled_from(
    [
        "\n",
        "\n\n",
        "\r\n",
        "\x00",
        "\ufeff",
        "\x1b[2J",
        "Original url:\n<https://x.example/a>",
        "Related article: x",
        "Photo: someone",
        "January 30, 2018",
        "2018-01-30",
        "---\ntitle: t\ndate: 2020-01-01\n---",
        "# Heading",
        "\\*",
        "[" * 50,
        "{" * 50,
        '{"title": "T", "text": "Body."}',
        "<html><p>x</p>",
        "<title>T</title>",
        "<p>",
        "</p>",
        '<img src="data:image/png;base64,AAAA2017">',
        "U.S. Mr. Jan. 5. He said.",
        "a" * 500,
        "中文字符",
        "\u2028",
        " ",
    ]
)
TEXT = st.lists(st.one_of(SPECIAL, st.text(max_size=80)), max_size=30).map("".join)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["title", "headline", "text", "body", "content", "date", "url", "source", "data"]
            )
            | st.text(max_size=8),
            kids,
            max_size=6,
        )
    ),
    max_leaves=20,
)
SUFFIXES = [".txt", ".md", ".markdown", ".json", ".jsonl", ".html", ".htm", ".jsonl.gz", ".json.gz"]


def read_all(name: str, data: bytes) -> list[object]:
    """Write ``data`` to a file called ``name`` and read it the way ``newsqa index`` does."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        return list(INGESTOR.read_file(path))


def assert_sound(items: list[object]) -> None:
    for item in items:
        assert isinstance(item, Article | Skipped), item
        if isinstance(item, Skipped):
            assert item.reason and "\n" not in item.reason
            continue
        assert item.title.strip() and item.text.strip()
        for p in CHUNKER.split(item):
            assert COUNT(p.text) <= 60, p.text
            assert item.text[p.start : p.end] == p.text


@given(suffix=st.sampled_from(SUFFIXES), text=TEXT)
def test_fuzz_any_text_in_any_format(suffix: str, text: str) -> None:
    assert_sound(read_all("article" + suffix, text.encode("utf-8", "surrogatepass")))


@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=2000))
def test_fuzz_any_bytes_in_any_format(suffix: str, data: bytes) -> None:
    assert_sound(read_all("article" + suffix, data))


@given(values=st.lists(JSON_VALUE, min_size=1, max_size=5), lines=st.booleans())
def test_fuzz_json_records(values: list[object], lines: bool) -> None:
    if lines:
        data = "\n".join(json.dumps(v) for v in values).encode()
        assert_sound(read_all("feed.jsonl", data))
    else:
        assert_sound(read_all("feed.json", json.dumps(values).encode()))


@given(
    title=st.text(max_size=60),
    paragraphs=st.lists(TEXT, max_size=6),
    tags=st.lists(
        st.sampled_from(["p", "div", "article", "h1", "script", "time", "meta"]), max_size=6
    ),
)
def test_fuzz_html_pages(title: str, paragraphs: list[str], tags: list[str]) -> None:
    body = "".join(f"<{t}>{p}</{t}>" for t, p in zip(tags * 3, paragraphs, strict=False))
    html = f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    assert_sound(read_all("page.html", html.encode("utf-8", "surrogatepass")))
