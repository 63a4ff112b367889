"""Unit tests for ``newsqa add`` (qa.ingest.add, qa.ingest.fetch and the CLI command).

Pages and feeds come from a local ``http.server`` on 127.0.0.1 serving the fixtures in
tests/fixtures/add/; proxy settings are cleared so that no request leaves the machine.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.index.indexer import Indexer
from qa.ingest.add import Adder, Outcome, place_file, render_article
from qa.ingest.fetch import Extracted
from qa.ingest.files import Ingestor
from qa.ingest.formats import normalize_text, parse_plain
from qa.types import Article

# Local web servers are reached directly, never through a proxy.
pytestmark = pytest.mark.usefixtures("no_proxy")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "add"
BRIDGE = "/news/2023/04/11/elm-street-bridge-budget.html"
VOLCANO = "/world/volcano-erupts.html"
CHESS = "/sport/chess-champion.html"
SLOW_SECONDS = 2.0
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
# path -> (fixture file or raw bytes, Content-Type header)
ROUTES: dict[str, tuple[str | bytes, str]] = {
    BRIDGE: ("bridge.html", "text/html; charset=utf-8"),
    VOLCANO: ("volcano.html", "text/html"),
    CHESS: ("chess.html", "text/html; charset=UTF-8"),
    "/empty.html": ("empty.html", "text/html; charset=utf-8"),
    "/feeds/rss.xml": ("rss.xml", "application/rss+xml; charset=utf-8"),
    "/feeds/atom.xml": ("atom.xml", "application/atom+xml"),
    "/feeds/rss-as-html": ("rss.xml", "text/html"),
    "/report.pdf": (PDF, "application/pdf"),
    "/logo.png": (PNG, "image/png"),
    "/news/2023/04/11/escapes.html": (
        (FIXTURES / "bridge.html")
        .read_bytes()
        .replace(b"Elm Street bridge budget", b"Elm Street\x1b]0;PWNED\x07 bridge budget")
        .replace(b"ending a debate", b"ending\x1b]52;c;cm0gLXJmIH4=\x1b\\ a \xc2\x9b2Jdebate"),
        "text/html; charset=utf-8",
    ),
}

BRIDGE_TITLE = "City council approves Elm Street bridge budget"
BRIDGE_FIRST = (
    "The city council voted 7-2 on Monday night to approve a $14.5 million budget for "
    "replacing the Elm Street bridge, ending a debate that had stretched over three "
    "years."
)
BRIDGE_LAST = (
    "The two members who voted against the plan said the city should have sought "
    "more money from the state before committing its own reserves."
)


@dataclass
class Site:
    """The local test site: its base URL and the paths requested so far."""

    base: str
    hits: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.hits.append(self.path)
            if self.path == "/slow":
                time.sleep(SLOW_SECONDS)  # longer than the client's timeout
            if self.path == "/go/bridge":
                self.send_response(302)
                self.send_header("Location", BRIDGE)
                self.end_headers()
                return
            route = ROUTES.get("/empty.html" if self.path == "/slow" else self.path)
            if route is None:
                self.send_error(404, "Not Found")
                return
            content, ctype = route
            if isinstance(content, str):
                content = (FIXTURES / content).read_bytes()
            content = content.replace(b"{BASE}", site.base.encode("ascii"))
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            # /slow: the client has given up waiting by now, as it should.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(content)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    return Handler


@pytest.fixture
def site() -> Iterator[Site]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    host, port = server.server_address[:2]
    state = Site(base=f"http://{host!s}:{port}")
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return tmp_path / "corpus"


def corpus_files(folder: Path) -> list[str]:
    """Every entry in the corpus folder, hidden ones (temporary files) included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def read_back(path: Path) -> Article:
    items = list(Ingestor(strict=True).read_file(path))
    assert len(items) == 1 and isinstance(items[0], Article)
    return items[0]


def only(outcomes: list[Outcome]) -> Outcome:
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


# ---------------------------------------------------------------------------------------------
# Article pages
# ---------------------------------------------------------------------------------------------


