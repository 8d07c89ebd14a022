"""The kstreams runner's topologies produce exactly what the output check expects.

The data set goes through each workload's topology in ``TopologyTestDriver`` (no broker), and the
output must pass :class:`~bench.compare.verify.Verifier` under exactly-once rules.
"""

from __future__ import annotations

import pytest

from bench.compare.dataset import DatasetSpec, generate
from bench.compare.kstreams_topology import build_topology
from bench.compare.verify import Verifier


@pytest.mark.parametrize("workload", ["passthrough", "filter-map", "count", "window"])
def test_topology_output_passes_the_check(workload: str) -> None:
    from kstreams import serdes
    from kstreams.testing import TopologyTestDriver

    data = generate(DatasetSpec(records=4000, keys=300, window_ms=1000))
    topology = build_topology(workload, "in", "out", window_ms=1000)
    with TopologyTestDriver(topology, {"application.id": "bench-test"}) as driver:
        source = driver.create_input_topic("in", key_serde=serdes.BYTES, value_serde=serdes.BYTES)
        sink = driver.create_output_topic("out", key_serde=serdes.BYTES, value_serde=serdes.BYTES)
        for _, key, value, timestamp in data.records():
            source.pipe_input(key, value, timestamp=timestamp)
        output = sink.read_key_values_to_list()
    verdict = Verifier(data).verify(workload, output, exactly_once=True)
    assert verdict.ok, verdict.to_json()
    assert verdict.received == verdict.expected > 0


def test_topology_shape_matches_the_java_reference() -> None:
    description = str(build_topology("count", "in", "out").describe())
    assert "Source: source (topics: [in])" in description
    assert "Processor: process (stores: [counts])" in description
    assert "Sink: sink (topic: out)" in description


def test_unknown_workload_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown workload"):
        build_topology("join", "in", "out")
