"""kstreams against Java Kafka Streams 4.4.0, scenario for scenario.

Each scenario of ``scenarios/`` is run by the Java harness (Kafka Streams' TopologyTestDriver,
once per session, see ``conftest.py``) and by :mod:`.python_harness` (kstreams'
TopologyTestDriver); this test compares ``describe()`` text byte for byte, the records read
from every output topic (key, value, timestamp, and headers where the scenario asks), and the
step that fails, if any.

Known, deliberate difference not exercised here: Java's driver runs all sub-topologies in one
task ``0_0`` (sharing stream time), kstreams' driver makes one task per sub-topology and
partition like the real runtime; scenarios avoid output that depends on it.
"""

from __future__ import annotations

import difflib
from typing import Any

import pytest

from .conftest import JavaResults
from .scenarios import Scenario, load_scenarios

SCENARIOS = load_scenarios()


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


def _chain_contains(chain: list[list[str]], text: str) -> bool:
    return any(text in (message or "") for _, message in chain)


def compare(scenario: Scenario, java: dict[str, Any], python: dict[str, Any]) -> list[str]:
    """Return a description of every difference between the Java and the kstreams observations."""
    problems: list[str] = []
    if java["describe"] != python["describe"]:
        diff = _describe_diff(java["describe"], python["describe"])
        problems.append("describe() differs (- java, + kstreams):\n" + diff)

    java_reads = {(r["step"], r["topic"]): r["records"] for r in java["reads"]}
    python_reads = {(r["step"], r["topic"]): r["records"] for r in python["reads"]}
    for key in sorted(set(java_reads) | set(python_reads)):
        j, p = java_reads.get(key), python_reads.get(key)
        if j != p:
            problems.append(_records_diff(f"read at step {key[0]} of topic {key[1]!r}", j or [], p or []))
    for topic in scenario.data.get("outputs", []):
        j, p = java["outputs"].get(topic), python["outputs"].get(topic)
        if j != p:
            problems.append(_records_diff(f"final output of topic {topic!r}", j or [], p or []))

    expected = scenario.expected_error()
    java_error, python_error = java["error"], python["error"]
    if expected is None:
        if java_error is not None:
            problems.append(f"Java failed unexpectedly at step {java_error['step']}: {java_error['chain']}")
        if python_error is not None:
            problems.append(f"kstreams failed unexpectedly at step {python_error['step']}: {python_error['chain']}")
        return problems
    step, expectation = expected
    java_text = expectation.get("java_message_contains", expectation["message_contains"])
    if java_error is None or java_error["step"] != step or not _chain_contains(java_error["chain"], java_text):
        problems.append(f"scenario/harness fault: Java should fail at step {step} with {java_text!r}, got {java_error}")
    if python_error is None:
        problems.append(f"kstreams did not fail at step {step} (Java: {java_error and java_error['chain']})")
    elif python_error["step"] != step or not _chain_contains(python_error["chain"], expectation["message_contains"]):
        problems.append(
            f"kstreams should fail at step {step} with a message containing {expectation['message_contains']!r}, "
            f"got step {python_error['step']}: {python_error['chain']}"
        )
    return problems


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_conformance(scenario: Scenario, java_results: JavaResults) -> None:
    """kstreams observes exactly what Java Kafka Streams observes for this scenario."""
    java = java_results.get(scenario.name)
    from .python_harness import run_scenario  # imported here so a missing kstreams fails only these tests

    python = run_scenario(scenario)
    problems = compare(scenario, java, python)
    if problems:
        pytest.fail(f"{scenario.name}: {scenario.data['description']}\n\n" + "\n\n".join(problems), pytrace=False)
