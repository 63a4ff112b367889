"""Helpers for the tests on a real Ray: which of Ray's servers this test process left
running, and where they listen."""

from __future__ import annotations

import time

RAY_SERVERS = ("raylet", "gcs_server")


def _servers() -> list[object]:
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name().startswith(RAY_SERVERS):
                found.append(child)
        except psutil.Error:
            continue
    return found


def ray_servers() -> list[str]:
    """Names of this process's descendants that are Ray's own servers (raylet, GCS)."""
    import psutil

    names = []
    for proc in _servers():
        assert isinstance(proc, psutil.Process)
        try:
            names.append(proc.name())
        except psutil.Error:
            continue
    return names


def assert_none_left(wait_s: float = 20.0) -> None:
    """Fail unless every Ray server that this process started has exited (within wait_s)."""
    deadline = time.monotonic() + wait_s
    while ray_servers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray_servers() == []


def listening_hosts() -> set[str]:
    """The hosts that this process's Ray servers listen on (IPv4-mapped prefix removed)."""
    import psutil

    hosts: set[str] = set()
    for proc in _servers():
        assert isinstance(proc, psutil.Process)
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        hosts |= {c.laddr.ip.removeprefix("::ffff:") for c in conns if c.status == "LISTEN"}
    return hosts
