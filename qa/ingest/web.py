"""HTTP for ``newsqa add``: one GET with a deadline, redirects checked hop by hop.

urllib from the standard library (so proxy settings of the environment still apply), with
three changes to what it does by default:

* ``timeout`` is a deadline for the whole fetch of a page: connecting, every redirect, the
  headers and the body together. A socket timeout alone restarts with every byte received,
  so a server trickling one byte a second would keep a 5 s fetch going for hours. Here every
  read from the socket waits at most for the time left, and none starts after the deadline.
* Redirects are followed here, not by urllib: every hop must be http(s) (urllib would follow
  a redirect to ``ftp://``), an https page may not redirect to plain http (the page could be
  altered on the way, and the person asked for https), a loop or more than
  :data:`MAX_REDIRECTS` hops end the fetch with one line.
* Only the http and https handlers exist in the opener: no ``file:``, ``ftp:`` or ``data:``
  handler can be reached, whatever URL comes in.

The body is capped at :data:`MAX_BYTES` (refused early when the server announces more).
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

from qa.errors import FetchError

__all__ = ["MAX_BYTES", "MAX_REDIRECTS", "Fetched", "fetch"]

USER_AGENT = "newsqa/0.1 (+newsqa add; article import)"
MAX_BYTES = 20 * 1024 * 1024  # far above any article page; stops a runaway download
MAX_REDIRECTS = 10  # as urllib's own limit; real article links need one to three
_BLOCK = 64 * 1024
_SCHEMES = ("http", "https")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SHOWN_URL = 200  # characters of a URL quoted in an error line


@dataclass(frozen=True)
class Fetched:
    """A fetched resource.

    Attributes:
        url: The final URL (after redirects).
        content_type: Media type in lower case without parameters ("" when not sent).
        charset: The charset parameter ("" when not sent).
        body: The bytes.
    """

    url: str
    content_type: str
    charset: str
    body: bytes


class _Deadline(TimeoutError):
    """The time allowed for the whole fetch is over."""


def _left(deadline: float) -> float:
    """Seconds left before ``deadline``; :class:`_Deadline` when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Deadline
    return left


