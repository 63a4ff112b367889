"""Hostile web servers and feeds against ``newsqa add`` (qa.ingest.web, qa.ingest.fetch).

Every server is a real ``http.server`` on 127.0.0.1 (https with a throw-away certificate made
by ``openssl``); proxy settings are cleared so that nothing leaves the machine. The timeouts
are short; the elapsed-time bounds are loose on purpose: they check that ``--timeout`` is a
deadline (a trickle that would last 10 s ends near 1 s), not how fast anything runs.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.index.indexer import Indexer
from qa.ingest.add import Adder, Outcome
from qa.ingest.web import MAX_BYTES, MAX_REDIRECTS, fetch

# Local web servers are reached directly, never through a proxy.
pytestmark = pytest.mark.usefixtures("no_proxy")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "add"
TRICKLE_BYTES = 20  # a trickling response sends this many bytes...
TRICKLE_GAP = 0.5  # ...one every TRICKLE_GAP seconds: 10 s in all, each byte well inside 1 s
HOPS = 10  # the slow redirect chain: HOPS redirects, each HOP_DELAY seconds late
HOP_DELAY = 0.8
ARTICLE = (FIXTURES / "volcano.html").read_bytes()
SECRET = "newsqa-local-secret-3f1a"
DEADLINE_BOUND = 5.0  # seconds: --timeout 1 must end well before the 10 s trickle
NOT_HTTP = "only http:// and https:// URLs can be fetched"
TIMED_OUT = "no complete response within 1 s: try again later or raise --timeout"


@dataclass
class Server:
    """A local test server: its base URL, the paths requested, and a stop switch."""

    base: str
    stop: threading.Event
    secret: Path  # a local file no fetch may ever read
    hits: list[str] = field(default_factory=list)
    routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path


def _send(handler: BaseHTTPRequestHandler, body: bytes, ctype: str = "text/html") -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _redirect(handler: BaseHTTPRequestHandler, location: str | None, code: int = 302) -> None:
    handler.send_response(code)
    if location is not None:
        handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _trickle(server: Server, handler: BaseHTTPRequestHandler, data: bytes) -> None:
    """Write ``data`` one byte at a time, TRICKLE_GAP seconds apart."""
    for byte in data[:TRICKLE_BYTES]:
        if server.stop.wait(TRICKLE_GAP):
            return
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()


def _routes(server: Server) -> dict[str, Callable[[BaseHTTPRequestHandler], None]]:
    base = server.base

    def slow_body(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(TRICKLE_BYTES))
        h.end_headers()
        _trickle(server, h, b"<html><p>x" + b" " * TRICKLE_BYTES)

    def slow_headers(h: BaseHTTPRequestHandler) -> None:
        _trickle(server, h, b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n")

    def slow_hop(h: BaseHTTPRequestHandler) -> None:
        hop = int(h.path.rsplit("/", 1)[1])
        server.stop.wait(HOP_DELAY)  # each hop inside 1 s; all of them together are not
        _redirect(h, f"/hop/{hop + 1}" if hop + 1 < HOPS else "/article")

    def huge(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(2 * 1024**3))
        h.end_headers()
        for _ in range(64):  # 4 MiB, then the server gives up
            h.wfile.write(b"<html>" + b"x" * (64 * 1024 - 6))

    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()  # no length: the body ends when the connection does
        block = b"<p>" + b"word " * 13_000 + b"</p>\n"
        for _ in range((MAX_BYTES // len(block)) + 50):
            h.wfile.write(block)

    def feed(*links: str) -> Callable[[BaseHTTPRequestHandler], None]:
        items = "".join(
            f"<item><title>t{i}</title><link>{u}</link></item>" for i, u in enumerate(links)
        )
        body = f'<rss version="2.0"><channel><title>F</title>{items}</channel></rss>'
        return lambda h: _send(h, body.encode(), "application/rss+xml")

    xxe = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rss [<!ENTITY x SYSTEM "file://{server.secret}">]>\n'
        '<rss version="2.0"><channel><title>&x;</title>'
        f"<item><title>&x;</title><link>{base}/article?&x;</link>"
        "<description>&x;</description></item></channel></rss>"
    )
    return {
        "/article": lambda h: _send(h, ARTICLE),
        "/slow-body": slow_body,
        "/slow-headers": slow_headers,
        **{f"/hop/{n}": slow_hop for n in range(HOPS)},
        "/to-ftp": lambda h: _redirect(h, "ftp://127.0.0.1:1/article.html"),
        "/to-file": lambda h: _redirect(h, f"file://{server.secret}"),
        "/to-data": lambda h: _redirect(h, "data:text/html,<html><p>injected</p></html>"),
        "/to-to-file": lambda h: _redirect(h, "/to-file", 301),
        "/to-escape": lambda h: _redirect(h, "ftp://127.0.0.1:1/\x1b]0;owned\x07"),
        "/escape-reason": lambda h: h.send_error(404, "\x1b]0;owned\x07"),
        "/bad-status": lambda h: h.wfile.write(b"HTTP/1.1 2\x1b[2J00 OK\r\n\r\n"),
        "/loop": lambda h: _redirect(h, "/loop"),
        "/ping": lambda h: _redirect(h, "/pong", 307),
        "/pong": lambda h: _redirect(h, "/ping", 308),
        "/no-location": lambda h: _redirect(h, None),
        "/huge": huge,
        "/endless": endless,
        "/feed/file": feed(f"file://{server.secret}", f"{base}/article"),
        "/feed/ftp": feed("ftp://127.0.0.1:1/x.html"),
        "/feed/redirects-to-file": feed(f"{base}/to-file"),
        "/feed/slow": feed(f"{base}/slow-body"),
        "/feed/xxe": lambda h: _send(h, xxe.encode(), "application/rss+xml"),
    }


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.hits.append(self.path)
            path = self.path.split("?", 1)[0]
            if path.startswith("/chain/"):  # a new URL every hop, never ending
                _redirect(self, f"/chain/{int(path.rsplit('/', 1)[1]) + 1}")
                return
            route = server.routes.get(path)
            if route is None:
                self.send_error(404, "Not Found")
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                route(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def _serve(tmp_path: Path, context: ssl.SSLContext | None = None) -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    host, port = httpd.server_address[:2]
    scheme = "https" if context else "http"
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    server = Server(base=f"{scheme}://{host!s}:{port}", stop=threading.Event(), secret=secret)
    server.routes = _routes(server)
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Server]:
    with _serve(tmp_path) as server:
        yield server


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return tmp_path / "corpus"


def only(outcomes: list[Outcome]) -> Outcome:
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


def corpus_text(folder: Path) -> str:
    """Everything in the corpus folder, hidden files included ("" when it does not exist)."""
    if not folder.exists():
        return ""
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.iterdir())


def timed(call: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


# ---------------------------------------------------------------------------------------------
# --timeout is a deadline for the whole fetch
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers", "/hop/0", "/feed/slow"])
def test_a_trickling_or_slow_server_cannot_stretch_the_timeout(
    site: Server, corpus: Path, path: str
) -> None:
    outcomes, elapsed = timed(lambda: Adder(corpus, timeout=1).add(site.url(path)))
    assert elapsed < DEADLINE_BOUND, f"{path}: {elapsed:.1f} s for --timeout 1"
    assert isinstance(outcomes, list)
    assert [(o.status, o.detail) for o in outcomes] == [("failed", TIMED_OUT)]
    assert corpus_text(corpus) == ""


def test_the_slow_redirect_chain_is_fine_with_time_enough(site: Server, corpus: Path) -> None:
    # The last three hops of the chain (2.4 s in all) within a deadline that allows them.
    outcome = only(Adder(corpus, timeout=10).add(site.url(f"/hop/{HOPS - 3}")))
    assert outcome.status == "added", outcome
    assert site.hits == [*(f"/hop/{n}" for n in range(HOPS - 3, HOPS)), "/article"]


def test_a_2_gb_response_is_refused_without_reading_it(site: Server) -> None:
    with pytest.raises(Exception, match=r"larger than 20 MB: not an article page$"):
        fetch(site.url("/huge"), 5)
    with pytest.raises(Exception, match=r"larger than 20 MB: not an article page$"):
        fetch(site.url("/endless"), 20)


# ---------------------------------------------------------------------------------------------
# Redirects: http(s) only, bounded, one line
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/to-ftp", "ftp://127.0.0.1:1/article.html"),
        ("/to-file", "file://{secret}"),
        ("/to-data", "data:text/html,<html><p>injected</p></html>"),
        ("/to-to-file", "file://{secret}"),
    ],
)
def test_redirects_to_other_schemes_are_refused(
    site: Server, corpus: Path, path: str, target: str
) -> None:
    target = target.format(secret=site.secret)
    outcome = only(Adder(corpus, timeout=5).add(site.url(path)))
    assert (outcome.status, outcome.detail) == (
        "failed",
        f"redirected to {target}: refused, {NOT_HTTP}",
    )
    assert corpus_text(corpus) == ""


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/loop", "redirect loop at {base}/loop: the site is misconfigured"),
        ("/ping", "redirect loop at {base}/ping: the site is misconfigured"),
        ("/chain/0", f"more than {MAX_REDIRECTS} redirects: give the article's own URL"),
        ("/no-location", "HTTP 302 redirect without a Location: check the URL"),
    ],
)
def test_redirect_loops_and_chains_end_with_one_line(
    site: Server, corpus: Path, path: str, reason: str
) -> None:
    outcome = only(Adder(corpus, timeout=5).add(site.url(path)))
    assert (outcome.status, outcome.detail) == ("failed", reason.format(base=site.base))
    assert "\n" not in outcome.line()
    assert len(site.hits) <= MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/to-escape", "redirected to ftp://127.0.0.1:1/\\x1b]0;owned\\x07: refused, " + NOT_HTTP),
        ("/escape-reason", "HTTP 404 \\x1b]0;owned\\x07: check the URL"),
        ("/bad-status", "network error (HTTP/1.1 2\\x1b[2J00 OK\\r\\n): check the URL and"),
    ],
)
def test_control_characters_from_the_server_are_escaped_in_the_line(
    site: Server, corpus: Path, path: str, reason: str
) -> None:
    outcome = only(Adder(corpus, timeout=5).add(site.url(path)))
    assert outcome.status == "failed"
    assert outcome.detail.startswith(reason), outcome.detail
    assert outcome.line().isprintable()


# ---------------------------------------------------------------------------------------------
# Feeds: the same rules for every URL a feed lists
# ---------------------------------------------------------------------------------------------


def test_a_feed_entry_linking_to_a_local_file_is_refused_never_read(
    site: Server, corpus: Path
) -> None:
    outcomes = Adder(corpus, timeout=5).add(site.url("/feed/file"))
    # (feedparser hands the link on as file://tmp/..., one slash short: refused all the same)
    assert [(o.source[:7], o.status, o.detail) for o in outcomes[:1]] == [
        ("file://", "failed", NOT_HTTP)
    ]
    assert [o.status for o in outcomes[1:]] == ["added"]
    assert SECRET not in corpus_text(corpus)


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/feed/ftp", NOT_HTTP),
        ("/feed/redirects-to-file", "redirected to file://{secret}: refused, " + NOT_HTTP),
    ],
)
def test_feed_entries_follow_the_same_scheme_rules(
    site: Server, corpus: Path, path: str, detail: str
) -> None:
    outcome = only(Adder(corpus, timeout=5).add(site.url(path)))
    secret = site.secret
    assert (outcome.status, outcome.detail) == ("failed", detail.format(secret=secret))
    assert corpus_text(corpus) == ""


def test_an_external_entity_in_a_feed_is_never_read(site: Server, corpus: Path) -> None:
    outcomes = Adder(corpus, timeout=5).add(site.url("/feed/xxe"))
    assert [o.status for o in outcomes] == ["added"]
    assert not any(SECRET in hit for hit in site.hits)
    assert SECRET not in corpus_text(corpus)


# ---------------------------------------------------------------------------------------------
# https: works under the deadline; no downgrade to plain http
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context with a throw-away certificate for 127.0.0.1, trusted by the client."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate for the https server")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # read by the client's default context
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_https_pages_are_fetched_under_the_same_deadline(
    tls: ssl.SSLContext, tmp_path: Path, corpus: Path
) -> None:
    with _serve(tmp_path, tls) as secure:
        assert only(Adder(corpus, timeout=5).add(secure.url("/article"))).status == "added"
        outcome, elapsed = timed(
            lambda: only(Adder(corpus, timeout=1).add(secure.url("/slow-body")))
        )
    assert elapsed < DEADLINE_BOUND, f"{elapsed:.1f} s for --timeout 1"
    assert isinstance(outcome, Outcome)
    assert (outcome.status, outcome.detail) == ("failed", TIMED_OUT)


def test_an_untrusted_certificate_is_one_clear_line(
    tls: ssl.SSLContext, tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")  # the throw-away certificate is trusted no more
    with _serve(tmp_path, tls) as secure:
        outcome = only(Adder(corpus, timeout=5).add(secure.url("/article")))
    assert (outcome.status, outcome.detail) == (
        "failed",
        "the site's certificate is not trusted (self-signed certificate): check the URL",
    )


def test_https_never_redirects_down_to_plain_http(
    tls: ssl.SSLContext, tmp_path: Path, site: Server, corpus: Path
) -> None:
    with _serve(tmp_path, tls) as secure:
        secure.routes["/down"] = lambda h: _redirect(h, site.url("/article"))
        secure.routes["/up"] = lambda h: _redirect(h, secure.url("/article"))
        outcome = only(Adder(corpus, timeout=5).add(secure.url("/down")))
        assert (outcome.status, outcome.detail) == (
            "failed",
            f"redirected from https to plain http ({site.url('/article')}): refused, the page "
            "could be altered on the way; add the http:// URL itself if you trust it",
        )
        assert site.hits == []  # the plain http page was never asked for
        site.routes["/up"] = lambda h: _redirect(h, secure.url("/article"))
        assert only(Adder(corpus, timeout=5).add(site.url("/up"))).status == "added"


# ---------------------------------------------------------------------------------------------
# What a person sees: one line, exit 1, nothing added, the index kept
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def indexed(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An index of a one-article corpus (hash embedder: no model needed)."""
    import qa.index.folder

    monkeypatch.setattr(
        qa.index.folder, "embedder_for", lambda root, default=None, **_: HashEmbedder()
    )
    corpus.mkdir()
    (corpus / "chess.txt").write_text(
        "Teenager wins national chess championship\n\nJanuary 15, 2021\n\n"
        "A fifteen-year-old won the national chess championship on Sunday.\n",
        encoding="utf-8",
    )
    index = tmp_path / "index"
    assert Indexer(index, HashEmbedder()).update([corpus]).added == 1
    return index


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/slow-body", TIMED_OUT),
        ("/slow-headers", TIMED_OUT),
        ("/hop/0", TIMED_OUT),
        ("/to-ftp", f"redirected to ftp://127.0.0.1:1/article.html: refused, {NOT_HTTP}"),
        ("/loop", "redirect loop at {base}/loop: the site is misconfigured"),
    ],
)
def test_cli_add_says_one_line_and_keeps_the_corpus_and_index(
    site: Server, corpus: Path, indexed: Path, newsqa: Callable[..., object], path: str, reason: str
) -> None:
    with open_store(indexed) as store:
        before = (store.current_gen, store.counts(store.current_gen))
    run, elapsed = timed(
        lambda: newsqa(
            "add",
            site.url(path),
            "--timeout",
            "1",
            "--corpus",
            str(corpus),
            "--index-dir",
            str(indexed),
        )
    )
    assert elapsed < DEADLINE_BOUND, f"{elapsed:.1f} s for --timeout 1"
    assert (run.code, run.out, run.err) == (
        1,
        "",
        f"newsqa: {site.url(path)}: {reason.format(base=site.base)}\n",
    )
    assert sorted(p.name for p in corpus.iterdir()) == ["chess.txt"]
    with open_store(indexed) as store:
        assert (store.current_gen, store.counts(store.current_gen)) == before
