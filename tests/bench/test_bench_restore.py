"""``python -m bench restore`` on a real broker: a changelog written, restored, counted."""

from __future__ import annotations

from typing import Any

import pytest

from bench.restore import run_once

pytestmark = [pytest.mark.timeout(120)]


def test_a_restore_over_two_partitions_counts_every_record(kafka: Any) -> None:
    # run_once raises unless both partitions' restores end and their totals add up to 5,000
    result = run_once(kafka.bootstrap, 5_000, 2, timeout=60)
    assert result["records"] == 5_000 and result["partitions"] == 2 and result["seconds"] > 0
