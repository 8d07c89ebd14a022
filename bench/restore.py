"""``python -m bench restore``: how fast a store comes back from its changelog.

Each run writes ``--records`` distinct keys (string keys, INT64 values: a count store's records)
straight into the compacted changelog topic of a fresh application, then starts that
application (``KafkaStreams``, one thread, an empty state directory) and measures from the first
``on_restore_start`` to the last ``on_restore_end`` of its restore listener: records/s restored
into LevelDB. The listener's totals must add up to the records written. Starts a local broker
(``tests/kafka/cluster.py``) unless ``--bootstrap-servers`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.restore")

STORE = "counts"
_INT64 = struct.Struct(">q")


class _Timing:
    """A restore listener that keeps the first start, the last end and the totals."""

    def __init__(self, partitions: int) -> None:
        self.started: float | None = None
        self.ended: float | None = None
        self.restored = 0
        self._left = partitions
        self._lock = threading.Lock()
        self.done = threading.Event()

    def on_restore_start(self, topic_partition: tuple[str, int], store_name: str, start_offset: int,
                         end_offset: int) -> None:
        with self._lock:
            if self.started is None:
                self.started = time.perf_counter()

    def on_batch_restored(self, topic_partition: tuple[str, int], store_name: str, batch_end_offset: int,
                          num_restored: int) -> None:
        pass

    def on_restore_end(self, topic_partition: tuple[str, int], store_name: str, total_restored: int) -> None:
        with self._lock:
            self.restored += total_restored
            self._left -= 1
            if self._left == 0:
                self.ended = time.perf_counter()
                self.done.set()


def _topology(input_topic: str, output_topic: str) -> Any:
    from bench.inprocess import count_processor
    from kstreams import Stores, Topology, serdes

    return (Topology().add_source("src", [input_topic], key_serde=serdes.STRING, value_serde=serdes.STRING)
            .add_processor("count", count_processor(STORE), "src")
            .add_state_store(Stores.key_value_store_builder(Stores.persistent_key_value_store(STORE),
                                                            serdes.STRING, serdes.INT64), "count")
            .add_sink("sink", output_topic, "count", key_serde=serdes.STRING, value_serde=serdes.INT64))


def _write_changelog(bootstrap: str, topic: str, records: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 50,
                         "queue.buffering.max.messages": 1_000_000})
    for i in range(records):
        while True:
            try:
                producer.produce(topic, _INT64.pack(i % 1000 + 1), f"k{i:09d}".encode())
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise RuntimeError(f"could not write the changelog {topic} in 120 s")


def run_once(bootstrap: str, records: int, partitions: int, timeout: float) -> dict[str, Any]:
    """One restore of ``records`` changelog records over ``partitions`` tasks; its figures."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from kstreams import KafkaStreams

    app_id = f"kb-restore-{secrets.token_hex(4)}"
    input_topic, output_topic = f"{app_id}-in", f"{app_id}-out"
    changelog = f"{app_id}-{STORE}-changelog"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(input_topic, partitions, 1), NewTopic(output_topic, 1, 1),
                                   NewTopic(changelog, partitions, 1, config={"cleanup.policy": "compact"})])
    for future in futures.values():
        future.result(30)
    timing = _Timing(partitions)
    try:
        t0 = time.perf_counter()
        _write_changelog(bootstrap, changelog, records)
        log.info("wrote %s changelog records in %.1f s", f"{records:,}", time.perf_counter() - t0)
        with tempfile.TemporaryDirectory(prefix="kstreams-restore-") as state_dir:
            app = KafkaStreams(_topology(input_topic, output_topic),
                               {"application.id": app_id, "bootstrap.servers": bootstrap, "state.dir": state_dir})
            app.set_global_state_restore_listener(timing)
            with app:
                app.start()
                if not timing.done.wait(timeout):
                    raise RuntimeError(f"the restore did not finish in {timeout:.0f} s "
                                       f"({timing.restored:,} of {records:,} records)")
    finally:  # a failed run leaves no topics behind on a broker given with --bootstrap-servers
        for future in admin.delete_topics([input_topic, output_topic, changelog]).values():
            future.result(30)
    assert timing.started is not None and timing.ended is not None
    if timing.restored != records:
        raise RuntimeError(f"restored {timing.restored:,} records, wrote {records:,}")
    seconds = timing.ended - timing.started
    return {"records": records, "partitions": partitions, "seconds": seconds, "records_per_s": records / seconds}


def run(args: argparse.Namespace) -> int:
    """The ``restore`` command."""
    from bench.compare.cli import broker_for

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    logging.getLogger("kstreams").setLevel(logging.WARNING)  # the application's own progress is noise here
    results = []
    with tempfile.TemporaryDirectory(prefix="kstreams-restore-broker-") as work_dir:
        with broker_for(args, Path(work_dir)) as (bootstrap, _):
            for i in range(args.runs):
                result = run_once(bootstrap, args.records, args.partitions, args.timeout)
                log.info("[%d/%d] restored %s records in %.2f s: %s records/s", i + 1, args.runs,
                         f"{args.records:,}", result["seconds"], f"{result['records_per_s']:,.0f}")
                results.append(result)
    rates = [r["records_per_s"] for r in results]
    summary = {"records": args.records, "partitions": args.partitions, "runs": results,
               "median_records_per_s": statistics.median(rates), "min_records_per_s": min(rates),
               "max_records_per_s": max(rates)}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"restore: {args.records:,} records over {args.partitions} partition(s): "
              f"median {summary['median_records_per_s']:,.0f} records/s "
              f"({min(rates):,.0f}-{max(rates):,.0f}, {len(rates)} runs)")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``restore`` command's options."""
    parser.add_argument("--records", type=int, default=1_000_000, help="changelog records (distinct keys)")
    parser.add_argument("--partitions", type=int, default=1, help="changelog partitions (tasks restoring)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one restore may take")
    parser.add_argument("--bootstrap-servers", help="use this broker instead of starting a local one")
    parser.add_argument("--broker-heap", default="1g", help="-Xmx of the local broker")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
