"""Unit tests for qa.ingest: every input format, bad files, discovery, dates."""

from __future__ import annotations

import gzip
import itertools
import json
import re
from pathlib import Path

import pytest

import qa.ingest.html
from qa.errors import BadArticle, UsageError
from qa.ingest.files import Ingestor, Skipped, file_kind, parse_date
from qa.types import Article

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
SEED = SHARED / "data" / "seed" / "putin-syria-peace-conference-2018-01-30.txt"
NEWS = SHARED / "data" / "news" / "realtimeqa-corpus.jsonl.gz"
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Council Approves New Bridge Budget | City Herald</title>
  <meta property="og:title" content="Council Approves New Bridge Budget">
  <meta property="og:site_name" content="City Herald">
  <meta property="article:published_time" content="2023-04-11T08:30:00+00:00">
  <link rel="canonical" href="https://www.cityherald.example/news/2023/04/11/bridge-budget">
</head>
<body>
  <header><nav><a href="/">Home</a> | <a href="/news">News</a> | <a href="/sport">Sport</a></nav>
  </header>
  <main>
    <article>
      <h1>Council Approves New Bridge Budget</h1>
      <p>The city council voted 7 to 2 on Monday night to approve a $45 million budget for the
      replacement of the Elm Street bridge, ending months of debate over the project's cost.</p>
      <p>Engineers warned last year that the 80-year-old bridge was nearing the end of its safe
      life, and heavy trucks have been barred from crossing it since January.</p>
      <p>Construction is expected to begin in the autumn and last about two years. During that
      time, traffic will be diverted to the Oak Avenue crossing.</p>
      <p>"This is the largest single investment in our roads in a generation," said Mayor Alan
      Ruiz after the vote. Opponents argued the money would be better spent on public transport.</p>
    </article>
  </main>
  <footer><p>Copyright 2023 City Herald. All rights reserved.</p></footer>