def test_article_page_is_saved_in_the_canonical_format(site: Site, corpus: Path) -> None:
    outcome = only(Adder(corpus, timeout=5).add(site.url(BRIDGE)))
    assert outcome.status == "added", outcome
    assert corpus_files(corpus) == ["2023-04-11-city-council-approves-elm-street-bridge-budget.txt"]
    assert outcome.path == corpus / corpus_files(corpus)[0]

    article = read_back(outcome.path)
    assert article.title == BRIDGE_TITLE
    assert article.date == "2023-04-11"
    assert article.url == site.url(BRIDGE)
    paragraphs = article.text.split("\n\n")
    assert paragraphs[0] == BRIDGE_FIRST
    assert paragraphs[-1] == BRIDGE_LAST
    assert len(paragraphs) == 5
    for boilerplate in (
        "Subscribe",
        "cookies",
        "Related coverage",
        "Privacy policy",
        "©",
        "By Maria Lopez",
    ):
        assert boilerplate not in article.text

    text = outcome.path.read_text(encoding="utf-8")
    assert text.startswith(f"{BRIDGE_TITLE}\n\nApril 11, 2023\n\nBy Maria Lopez\n\n")
    assert text.endswith(f"\n\nOriginal url:\n<{site.url(BRIDGE)}>\n")


def test_a_page_with_terminal_escapes_is_saved_without_them(site: Site, corpus: Path) -> None:
    outcome = only(Adder(corpus, timeout=5).add(site.url("/news/2023/04/11/escapes.html")))
    assert outcome.status == "added", outcome
    assert outcome.path is not None
    saved = outcome.path.read_text(encoding="utf-8")
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in saved)
    article = read_back(outcome.path)
    assert article.title.startswith("City council approves Elm Street")
    assert article.title.endswith("bridge budget")
    assert "voted 7-2 on Monday night" in article.text


def test_page_without_meta_date_uses_json_ld_and_the_fetched_url(site: Site, corpus: Path) -> None:
    outcome = only(Adder(corpus, timeout=5).add(site.url(VOLCANO)))
    assert outcome.status == "added", outcome
    assert outcome.path is not None
    article = read_back(outcome.path)
    assert article.title == "Volcano erupts near coastal village, residents evacuated by boat"
    assert article.date == "2022-08-02"
    assert article.url == site.url(VOLCANO)
    assert article.text.startswith("A volcano on the northern tip of the island erupted")
    assert "Share this story" not in article.text and "Sign in" not in article.text


def test_redirect_saves_the_article_under_its_own_url(site: Site, corpus: Path) -> None:
    outcome = only(Adder(corpus, timeout=5).add(site.url("/go/bridge")))
    assert outcome.status == "added", outcome
    assert outcome.path is not None and read_back(outcome.path).url == site.url(BRIDGE)


def test_a_page_already_in_the_corpus_is_not_fetched_again(site: Site, corpus: Path) -> None:
    adder = Adder(corpus, timeout=5)
    assert only(adder.add(site.url(BRIDGE))).status == "added"
    hits = len(site.hits)
    # A new Adder reads the corpus afresh: the corpus itself is the record.
    again = only(Adder(corpus, timeout=5).add(site.url(BRIDGE) + "#comments"))
    assert again.status == "present"
    assert len(site.hits) == hits
    assert len(corpus_files(corpus)) == 1


# ---------------------------------------------------------------------------------------------
# Feeds
# ---------------------------------------------------------------------------------------------


def test_feed_adds_each_new_entry_once(site: Site, corpus: Path) -> None:
    first = Adder(corpus, timeout=5).add(site.url("/feeds/rss.xml"))
    assert [o.status for o in first] == ["added", "added"]
    assert [o.source for o in first] == [site.url(BRIDGE), site.url(VOLCANO)]
    assert len(corpus_files(corpus)) == 2

    site.hits.clear()
    second = Adder(corpus, timeout=5).add(site.url("/feeds/rss.xml"))
    assert [o.status for o in second] == ["present", "present"]
    assert site.hits == ["/feeds/rss.xml"]  # the entries' pages were not fetched again
    assert len(corpus_files(corpus)) == 2


def test_atom_feed_with_a_relative_link_adds_only_what_is_new(site: Site, corpus: Path) -> None:
    Adder(corpus, timeout=5).add(site.url("/feeds/rss.xml"))
    outcomes = Adder(corpus, timeout=5).add(site.url("/feeds/atom.xml"))
    assert [(o.source, o.status) for o in outcomes] == [
        (site.url(VOLCANO), "present"),
        (site.url(CHESS), "added"),
    ]
    chess = outcomes[1].path
    assert chess is not None and chess.name == (
        "2021-01-15-teenager-wins-national-chess-championship.txt"
    )
    article = read_back(chess)
    assert article.title == "Teenager wins national chess championship"
    assert article.url == site.url(CHESS)
    assert len(corpus_files(corpus)) == 3


