"""``bench compare`` warms the broker up with unrecorded runs before the measured ones."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bench.compare import cli, harness


class _System:
    def __init__(self, name: str) -> None:
        self.name = name

    def supports(self, workload: str, guarantee: str) -> bool:
        return not (workload == "window" and guarantee == "exactly_once_v2")


@pytest.mark.parametrize("warmup", [0, 1, 2])
def test_warmup_runs_come_first_and_are_not_recorded(monkeypatch: pytest.MonkeyPatch, warmup: int) -> None:
    calls: list[tuple[str, str, str, int, str]] = []

    def run_once(system: Any, workload: str, guarantee: str, run: int, plan: Any, app_id: str) -> Any:
        calls.append((system.name, workload, guarantee, run, app_id))
        return SimpleNamespace(ok=True, records_per_s=1.0, cpu_s_per_million=1.0, peak_rss_mb=1.0, seconds=1.0,
                               app_id=app_id)

    monkeypatch.setattr(harness, "run_once", run_once)
    registry = {"a": _System("a"), "b": _System("b")}
    results = cli._run_all(None, registry, ["a", "b"], ["count", "window"],  # type: ignore[arg-type]
                           ["at_least_once", "exactly_once_v2"], 2, "tok", warmup)
    warm = calls[:len(calls) - len(results)]
    # warm-up: the first system, every cell it supports, `warmup` times, run number 0
    assert [(c[0], c[1], c[2], c[3]) for c in warm] == [
        ("a", "count", "at_least_once", 0), ("a", "count", "exactly_once_v2", 0),
        ("a", "window", "at_least_once", 0)] * warmup
    assert all("-w" in c[4] for c in warm)
    # the measured runs are all recorded, none of them a warm-up
    assert len(results) == 2 * 2 * 3 and all(r.app_id not in {c[4] for c in warm} for r in results)
    assert all(c[3] >= 1 for c in calls[len(warm):])
