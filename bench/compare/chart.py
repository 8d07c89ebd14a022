"""Bar chart of a comparison's results (records/s per workload, system and guarantee).

Runs in the plotting venv (``bench/.venvs/plot``, matplotlib), never in the project's::

    bench/.venvs/plot/bin/python -m bench.compare.chart RESULTS.json CHART.png

Cells that failed the output check are marked FAILED at the foot of their bar slot; systems that
were not available are left out.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def render(results: dict[str, Any], out: Path) -> None:
    """Write the chart of ``results`` (a results file's content) to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = results["summary"]
    workloads = list(dict.fromkeys(c["workload"] for c in cells))
    guarantees = list(dict.fromkeys(c["guarantee"] for c in cells))
    systems = [s for s in dict.fromkeys(c["system"] for c in cells)
               if any(c["system"] == s and c["status"] in ("ok", "failed") for c in cells)]
    by_key = {(c["workload"], c["guarantee"], c["system"]): c for c in cells}
    fig, axes = plt.subplots(1, len(guarantees), figsize=(6.5 * len(guarantees), 4.8), squeeze=False, sharey=True)
    width = 0.8 / max(1, len(systems))
    colors = plt.get_cmap("tab10").colors
    for ax, guarantee in zip(axes[0], guarantees, strict=True):
        for j, system in enumerate(systems):
            xs, heights = [], []
            for i, workload in enumerate(workloads):
                cell = by_key.get((workload, guarantee, system))
                x = i - 0.4 + width * (j + 0.5)
                if cell is None:
                    continue
                if cell["status"] == "ok":
                    xs.append(x)
                    heights.append(cell["records_per_s"])
                elif cell["status"] == "failed":
                    ax.text(x, 0, "FAILED", rotation=90, ha="center", va="bottom", fontsize=7, color="red")
            bars = ax.bar(xs, heights, width, label=system, color=colors[j % len(colors)])
            for bar, height in zip(bars, heights, strict=True):
                ax.text(bar.get_x() + bar.get_width() / 2, height, f"{height / 1000:.0f}k", ha="center",
                        va="bottom", fontsize=7)
        ax.set_title(guarantee)
        ax.set_xticks(range(len(workloads)), workloads)
        ax.set_ylabel("records/s (median)")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    data = results.get("dataset", {})
    spec = data.get("spec", {})
    fig.suptitle(f"Kafka->Kafka: {_num(data.get('records'))} records, {_num(spec.get('keys'))} keys, "
                 f"{_num(spec.get('partitions'))} partitions; median of {_num(results.get('runs_per_cell'))} "
                 "run(s) per bar", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m bench.compare.chart RESULTS.json CHART.png", file=sys.stderr)
        return 64
    render(json.loads(Path(args[0]).read_text()), Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
