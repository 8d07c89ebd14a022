"""Test-suite wide fixtures and checks.

* The compiled record loop must be in use.
* ``kafka``: one real local Apache Kafka (KRaft) broker, started once per test session on first
  use and shared by every directory's tests (integration, bench).
* ``kafka3``: three combined broker/controller nodes (a 3-voter quorum), started only when a
  test asks for it, then kept for the rest of the session.

Both yield a :class:`cluster.Cluster` (``tests/kafka/cluster.py``): ``.bootstrap``,
``.create_topic(...)``, ``.admin``, ``.client_config(...)``, ``.kill(i)``,
``.restart(i)``, ``.ensure_running()`` and more. If a cluster cannot start, every test
that uses it fails with the reason (the tail of the broker log); it is never skipped.
Clusters are stopped at the end of the session whatever happened, and a watchdog
process stops them if the test process is killed outright. Their files (config,
data, ``broker-N/logs/server.log``) stay in pytest's temporary directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import kstreams

sys.path.insert(0, str(Path(__file__).resolve().parent / "kafka"))
import cluster as kafka_cluster  # noqa: E402  (tests/kafka/cluster.py)


def pytest_sessionstart(session: pytest.Session) -> None:  # noqa: D103
    if not kstreams.COMPILED:
        raise RuntimeError("kstreams._core is not compiled: build it (pip install -e .) before running the tests")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: runs against a real local Kafka started by tests/kafka/cluster.py")


def _run_cluster(factory: pytest.TempPathFactory, name: str, brokers: int) -> Iterator[kafka_cluster.Cluster]:
    cluster_dir = factory.mktemp(name)
    try:
        cluster = kafka_cluster.start_cluster(cluster_dir, brokers, owner_pid=os.getpid())
    except kafka_cluster.ClusterError as exc:
        failure = f"could not start a {brokers}-broker Kafka in {cluster_dir}:\n{exc}"
    else:
        failure = None
    if failure is not None:  # outside the except block: no chained traceback
        pytest.fail(failure, pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kafka_cluster.Cluster]:
    """A single-broker Kafka (KRaft) shared by the whole session."""
    yield from _run_cluster(tmp_path_factory, "kafka", 1)


@pytest.fixture(scope="session")
def kafka3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kafka_cluster.Cluster]:
    """A three-broker Kafka (3-voter KRaft quorum), started on first use.

    A test that kills brokers should restart them; tests that need all three call
    ``kafka3.ensure_running()`` first.
    """
    yield from _run_cluster(tmp_path_factory, "kafka3", 3)
