"""Loading and validating the scenario files of ``tests/conformance/scenarios/``.

A scenario is defined once, as JSON, and read by both harnesses (Java and Python), so the two
cannot drift. This module needs neither Java nor kstreams. The schema is described in
``tests/conformance/README.md``; :func:`validate` enforces it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIO_DIR = Path(__file__).parent / "scenarios"

#: Processor kinds of the shared vocabulary and the parameters each accepts.
KINDS: dict[str, frozenset[str]] = {
    "forward": frozenset(),
    "map_value": frozenset({"prefix"}),
    "filter": frozenset({"exclude"}),
    "route": frozenset({"by"}),
    "count": frozenset({"store"}),
    "metadata": frozenset(),
    "punctuate": frozenset({"schedules", "forward_input"}),
}
SCHEDULE_KEYS = frozenset({"interval_ms", "type", "cancel_after", "cancel_on_value", "schedule_on_value"})
PUNCTUATION_TYPES = frozenset({"STREAM_TIME", "WALL_CLOCK_TIME"})
TOPOLOGY_OPS: dict[str, frozenset[str]] = {
    "source": frozenset({"name", "topics"}),
    "processor": frozenset({"name", "kind", "parents", "params"}),
    "sink": frozenset({"name", "topic", "parents"}),
    "store": frozenset({"name", "processors"}),
    "connect": frozenset({"processor", "stores"}),
}
STEP_OPS: dict[str, frozenset[str]] = {
    "pipe": frozenset({"topic", "key", "value", "timestamp", "headers", "expect_error"}),
    "advance": frozenset({"ms", "expect_error"}),
    "read": frozenset({"topic"}),
}
SCENARIO_KEYS = frozenset(
    {"name", "description", "config", "initial_wall_clock_ms", "record_headers", "topology", "steps", "outputs"}
)

JsonDict = dict[str, Any]


class ScenarioError(ValueError):
    """A scenario file does not follow the schema."""


@dataclass(frozen=True)
class Scenario:
    """One parsed scenario file: its ``name`` (= file stem), ``path`` and raw JSON ``data``."""

    name: str
    path: Path
    data: JsonDict

    def expected_error(self) -> tuple[int, JsonDict] | None:
        """Return ``(step index, expect_error)`` of the step expected to fail, or None."""
        for index, step in enumerate(self.data["steps"]):
            if "expect_error" in step:
                return index, step["expect_error"]
        return None


def scenario_paths() -> list[Path]:
    """All scenario files, sorted by name."""
    return sorted(SCENARIO_DIR.glob("*.json"))


def load_scenarios() -> list[Scenario]:
    """Load and validate every scenario file; raises :class:`ScenarioError` on the first bad one."""
    scenarios = []
    for path in scenario_paths():
        data = json.loads(path.read_text(encoding="utf-8"))
        validate(data, path)
        scenarios.append(Scenario(data["name"], path, data))
    return scenarios


def _require(condition: bool, path: Path, message: str) -> None:
    if not condition:
        raise ScenarioError(f"{path.name}: {message}")


def _check_keys(obj: JsonDict, allowed: frozenset[str], path: Path, where: str) -> None:
    unknown = set(obj) - allowed - {"op"}
    _require(not unknown, path, f"{where}: unknown keys {sorted(unknown)}")


def validate(data: JsonDict, path: Path) -> None:
    """Check ``data`` against the scenario schema; raises :class:`ScenarioError` naming the problem."""
    _check_keys(data, SCENARIO_KEYS, path, "scenario")
    _require(data.get("name") == path.stem, path, "'name' must equal the file name without .json")
    _require(isinstance(data.get("description"), str), path, "'description' is required")
    nodes: dict[str, str] = {}
    stores: set[str] = set()
    for i, op in enumerate(data.get("topology", [])):
        kind = op.get("op")
        where = f"topology[{i}]"
        _require(kind in TOPOLOGY_OPS, path, f"{where}: unknown op {kind!r}")
        _check_keys(op, TOPOLOGY_OPS[kind], path, where)
        if kind in ("source", "processor", "sink"):
            _require(op["name"] not in nodes, path, f"{where}: duplicate node {op['name']!r}")
            for parent in op.get("parents", []):
                _require(nodes.get(parent) in ("source", "processor"), path, f"{where}: bad parent {parent!r}")
            nodes[op["name"]] = kind
        if kind == "source":
            _require(bool(op["topics"]), path, f"{where}: a source needs topics")
        elif kind == "processor":
            _validate_processor(op, path, where)
        elif kind == "store":
            stores.add(op["name"])
            for proc in op["processors"]:
                _require(nodes.get(proc) == "processor", path, f"{where}: unknown processor {proc!r}")
        elif kind == "connect":
            _require(nodes.get(op["processor"]) == "processor", path, f"{where}: unknown processor")
            _require(set(op["stores"]) <= stores, path, f"{where}: unknown store in {op['stores']}")
    expected_errors = 0
    for i, step in enumerate(data.get("steps", [])):
        kind = step.get("op")
        where = f"steps[{i}]"
        _require(kind in STEP_OPS, path, f"{where}: unknown op {kind!r}")
        _check_keys(step, STEP_OPS[kind], path, where)
        if "expect_error" in step:
            expected_errors += 1
            _require("message_contains" in step["expect_error"], path, f"{where}: expect_error needs message_contains")
    _require(expected_errors <= 1, path, "at most one step may expect an error")
    _require(isinstance(data.get("outputs", []), list), path, "'outputs' must be a list of topics")


def _validate_processor(op: JsonDict, path: Path, where: str) -> None:
    kind = op["kind"]
    _require(kind in KINDS, path, f"{where}: unknown processor kind {kind!r}")
    params = op.get("params", {})
    unknown = set(params) - KINDS[kind]
    _require(not unknown, path, f"{where}: unknown params {sorted(unknown)} for kind {kind!r}")
    _require(bool(op["parents"]), path, f"{where}: a processor needs parents")
    for schedule in params.get("schedules", []):
        _require(set(schedule) <= SCHEDULE_KEYS, path, f"{where}: unknown schedule keys")
        _require(schedule.get("type") in PUNCTUATION_TYPES, path, f"{where}: bad punctuation type")
        _require(int(schedule.get("interval_ms", 0)) >= 1, path, f"{where}: interval_ms must be >= 1")
