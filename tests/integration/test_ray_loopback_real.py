"""Ray on loopback: a local Ray listens on 127.0.0.1 only, a head on 127.0.0.1 is reached as
given, and nothing of Ray outlives its shutdown. Real Ray, no model (about 30 s together)."""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.index.ray_cluster import is_loopback, start_ray
from tests.ray_fixtures import assert_none_left, listening_hosts

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:6379", True),
        ("localhost:6379", True),
        ("127.0.0.2:6379", True),
        ("[::1]:6379", True),
        ("10.0.0.5:6379", False),
        ("head.example:6379", False),
        ("ray://127.0.0.1:10001", False),  # Ray Client connects as given
    ],
)
def test_loopback_addresses_are_told_apart(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.fixture
def no_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    yield
    ray.shutdown()


@pytest.mark.timeout(330)  # a slow start is tried twice, up to 120 s each
def test_a_local_ray_listens_on_loopback_only(no_ray: None) -> None:
    import ray

    assert start_ray(None, num_cpus=1) is True
    try:
        assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
        hosts = listening_hosts()
        assert hosts, "found no listening Ray server"
        assert hosts == {"127.0.0.1"}
    finally:
        ray.shutdown()
    assert_none_left()


# A head of its own in a child process, started the way `newsqa index --ray local` starts one
# (loopback only), so that this process connects to it as a second driver would.
_HEAD = """
import sys
import ray
from qa.index.ray_cluster import start_ray
start_ray(None, num_cpus=1)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.readline()
ray.shutdown()
"""


def _head_address(head: subprocess.Popen[str], wait_s: float = 300.0) -> str:
    """The GCS address that the child head prints once it is up."""
    assert head.stdout is not None
    ready, _, _ = select.select([head.stdout], [], [], wait_s)
    line = head.stdout.readline().strip() if ready else ""
    if not line:
        head.kill()
        _, err = head.communicate(timeout=30)
        pytest.fail(f"the head did not start: {err.strip().splitlines()[-1:] or 'no output'}")
    return line


@pytest.mark.timeout(420)
def test_a_head_on_loopback_is_reached_at_the_address_given(no_ray: None) -> None:
    import ray

    head = subprocess.Popen(
        [sys.executable, "-c", _HEAD],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        address = _head_address(head)
        assert address.startswith("127.0.0.1:")
        # Ray alone would connect to this machine's routable IP, where nothing listens.
        assert start_ray(address) is True
        assert ray.cluster_resources().get("CPU") == 1
        assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
    finally:
        ray.shutdown()
        if head.poll() is None:
            head.communicate(input="\n", timeout=60)
    assert head.returncode == 0
    assert_none_left()
