"""Summaries of the runs: one cell per workload, guarantee and system; the ratios; the table.

A cell has a figure only if every one of its runs passed the output check: a system that lost,
duplicated (under exactly-once) or botched records in any run is shown as FAILED, never as a
number. ``records_per_s`` and ``cpu_s_per_million`` are medians over the runs, ``peak_rss_mb``
the largest peak.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from bench.compare.harness import RunResult

BASELINE = "java"
RATIOS = (("kstreams/java", "kstreams", "java"),
          ("kstreams/quixstreams", "kstreams", "quixstreams"),
          ("kstreams-2p/java-2t", "kstreams-2p", "java-2t"))
"""``(label, numerator system, denominator system)`` of the ``ratios`` map (records/s over records/s)."""


def summarize(results: Sequence[RunResult], workloads: Sequence[str], guarantees: Sequence[str],
              systems: Sequence[str], unavailable: dict[str, str],
              unsupported: Iterable[tuple[str, str, str]] = ()) -> list[dict[str, Any]]:
    """One cell per (workload, guarantee, system), in that order."""
    skipped = set(unsupported)
    cells: list[dict[str, Any]] = []
    for workload in workloads:
        for guarantee in guarantees:
            row: list[dict[str, Any]] = []
            for system in systems:
                runs = [r for r in results if (r.workload, r.guarantee, r.system) == (workload, guarantee, system)]
                cell: dict[str, Any] = {"workload": workload, "guarantee": guarantee, "system": system,
                                        "runs": len(runs), "ok_runs": sum(r.ok for r in runs),
                                        "records_per_s": None, "steady_records_per_s": None,
                                        "cpu_s_per_million": None, "peak_rss_mb": None,
                                        "ratio_to_java": None, "reason": ""}
                if system in unavailable:
                    cell.update(status="unavailable", reason=unavailable[system])
                elif (workload, guarantee, system) in skipped:
                    cell.update(status="unsupported", reason=f"{system} cannot express {workload}/{guarantee}")
                elif not runs:
                    cell.update(status="not run")
                elif all(r.ok for r in runs):
                    cell.update(
                        status="ok",
                        records_per_s=round(statistics.median(_vals(runs, "records_per_s")), 1),
                        steady_records_per_s=_median_or_none(_vals(runs, "steady_records_per_s")),
                        cpu_s_per_million=_median_or_none(_vals(runs, "cpu_s_per_million")),
                        peak_rss_mb=max(_vals(runs, "peak_rss_mb"), default=None),
                    )
                else:
                    failed = [r for r in runs if not r.ok]
                    cell.update(status="failed", reason=failed[0].reason)
                row.append(cell)
            base = next((c for c in row if c["system"] == BASELINE and c["records_per_s"]), None)
            for cell in row:
                if base is not None and cell["records_per_s"] is not None:
                    cell["ratio_to_java"] = round(cell["records_per_s"] / base["records_per_s"], 3)
            cells.extend(row)
    return cells


def ratios(cells: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    """``ratios[workload][guarantee][label]``: records/s of one system over another's (None if either failed)."""
    rate = {(c["workload"], c["guarantee"], c["system"]): c["records_per_s"] for c in cells}
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for workload, guarantee in dict.fromkeys((c["workload"], c["guarantee"]) for c in cells):
        entry: dict[str, float | None] = {}
        for label, top, bottom in RATIOS:
            a = rate.get((workload, guarantee, top))
            b = rate.get((workload, guarantee, bottom))
            entry[label] = round(a / b, 3) if a and b else None
        out.setdefault(workload, {})[guarantee] = entry
    return out


def table(cells: Sequence[dict[str, Any]]) -> str:
    """The summary as a plain-text table."""
    header = ("workload", "guarantee", "system", "records/s", "vs java", "CPU s/M rec", "peak RSS MB", "runs",
              "mid-run rec/s")
    rows = [header]
    for c in cells:
        if c["status"] == "ok":
            rate = f"{c['records_per_s']:,.0f}"
            ratio = f"{c['ratio_to_java']:.2f}x" if c["ratio_to_java"] is not None else "-"
            cpu = f"{c['cpu_s_per_million']:.1f}" if c["cpu_s_per_million"] is not None else "-"
            rss = f"{c['peak_rss_mb']:.0f}" if c["peak_rss_mb"] is not None else "-"
            steady = f"{c['steady_records_per_s']:,.0f}" if c["steady_records_per_s"] else "-"
        else:
            rate = {"failed": "FAILED", "unavailable": "n/a", "unsupported": "n/a"}.get(c["status"], c["status"])
            ratio = cpu = rss = steady = "-"
        runs = f"{c['ok_runs']}/{c['runs']}" if c["runs"] else "-"
        rows.append((c["workload"], c["guarantee"], c["system"], rate, ratio, cpu, rss, runs, steady))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {3, 4, 5, 6, 7, 8}
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                               for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"{c['system']} {c['workload']}/{c['guarantee']}: {c['reason']}" for c in cells
             if c["status"] == "failed"]
    missing = sorted({f"{c['system']}: {c['reason']}" for c in cells if c["status"] == "unavailable"})
    if notes:
        lines += ["", "failed:"] + [f"  {n}" for n in notes]
    if missing:
        lines += ["", "not available:"] + [f"  {m}" for m in missing]
    return "\n".join(lines)


def _vals(runs: Sequence[RunResult], name: str) -> list[float]:
    return [v for r in runs if (v := getattr(r, name)) is not None]


def _median_or_none(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None
