"""Ray for ``newsqa import --ray``: connecting to a cluster, or starting a local one on loopback.

Ray is imported here only when a connection is asked for. An address is first tried with a
plain TCP connection, so an unreachable cluster is one line at once rather than a minute of
retries; a local Ray listens on 127.0.0.1 alone and is given time to start on a busy machine.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from qa import hardware
from qa.errors import ClusterError

LOCAL = "local"
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 6379
CONNECT_TIMEOUT_S = 5.0
# A local Ray waits 30 s for its GCS server to bind and for its raylet to register. On a busy
# two-core machine either can take longer: the GCS is given 120 s (Ray's own setting, unless
# the user set it) and a start that still times out is tried once more.
GCS_WAIT_ENV = "RAY_gcs_server_port_wait_time_s"
GCS_WAIT_S = "120"
START_TRIES = 2


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail at once, in one line, when nothing listens at a Ray address.

    Raises:
        ClusterError: the address is malformed or refuses a TCP connection.
    """
    hostport = address.removeprefix("ray://").rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, str(DEFAULT_PORT)
    if not host or not port.isdigit():
        raise ClusterError(f"--ray {address!r} is not HOST:PORT (or ray://HOST:PORT)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start it with "
            "`ray start --head`, check the address, or leave it out for a local Ray"
        ) from exc


def start_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to the Ray cluster at ``address`` or start a local one on 127.0.0.1.

    Args:
        address: ``HOST:PORT``, ``ray://HOST:PORT``; None or ``local`` for a local Ray.
        num_cpus: CPUs of a local Ray (default: one per core this process may use).

    Returns:
        True when this call connected (the caller shuts Ray down); False when this process
        was already connected (tests, notebooks), whose connection is left alone.

    Raises:
        ClusterError: the cluster is unreachable or refuses the connection.
    """
    local = address in (None, "", LOCAL)
    if not local:
        assert address is not None
        check_reachable(address)  # before Ray's import: seconds
    # Ray reports usage statistics over the network unless told not to.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if local or address is None:
        _start_local(num_cpus or hardware.probe().cores, quiet)
        return True
    try:
        with _loopback_kept(address):
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise ClusterError(f"cannot connect to the Ray cluster at {address}: {line(exc)}") from exc
    return True


def _start_local(num_cpus: int, quiet: dict[str, Any]) -> None:
    """Start a local Ray on 127.0.0.1, trying again once when its start timed out.

    Raises:
        ClusterError: Ray did not start.
    """
    import ray

    os.environ.setdefault(GCS_WAIT_ENV, GCS_WAIT_S)
    for attempt in range(1, START_TRIES + 1):
        before = _children()
        try:
            with _loopback_kept(LOOPBACK):
                ray.init(
                    # "local": a Ray of its own, never one found running on this machine.
                    address=LOCAL,
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    _node_ip_address=LOOPBACK,
                    **quiet,
                )
            return
        # Ray raises a bare Exception when its raylet does not register in time.
        except Exception as exc:
            ray.shutdown()
            _stop_new(before)  # a failed start leaves its servers running otherwise
            if attempt < START_TRIES and "timed out" in str(exc).lower():
                continue
            raise ClusterError(
                f"a local Ray did not start ({line(exc)}): try again on a less busy machine, "
                "or start one with `ray start --head --node-ip-address 127.0.0.1` and give "
                "its address to --ray"
            ) from exc


def _children() -> set[int]:
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)}


def _stop_new(before: set[int]) -> None:
    """Kill the processes that this process started since ``before`` was taken."""
    import psutil

    new = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    for proc in new:
        with suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(new, timeout=10)


def is_loopback(address: str) -> bool:
    """Whether a Ray address (``HOST:PORT``; not ``ray://``) names this machine's loopback."""
    if address.startswith("ray://"):
        return False
    host = address.rpartition(":")[0] or address
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _loopback_kept(address: str) -> Iterator[None]:
    """Start or connect Ray on a loopback address as given.

    ``ray.init`` replaces a loopback host, in ``address`` and in ``_node_ip_address`` alike,
    by this machine's routable IP (ray-project/ray#59110). A head started on 127.0.0.1 (``ray
    start --head --node-ip-address 127.0.0.1``, every node of a loopback test cluster)
    listens on loopback only, so the driver waited minutes for a GCS it never reached; and a
    local Ray asked for 127.0.0.1 came up on the routable IP, listening on every interface.
    Ray's own switch for loopback-only clusters (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) is
    read when Ray is imported, so its value is set here for the call alone; once connected,
    Ray takes the node's address from the node itself.
    """
    if not is_loopback(address):
        yield
        return
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
