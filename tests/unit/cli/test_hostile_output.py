"""Text from outside reaches the terminal as text: terminal escapes in article titles, bodies,
URLs and file names are shown as visible stand-ins (``ESC`` -> ``␛``), and Rich markup or
emoji codes in them stay as written. Run in process on the fast embedder (``hash-64``) and
the sentence reader; tests/integration/cli/test_hostile_real.py runs the real models.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from conftest import CliRun, NewsQA

FAST = {"NEWSQA_MODEL": "hash-64"}
SENTENCE = "--reader", "sentence"
QUESTION = "When was the Gull Point lighthouse built?"

# OSC 0 renames the window, OSC 52 sets the clipboard (base64 of "rm -rf ~"), CSI 2J clears
# the screen, BEL rings, 0x9b is the one-byte C1 form of CSI, DEL and a lone ESC.
TITLE = "Lighthouse \x1b]0;PWNED\x1b\\ restored [/x] :x: [link=http://evil.example]click[/link]"
BODY = (
    "The Gull Point lighthouse was built in 1870.\x1b]52;c;cm0gLXJmIH4=\x07 It stands on the "
    "cliff.\x1b[2J The bell\x07 rings \x9b31mred\x7f at night."
)
URL = "https://rivertown.example/light\x1b[31mhouse"
# Every control character but tab and newline, as bytes of any encoding could carry them.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def hostile_article(title: str = TITLE, body: str = BODY, url: str = URL) -> str:
    return f"{title}\n\nApril 11, 2023\n\n{body}\n\nOriginal url:\n<{url}>\n"


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "lighthouse.txt").write_text(hostile_article(), encoding="utf-8")
    (folder / "glacier.txt").write_text(
        "Northern glaciers shrink\n\nMay 2, 2023\n\nBare granite appeared in the valley.\n\n"
        "Original url:\n<https://alps.example/glacier>\n",
        encoding="utf-8",
    )
    return folder


def assert_clean(text: str) -> None:
    """No control character but tab and newline: nothing the terminal would run."""
    found = RAW.findall(text)
    assert not found, f"control characters reach the terminal: {found!r} in {text!r}"


def index(newsqa: NewsQA, *paths: Path, root: Path, strict: bool = False) -> CliRun:
    args = ["index", *map(str, paths), "--index-dir", str(root), *(["--strict"] if strict else [])]
    return newsqa(*args, env=FAST)


def test_ask_shows_escapes_as_visible_characters(
    tmp_path: Path, corpus: Path, newsqa: NewsQA
) -> None:
    root = tmp_path / "index"
    run = index(newsqa, corpus, root=root)
    assert run.code == 0, run.err
    ask = newsqa("ask", QUESTION, *SENTENCE, "--index-dir", str(root))
    assert ask.code == 0 and ask.err == ""
    assert_clean(ask.out)
    assert "built in 1870.␛]52;c;cm0gLXJmIH4=␇ It stands" in ask.flat_out
    assert "␛[2J The bell␇ rings �31mred␡ at night." in ask.flat_out
    # The title is text: "[/x]" does not crash, "[link=...]" is no hyperlink, ":x:" no emoji.
    assert "Lighthouse ␛]0;PWNED␛\\ restored [/x] :x: [link=http://evil.example]click[/link]" in (
        ask.out
    )
    assert "https://rivertown.example/light␛[31mhouse" in ask.out
    assert "❌" not in ask.out


def test_ask_json_holds_no_control_characters(tmp_path: Path, corpus: Path, newsqa: NewsQA) -> None:
    root = tmp_path / "index"
    assert index(newsqa, corpus, root=root).code == 0
    run = newsqa("ask", QUESTION, "--json", *SENTENCE, "--index-dir", str(root))
    assert run.code == 0 and run.err == ""
    assert_clean(run.out)
    assert "\\u001b" not in run.out  # cleaned at ingest: a consumer printing a field is safe
    doc = json.loads(run.out)
    cited = doc["citations"][doc["answer"]["citation"] - 1]
    assert cited["title"] == TITLE.replace("\x1b", "␛")
    assert cited["url"] == URL.replace("\x1b", "␛")
    assert cited["passage"][cited["start"] : cited["end"]] == doc["answer"]["text"]


def test_json_escapes_c1_and_del_of_the_question(
    tmp_path: Path, corpus: Path, newsqa: NewsQA
) -> None:
    """The question is the caller's own and is given back as is, but as JSON escapes: a raw
    U+009B would be a CSI to some terminals, and ``ensure_ascii=False`` writes it raw."""
    root = tmp_path / "index"
    assert index(newsqa, corpus, root=root).code == 0
    question = "When was the \x9b2J lighthouse \x7f built?"
    run = newsqa("ask", question, "--json", *SENTENCE, "--index-dir", str(root))
    assert run.code == 0, run.err
    assert_clean(run.out)
    assert "\\u009b2J" in run.out and "\\u007f" in run.out
    assert json.loads(run.out)["question"] == question


def test_an_index_written_before_cleaning_is_shown_clean(
    tmp_path: Path, corpus: Path, newsqa: NewsQA
) -> None:
    """A store that holds raw escapes (written by an older version): cleaned where the store
    is read, one character for one, so the answer's offsets still hold."""
    root = tmp_path / "index"
    assert index(newsqa, corpus, root=root).code == 0
    head = json.loads((root / "HEAD").read_text())
    db = sqlite3.connect(root / head["store"])
    with db:
        db.execute("UPDATE articles SET title=replace(title, '␛', char(27))")
        db.execute("UPDATE articles SET url=replace(url, '␛', char(27))")
        db.execute("UPDATE passages SET text=replace(text, '␛', char(27))")
        db.execute("UPDATE passages SET text=replace(text, '␡', char(127))")
        assert db.execute("SELECT count(*) FROM articles WHERE instr(title, char(27))").fetchone()
    db.close()
    human = newsqa("ask", QUESTION, *SENTENCE, "--index-dir", str(root))
    assert human.code == 0 and human.err == ""
    assert_clean(human.out)
    assert "Lighthouse ␛]0;PWNED␛\\ restored" in human.out
    assert "rings �31mred␡ at night" in human.flat_out
    as_json = newsqa("ask", QUESTION, "--json", *SENTENCE, "--index-dir", str(root))
    assert as_json.code == 0
    assert_clean(as_json.out)
    assert "\\u001b" not in as_json.out
    doc = json.loads(as_json.out)
    cited = doc["citations"][doc["answer"]["citation"] - 1]
    assert cited["passage"][cited["start"] : cited["end"]] == doc["answer"]["text"]
    assert "␛]52;c;" in doc["answer"]["sentence"]


