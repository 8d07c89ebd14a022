"""``python -m bench restore`` on a real broker: a changelog written, restored, counted."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.restore import run_once

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kafka"))
import cluster as kafka_cluster  # noqa: E402  (tests/kafka/cluster.py)

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    kafka = kafka_cluster.start_cluster(tmp_path_factory.mktemp("bench-restore") / "kafka", 1, owner_pid=os.getpid())
    try:
        yield kafka.bootstrap
    finally:
        kafka.stop()


def test_a_restore_over_two_partitions_counts_every_record(bootstrap: str) -> None:
    # run_once raises unless both partitions' restores end and their totals add up to 5,000
    result = run_once(bootstrap, 5_000, 2, timeout=60)
    assert result["records"] == 5_000 and result["partitions"] == 2 and result["seconds"] > 0
