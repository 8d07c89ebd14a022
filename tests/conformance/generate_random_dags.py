"""Generate the ``scenarios/random_dag_*.json`` files (run by hand; the files are committed).

Each is a random topology (fixed seed, so re-running reproduces the same files): sources with
one to three topics, ``map_value`` processors with one or two parents (so diamonds and fan-in
occur), sinks, and stores connected to one or two processors (which joins sub-topologies).
Node names mix cases, digits and lengths, and nodes are added in random order, so describe()'s
ordering rules (sub-tree size, then Java String order; HashSet order of topics and stores) are
exercised on shapes nobody picked by hand. Two records are piped into every source topic and
every sink topic is read: each processor prefixes its name, so the output shows the
depth-first, connection-ordered forwarding along every path.

    .venv/bin/python -m tests.conformance.generate_random_dags
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SCENARIO_DIR = Path(__file__).parent / "scenarios"
COUNT = 8
SEED = 20260425
MAX_OUTPUT_RECORDS = 300
SYLLABLES = ["a", "B", "c", "Da", "e", "F", "go", "H", "ix", "J", "k9", "L", "m-", "N", "o", "P.", "q", "R", "s_", "T"]


def _name(rng: random.Random, used: set[str]) -> str:
    while True:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
        if name not in used:
            used.add(name)
            return name


def _paths(topology: list[dict[str, Any]]) -> int:
    """Number of records that reach sinks per input record, summed over all source topics."""
    parents: dict[str, list[str]] = {}
    paths: dict[str, int] = {}
    total = 0
    for op in topology:
        if op["op"] == "source":
            paths[op["name"]] = len(op["topics"])
        elif op["op"] in ("processor", "sink"):
            parents[op["name"]] = op["parents"]
            paths[op["name"]] = sum(paths[p] for p in op["parents"])
            if op["op"] == "sink":
                total += paths[op["name"]]
    return total


def generate(index: int, rng: random.Random) -> dict[str, Any]:
    """One random scenario."""
    used: set[str] = set()
    topology: list[dict[str, Any]] = []
    sources: list[str] = []
    processors: list[str] = []
    topics: list[str] = []
    sinks: list[str] = []
    stores: list[str] = []
    for _ in range(rng.randint(14, 26)):
        roll = rng.random()
        if not sources or roll < 0.1:
            name = _name(rng, used)
            own = [f"in-{name}-{i}" for i in range(rng.choice([1, 1, 2, 3]))]
            topics.extend(own)
            sources.append(name)
            topology.append({"op": "source", "name": name, "topics": own})
        elif roll < 0.7:
            name = _name(rng, used)
            parents = rng.sample(sources + processors, k=min(len(sources + processors), rng.choice([1, 1, 1, 2])))
            processors.append(name)
            topology.append(
                {
                    "op": "processor",
                    "name": name,
                    "kind": "map_value",
                    "parents": parents,
                    "params": {"prefix": name + "/"},
                }
            )
        elif roll < 0.85:
            name = _name(rng, used)
            parents = rng.sample(sources + processors, k=min(len(sources + processors), rng.choice([1, 1, 2])))
            sinks.append(name)
            topology.append({"op": "sink", "name": name, "topic": f"out-{name}", "parents": parents})
        elif processors:
            store = "st-" + _name(rng, used)
            stores.append(store)
            users = rng.sample(processors, k=min(len(processors), rng.choice([1, 1, 2])))
            topology.append({"op": "store", "name": store, "processors": users})
    if not sinks and processors:
        sinks.append("final")
        topology.append({"op": "sink", "name": "final", "topic": "out-final", "parents": [processors[-1]]})
    steps = [
        {"op": "pipe", "topic": topic, "key": f"k{n}", "value": f"v{n}", "timestamp": 100 * n + i}
        for n in range(2)
        for i, topic in enumerate(topics)
    ]
    return {
        "name": f"random_dag_{index}",
        "description": (
            "Random topology (generate_random_dags.py): describe() ordering of sub-topologies, nodes, "
            "successors/predecessors, topic and store sets; forwarding order along every path."
        ),
        "topology": topology,
        "steps": steps,
        "outputs": [f"out-{s}" for s in sinks],
    }


def _dump(scenario: dict[str, Any]) -> str:
    lines = ["{"]
    keys = list(scenario)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        value = scenario[key]
        if key in ("topology", "steps") and value:
            lines.append(f'  "{key}": [')
            lines.extend(
                "    " + json.dumps(item) + ("," if j < len(value) - 1 else "") for j, item in enumerate(value)
            )
            lines.append("  ]" + comma)
        else:
            lines.append(f'  "{key}": {json.dumps(value)}{comma}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write the scenario files."""
    rng = random.Random(SEED)
    index = 0
    while index < COUNT:
        scenario = generate(index, rng)
        if _paths(scenario["topology"]) * 2 > MAX_OUTPUT_RECORDS:
            continue
        (SCENARIO_DIR / f"{scenario['name']}.json").write_text(_dump(scenario), encoding="utf-8")
        index += 1


if __name__ == "__main__":
    main()
