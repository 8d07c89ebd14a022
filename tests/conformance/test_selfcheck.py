"""Self-checks of the conformance harnesses that need Java but not kstreams.

They pin the Java harness to facts documented for Kafka Streams (so a broken harness is not
mistaken for a kstreams bug) and check the scenarios and the comparison itself.
"""

from __future__ import annotations

import copy

import pytest

from . import java_harness
from .conftest import JavaResults
from .scenarios import load_scenarios
from .test_conformance import compare

SCENARIOS = {s.name: s for s in load_scenarios()}

# The first test may pay for the session fixture: a Maven build that may download Kafka's jars.
pytestmark = pytest.mark.timeout(java_harness.BUILD_TIMEOUT_S + java_harness.RUN_TIMEOUT_S)


def test_scenarios_are_valid_and_cover_the_brief() -> None:
    """Every file follows the schema, and the required kinds of scenario are present."""
    problems = {name: s.problem for name, s in SCENARIOS.items() if s.problem is not None}
    assert not problems
    kinds = {op["kind"] for s in SCENARIOS.values() for op in s.data.get("topology", []) if op["op"] == "processor"}
    assert kinds == {"forward", "map_value", "filter", "route", "count", "metadata", "punctuate"}
    assert len(SCENARIOS) >= 20


def test_java_build_is_cached(java_results: JavaResults) -> None:
    """After the session fixture ran, the jar is up to date (the next run skips Maven)."""
    assert java_results.error is None, java_results.error
    assert not java_harness.is_stale()


def test_java_matches_documented_stream_time_example(java_results: JavaResults) -> None:
    """Kafka Streams docs/source: 10 s STREAM_TIME schedule, records at 1,5,12,37,38,41 s -> 4 punctuations."""
    out = java_results.get("stream_time_punctuation_jumps")["outputs"]["out"]
    punctuations = [ts for key, _value, ts in out if key == "ticker"]
    assert punctuations == [1000, 12000, 37000, 41000]


def test_java_errors_are_exactly_the_expected_ones(java_results: JavaResults) -> None:
    """Java fails where (and only where) a scenario expects it, with the expected message."""
    for name, scenario in SCENARIOS.items():
        if scenario.problem is not None:
            continue  # reported by test_scenarios_are_valid_and_cover_the_brief
        error = java_results.get(name)["error"]
        expected = scenario.expected_error()
        if expected is None:
            assert error is None, f"{name}: unexpected Java error {error}"
            continue
        text = expected.get("java_message_contains", expected["message_contains"])
        assert error is not None, f"{name}: Java did not fail"
        assert (error["phase"], error["index"]) == (expected["phase"], expected["index"]), f"{name}: {error}"
        texts = [text] if isinstance(text, str) else text
        assert any(all(t in (m or "") for t in texts) for _, m in error["chain"]), f"{name}: {error['chain']}"


def test_compare_reports_each_kind_of_difference(java_results: JavaResults) -> None:
    """The comparison flags describe text, records and missing errors; equal documents pass."""
    scenario = SCENARIOS["route_unknown_child"]
    java = java_results.get(scenario.name)
    assert compare(scenario, java, copy.deepcopy(java)) == []  # the Java chain names 'nowhere' too
    python = copy.deepcopy(java)
    python["describe"] += " "
    python["outputs"]["out"][0][2] += 1
    python["error"] = None
    problems = compare(scenario, java, python)
    assert len(problems) == 3
    assert problems[0].startswith("describe() differs")
    assert "final output of topic 'out'" in problems[1]
    assert "kstreams did not fail" in problems[2]
