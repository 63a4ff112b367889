"""Ray on loopback: a local Ray listens on 127.0.0.1 only, a head on 127.0.0.1 is reached as
given, and nothing of Ray outlives its shutdown. Real Ray, no model (about 30 s together)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qa.index.ray_import import is_loopback, start_ray
from tests.ray_fixtures import assert_none_left, listening_hosts


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


@pytest.mark.timeout(180)
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


@pytest.mark.timeout(180)
def test_a_head_on_loopback_is_reached_at_the_address_given(no_ray: None) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"},
    )
    try:
        # Ray alone would connect to this machine's routable IP, where nothing listens.
        assert start_ray(cluster.address) is True
        assert ray.cluster_resources().get("CPU") == 1
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert_none_left()