</body>
</html>
"""

SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Super_Bowl_50",
            "paragraphs": [
                {"context": "Super Bowl 50 was an American football game.", "qas": []},
                {"context": "The game was played on February 7, 2016.", "qas": []},
                {"context": "Super Bowl 50 was an American football game.", "qas": []},
            ],
        },
        {"title": "Warsaw", "paragraphs": [{"context": "Warsaw is the capital of Poland."}]},
    ],
}


def read(path: Path, *, strict: bool = False) -> list[Article | Skipped]:
    return list(Ingestor(strict=strict).read_file(path))


def articles(items: list[Article | Skipped]) -> list[Article]:
    return [item for item in items if isinstance(item, Article)]


def skipped(items: list[Article | Skipped]) -> list[Skipped]:
    return [item for item in items if isinstance(item, Skipped)]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    data = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data.encode()))
    else:
        path.write_text(data, encoding="utf-8")
    return path


def record(n: int) -> str:
    return json.dumps(
        {
            "url": f"https://www.example.com/story/{n}",
            "title": f"Story {n}",
            "publish_date": "2022/06/12",
            "text": f"First paragraph of story {n}.\n\nSecond paragraph.",
        }
    )


# ---------------------------------------------------------------------------------------------
# Plain text
# ---------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_reference_article() -> None:
    if not SEED.exists():
        pytest.skip("shared data not present")
    [article] = read(SEED)
    assert isinstance(article, Article)
    assert article.title == "Putin's Syria Peace Conference Boycotted by Assad Opponents"
    assert article.date == "2018-01-30"
    assert article.url == (
        "https://www.themoscowtimes.com/2018/01/30/"
        "putin-stages-syria-peace-conference-boycotted-by-assad-opponents-a60333"
    )
    assert article.source == "themoscowtimes.com"
    assert article.origin == str(SEED)
    text = article.text
    assert "the main opposition faction said it wouldn't attend" in text
    assert "$300 billion" in text and "\\" not in text
    for gone in ("Related article", "Original url", "Kremlin Press Service", "themoscowtimes"):
        assert gone not in text
    assert text.startswith("(Bloomberg) — Russia is hosting")
    assert "\n\n\n" not in text
    assert all(p == p.strip() and p for p in text.split("\n\n"))


def test_same_content_in_two_files_has_same_id(tmp_path: Path) -> None:
    content = "A Title\n\nMarch 3, 2021\n\nOne paragraph of news.\n"
    (tmp_path / "sub").mkdir()
    first = tmp_path / "a.txt"
    second = tmp_path / "sub" / "b.txt"
    first.write_text(content, encoding="utf-8")
    second.write_text(content.replace("\n", "\r\n"), encoding="utf-8")
    [a], [b] = read(first), read(second)
    assert isinstance(a, Article) and isinstance(b, Article)
    assert a.id == b.id and a.origin != b.origin


def test_plain_text_without_date_line(tmp_path: Path) -> None:
    path = tmp_path / "nodate.txt"
    path.write_text("Headline here\nShort lede\n\nSecond para \\*with\\* escapes.\n")
    [article] = read(path)
    assert isinstance(article, Article)
    assert article.date == ""
    # Without a dateline a short first paragraph is kept: it is not a photo credit.
    assert article.text == "Short lede\n\nSecond para *with* escapes."
    assert article.url == "" and article.source == ""


def test_plain_text_normalisation_and_inline_url(tmp_path: Path) -> None:
    path = tmp_path / "norm.txt"
    decomposed = "Cafe\u0301 opens"  # e + combining acute
    path.write_text(
        f"{decomposed}\r\n2020-05-01\r\n\r\n\r\n\r\n  Body line one.   \r\n\r\n"
        "Original url: <https://news.example.org/cafe>\r\n",
        encoding="utf-8",
    )
    [article] = read(path)
    assert isinstance(article, Article)
    assert article.title == "Café opens"
    assert article.text == "Body line one."
    assert article.url == "https://news.example.org/cafe"
    assert article.source == "news.example.org"


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def test_markdown_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "story.md"
    path.write_text(
        "---\n"
        'title: "Rates Rise Again"\n'
        "date: 2023-07-26\n"
        "url: https://www.ft.example/rates\n"
        "source: 'Financial Example'\n"
        "---\n\n"
        "# Rates Rise Again\n\n"
        "## Background\n\n"
        "The central bank raised rates, see [the statement](https://cb.example/s).\n\n"
        "**Markets** fell.\n",
        encoding="utf-8",
    )
    [article] = read(path)
    assert isinstance(article, Article)
    assert article.title == "Rates Rise Again"
    assert article.date == "2023-07-26"
    assert article.url == "https://www.ft.example/rates"
    assert article.source == "Financial Example"
    assert article.text == (
        "Background\n\nThe central bank raised rates, see the statement.\n\nMarkets fell."
    )


def test_markdown_title_from_heading(tmp_path: Path) -> None:
    path = tmp_path / "plain.markdown"
    path.write_text("# Storm Hits Coast #\n\nJan. 5, 2024\n\nWinds reached 120 km/h.\n")
    [article] = read(path)
    assert isinstance(article, Article)
    assert (article.title, article.date, article.text) == (
        "Storm Hits Coast",
        "2024-01-05",
        "Winds reached 120 km/h.",
    )


# ---------------------------------------------------------------------------------------------
# JSON, JSONL, SQuAD
# ---------------------------------------------------------------------------------------------


def test_jsonl_bad_line_in_the_middle(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "news.jsonl", [record(1), "{not json", record(3)])
    items = read(path)
    found, skips = articles(items), skipped(items)
    assert [a.title for a in found] == ["Story 1", "Story 3"]
    assert [a.origin for a in found] == [f"{path}:1", f"{path}:3"]
    assert found[0].date == "2022-06-12"
    assert found[0].source == "example.com"
    assert found[0].text == "First paragraph of story 1.\n\nSecond paragraph."
    [skip] = skips
    assert skip.line == 2 and skip.reason.startswith("invalid JSON")
    assert skip.message().startswith(f"{path}:2: invalid JSON")


def test_jsonl_gz_and_records_without_title_or_body(tmp_path: Path) -> None:
    lines = [
        record(1),
        "",
        json.dumps({"title": "No body", "text": "  "}),
        json.dumps({"body": "Text only"}),
        json.dumps({"title": "Dated", "date": "Jan 2, 2020", "body": "B.", "source": "Wire"}),
        "[1, 2]",
    ]
    items = read(write_jsonl(tmp_path / "news.jsonl.gz", lines))
    found = articles(items)
    # A record with a body but no title is kept, named after its first words.
    assert [a.title for a in found] == ["Story 1", "Text only", "Dated"]
    assert (found[2].date, found[2].source, found[2].url) == ("2020-01-02", "Wire", "")
    assert [(s.line, s.reason) for s in skipped(items)] == [
        (3, "no article body"),
        (6, "not a JSON object (list)"),
    ]


def test_record_without_title_is_named_after_its_url_slug(tmp_path: Path) -> None:
    url = "https://www.cnn.com/2022/06/12/politics/whats-in-senate-gun-reform-agreement/index.html"
    lines = [json.dumps({"url": url, "title": "", "text": "Senators agreed on a gun bill."})]
    found = articles(read(write_jsonl(tmp_path / "news.jsonl", lines)))
    assert [a.title for a in found] == ["Whats in senate gun reform agreement"]


def test_json_object_and_list(tmp_path: Path) -> None:
    single = tmp_path / "one.json"
    single.write_text(record(7))
    many = tmp_path / "many.json.gz"
    many.write_bytes(gzip.compress(f"[{record(1)}, {record(2)}, 5]".encode()))
    [one] = read(single)
    assert isinstance(one, Article) and one.title == "Story 7" and one.origin == str(single)
    items = read(many)
    assert [a.title for a in articles(items)] == ["Story 1", "Story 2"]
    assert [s.reason for s in skipped(items)] == ["record 2: not a JSON object (int)"]


def test_json_file_with_jsonl_content(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "actually-lines.json", [record(1), record(2)])
    assert [a.origin for a in articles(read(path))] == [f"{path}:1", f"{path}:2"]


@pytest.mark.parametrize("name", ["squad.json", "squad.json.gz"])
def test_squad_paragraphs_are_articles(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    data = json.dumps(SQUAD).encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    found = articles(read(path))
    assert [a.url for a in found] == [
        "squad://Super_Bowl_50#0",
        "squad://Super_Bowl_50#1",
        "squad://Super_Bowl_50#2",
        "squad://Warsaw#0",
    ]
    assert found[0].title == "Super Bowl 50"
    assert found[0].text == "Super Bowl 50 was an American football game."
    assert found[0].origin == str(path) and found[0].date == "" and found[0].source == ""
    # Identical contexts are exact duplicates: same id, both yielded (dedup is downstream).
    assert found[0].id == found[2].id != found[1].id


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def test_html_page(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    [article] = read(path)
    assert isinstance(article, Article)
    assert article.title == "Council Approves New Bridge Budget"
    assert article.date == "2023-04-11"
    assert article.url == "https://www.cityherald.example/news/2023/04/11/bridge-budget"
    assert article.source == "cityherald.example"
    paragraphs = article.text.split("\n\n")
    assert paragraphs[0].startswith("The city council voted 7 to 2")
    assert len(paragraphs) == 4
    assert "$45 million" in article.text and "Mayor Alan Ruiz" in article.text
    for chrome in ("Home", "Sport", "All rights reserved"):
        assert chrome not in article.text


def test_html_fallback_without_trafilatura(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa.ingest.html, "_trafilatura_fields", lambda html: ("", {}))
    path = tmp_path / "page.htm"
    path.write_text(HTML_PAGE, encoding="utf-8")
    [article] = read(path)
    assert isinstance(article, Article)
    assert article.title == "Council Approves New Bridge Budget"
    assert article.date == "2023-04-11"
    assert article.url.endswith("/bridge-budget")
    assert article.text.startswith("The city council voted")


def test_html_content_in_txt_file(tmp_path: Path) -> None:
    path = tmp_path / "saved.txt"
    path.write_text(HTML_PAGE, encoding="utf-8")
    [article] = read(path)
    assert isinstance(article, Article) and article.title == "Council Approves New Bridge Budget"


# ---------------------------------------------------------------------------------------------
# Bad files and strict mode
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n \t\n", "empty file"),
        ("empty.jsonl", b"", "empty file"),
        ("binary.txt", b"Title\x00\x01\x02 data", "binary file"),
        (
            "latin1.txt",
            "Título\n\nCafé".encode("latin-1"),
            "not UTF-8 text (byte 0xed at offset 1)",
        ),
        ("title-only.txt", b"Just a title\n", "no article body"),
        ("date-only.txt", b"Title\nJanuary 30, 2018\n", "no article body"),
        ("bad.json", b'{"title": "x",', "invalid JSON: "),
        ("notes.pdf", b"%PDF-1.4", "unsupported file type"),
        ("broken.jsonl.gz", b"not gzip at all", "cannot read file: "),
        (
            "empty-page.html",
            b"<html><head><title>T</title></head><body></body></html>",
            "no article body",
        ),
    ],
)
def test_bad_files_are_skipped(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    [skip] = read(path)
    assert isinstance(skip, Skipped)
    assert skip.origin == str(path) and skip.line is None
    assert skip.reason.startswith(reason)
    assert skip.message() == f"{path}: {skip.reason}"


def test_latin1_line_in_jsonl_is_skipped_alone(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(record(1).encode() + b"\n" + record(2).encode("latin-1") + b"\xe9\n")
    items = read(path)
    assert len(articles(items)) == 1
    [skip] = skipped(items)
    assert skip.line == 2 and skip.reason.startswith("not UTF-8 text (byte 0xe9")


def test_strict_raises_bad_article(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "news.jsonl", [record(1), "{oops", record(3)])
    items = Ingestor(strict=True).read_file(path)
    first = next(items)
    assert isinstance(first, Article)
    with pytest.raises(BadArticle) as caught:
        next(items)
    assert caught.value.line == 2 and caught.value.origin == str(path)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(BadArticle, match="empty file"):
        read(empty, strict=True)


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------


def test_discover(tmp_path: Path) -> None:
    names = [
        "b.txt",
        "a.md",
        "c.JSONL.GZ",
        "d.json",
        "e.html",
        "f.htm",
        "g.markdown",
        "h.jsonl",
        "i.json.gz",
        "sub/deeper/z.txt",
        "notes.pdf",
        "archive.txt.gz",
        ".hidden.txt",
        ".git/config.txt",
        "sub/.cache/x.json",
    ]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = Ingestor().discover([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.md",
        "b.txt",
        "c.JSONL.GZ",
        "d.json",
        "e.html",
        "f.htm",
        "g.markdown",
        "h.jsonl",
        "i.json.gz",
        "sub/deeper/z.txt",
    ]
    # Explicit files are kept (read_file explains unsupported ones); duplicates collapse.
    explicit = Ingestor().discover([tmp_path / "notes.pdf", tmp_path / "a.md", tmp_path])
    assert tmp_path / "notes.pdf" in explicit and len(explicit) == len(set(explicit)) == 11
    with pytest.raises(UsageError):
        Ingestor().discover([tmp_path / "missing"])


def test_read_all_and_file_kind(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("T\n\nBody.")
    write_jsonl(tmp_path / "b.jsonl", [record(1)])
    assert [a.title for a in articles(list(Ingestor().read([tmp_path])))] == ["T", "Story 1"]
    assert file_kind("X.Json.Gz") == ".json.gz" and file_kind("a.gz") is None


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("January 30, 2018", "2018-01-30"),
        ("2018-01-30", "2018-01-30"),
        ("2022/06/12", "2022-06-12"),
        ("2018-01-30T10:00:00Z", "2018-01-30"),
        ("2018-01-30T23:59:59.123+03:00", "2018-01-30"),
        ("Jan. 30, 2018", "2018-01-30"),
        ("Sept. 5, 2020", "2020-09-05"),
        ("30 January 2018", "2018-01-30"),
        ("Tuesday, January 30, 2018", "2018-01-30"),
        ("May 20, 2020 at 9:29 a.m. ET", "2020-05-20"),
        ("Tue, 30 Jan 2018 10:00:00 +0000", "2018-01-30"),
        ("Wed, 02 Oct 2002 08:00:00 EST", "2002-10-02"),
        ("  2018-1-5  ", "2018-01-05"),
        ("", ""),
        ("Kremlin Press Service", ""),
        ("2018-02-30", ""),
        ("Jan 2018", ""),
        ("Smarch 3, 2018", ""),
        ("May 20, 2020 Updated Aug. 18, 2020", ""),
    ],
)
def test_parse_date(value: str, expected: str) -> None:
    assert parse_date(value) == expected


# ---------------------------------------------------------------------------------------------
# Real corpus
# ---------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_real_news_corpus_first_200_lines(tmp_path: Path) -> None:
    if not NEWS.exists():
        pytest.skip("shared data not present")
    with gzip.open(NEWS, "rb") as stream:
        head = b"".join(itertools.islice(stream, 200))
    sample = tmp_path / "head.jsonl.gz"
    sample.write_bytes(gzip.compress(head))
    items = read(sample)
    found = articles(items)
    assert len(items) == 200
    # The corpus has a few records with an empty text (line 183 among the first 200).
    assert len(found) >= 195
    assert all(s.reason == "no article body" for s in skipped(items))
    assert all(ISO_DATE.match(a.date) for a in found)
    assert all(a.title and a.text and a.url.startswith("http") and a.source for a in found)
    assert found[0].origin == f"{sample}:1"
