"""Terminal escapes in an article, through the real MiniLM index and the shipped span reader:
``newsqa ask`` shows them as visible characters and still finds the answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import NewsQA

from qa.reader.span import shipped_reader_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shipped_reader_available(), reason="the span reader is not shipped"),
]

TITLE = "Putin's Syria Peace Conference Boycotted by Assad Opponents"
# OSC 0 (window title), OSC 52 (clipboard: base64 of "rm -rf ~"), CSI 2J, C1 CSI.
TITLE_ESCAPES = "\x1b]0;PWNED\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture()
def hostile_index(
    tmp_path: Path, reference_article: Path, newsqa: NewsQA, shared_model: None
) -> Path:
    """The reference article with escapes in its title and around the answer's sentence."""
    text = reference_article.read_text(encoding="utf-8")
    text = text.replace(TITLE, f"{TITLE} {TITLE_ESCAPES}[/x] :x:", 1)
    text = text.replace("The Kremlin invited 1,600", f"{CLIPBOARD}\x1b[2JThe Kremlin invited 1,600")
    text = text.replace("talks in Geneva.", "talks in Geneva.\x9b2J")
    assert text.count("\x1b") == 3 and text.count("\x9b") == 1
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / reference_article.name).write_text(text, encoding="utf-8")
    root = tmp_path / "index"
    run = newsqa("index", str(corpus), "--index-dir", str(root))
    assert run.code == 0 and "added 1" in run.flat_out, run.err
    return root


def test_ask_shows_no_escape_and_finds_the_answer(hostile_index: Path, newsqa: NewsQA) -> None:
    question = "Who boycotted the Sochi conference?"
    run = newsqa("ask", question, "--index-dir", str(hostile_index))
    assert run.code == 0 and run.err == ""
    assert not RAW.findall(run.out), run.out
    assert "main opposition faction" in run.flat_out
    assert f"{TITLE} ␛]0;PWNED␇[/x] :x:" in run.out

    as_json = newsqa("ask", question, "--json", "--index-dir", str(hostile_index))
    assert as_json.code == 0 and not RAW.findall(as_json.out)
    assert "\\u001b" not in as_json.out and "\\u009b" not in as_json.out
    doc = json.loads(as_json.out)
    answer = doc["answer"]
    assert "main opposition faction" in answer["text"]
    cited = doc["citations"][answer["citation"] - 1]
    assert cited["passage"][cited["start"] : cited["end"]] == answer["text"]
    assert cited["title"] == f"{TITLE} ␛]0;PWNED␇[/x] :x:"
