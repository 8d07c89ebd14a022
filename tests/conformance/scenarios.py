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
    "pipe": frozenset({"topic", "key", "value", "timestamp", "headers"}),
    "advance": frozenset({"ms"}),
    "read": frozenset({"topic"}),
}
#: Where an expected error happens: building the topology, constructing the driver, or a step.
ERROR_PHASES = frozenset({"topology", "driver", "steps"})
EXPECT_ERROR_KEYS = frozenset({"phase", "index", "message_contains", "java_message_contains", "kstreams_error"})
SCENARIO_KEYS = frozenset(
    {
        "name",
        "description",
        "config",
        "initial_wall_clock_ms",
        "record_headers",
        "topology",
        "steps",
        "outputs",
        "expect_error",
    }
)

JsonDict = dict[str, Any]


class ScenarioError(ValueError):
    """A scenario file does not follow the schema."""


@dataclass(frozen=True)
class Scenario:
    """One scenario file: its ``name`` (= file stem), ``path`` and raw JSON ``data``.

    ``problem`` is set (and ``data`` may be empty) if the file is not valid JSON or breaks the
    schema; the scenario's test then fails with that message instead of breaking collection.
    """

    name: str
    path: Path
    data: JsonDict
    problem: str | None = None

    def expected_error(self) -> JsonDict | None:
        """Return the scenario's ``expect_error`` (``phase``, ``index``, ``message_contains``...), or None."""
        return self.data.get("expect_error")


def scenario_paths() -> list[Path]:
    """All scenario files, sorted by name."""
    return sorted(SCENARIO_DIR.glob("*.json"))


def load_scenario(path: Path) -> Scenario:
    """Load and validate one scenario file (a bad file gives a scenario with ``problem`` set)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        validate(data, path)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ScenarioError is a ValueError
        return Scenario(path.stem, path, {}, problem=f"{type(exc).__name__}: {exc}")
    return Scenario(data["name"], path, data)


def load_scenarios() -> list[Scenario]:
    """Load and validate every scenario file, sorted by name."""
    return [load_scenario(path) for path in scenario_paths()]


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
    expected = data.get("expect_error")
    if expected is not None:
        _check_keys(expected, EXPECT_ERROR_KEYS, path, "expect_error")
        _require(expected.get("phase") in ERROR_PHASES, path, f"expect_error: phase must be one of {ERROR_PHASES}")
        _require(isinstance(expected.get("index"), int), path, "expect_error: 'index' (int) is required")
        contains = expected.get("message_contains")
        _require(
            isinstance(contains, str) or (isinstance(contains, list) and all(isinstance(t, str) for t in contains)),
            path,
            "expect_error: 'message_contains' (a string or a list of strings) is required",
        )
    failing_op = expected["index"] if expected is not None and expected["phase"] == "topology" else None
    nodes: dict[str, str] = {}
    stores: set[str] = set()
    for i, op in enumerate(data.get("topology", [])):
        if i == failing_op:
            _require(op.get("op") in TOPOLOGY_OPS, path, f"topology[{i}]: unknown op")
            break  # the op expected to fail may be invalid on purpose; nothing after it runs
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
    for i, step in enumerate(data.get("steps", [])):
        kind = step.get("op")
        where = f"steps[{i}]"
        _require(kind in STEP_OPS, path, f"{where}: unknown op {kind!r}")
        _check_keys(step, STEP_OPS[kind], path, where)
    _require(isinstance(data.get("outputs", []), list), path, "'outputs' must be a list of topics")


def _validate_processor(op: JsonDict, path: Path, where: str) -> None:
    kind = op["kind"]
    _require(kind in KINDS, path, f"{where}: unknown processor kind {kind!r}")
    params = op.get("params", {})
    unknown = set(params) - KINDS[kind]
    _require(not unknown, path, f"{where}: unknown params {sorted(unknown)} for kind {kind!r}")
    for schedule in params.get("schedules", []):
        _require(set(schedule) <= SCHEDULE_KEYS, path, f"{where}: unknown schedule keys")
        _require(schedule.get("type") in PUNCTUATION_TYPES, path, f"{where}: bad punctuation type")
        _require(isinstance(schedule.get("interval_ms"), int), path, f"{where}: interval_ms (int) is required")