def test_feed_served_as_html_is_recognised_by_its_content(site: Site, corpus: Path) -> None:
    outcomes = Adder(corpus, timeout=5).add(site.url("/feeds/rss-as-html"))
    assert [o.status for o in outcomes] == ["added", "added"]


def test_failing_feed_entries_do_not_stop_the_others(
    site: Site, corpus: Path, tmp_path: Path
) -> None:
    feed = (FIXTURES / "rss.xml").read_text(encoding="utf-8").replace(VOLCANO, "/gone.html")
    ROUTES["/feeds/partly-broken.xml"] = (feed.encode("utf-8"), "application/rss+xml")
    try:
        outcomes = Adder(corpus, timeout=5).add(site.url("/feeds/partly-broken.xml"))
    finally:
        del ROUTES["/feeds/partly-broken.xml"]
    assert [o.status for o in outcomes] == ["added", "failed"]
    assert outcomes[1].detail == "HTTP 404 Not Found: check the URL"


# ---------------------------------------------------------------------------------------------
# Errors: a clear reason, nothing written
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing.html", "HTTP 404 Not Found: check the URL"),
        ("/report.pdf", "not an HTML page or a feed (content type application/pdf)"),
        ("/logo.png", "not an HTML page or a feed (content type image/png)"),
        ("/empty.html", "no article text found on the page"),
        ("/slow", "no complete response within 0.5 s: try again later or raise --timeout"),
    ],
)
def test_unusable_pages_fail_clearly_and_write_nothing(
    site: Site, corpus: Path, path: str, reason: str
) -> None:
    outcome = only(Adder(corpus, timeout=0.5).add(site.url(path)))
    assert outcome.status == "failed"
    assert outcome.detail.startswith(reason), outcome.detail
    assert corpus_files(corpus) == []


def test_connection_refused_fails_clearly(corpus: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = only(Adder(corpus, timeout=2).add(f"http://127.0.0.1:{port}/article.html"))
    assert outcome.status == "failed"
    assert outcome.detail.startswith("connection refused: check the URL")
    assert corpus_files(corpus) == []


def test_other_url_schemes_are_refused(corpus: Path) -> None:
    outcome = only(Adder(corpus).add("ftp://127.0.0.1/article.html"))
    assert (outcome.status, outcome.detail) == (
        "failed",
        "only http:// and https:// URLs can be fetched",
    )


# ---------------------------------------------------------------------------------------------
# Local files
# ---------------------------------------------------------------------------------------------

LOCAL = """Teenager wins national chess championship

January 15, 2021

A fifteen-year-old won the national chess championship on Sunday in the capital.

She clinched the title with a draw in the final round.

Original url:
<https://www.chessdaily.example/champion>
"""


def test_local_file_is_copied_once(corpus: Path, tmp_path: Path) -> None:
    source = tmp_path / "chess.txt"
    source.write_text(LOCAL, encoding="utf-8")
    outcome = only(Adder(corpus).add(str(source)))
    assert outcome.status == "added"
    assert outcome.path == corpus / "chess.txt"
    assert outcome.path.read_bytes() == source.read_bytes()

    assert only(Adder(corpus).add(str(source))).status == "present"
    other = tmp_path / "other" / "chess.txt"  # same name, different article
    other.parent.mkdir()
    other.write_text(LOCAL.replace("Sunday", "Saturday"), encoding="utf-8")
    renamed = only(Adder(corpus).add(str(other)))
    assert renamed.status == "added" and renamed.path == corpus / "chess-2.txt"
    assert (corpus / "chess.txt").read_text(encoding="utf-8") == LOCAL  # never overwritten


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "not an article file (empty file)"),
        ("blob.txt", b"\x00\x01\x02binary", "not an article file (binary file)"),
        ("paper.pdf", PDF, "not an article file (unsupported file type"),
        ("bad.jsonl", b'{"title": "x"\n', "not an article file (invalid JSON"),
    ],
)
def test_bad_local_file_is_not_copied(
    corpus: Path, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    outcome = only(Adder(corpus).add(str(source)))
    assert outcome.status == "failed"
    assert outcome.detail.startswith(reason), outcome.detail
    assert corpus_files(corpus) == []


def test_missing_file_and_folder_fail(corpus: Path, tmp_path: Path) -> None:
    assert only(Adder(corpus).add(str(tmp_path / "nope.txt"))).detail == "no such file"
    assert only(Adder(corpus).add(str(tmp_path))).detail.startswith("is a folder")


# ---------------------------------------------------------------------------------------------
# The canonical format and file placement
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ex",
    [
        # A short first paragraph under the date would be dropped as a photo credit without a guard.
        Extracted(
            "Storm hits the coast",
            "WASHINGTON\n\nThe storm arrived at dawn, officials said.",
            "2024-02-03",
            "https://news.example/storm",
        ),
        # An author with punctuation is not a credit line the parser drops: left out.
        Extracted(
            "Storm hits the coast",
            "The storm arrived at dawn.\n\nPower is out.",
            "2024-02-03",
            "https://news.example/storm",
            author="J. R. Smith",
        ),
        # Backslashes survive the parser's markdown unescaping.
        Extracted(
            r"Paths like C:\Users and \$5",
            r"It costs \$5 at C:\temp\\x.",
            "",
            "https://news.example/paths",
        ),
        Extracted("Undated", "Just one paragraph.", "", "https://news.example/undated"),
    ],
)
def test_rendered_articles_parse_back_unchanged(ex: Extracted) -> None:
    draft = parse_plain(normalize_text(render_article(ex)))
    assert (draft.title, draft.date, draft.url, draft.text) == (ex.title, ex.date, ex.url, ex.text)