@pytest.mark.parametrize(
    "name",
    [
        # A "/" in markup is a folder of the path, as in a path a person may have.
        "sub[/x] :x: \x1b]0;FILE\x07 \x9b2J.txt",
        "[bold]new\nline[/bold].txt",  # markup, and a newline in the name
        "[link=http://evil.example]a[/link].txt",
    ],
)
def test_a_skipped_file_with_a_hostile_name_is_one_clean_line(
    tmp_path: Path, corpus: Path, newsqa: NewsQA, name: str
) -> None:
    bad = corpus / name
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("")
    root = tmp_path / "index"
    run = index(newsqa, corpus, root=root)
    assert run.code == 0, run.err
    assert_clean(run.out + run.err)
    assert "added 2" in run.flat_out and "skipped 1" in run.flat_out
    skipped = [line for line in run.err_lines if "skipped" in line]
    shown = str(bad).replace("\x1b", "␛").replace("\x07", "␇").replace("\x9b", "�")
    assert skipped == [f"skipped {shown.replace(chr(10), '␊')}: empty file"]
    # The report after the commit was printed: the index holds the articles.
    stats = newsqa("stats", "--index-dir", str(root))
    assert stats.code == 0 and "articles           2" in stats.out
    # --strict fails with one clean line naming the file.
    strict = index(newsqa, corpus, root=tmp_path / "strict", strict=True)
    assert strict.code == 1
    assert_clean(strict.err)
    errors = [ln for ln in strict.err_lines if ln.startswith("newsqa:")]
    assert len(errors) == 1 and "empty file" in errors[0]


