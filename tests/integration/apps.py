"""Topologies and helpers shared by the runtime integration tests.

Run as a program (``python apps.py count BOOTSTRAP APP_ID INPUT OUTPUT STATE_DIR GUARANTEE``)
it runs the count application until SIGTERM/SIGINT, so tests can SIGKILL it mid-stream.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections import Counter
from typing import Any

from confluent_kafka import Consumer, Producer

from kstreams import KafkaStreams, Processor, Record, Stores, Topology, serdes


class CountProcessor(Processor):
    """Counts per key in the ``counts`` store; forwards ``key -> count``."""

    def init(self, context: Any) -> None:
        self.context = context
        self.store = context.get_state_store("counts")

    def process(self, record: Record) -> None:
        n = (self.store.get(record.key) or 0) + 1
        self.store.put(record.key, n)
        self.context.forward(record.with_value(n))


class Uppercase(Processor):
    """Drops values starting with ``drop``; uppercases the others."""

    def init(self, context: Any) -> None:
        self.context = context

    def process(self, record: Record) -> None:
        if not record.value.startswith("drop"):
            self.context.forward(record.with_value(record.value.upper()))


class Rekey(Processor):
    """Re-keys each record by its value (for a repartition through a topic)."""

    def init(self, context: Any) -> None:
        self.context = context

    def process(self, record: Record) -> None:
        self.context.forward(record.with_key(record.value))


S = {"key_serde": serdes.STRING, "value_serde": serdes.STRING}


def count_topology(input_topic: str, output_topic: str) -> Topology:
    return (Topology()
            .add_source("src", [input_topic], **S)
            .add_processor("count", CountProcessor, "src")
            .add_state_store(Stores.key_value_store_builder(Stores.persistent_key_value_store("counts"),
                                                            serdes.STRING, serdes.INT64), "count")
            .add_sink("sink", output_topic, "count", key_serde=serdes.STRING, value_serde=serdes.INT64))


def stateless_topology(input_topic: str, output_topic: str) -> Topology:
    return (Topology().add_source("src", [input_topic], **S).add_processor("upper", Uppercase, "src")
            .add_sink("sink", output_topic, "upper", **S))


def repartition_topology(input_topic: str, mid_topic: str, output_topic: str) -> Topology:
    return (Topology()
            .add_source("src", [input_topic], **S).add_processor("rekey", Rekey, "src")
            .add_sink("to-mid", mid_topic, "rekey", **S)
            .add_source("mid", [mid_topic], **S).add_processor("count", CountProcessor, "mid")
            .add_state_store(Stores.key_value_store_builder(Stores.persistent_key_value_store("counts"),
                                                            serdes.STRING, serdes.INT64), "count")
            .add_sink("sink", output_topic, "count", key_serde=serdes.STRING, value_serde=serdes.INT64))


def produce(bootstrap: str, topic: str, pairs: list[tuple[str, str]], start_ts: int = 1_000) -> None:
    """Write ``(key, value)`` string pairs with increasing timestamps (Java's partitioner)."""
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5})
    for i, (k, v) in enumerate(pairs):
        p.produce(topic, v.encode(), k.encode(), timestamp=start_ts + i)
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(30) == 0


def consume_all(bootstrap: str, topic: str, expected: int, *, timeout: float = 60.0,
                read_committed: bool = True, quiet: float = 0.0) -> list[tuple[bytes, bytes, int]]:
    """Read ``topic`` from the start until ``expected`` records (then ``quiet`` more seconds)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"verify-{time.monotonic_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed" if read_committed else "read_uncommitted"})
    c.subscribe([topic])
    out: list[tuple[bytes, bytes, int]] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            for m in c.consume(1000, 0.2):
                if m.error() is None:
                    out.append((m.key(), m.value(), m.partition()))
            if len(out) >= expected:
                if quiet_until is None:
                    quiet_until = time.monotonic() + quiet
                if time.monotonic() >= quiet_until:
                    break
    finally:
        c.close()
    return out


def counts_by_key(records: list[tuple[bytes, bytes, int]]) -> dict[str, list[int]]:
    """Count updates per key, in output order."""
    out: dict[str, list[int]] = {}
    for k, v, _ in records:
        out.setdefault(k.decode(), []).append(serdes.INT64.deserialize(v))
    return out


def expected_counts(pairs: list[tuple[str, str]]) -> Counter[str]:
    return Counter(k for k, _ in pairs)


def assert_exact_counts(updates: dict[str, list[int]], expected: Counter[str]) -> None:
    """Exactly once: per key the counts 1..n, each once and in order (n = inputs of the key)."""
    assert set(updates) == set(expected)
    for key, n in expected.items():
        seq = updates[key]
        bad = next((i for i, (a, b) in enumerate(zip(seq, range(1, n + 1), strict=False)) if a != b),
                   min(len(seq), n))
        assert seq == list(range(1, n + 1)), \
            f"key {key}: {len(seq)} updates, expected 1..{n}; first difference at {bad}: {seq[max(0, bad - 3):bad + 5]}"


class _PrintingRestoreListener:
    """Prints restore progress as ``restore-start STORE START END`` / ``restore-end STORE TOTAL`` lines."""

    def on_restore_start(self, tp: Any, store: str, start: int, end: int) -> None:
        print(f"restore-start {store} {tp[1]} {start} {end}", flush=True)

    def on_batch_restored(self, tp: Any, store: str, batch_end: int, n: int) -> None:
        pass

    def on_restore_end(self, tp: Any, store: str, total: int) -> None:
        print(f"restore-end {store} {tp[1]} {total}", flush=True)


def main(argv: list[str]) -> int:
    kind, bootstrap, app_id, input_topic, output_topic, state_dir, guarantee = argv[:7]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    topology = count_topology(input_topic, output_topic)
    app = KafkaStreams(topology, {"application.id": app_id, "bootstrap.servers": bootstrap, "state.dir": state_dir,
                                  "processing.guarantee": guarantee, "commit.interval.ms": 200,
                                  "main.consumer.session.timeout.ms": 6000,
                                  "main.consumer.heartbeat.interval.ms": 500})
    app.set_global_state_restore_listener(_PrintingRestoreListener())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    app.start()
    print("started", flush=True)
    while not stop.is_set() and app.state.value not in ("ERROR", "NOT_RUNNING"):
        stop.wait(0.2)
    app.close(30)
    return 0 if app.state.value == "NOT_RUNNING" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
