"""The comparison harness end to end on a real broker, with a plain system and deliberate faults.

The session's broker (the ``kafka`` fixture, ``tests/conftest.py``); a small data set is loaded once; each
test runs :func:`bench.compare.harness.run_once` on ``tests/bench/plain_system.py``, a minimal
consume-transform-produce loop that can drop, duplicate or miscount records. A correct run must
be ``ok`` with a figure; every faulty one must be ``failed`` with no figure.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.compare.dataset import DatasetSpec, generate
from bench.compare.harness import Limits, RunPlan, run_once
from bench.compare.kafka_io import NO_RETENTION, create_topic, load_input
from bench.compare.systems import ProcessSpec, RunContext, System, runner_args
from bench.compare.verify import Verifier

pytestmark = [pytest.mark.timeout(120)]
PLAIN = Path(__file__).resolve().parent / "plain_system.py"


class PlainSystem(System):
    """``plain_system.py`` as a benchmark system, optionally with a fault."""

    family = "plain"

    def __init__(self, fault: str = "none") -> None:
        self.name = f"plain-{fault}"
        self.fault = fault

    def commands(self, ctx: RunContext) -> list[ProcessSpec]:
        argv = [sys.executable, str(PLAIN), *runner_args(ctx, 1, ctx.state_dir), "--fault", self.fault]
        return [ProcessSpec(argv, {"PYTHONPATH": str(Path(__file__).resolve().parents[2])})]


@pytest.fixture(scope="module")
def plan(kafka: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPlan]:
    from confluent_kafka.admin import AdminClient

    work = tmp_path_factory.mktemp("bench-harness")
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap, "log_level": 4})
    data = generate(DatasetSpec(records=3000, keys=200, partitions=2, base_ts=1_700_000_000_000))
    topic = kafka.unique_name("bench-input")
    create_topic(admin, topic, 2, NO_RETENTION)
    load_input(kafka.bootstrap, topic, data)
    plan = RunPlan(kafka.bootstrap, admin, Verifier(data), topic, 2, work / "runs",
                   Limits(startup_s=30, idle_s=3, run_s=60, settle_s=0.5, stop_s=10, drain_s=20),
                   [node.pid for node in kafka.nodes if node.pid])
    yield plan
    plan.admin = None
    del admin
    gc.collect()  # destroy the admin client (held in cycles by its futures) while the broker is up


def test_correct_system_is_measured(plan: RunPlan) -> None:
    result = run_once(PlainSystem(), "count", "exactly_once_v2", 1, plan, "plain-ok")
    assert result.ok, result.reason
    assert result.outputs == result.expected_outputs == 3000
    assert result.records_per_s and result.records_per_s > 0
    assert result.cpu_s is not None and result.peak_rss_mb and result.peak_rss_mb > 10
    assert result.verdict["ok"] and result.settings[0]["system"] == "plain"
    assert result.exit_codes == [0] and result.stop_clean
    counts = [n for _, n in result.output_timeline]
    assert counts == sorted(counts) and counts[-1] == 3000


@pytest.mark.parametrize("fault,guarantee,problem", [
    ("drop", "at_least_once", "missing"),
    ("duplicate", "exactly_once_v2", "duplicates"),
    ("miscount", "exactly_once_v2", "wrong"),
])
def test_faulty_system_fails(plan: RunPlan, fault: str, guarantee: str, problem: str) -> None:
    result = run_once(PlainSystem(fault), "count", guarantee, 1, plan, f"plain-{fault}")
    assert result.status == "failed"
    assert result.verdict[problem] > 0, result.verdict
    assert "output check failed" in result.reason or "stalled" in result.reason
