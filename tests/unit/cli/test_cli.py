"""``newsqa`` as a person runs it (in process, through ``qa.cli.main:main``), on the fake embedder.

``NEWSQA_MODEL=hash-64`` selects the fast hashing embedder and ``--reader sentence`` the
baseline reader, so that no model loads; tests/integration/cli runs the real ones. Citation
lines are checked for their title, URL and answer text, not their layout.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import NewsQA

FAST = {"NEWSQA_MODEL": "hash-64"}
LIGHTHOUSE = "https://rivertown.example/lighthouse"
GLACIER = "https://alps.example/glacier"
BAKERY = "https://food.example/bakery"
ARTICLES = {
    "lighthouse.txt": (
        "Rivertown restores its old lighthouse",
        "April 11, 2023",
        "The Gull Point lighthouse was built in 1870.",
        LIGHTHOUSE,
    ),
    "glacier.txt": (
        "Northern glaciers shrink",
        "May 2, 2023",
        "Bare granite appeared in the northern valley.",
        GLACIER,
    ),
    "bakery.txt": (
        "Harbour bakery wins prize",
        "June 3, 2023",
        "The harbour bakery won the national sourdough prize for its rye loaf.",
        BAKERY,
    ),
}
SENTENCE = "--reader", "sentence"


def write_corpus(folder: Path) -> Path:
    folder.mkdir()
    for name, (title, date, body, url) in ARTICLES.items():
        text = f"{title}\n\n{date}\n\n{body}\n\nOriginal url:\n<{url}>\n"
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture()
def index(tmp_path: Path, corpus: Path, newsqa: NewsQA) -> Path:
    """An index of the three articles, built with ``newsqa index``."""
    root = tmp_path / "index"
    run = newsqa("index", str(corpus), "--index-dir", str(root), env=FAST)
    assert run.code == 0, run.err
    return root


def one_error_line(err: str) -> str:
    """The single ``newsqa:`` line of stderr (a progress bar may precede it)."""
    lines = [line for line in err.splitlines() if line.startswith("newsqa:")]
    assert len(lines) == 1, err
    return lines[0]


# -- help ---------------------------------------------------------------------------------


def test_help_lists_every_command(newsqa: NewsQA) -> None:
    run = newsqa("--help")
    assert run.code == 0 and run.err == ""
    for command in ("index", "import", "add", "ask", "chat", "stats", "eval", "watch"):
        assert f" {command} " in run.out, command


def test_ask_help_shows_its_options(newsqa: NewsQA) -> None:
    run = newsqa("ask", "--help")
    assert run.code == 0 and "QUESTION" in run.out
    for option in (
        "--json",
        "--since",
        "--until",
        "--source",
        "--as-of",
        "--reader",
        "--index-dir",
    ):
        assert option in run.out, option


def test_an_unknown_command_is_a_usage_error(newsqa: NewsQA) -> None:
    run = newsqa("summarise")
    assert run.code == 2 and run.out == ""
    assert "summarise" in one_error_line(run.err)


# -- index --------------------------------------------------------------------------------


def test_index_reports_what_it_did(tmp_path: Path, corpus: Path, newsqa: NewsQA) -> None:
    root = tmp_path / "index"
    run = newsqa("index", str(corpus), "--index-dir", str(root), env=FAST)
    assert run.code == 0, run.err
    assert "added 3" in run.flat_out and "skipped 0" in run.flat_out
    assert "3 articles, 3 passages" in run.flat_out
    again = newsqa("index", str(corpus), "--index-dir", str(root), env=FAST)
    assert again.code == 0, again.err
    assert "added 0" in again.flat_out and "unchanged 3" in again.flat_out


def test_index_lists_each_skipped_file(
    tmp_path: Path, corpus: Path, newsqa: NewsQA, monkeypatch: pytest.MonkeyPatch
) -> None:
    (corpus / "empty.txt").write_text("")
    (corpus / "blob.txt").write_bytes(b"\x00\x01binary")
    monkeypatch.chdir(tmp_path)  # short relative paths: see the long-path case below
    run = newsqa("index", "corpus", "--index-dir", "index", env=FAST)
    assert run.code == 0, run.err
    assert "added 3" in run.flat_out and "skipped 2" in run.flat_out
    skipped = [line for line in run.err_lines if "skipped" in line]
    assert len(skipped) == 2, run.err
    assert any("corpus/empty.txt" in line and "empty file" in line for line in skipped)
    assert any("corpus/blob.txt" in line and "binary file" in line for line in skipped)


def test_a_skipped_file_with_a_long_path_is_one_line(tmp_path: Path, newsqa: NewsQA) -> None:
    # Rich wraps at 80 columns when stderr is not a terminal: a script reading stderr would
    # see fragments. A skip line is one line whatever the width.
    folder = tmp_path / ("a-folder-with-a-rather-long-name-" * 3)
    write_corpus(folder)
    (folder / "empty.txt").write_text("")
    run = newsqa("index", str(folder), "--index-dir", str(tmp_path / "index"), env=FAST)
    assert run.code == 0, run.err
    skipped = [line for line in run.err_lines if "skipped" in line]
    assert len(skipped) == 1 and str(folder / "empty.txt") in skipped[0], run.err
    # The summary too: its counts on one line, the index line on the next.
    summary = run.out.splitlines()
    assert len(summary) == 2 and summary[0].startswith("added ") and " s" in summary[0], run.out
    assert summary[1].startswith("index: "), run.out


def test_index_strict_fails_on_a_skipped_file(tmp_path: Path, corpus: Path, newsqa: NewsQA) -> None:
    (corpus / "empty.txt").write_text("")
    run = newsqa("index", str(corpus), "--strict", "--index-dir", str(tmp_path / "i"), env=FAST)
    assert run.code == 1
    line = one_error_line(run.err)
    assert "empty.txt" in line and "empty file" in line


def test_index_of_a_missing_path_is_a_usage_error(tmp_path: Path, newsqa: NewsQA) -> None:
    run = newsqa("index", str(tmp_path / "nope"), "--index-dir", str(tmp_path / "i"), env=FAST)
    assert run.code == 2 and run.out == ""
    assert str(tmp_path / "nope") in one_error_line(run.err)
    assert not (tmp_path / "i").exists()


# -- ask ----------------------------------------------------------------------------------


def test_ask_prints_the_answer_and_its_sources(index: Path, newsqa: NewsQA) -> None:
    run = newsqa(
        "ask", "When was the Gull Point lighthouse built?", *SENTENCE, "--index-dir", str(index)
    )
    assert run.code == 0 and run.err == ""
    assert "The Gull Point lighthouse was built in 1870." in run.flat_out
    assert "No answer" not in run.out
    # Every retrieved article is cited with its title and URL.
    for title, _, _, url in ARTICLES.values():
        assert title in run.out and url in run.out


def test_ask_json(index: Path, newsqa: NewsQA) -> None:
    question = "When was the Gull Point lighthouse built?"
    run = newsqa("ask", question, "--json", *SENTENCE, "--index-dir", str(index))
    assert run.code == 0 and run.err == ""
    doc = json.loads(run.out)
    assert set(doc) == {"question", "answer", "citations", "scope", "timings_ms"}
    assert doc["question"] == question
    assert doc["scope"] == f"articles up to {datetime.date.today().isoformat()}, recent first"
    answer = doc["answer"]
    assert set(answer) == {"text", "sentence", "confidence", "citation", "citations", "kind"}
    assert answer["text"] == answer["sentence"] == "The Gull Point lighthouse was built in 1870."
    assert answer["kind"] == "sentence" and answer["confidence"] >= 0.5  # the reader's threshold
    assert sorted(c["url"] for c in doc["citations"]) == sorted([BAKERY, GLACIER, LIGHTHOUSE])
    assert [c["n"] for c in doc["citations"]] == [1, 2, 3]
    cited = doc["citations"][answer["citation"] - 1]
    assert answer["citations"] == [answer["citation"]]
    assert (cited["title"], cited["url"], cited["date"]) == (
        "Rivertown restores its old lighthouse",
        LIGHTHOUSE,
        "2023-04-11",
    )
    assert cited["passage"][cited["start"] : cited["end"]] == answer["text"]
    assert {"retrieve", "read", "total"} == set(doc["timings_ms"])


def test_ask_with_no_answer_exits_0(index: Path, newsqa: NewsQA) -> None:
    question = "What is the melting temperature of tungsten?"
    run = newsqa("ask", question, *SENTENCE, "--index-dir", str(index))
    assert run.code == 0 and run.err == ""
    assert "No answer in the corpus" in run.out
    as_json = newsqa("ask", question, "--json", *SENTENCE, "--index-dir", str(index))
    assert as_json.code == 0 and as_json.err == ""
    doc = json.loads(as_json.out)
    assert doc["answer"] is None and len(doc["citations"]) == 3


def test_ask_filters_by_date(index: Path, newsqa: NewsQA) -> None:
    run = newsqa(
        "ask",
        "When was the Gull Point lighthouse built?",
        "--json",
        "--since",
        "2023-05-01",
        *SENTENCE,
        "--index-dir",
        str(index),
    )
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert sorted(c["url"] for c in doc["citations"]) == sorted([BAKERY, GLACIER])


def test_ask_as_of_never_cites_later_articles_and_says_so(index: Path, newsqa: NewsQA) -> None:
    question = "When was the Gull Point lighthouse built?"
    as_of = "--as-of", "2023-05-02"
    run = newsqa("ask", question, "--json", *as_of, *SENTENCE, "--index-dir", str(index))
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    # The bakery article of June 3 did not exist yet; the glacier one is of that day.
    assert sorted(c["url"] for c in doc["citations"]) == sorted([GLACIER, LIGHTHOUSE])
    assert doc["scope"] == "articles up to 2023-05-02, recent first"
    human = newsqa("ask", question, *as_of, *SENTENCE, "--index-dir", str(index))
    assert human.code == 0, human.err
    assert "searched articles up to 2023-05-02, recent first" in human.flat_out
    assert BAKERY not in human.out and LIGHTHOUSE in human.out


def test_ask_time_words_narrow_the_dates_searched(index: Path, newsqa: NewsQA) -> None:
    question = "Which bakery won a prize last week?"
    as_of = "--as-of", "2023-06-05"
    run = newsqa("ask", question, "--json", *as_of, *SENTENCE, "--index-dir", str(index))
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert [c["url"] for c in doc["citations"]] == [BAKERY]
    said = 'articles from 2023-05-22 to 2023-06-05 ("last week"), recent first'
    assert doc["scope"] == said
    human = newsqa("ask", question, *as_of, *SENTENCE, "--index-dir", str(index))
    assert f"searched {said}" in human.flat_out
    assert GLACIER not in human.out and LIGHTHOUSE not in human.out


def test_ask_without_an_index_says_how_to_make_one(tmp_path: Path, newsqa: NewsQA) -> None:
    run = newsqa("ask", "Who?", *SENTENCE, "--index-dir", str(tmp_path / "none"), env=FAST)
    assert run.code == 1 and run.out == ""
    assert run.err_lines == [one_error_line(run.err)]
    assert "`newsqa index`" in run.err_lines[0] and str(tmp_path / "none") in run.err_lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("",), "the question is empty"),
        (("   ",), "the question is empty"),
        (("Who?", "--since", "notadate"), "--since 'notadate' is not a date"),
        (("Who?", "--until", "2023-13-45"), "--until '2023-13-45' is not a date"),
        (("Who?", "-k", "0"), "-k"),
        (("Who?", "--as-of", "someday"), "--as-of 'someday' is not a date"),
    ],
)
def test_ask_usage_errors_exit_2_in_one_line(
    index: Path, newsqa: NewsQA, args: tuple[str, ...], says: str
) -> None:
    run = newsqa("ask", *args, *SENTENCE, "--index-dir", str(index))
    assert run.code == 2 and run.out == ""
    assert run.err_lines == [one_error_line(run.err)]
    assert says in run.err_lines[0]


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NEWSQA_FAISS", "rff"),
        ("NEWSQA_READER_DTYPE", "half"),
        ("NEWSQA_READER_BACKEND", "tensorrt"),
        ("NEWSQA_DELTA_MIN", "lots"),
        ("NEWSQA_FP32", "1"),
    ],
)
@pytest.mark.parametrize("command", [("stats",), ("ask", "Who?"), ("index",)])
def test_a_bad_setting_exits_2_naming_the_variable(
    tmp_path: Path, newsqa: NewsQA, variable: str, value: str, command: tuple[str, ...]
) -> None:
    # No index here: the setting is refused first, before any index or model is looked at.
    root = tmp_path / "index"
    run = newsqa(*command, "--index-dir", str(root), env={**FAST, variable: value})
    assert run.code == 2 and run.out == ""
    assert run.err_lines == [one_error_line(run.err)]
    assert variable in run.err_lines[0]
    assert not root.exists()


# -- stats --------------------------------------------------------------------------------


def test_stats_json(index: Path, newsqa: NewsQA) -> None:
    run = newsqa("stats", "--json", "--index-dir", str(index))
    assert run.code == 0 and run.err == ""
    info = json.loads(run.out)
    expected = {
        "articles": 3,
        "passages": 3,
        "generation": 1,
        "near_dup_clusters": 0,
        "near_dup_copies": 0,
        "embed_model": "hash-64",
        "embed_dim": 64,
        "index_dir": str(index),
        "layout": "full",
        "faiss": "flat",
        "delta_passages": 0,
        "deleted_passages": 0,
    }
    assert {k: info.get(k) for k in expected} == expected


def test_stats_for_a_person(index: Path, newsqa: NewsQA) -> None:
    run = newsqa("stats", "--index-dir", str(index))
    assert run.code == 0 and run.err == ""
    assert "hash-64" in run.out and not run.out.lstrip().startswith("{")


def test_stats_without_an_index(tmp_path: Path, newsqa: NewsQA) -> None:
    run = newsqa("stats", "--index-dir", str(tmp_path / "none"))
    assert run.code == 1 and run.out == ""
    assert "`newsqa index`" in one_error_line(run.err)


def test_stats_check_passes_on_a_consistent_index(index: Path, newsqa: NewsQA) -> None:
    run = newsqa("stats", "--check", "--json", "--index-dir", str(index))
    assert run.code == 0 and run.err == ""
    assert json.loads(run.out)["passages"] == 3


def test_stats_check_fails_on_a_damaged_index(index: Path, newsqa: NewsQA) -> None:
    db = sqlite3.connect(index / "store-1.sqlite")
    with db:
        db.execute("DELETE FROM passages WHERE rowid = (SELECT MIN(rowid) FROM passages)")
    db.close()
    run = newsqa("stats", "--check", "--index-dir", str(index))
    assert run.code == 1 and run.out == ""
    assert run.err_lines and all(
        line.startswith("newsqa: inconsistent index: ") for line in run.err_lines
    )
    assert any("but 2 passages are stored" in line for line in run.err_lines), run.err


# -- eval ---------------------------------------------------------------------------------

# RealTime QA lines over the three articles, built so that every metric is known:
# q1 retrieves its gold first; the sentence reader shows the whole sentence, whose 7 tokens
#    (after SQuAD normalisation) hold the 1-token gold: EM 0, F1 2 * (1/7 * 1) / (1/7 + 1) = 0.25.
# q2 retrieves its gold first and its gold answer is the whole sentence: EM 1, F1 1.
# q3 is about the bakery but its gold is the glacier article (one shared word, "valley"): the
#    gold ranks second; the answer, the bakery's sentence, shares no token with the gold: 0, 0.
# q4 has no answer in the corpus, its gold is not indexed, and it is not extractive (unscored).
QUESTIONS = [
    {
        "id": "q1",
        "question": "When was the Gull Point lighthouse built?",
        "gold_urls": [LIGHTHOUSE],
        "answer": "1870",
        "extractive": True,
    },
    {
        "id": "q2",
        "question": "What appeared in the northern valley?",
        "gold_urls": [GLACIER],
        "answer": "Bare granite appeared in the northern valley",
        "extractive": True,
    },
    {
        "id": "q3",
        "question": "Which prize did the harbour bakery win in the valley?",
        "gold_urls": [GLACIER],
        "answer": "bare granite",
        "extractive": True,
    },
    {
        "id": "q4",
        "question": "What is the melting temperature of tungsten?",
        "gold_urls": ["https://nowhere.example/tungsten"],
        "answer": "3422 degrees",
        "extractive": False,
    },
]


def test_eval_gives_the_expected_metrics(tmp_path: Path, index: Path, newsqa: NewsQA) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n", encoding="utf-8")
    rows_file = tmp_path / "rows.jsonl"
    run = newsqa(
        "eval",
        str(questions),
        "--json",
        "--out",
        str(rows_file),
        *SENTENCE,
        "--index-dir",
        str(index),
    )
    assert run.code == 0, run.err
    m = json.loads(run.out)
    # Ranks 1, 1, 2, none.
    assert m["questions"] == 4
    assert m["recall@1"] == 0.5
    assert m["recall@5"] == m["recall@10"] == m["recall@20"] == 0.75
    assert m["mrr"] == pytest.approx((1 + 1 + 1 / 2 + 0) / 4)
    assert m["scored_questions"] == 3
    assert m["em"] == pytest.approx(100 * (0 + 1 + 0) / 3)
    assert m["f1"] == pytest.approx(100 * (0.25 + 1 + 0) / 3)
    assert m["answered"] == m["answered_sentence"] == 0.75
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    assert [(r["id"], r["gold_rank"], r["kind"]) for r in rows] == [
        ("q1", 1, "sentence"),
        ("q2", 1, "sentence"),
        ("q3", 2, "sentence"),
        ("q4", None, None),
    ]
    assert [r["prediction"] for r in rows] == [
        ARTICLES["lighthouse.txt"][2],
        ARTICLES["glacier.txt"][2],
        ARTICLES["bakery.txt"][2],
        "",
    ]
    assert "em" not in rows[3]
    table = newsqa("eval", str(questions), *SENTENCE, "--index-dir", str(index))
    assert table.code == 0, table.err
    assert "recall@1" in table.out and "0.6250" in table.out  # the MRR, as a person sees it


SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Lighthouses",
            "paragraphs": [
                {
                    "context": "The Gull Point lighthouse was built in 1870 by the harbour board. "
                    "Its lantern was lit by whale oil until 1921.",
                    "qas": [
                        {
                            "id": "s1",
                            "question": "When was the Gull Point lighthouse built?",
                            "answers": [{"text": "1870", "answer_start": 39}],
                        },
                        {
                            "id": "s2",
                            "question": "What fuel lit the lantern of the lighthouse?",
                            "answers": [{"text": "whale oil", "answer_start": 89}],
                        },
                    ],
                },
                {
                    "context": "Glaciers in the northern valley retreated four kilometres during "
                    "the last century, exposing bare granite.",
                    "qas": [
                        {
                            "id": "s3",
                            "question": "How far did the glaciers in the northern valley retreat?",
                            "answers": [{"text": "four kilometres", "answer_start": 42}],
                        },
                    ],
                },
            ],
        }
    ],
}


def test_import_then_eval_a_squad_file(tmp_path: Path, newsqa: NewsQA) -> None:
    squad = tmp_path / "tiny-squad.json"
    squad.write_text(json.dumps(SQUAD), encoding="utf-8")
    for para in SQUAD["data"][0]["paragraphs"]:
        for qa in para["qas"]:
            gold = qa["answers"][0]
            assert para["context"][gold["answer_start"] :].startswith(gold["text"])
    root = str(tmp_path / "index")
    imported = newsqa("import", str(squad), "--index-dir", root, env=FAST)
    assert imported.code == 0, imported.err
    assert "added 2" in imported.flat_out
    run = newsqa("eval", str(squad), "--json", *SENTENCE, "--index-dir", root)
    assert run.code == 0, run.err
    m = json.loads(run.out)
    # Each question's own paragraph (squad://Lighthouses#i) is retrieved first; the sentence
    # reader answers with the sentence holding the gold, of 10, 9 and 13 normalised tokens
    # for golds of 1, 2 and 2 tokens: F1 2/11, 4/11 and 4/15, EM 0.
    assert (m["questions"], m["scored_questions"]) == (3, 3)
    assert m["recall@1"] == m["mrr"] == 1.0
    assert m["em"] == 0.0
    assert m["f1"] == pytest.approx(100 * (2 / 11 + 4 / 11 + 4 / 15) / 3)


def test_eval_of_a_file_that_is_not_questions(tmp_path: Path, index: Path, newsqa: NewsQA) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("just some notes\n", encoding="utf-8")
    run = newsqa("eval", str(notes), *SENTENCE, "--index-dir", str(index))
    assert run.code == 2 and run.out == ""
    assert "not a SQuAD or RealTime QA question file" in one_error_line(run.err)


def test_eval_reader_only_refuses_the_sentence_reader(tmp_path: Path, newsqa: NewsQA) -> None:
    squad = tmp_path / "tiny-squad.json"
    squad.write_text(json.dumps(SQUAD), encoding="utf-8")
    run = newsqa("eval", str(squad), "--reader-only", *SENTENCE)
    assert run.code == 2 and run.out == ""
    assert "--reader-only scores the span reader" in one_error_line(run.err)