def test_place_file_never_overwrites(tmp_path: Path) -> None:
    first, new = place_file(tmp_path, "a.txt", lambda p: p.write_text("one"))
    assert (first.name, new) == ("a.txt", True)
    same, new = place_file(tmp_path, "a.txt", lambda p: p.write_text("one"))
    assert (same, new) == (first, False)
    other, new = place_file(tmp_path, "a.txt", lambda p: p.write_text("two"))
    assert (other.name, new) == ("a-2.txt", True)
    assert first.read_text() == "one" and corpus_files(tmp_path) == ["a-2.txt", "a.txt"]


# ---------------------------------------------------------------------------------------------
# Indexing and the command line
# ---------------------------------------------------------------------------------------------


def test_added_articles_are_indexed_without_touching_the_rest(
    site: Site, corpus: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    corpus.mkdir()
    (corpus / "chess.txt").write_text(LOCAL, encoding="utf-8")
    indexer = Indexer(index, HashEmbedder())
    assert indexer.update([corpus]).added == 1
    report = Adder(corpus, timeout=5).add_all([site.url(BRIDGE)])
    indexed = indexer.update(report.new_paths, prune=False)
    assert (indexed.added, indexed.removed) == (1, 0)
    with open_store(index) as store:
        assert store.counts(store.current_gen)[0] == 2


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run ``newsqa`` in-process as the console script does; return its exit code."""
    from qa.cli.main import main

    monkeypatch.setattr(sys, "argv", ["newsqa", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_add_indexes_the_new_article(
    site: Site,
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import qa.index.folder

    monkeypatch.setattr(
        qa.index.folder,
        "embedder_for",
        lambda root, default=None, for_index=False, **_: HashEmbedder(),
    )
    index = tmp_path / "index"
    code = run_cli(
        monkeypatch,
        "add",
        site.url(BRIDGE),
        "--corpus",
        str(corpus),
        "--index-dir",
        str(index),
        "--timeout",
        "5",
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"added    {corpus}/2023-04-11-city-council" in out
    assert "1 added, 0 already present, 0 failed" in out
    with open_store(index) as store:
        assert store.counts(store.current_gen)[0] == 1


def test_cli_add_reports_one_line_errors(
    site: Site,
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = tmp_path / "index"
    common = ("--corpus", str(corpus), "--index-dir", str(index), "--no-index")
    assert run_cli(monkeypatch, "add", site.url("/missing.html"), *common) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"newsqa: {site.url('/missing.html')}: HTTP 404 Not Found: check the URL\n"
    )

    # One good source and one bad: the good one is saved, the bad one reported, exit 0.
    assert run_cli(monkeypatch, "add", site.url(VOLCANO), site.url("/logo.png"), *common) == 0
    captured = capsys.readouterr()
    assert "1 added, 0 already present, 1 failed" in captured.out
    assert f"failed   {site.url('/logo.png')}: not an HTML page" in captured.err
    assert len(corpus_files(corpus)) == 1
    assert not index.exists()  # --no-index