def test_jsonl_escapes_in_every_field_are_cleaned(tmp_path: Path, newsqa: NewsQA) -> None:
    """JSON escapes (``\\u001b``, ``\\u0000``, ``\\u009b``) decode to control characters in
    every field of a record: title, body, URL and source."""
    record = {
        "title": "Harbour \x1b]0;x\x07 bakery \x00 wins",
        "text": "The harbour bakery won the sourdough prize.\x1b[2J\x00 Its rye \x9b1m loaf.",
        "url": "https://food.example/\x1b]8;;http://evil.example\x1b\\bakery",
        "source": "Food \x1b[5m Weekly",
        "date": "2023-06-03",
    }
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    root = tmp_path / "index"
    run = newsqa("import", str(path), "--index-dir", str(root), env=FAST)
    assert run.code == 0, run.err
    question = "Which bakery won the sourdough prize?"
    ask = newsqa("ask", question, *SENTENCE, "--index-dir", str(root))
    assert ask.code == 0
    assert_clean(ask.out)
    assert "Harbour ␛]0;x␇ bakery ␀ wins" in ask.out and "␛[2J␀ Its rye �1m loaf" in ask.flat_out
    doc = json.loads(
        newsqa("ask", "Which bakery won?", "--json", *SENTENCE, "--index-dir", str(root)).out
    )
    cited = doc["citations"][0]
    assert cited["source"] == "Food ␛[5m Weekly"
    assert cited["url"] == "https://food.example/␛]8;;http://evil.example␛\\bakery"


def test_stats_of_an_index_folder_with_a_hostile_name(
    tmp_path: Path, corpus: Path, newsqa: NewsQA
) -> None:
    root = tmp_path / "index \x1b]0;X\x07 [/x]"
    assert index(newsqa, corpus, root=root).code == 0
    run = newsqa("stats", "--index-dir", str(root))
    assert run.code == 0, run.err
    assert_clean(run.out)
    assert "index ␛]0;X␇ [/x]" in run.out
    as_json = newsqa("stats", "--json", "--index-dir", str(root))
    assert json.loads(as_json.out)["index_dir"] == str(root)  # JSON: the path as it is, escaped
    assert_clean(as_json.out)


def test_add_of_a_local_file_with_a_hostile_name(
    tmp_path: Path, corpus: Path, newsqa: NewsQA
) -> None:
    source = tmp_path / "new \x1b]52;c;cm0gLXJmIH4=\x07 [/x].txt"
    source.parent.mkdir()
    source.write_text(hostile_article(title="Harbour bakery wins prize"), encoding="utf-8")
    run = newsqa(
        "add", str(source), "--corpus", str(corpus), "--index-dir", str(tmp_path / "i"), env=FAST
    )
    assert run.code == 0, run.err
    assert_clean(run.out + run.err)
    assert "␛]52;c;cm0gLXJmIH4=␇ [/x].txt" in run.out
    missing = newsqa(
        "add", str(tmp_path / "gone\x1b[2J.txt"), "--corpus", str(corpus), "--no-index", env=FAST
    )
    assert missing.code == 1
    assert_clean(missing.err)
    assert len(missing.err_lines) == 1 and "gone␛[2J.txt" in missing.err


def test_watch_reports_a_hostile_file_name_on_one_clean_line(
    tmp_path: Path, corpus: Path, newsqa: NewsQA
) -> None:
    """``newsqa watch`` as a person runs it (a process, stopped by Ctrl+C)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "index"
    assert index(newsqa, corpus, root=root).code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")} | FAST
    args = ["watch", str(corpus), "--index-dir", str(root), "--debounce", "0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # Ctrl+C as in a terminal: a background job of a non-interactive shell (how CI may run
        # the tests) inherits SIGINT ignored, and the watcher would never stop.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        assert b"watching" in proc.stdout.readline()  # started
        bad = corpus / "sub[" / "x] \x1b]0;W\x07 \x9b2J.txt"
        bad.parent.mkdir()
        bad.write_text("")
        deadline = time.monotonic() + 60
        line = b""
        while b"skipped 1" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    text = (line + out + err).decode()
    assert_clean(text)
    skipped = [ln for ln in err.decode().splitlines() if "skipped" in ln]
    assert skipped == [f"  skipped {corpus}/sub[/x] ␛]0;W␇ �2J.txt: empty file"]
