"""Starting a local Ray on a busy machine: a start that times out is tried once more, after
what it left running is stopped; any other failure is one ClusterError. Ray's ``init`` is
replaced here; the real starts are in tests/integration/test_ray_loopback_real.py."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from qa.errors import ClusterError
from qa.index import ray_cluster
from qa.index.ray_cluster import start_ray

ray = pytest.importorskip("ray")
SLOW = "The current node timed out during startup. This could happen because ..."


class FakeInit:
    """``ray.init`` that fails with ``errors`` in turn (each start leaving a process behind)."""

    def __init__(self, errors: list[Exception | None]) -> None:
        self.errors = errors
        self.calls: list[dict[str, Any]] = []
        self.left: list[subprocess.Popen[bytes]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        self.left.append(subprocess.Popen(["sleep", "60"]))
        error = self.errors[len(self.calls) - 1]
        if error is not None:
            raise error


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeInit:
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.delenv(ray_cluster.GCS_WAIT_ENV, raising=False)
    return FakeInit([])


def test_a_start_that_timed_out_is_tried_once_more(
    fake: FakeInit, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.errors = [Exception(SLOW), None]
    monkeypatch.setattr(ray, "init", fake)
    try:
        assert start_ray(None, num_cpus=1) is True
        assert len(fake.calls) == 2
        assert fake.calls[1]["_node_ip_address"] == "127.0.0.1"
        # What the failed start left running was stopped; the second start's process was not.
        assert fake.left[0].poll() is not None
        assert fake.left[1].poll() is None
    finally:
        for proc in fake.left:
            proc.kill()
            proc.wait()


def test_the_gcs_is_given_longer_to_start_unless_the_user_said(
    fake: FakeInit, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    fake.errors = [None, None]
    monkeypatch.setattr(ray, "init", fake)
    start_ray(None, num_cpus=1)
    assert os.environ[ray_cluster.GCS_WAIT_ENV] == ray_cluster.GCS_WAIT_S
    monkeypatch.setenv(ray_cluster.GCS_WAIT_ENV, "7")
    start_ray(None, num_cpus=1)
    assert os.environ[ray_cluster.GCS_WAIT_ENV] == "7"
    for proc in fake.left:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    ("errors", "tries"),
    [
        ([Exception(SLOW), Exception(SLOW)], 2),  # still too slow: given up after two
        ([ValueError("bad num_cpus")], 1),  # not a slow start: never tried again
    ],
)
def test_a_start_that_fails_is_one_cluster_error(
    fake: FakeInit, monkeypatch: pytest.MonkeyPatch, errors: list[Exception | None], tries: int
) -> None:
    fake.errors = errors
    monkeypatch.setattr(ray, "init", fake)
    with pytest.raises(ClusterError, match="a local Ray did not start") as info:
        start_ray(None, num_cpus=1)
    assert len(fake.calls) == tries
    assert "\n" not in str(info.value)
    assert all(proc.wait(timeout=10) is not None for proc in fake.left)
