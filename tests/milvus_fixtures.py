"""Milvus Lite for the backend contract tests: a loopback server per test session.

The server is Milvus Lite's own (``python -m milvus_lite server``), bound to 127.0.0.1 (it binds
every interface unless told) on a free port, with its data in a temporary folder; it is
stopped when the session ends. A Milvus Lite *file* needs nothing started: pymilvus opens it
in the test's process.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port nobody listens on now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _up(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``milvus://127.0.0.1:PORT`` of a Milvus Lite server started for this session."""
    pytest.importorskip("milvus_lite")
    data = tmp_path_factory.mktemp("milvus-server")
    port = free_port()
    log = open(Path(data) / "server.log", "wb")  # noqa: SIM115  # closed at teardown
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data / "data")),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not _up(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Milvus Lite server did not start: {data / 'server.log'}")
            time.sleep(0.1)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture()
def release_lite() -> Iterator[None]:
    """Stop the Milvus Lite servers that pymilvus started in this process for a test's files."""
    yield
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_all()
