"""``python -m bench restore`` on a real broker: a changelog written, restored, counted."""

from __future__ import annotations

from typing import Any

import pytest

from bench.compare.systems import MAVEN_TIMEOUT
from bench.restore import report, run_once, summarize

pytestmark = [pytest.mark.timeout(120)]


def test_a_restore_over_two_partitions_counts_every_record(kafka: Any) -> None:
    # run_once raises unless both partitions' restores end and their totals add up to 5,000
    result = run_once(kafka.bootstrap, 5_000, 2, timeout=60)
    assert result["records"] == 5_000 and result["partitions"] == 2 and result["seconds"] > 0


@pytest.mark.timeout(MAVEN_TIMEOUT + 120)  # the first use builds bench/java with Maven
def test_java_kafka_streams_restores_every_record_over_two_partitions(kafka: Any) -> None:
    result = run_once(kafka.bootstrap, 5_000, 2, timeout=60, system="java")
    assert result["system"] == "java" and result["restored"] == 5_000 and result["seconds"] > 0


def _run(system: str, rate: float) -> dict[str, Any]:
    return {"system": system, "records": 1000, "partitions": 1, "restored": 1000, "seconds": 1000 / rate,
            "records_per_s": rate}


def test_kstreams_figures_stay_at_the_top_and_java_adds_its_own_and_the_ratios() -> None:
    summary = summarize(1000, 1, {"kstreams": [_run("kstreams", 100.0), _run("kstreams", 300.0),
                                               _run("kstreams", 200.0)],
                                  "java": [_run("java", 400.0), _run("java", 200.0), _run("java", 800.0)]})
    assert summary["systems"] == ["kstreams", "java"] and len(summary["runs"]) == 3
    assert (summary["median_records_per_s"], summary["min_records_per_s"], summary["max_records_per_s"]) == (
        200.0, 100.0, 300.0)
    assert summary["java"]["median_records_per_s"] == 400.0 and len(summary["java"]["runs"]) == 3
    ratio = summary["kstreams_over_java"]
    assert ratio["ratio_of_medians"] == 0.5 and ratio["pair_ratios"] == [0.25, 1.5, 0.25]
    assert ratio["median_of_pair_ratios"] == 0.25
    assert "kstreams/java: 0.50" in report(summary)


def test_kstreams_alone_reports_no_java_figures() -> None:
    summary = summarize(1000, 1, {"kstreams": [_run("kstreams", 100.0)]})
    assert summary["median_records_per_s"] == 100.0 and "java" not in summary and "kstreams_over_java" not in summary
