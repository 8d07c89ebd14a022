"""The four workloads as kstreams Processor API topologies (source -> processor -> sink).

The same shape and stores as the Java reference (``bench/java/.../Workloads.java``): string
keys, JSON values parsed by the source serde and written by the sink serde, persistent
(LevelDB) key-value stores with logging (the default) and caching enabled. The record logic is
:mod:`bench.compare.workloads`. The runner (:mod:`bench.compare.kstreams_runner`) runs these on
Kafka; the tests run them through ``TopologyTestDriver``.
"""

from __future__ import annotations

from typing import Any

from bench.compare import workloads

SOURCE = "source"
PROCESSOR = "process"
SINK = "sink"

MARK = workloads.FirstRecordMark()
"""The process-wide first-record mark (printed once, by whichever task sees a record first)."""


def build_topology(workload: str, input_topic: str, output_topic: str,
                   window_ms: int = workloads.DEFAULT_WINDOW_MS) -> Any:
    """The kstreams ``Topology`` of ``workload`` from ``input_topic`` to ``output_topic``."""
    from kstreams import Processor, PunctuationType, Record, Stores, Topology, serdes

    mark = MARK.mark

    class Passthrough(Processor):
        def init(self, context: Any) -> None:
            self.context = context

        def process(self, record: Any) -> None:
            mark()
            self.context.forward(record)

    class FilterMap(Processor):
        def init(self, context: Any) -> None:
            self.context = context

        def process(self, record: Any) -> None:
            mark()
            value = record.value
            if value["kind"] == "buy":
                self.context.forward(record.with_value(workloads.transform(value)))

    class Count(Processor):
        def init(self, context: Any) -> None:
            self.context = context
            self.counts = context.get_state_store(workloads.COUNT_STORE)

        def process(self, record: Any) -> None:
            mark()
            n = (self.counts.get(record.key) or 0) + 1
            self.counts.put(record.key, n)
            self.context.forward(record.with_value(workloads.count_value(record.value, n)))

    class WindowSum(Processor):
        def init(self, context: Any) -> None:
            self.context = context
            self.sums = context.get_state_store(workloads.WINDOW_STORE)
            self.emitted_below = 0  # a scan hint: every window starting below it was emitted
            context.schedule(window_ms, PunctuationType.STREAM_TIME, self.emit_closed)

        def process(self, record: Any) -> None:
            mark()
            ts = record.timestamp
            store_key = workloads.window_store_key(ts - ts % window_ms, record.key)
            self.sums.put(store_key, (self.sums.get(store_key) or 0) + record.value["amount"])

        def emit_closed(self, stream_time: int) -> None:
            last = workloads.last_closed_start(stream_time, window_ms)
            if last < self.emitted_below:
                return
            low = workloads.window_store_floor(self.emitted_below)
            with self.sums.range(low, workloads.window_store_bound(last)) as it:
                closed = list(it)
            for store_key, total in closed:
                start, key = workloads.split_window_store_key(store_key)
                self.context.forward(Record(key, workloads.window_value(start, window_ms, total), stream_time))
                self.sums.delete(store_key)
            self.emitted_below = last + window_ms

    processors = {"passthrough": Passthrough, "filter-map": FilterMap, "count": Count, "window": WindowSum}
    stores = {"count": workloads.COUNT_STORE, "window": workloads.WINDOW_STORE}
    if workload not in processors:
        raise ValueError(f"unknown workload {workload!r}; expected one of {workloads.WORKLOADS}")
    topology = (Topology()
                .add_source(SOURCE, [input_topic], key_serde=serdes.STRING, value_serde=serdes.JSON)
                .add_processor(PROCESSOR, processors[workload], SOURCE))
    if workload in stores:
        builder = Stores.key_value_store_builder(Stores.persistent_key_value_store(stores[workload]),
                                                 serdes.STRING, serdes.INT64).with_caching_enabled()
        topology.add_state_store(builder, PROCESSOR)
    topology.add_sink(SINK, output_topic, PROCESSOR, key_serde=serdes.STRING, value_serde=serdes.JSON)
    return topology
