"""kstreams against Java Kafka Streams 4.4.0, scenario for scenario.

Each scenario of ``scenarios/`` is run by the Java harness (Kafka Streams' TopologyTestDriver,
once per session, see ``conftest.py``) and by :mod:`.python_harness` (kstreams'
TopologyTestDriver); this test compares ``describe()`` text byte for byte, the records read
from every output topic (key, value, timestamp, and headers where the scenario asks), and where
it fails (topology op, driver construction or step) when ``expect_error`` says it must.

Known, deliberate difference not exercised here: Java's driver runs all sub-topologies in one
task ``0_0`` (sharing stream time), kstreams' driver makes one task per sub-topology and
partition like the real runtime; scenarios avoid output that depends on it.
"""

from __future__ import annotations

import difflib
from typing import Any

import pytest

from . import java_harness
from .conftest import JavaResults
from .scenarios import Scenario, load_scenarios

SCENARIOS = load_scenarios()

# The first test also pays for the session fixture: a Maven build that may download Kafka's jars.
pytestmark = pytest.mark.timeout(java_harness.BUILD_TIMEOUT_S + java_harness.RUN_TIMEOUT_S)


def _describe_diff(java: str, python: str) -> str:
    diff = difflib.unified_diff(
        java.splitlines(keepends=True), python.splitlines(keepends=True), "java", "kstreams", lineterm=""
    )
    return "".join(f"{line!r}\n" for line in diff)


def _records_diff(label: str, java: list[Any], python: list[Any]) -> str:
    lines = [f"{label}: records differ"]
    for i in range(max(len(java), len(python))):
        j = java[i] if i < len(java) else "<missing>"
        p = python[i] if i < len(python) else "<missing>"
        mark = "  " if j == p else "!="
        lines.append(f"  {mark} [{i}] java={j} kstreams={p}")
    return "\n".join(lines)


def _compare_records(label: str, java: dict[Any, Any], python: dict[Any, Any], key: Any) -> list[str]:
    """Compare one read (or final output) present in the ``java`` and/or ``python`` mapping."""
    if key not in python or key not in java:
        side = "Java" if key in java else "kstreams"
        return [f"{label}: only {side} got there (the other side stopped earlier)"]
    if java[key] != python[key]:
        return [_records_diff(label, java[key], python[key])]
    return []


def _chain_contains(chain: list[list[str]], text: str | list[str]) -> bool:
    """True if one message of the chain contains ``text`` (or every string of a list ``text``)."""
    texts = [text] if isinstance(text, str) else text
    return any(all(t in (message or "") for t in texts) for _, message in chain)


def _where(error: dict[str, Any]) -> str:
    return f"{error['phase']}[{error['index']}]"


def compare(scenario: Scenario, java: dict[str, Any], python: dict[str, Any]) -> list[str]:
    """Return a description of every difference between the Java and the kstreams observations."""
    problems: list[str] = []
    java_describe, python_describe = java["describe"], python["describe"]
    if java_describe != python_describe:
        if java_describe is None or python_describe is None:  # one side failed to build the topology
            problems.append(f"describe(): java={java_describe!r} kstreams={python_describe!r}")
        else:
            diff = _describe_diff(java_describe, python_describe)
            problems.append("describe() differs (- java, + kstreams):\n" + diff)

    java_reads = {(r["step"], r["topic"]): r["records"] for r in java["reads"]}
    python_reads = {(r["step"], r["topic"]): r["records"] for r in python["reads"]}
    for key in sorted(set(java_reads) | set(python_reads)):
        problems += _compare_records(f"read at step {key[0]} of topic {key[1]!r}", java_reads, python_reads, key)
    for topic in scenario.data.get("outputs", []):
        problems += _compare_records(f"final output of topic {topic!r}", java["outputs"], python["outputs"], topic)

    expected = scenario.expected_error()
    java_error, python_error = java["error"], python["error"]
    if expected is None:
        if java_error is not None:
            problems.append(f"Java failed unexpectedly: {_where(java_error)} {java_error['chain']}")
        if python_error is not None:
            problems.append(f"kstreams failed unexpectedly: {_where(python_error)} {python_error['chain']}")
        return problems
    where = _where(expected)
    java_text = expected.get("java_message_contains", expected["message_contains"])
    if java_error is None or _where(java_error) != where or not _chain_contains(java_error["chain"], java_text):
        problems.append(f"scenario/harness fault: Java should fail at {where} with {java_text!r}, got {java_error}")
    if python_error is None:
        problems.append(f"kstreams did not fail at {where} (Java: {java_error and java_error['chain']})")
        return problems
    kind = expected.get("kstreams_error")
    if (
        _where(python_error) != where
        or not _chain_contains(python_error["chain"], expected["message_contains"])
        or (kind is not None and not any(kind in classes for classes in python_error.get("mro", [])))
    ):
        wanted = f"a message containing {expected['message_contains']!r}" + (f" and a {kind}" if kind else "")
        problems.append(
            f"kstreams should fail at {where} with {wanted}, got {_where(python_error)}: {python_error['chain']}"
        )
    return problems


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_conformance(scenario: Scenario, java_results: JavaResults) -> None:
    """kstreams observes exactly what Java Kafka Streams observes for this scenario."""
    if scenario.problem is not None:
        pytest.fail(f"bad scenario file {scenario.path.name}: {scenario.problem}", pytrace=False)
    java = java_results.get(scenario.name)
    from .python_harness import run_scenario  # imported here so a missing kstreams fails only these tests

    python = run_scenario(scenario)
    problems = compare(scenario, java, python)
    if problems:
        pytest.fail(f"{scenario.name}: {scenario.data['description']}\n\n" + "\n\n".join(problems), pytrace=False)