class _DeadlineReader(io.RawIOBase):
    """A socket's raw reader whose every read waits at most for the time left."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # keeps the socket open until closed
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(_left(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """A connected socket whose files (the response) read under the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineConnection:
    """Connects within the time left and wraps the socket so that every read is bounded."""

    timeout: float | None
    sock: Any

    def __init__(self, host: str, *, deadline: float, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)  # type: ignore[call-arg]
        self.deadline = deadline

    def connect(self) -> None:
        # The socket timeout bounds the whole connect and, for https, the whole TLS
        # handshake (Python 3.5+); reads are bounded one by one in _DeadlineReader.
        self.timeout = _left(self.deadline)
        super().connect()  # type: ignore[misc]
        self.sock = cast(socket.socket, _DeadlineSocket(self.sock, self.deadline))


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            return _HTTPConnection(host, deadline=self.deadline, **kwargs)

        return self.do_open(connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            return _HTTPSConnection(host, deadline=self.deadline, **kwargs)

        return self.do_open(connection, req)


class _KeepRedirects(urllib.request.BaseHandler):
    """Hands 3xx responses back to :func:`fetch`, which checks each hop itself."""

    def http_error_301(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        return fp

    http_error_302 = http_error_303 = http_error_307 = http_error_308 = http_error_301


def _opener(deadline: float) -> urllib.request.OpenerDirector:
    """http(s) only; a fresh one per fetch reads the proxy settings of the environment."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        _HTTPHandler(deadline),
        _HTTPSHandler(deadline),
        _KeepRedirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def fetch(url: str, timeout: float) -> Fetched:
    """GET an http(s) URL, following redirects, within ``timeout`` seconds in all.

    Args:
        url: The URL.
        timeout: Seconds allowed for the whole fetch: connecting, redirects, headers and body.

    Returns:
        The response (2xx, after redirects).

    Raises:
        FetchError: Not an http(s) URL, a refused redirect (another scheme, https to http, a
            loop, too many), an HTTP error status, a network error, the time is over, or a
            body larger than ``MAX_BYTES``.
    """
    if urlsplit(url).scheme.lower() not in _SCHEMES:
        raise FetchError(url, "only http:// and https:// URLs can be fetched")
    deadline = time.monotonic() + timeout
    opener = _opener(deadline)
    seen = [url]
    try:
        while True:
            request = urllib.request.Request(
                seen[-1], headers={"User-Agent": USER_AGENT, "Accept": "*/*"}
            )
            with opener.open(request, timeout=_left(deadline)) as resp:
                if resp.status not in _REDIRECTS:
                    return _fetched(resp, seen[-1], url, deadline)
                seen.append(_next_hop(seen, resp.headers.get("Location"), resp.status))
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FetchError(url, _http_reason(exc.code, str(exc.reason))) from exc
    except urllib.error.URLError as exc:
        raise FetchError(url, _network_reason(exc.reason, timeout)) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise FetchError(url, _network_reason(exc, timeout)) from exc


def _fetched(resp: Any, at: str, url: str, deadline: float) -> Fetched:
    headers = resp.headers
    return Fetched(
        url=resp.geturl() or at,
        content_type=headers.get_content_type() if headers else "",
        charset=(headers.get_content_charset() or "") if headers else "",
        body=_read_capped(resp, url, deadline),
    )


def _shown(url: str) -> str:
    """Server text (a URL, a reason phrase) fit for one error line: control characters
    escaped as ``\\x1b``, length capped."""
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in url)
    return text if len(text) <= _SHOWN_URL else text[: _SHOWN_URL - 3] + "..."


def _next_hop(seen: list[str], location: str | None, status: int) -> str:
    """The URL a redirect leads to, when newsqa may follow it.

    Raises:
        FetchError: No Location, another scheme than http(s), https to http, a loop, or more
            than :data:`MAX_REDIRECTS` redirects.
    """
    here = seen[-1]
    if not location:
        raise FetchError(seen[0], f"HTTP {status} redirect without a Location: check the URL")
    target = urljoin(here, location.strip())
    scheme = urlsplit(target).scheme.lower()
    if scheme not in _SCHEMES:
        raise FetchError(
            seen[0],
            f"redirected to {_shown(target)}: refused, only http:// and https:// URLs "
            "can be fetched",
        )
    if scheme == "http" and urlsplit(here).scheme.lower() == "https":
        raise FetchError(
            seen[0],
            f"redirected from https to plain http ({_shown(target)}): refused, the page "
            "could be altered on the way; add the http:// URL itself if you trust it",
        )
    if target in seen:
        raise FetchError(seen[0], f"redirect loop at {_shown(target)}: the site is misconfigured")
    if len(seen) > MAX_REDIRECTS:
        raise FetchError(
            seen[0], f"more than {MAX_REDIRECTS} redirects: give the article's own URL"
        )
    return target


def _read_capped(resp: Any, url: str, deadline: float) -> bytes:
    """Read the body in pieces as they arrive, within the deadline and ``MAX_BYTES``."""
    too_big = FetchError(url, f"larger than {MAX_BYTES >> 20} MB: not an article page")
    announced = resp.headers.get("Content-Length", "") if resp.headers else ""
    if announced.strip().isdigit() and int(announced) > MAX_BYTES:
        raise too_big  # said so up front: not a byte of it is read
    chunks: list[bytes] = []
    size = 0
    while True:
        _left(deadline)
        block = resp.read1(_BLOCK)
        if not block:
            return b"".join(chunks)
        size += len(block)
        if size > MAX_BYTES:
            raise too_big
        chunks.append(block)


def _http_reason(code: int, reason: str) -> str:
    hint = {
        404: "check the URL",
        410: "the page was removed",
        401: "the page needs a login",
        403: "the site refuses access",
        429: "too many requests: try again later",
    }
    text = f"HTTP {code} {_shown(reason)}".strip()
    if code in hint:
        return f"{text}: {hint[code]}"
    return f"{text}: the server failed, try again later" if code >= 500 else text


def _network_reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no complete response within {timeout:g} s: try again later or raise --timeout"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused: check the URL (host and port) and that the site is up"
    if isinstance(reason, socket.gaierror):
        return "unknown host: check the URL and the network connection"
    if isinstance(reason, ssl.SSLCertVerificationError):  # before ValueError: it is one too
        why = reason.verify_message or "certificate verify failed"
        return f"the site's certificate is not trusted ({why}): check the URL"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason.reason or reason}): check the URL and that the site is up"
    if isinstance(reason, ValueError):
        return f"not a valid URL ({reason})"
    detail = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    detail = _shown(str(detail))  # may quote what the server sent (a bad status line)
    return f"network error ({detail}): check the URL and the network connection"
