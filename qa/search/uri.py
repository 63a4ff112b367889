"""Which search backend an index is published to, named by a URI.

``embedded`` (the default) is :class:`qa.search.local.LocalBackend`: FAISS + BM25 files in the
index folder. ``milvus:PATH.db`` is a Milvus Lite file (a folder of Milvus Lite's own, opened
in this process) and ``milvus://HOST:PORT`` a Milvus server or cluster (Milvus Lite's loopback
server, Standalone, Distributed): the same :class:`qa.search.milvus.MilvusBackend` talks to all
three, only the URI changes.

The store records the backend each generation was published to (its meta key
``search_backend``, :func:`published_to`), so that a command that names no backend uses the
index's own, and naming another one republishes the index there in full rather than mixing
two engines' halves of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import BadBackendURI, IndexMismatch

if TYPE_CHECKING:
    from qa.index.store import Store

EMBEDDED = "embedded"
META_KEY = "search_backend"
DEFAULT_MILVUS_PORT = 19530

__all__ = [
    "EMBEDDED",
    "META_KEY",
    "BackendURI",
    "behind",
    "check_published",
    "parse_backend",
    "published_to",
]


@dataclass(frozen=True)
class BackendURI:
    """A parsed backend URI.

    Attributes:
        kind: ``embedded``, ``lite`` (a Milvus Lite file) or ``server``.
        target: The Lite file's absolute path, or ``HOST:PORT``; "" for embedded.
    """

    kind: str
    target: str = ""

    @property
    def identity(self) -> str:
        """The URI in its one canonical spelling (what the store records)."""
        if self.kind == "lite":
            return f"milvus:{self.target}"
        if self.kind == "server":
            return f"milvus://{self.target}"
        return EMBEDDED

    @property
    def client_uri(self) -> str:
        """What pymilvus's ``MilvusClient`` connects to."""
        return self.target if self.kind == "lite" else f"http://{self.target}"

    def __str__(self) -> str:
        return self.identity


def parse_backend(text: str) -> BackendURI:
    """Parse ``embedded``, ``milvus:PATH.db`` or ``milvus://HOST[:PORT]``.

    A relative Lite path is taken from the current folder and recorded absolute.

    Raises:
        BadBackendURI: Anything else, a Lite path not ending in ``.db`` or in a folder that
            does not exist, a bad host or port.
    """
    value = text.strip()
    if value.lower() == EMBEDDED:
        return BackendURI(EMBEDDED)
    if not value.lower().startswith("milvus:"):
        raise BadBackendURI(text, "unknown backend")
    rest = value[len("milvus:") :]
    if rest.startswith("//"):
        return BackendURI("server", _host_port(text, rest[2:]))
    if not rest.endswith(".db") or rest == ".db":
        raise BadBackendURI(text, "a Milvus Lite file name must end in .db")
    path = Path(rest).expanduser().resolve()
    if not path.parent.is_dir():
        raise BadBackendURI(text, f"no such folder: {path.parent}")
    if path.exists() and not path.is_dir():
        raise BadBackendURI(text, f"{path} is a file, not a Milvus Lite folder")
    return BackendURI("lite", str(path))


def _host_port(text: str, netloc: str) -> str:
    host, sep, port_text = netloc.rstrip("/").rpartition(":")
    if not sep:
        host, port_text = netloc.rstrip("/"), str(DEFAULT_MILVUS_PORT)
    if not host or any(c in host for c in "/@?# ") or "/" in port_text:
        raise BadBackendURI(text, "expected milvus://HOST:PORT")
    try:
        port = int(port_text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise BadBackendURI(text, f"bad port {port_text!r}")
    return f"{host}:{port}"


def published_to(store: Store) -> str:
    """The identity of the backend the store's current generation was published to."""
    return store.get_meta(META_KEY) or EMBEDDED


def check_published(store: Store, uri: BackendURI) -> None:
    """Refuse to search a backend that the index was not published to.

    Raises:
        IndexMismatch: The store's generations live in another backend.
    """
    recorded = published_to(store)
    if store.current_gen and recorded != uri.identity:
        raise IndexMismatch(
            f"the index is published to {recorded}, not {uri.identity}: use --backend "
            f"{recorded}, or run `newsqa index --backend {uri.identity}` to publish it there"
        )


def switches_backend(store: Store, backend: object | None) -> bool:
    """Whether publishing to ``backend`` (None: the embedded files) moves the store to another
    backend than its last generation's; one without an ``identity`` is not tracked."""
    identity = EMBEDDED if backend is None else getattr(backend, "identity", None)
    return identity is not None and published_to(store) != identity


def behind(store: Store, backend: object | None) -> bool:
    """Whether ``backend`` lacks a part of the store's current generation that the next
    publish writes (a Milvus collection published before headlines were kept)."""
    lacks = getattr(backend, "behind", None)
    return bool(lacks(store)) if callable(lacks) else False
