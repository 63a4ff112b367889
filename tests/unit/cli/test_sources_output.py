"""``newsqa ask`` lists each cited article once, with the numbers of its passages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qa.answer import citation_for
from qa.cli.main import cli
from qa.cli.output import also_at
from qa.types import Answer, Hit, Passage, Response, Span

URL_A = "https://news.example/a"
URL_B = "https://wire.example/b"
COPY_B = "https://copy.example/b"
# Brackets as a title may have them: rich would read "[live]" as a style tag.
TITLE_B = "Sochi talks [live] updates"
SENTENCE = "The Kremlin invited 1,600 Syrians to Sochi."


def _hit(article: str, paragraph: int, rank: int, text: str) -> Hit:
    passage = Passage(f"{article}{paragraph}", article, paragraph, 0, len(text), text)
    if article == "a":
        return Hit(
            passage, 1.0 - rank / 10, rank, "Kremlin invites Syrians", "2018-01-30", URL_A, ""
        )
    return Hit(passage, 1.0 - rank / 10, rank, TITLE_B, "", URL_B, "wire", other_urls=(COPY_B,))


def _response(question: str) -> Response:
    """Passages 1, 3 and 4 from article a (the answer in 3), passage 2 from article b."""
    hits = [
        _hit("a", 1, 0, "Russia hosts a Syria peace summit."),
        _hit("b", 2, 1, "The opposition boycotts the talks."),
        _hit("a", 4, 2, SENTENCE),
        _hit("a", 13, 3, "Sochi is an attempt to create a rival platform."),
    ]
    start = SENTENCE.index("1,600")
    answer = Answer(
        "1,600", SENTENCE, 0.95, hits[2], Span(start, start + 5), Span(0, len(SENTENCE))
    )
    citations = [citation_for(i + 1, h, answer) for i, h in enumerate(hits)]
    return Response(question, answer, [answer], citations, hits)


class _FakeAnswerer:
    def __init__(self, index_dir: Path, reader: str = "auto", **_kwargs: Any) -> None:
        pass

    def ask(self, question: str, **_kwargs: Any) -> Response:
        return _response(question)


@pytest.fixture
def run_ask(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setattr("qa.answer.Answerer", _FakeAnswerer)

    def run(*args: str) -> str:
        result = CliRunner().invoke(
            cli, ["ask", "How many Syrians?", "--index-dir", str(tmp_path), *args]
        )
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_each_article_is_listed_once_with_its_passage_numbers(run_ask: Any) -> None:
    out = run_ask()
    lines = [ln for ln in out.splitlines() if "example/" in ln]
    assert lines == [
        "*[1, 3, 4] Kremlin invites Syrians - 2018-01-30 - https://news.example/a "
        "(paragraphs 1, 4, 13)",
        f" [2] {TITLE_B} - undated - {URL_B} (paragraph 2)",
        f"     also at: {COPY_B}",
    ]
    # The answer's mark names its passage, and that passage is on a listed line.
    assert '"The Kremlin invited 1,600 Syrians to Sochi." [3]' in out


def test_json_keeps_one_entry_per_passage(run_ask: Any) -> None:
    doc = json.loads(run_ask("--json"))
    assert [(c["n"], c["article_id"], c["paragraph"]) for c in doc["citations"]] == [
        (1, "a", 1),
        (2, "b", 2),
        (3, "a", 4),
        (4, "a", 13),
    ]
    assert doc["answer"]["citation"] == 3 and doc["answer"]["citations"] == [3]


def test_a_long_list_of_copies_is_cut_to_the_first_five() -> None:
    urls = tuple(f"https://video.example/{i}" for i in range(8))
    assert also_at(urls[:5]) == ", ".join(urls[:5])
    assert also_at(urls) == ", ".join(urls[:5]) + " and 3 more (--json lists them all)"
