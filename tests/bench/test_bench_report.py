"""Summaries, ratios and the table: a failed run never shows up as a figure (no broker)."""

from __future__ import annotations

import json

import pytest

from bench.compare import report
from bench.compare.harness import RunResult


def _run(system: str, rate: float | None, ok: bool = True, workload: str = "count",
         guarantee: str = "exactly_once_v2", run: int = 1) -> RunResult:
    return RunResult(system, workload, guarantee, run, "ok" if ok else "failed",
                     reason="" if ok else "output check failed: 3 missing", records=1000,
                     records_per_s=rate, cpu_s_per_million=10.0, peak_rss_mb=100.0)


def test_medians_ratios_and_failures() -> None:
    results = [
        _run("java", 100.0, run=1), _run("java", 300.0, run=2), _run("java", 200.0, run=3),
        _run("kstreams", 150.0, run=1), _run("kstreams", 50.0, run=2), _run("kstreams", 100.0, run=3),
        _run("quixstreams", 500.0, run=1), _run("quixstreams", 10.0, ok=False, run=2),
    ]
    cells = report.summarize(results, ["count"], ["exactly_once_v2"], ["kstreams", "java", "quixstreams"], {})
    by = {c["system"]: c for c in cells}
    assert by["java"]["records_per_s"] == 200.0 and by["java"]["ratio_to_java"] == 1.0
    assert by["kstreams"]["records_per_s"] == 100.0 and by["kstreams"]["ratio_to_java"] == 0.5
    assert by["quixstreams"]["status"] == "failed"
    assert by["quixstreams"]["records_per_s"] is None and by["quixstreams"]["ratio_to_java"] is None
    ratios = report.ratios(cells)
    assert ratios["count"]["exactly_once_v2"]["kstreams/java"] == 0.5
    assert ratios["count"]["exactly_once_v2"]["kstreams/quixstreams"] is None
    text = report.table(cells)
    assert "FAILED" in text and "3 missing" in text and "500" not in text
    json.dumps({"summary": cells, "ratios": ratios})


def test_unavailable_system() -> None:
    cells = report.summarize([_run("java", 100.0)], ["count"], ["exactly_once_v2"], ["kstreams", "java"],
                             {"kstreams": "kstreams has no KafkaStreams (yet)"})
    assert cells[0]["status"] == "unavailable"
    assert report.ratios(cells)["count"]["exactly_once_v2"]["kstreams/java"] is None
    assert "not available" in report.table(cells)


def test_steady_rate_skips_warm_up_and_tail() -> None:
    from bench.compare.harness import steady_rate

    # 1000 outputs for 1000 inputs: slow for 5 s (warm-up), then 100/s
    timeline = [(float(t), 10 * t) for t in range(6)] + [(5.0 + t, 50 + 100 * t) for t in range(1, 10)]
    assert steady_rate(timeline, 1000, 1000) == pytest.approx(100.0)
    # window-like output (half as many outputs as inputs) gives the input rate
    assert steady_rate([(t / 10, 25 * t) for t in range(21)], 500, 1000) == pytest.approx(500.0)  # 1000 in 2 s
    assert steady_rate([(0.0, 0), (1.0, 1000)], 1000, 1000) is not None
    assert steady_rate([(0.0, 0), (1.0, 100)], 1000, 1000) is None  # never reached 80 %
    assert steady_rate([], 1000, 1000) is None
