"""``python -m bench restore``: how fast a store comes back from its changelog.

Each run writes ``--records`` distinct keys (string keys, INT64 values: a count store's records)
straight into the compacted changelog topic of a fresh application, then starts that
application (``KafkaStreams``, one thread, an empty state directory) and measures from the first
``on_restore_start`` to the last ``on_restore_end`` of its restore listener: records/s restored
into LevelDB. The listener's totals must add up to the records written. Starts a local broker
(``tests/kafka/cluster.py``) unless ``--bootstrap-servers`` is given.

``--systems kstreams java`` adds Java Kafka Streams 4.4.0 (``kstreams.bench.Restore`` of
``bench/java``: the same topology and topics, RocksDB, its own restore listener timing the same
interval, so the JVM's start is outside it). Each run then restores a freshly written changelog
of a fresh application id per system, the first system rotating run by run; the report adds
Java's figures and the kstreams/java ratios.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.compare.systems import JavaSystem

log = logging.getLogger("bench.restore")

STORE = "counts"
SYSTEMS = ("kstreams", "java")
"""The systems ``--systems`` takes: kstreams itself and the Java Kafka Streams reference."""
JAVA_RESTORE_MAIN = "kstreams.bench.Restore"
JVM_ALLOWANCE_S = 60.0
"""Seconds a Java run may take beyond the restore timeout: JVM start, group join, close."""
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


@dataclass(frozen=True)
class _App:
    """One run's application: its id and topics, and the changelog records it must restore."""

    bootstrap: str
    app_id: str
    partitions: int
    records: int

    @property
    def input_topic(self) -> str:
        return f"{self.app_id}-in"

    @property
    def output_topic(self) -> str:
        return f"{self.app_id}-out"

    @property
    def changelog(self) -> str:
        return f"{self.app_id}-{STORE}-changelog"


def run_once(bootstrap: str, records: int, partitions: int, timeout: float, system: str = "kstreams",
             java: JavaSystem | None = None) -> dict[str, Any]:
    """One restore of ``records`` changelog records over ``partitions`` tasks by ``system``; its figures.

    ``system`` is one of :data:`SYSTEMS`; ``java`` is the prepared Java system to run (a default
    one, built on first use, if None). Raises unless the restore ends within ``timeout`` seconds
    and its listener's totals add up to ``records``.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r} (known: {', '.join(SYSTEMS)})")
    app = _App(bootstrap, f"kb-restore-{secrets.token_hex(4)}", partitions, records)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(app.input_topic, partitions, 1), NewTopic(app.output_topic, 1, 1),
                                   NewTopic(app.changelog, partitions, 1, config={"cleanup.policy": "compact"})])
    for future in futures.values():
        future.result(30)
    try:
        t0 = time.perf_counter()
        _write_changelog(bootstrap, app.changelog, records)
        log.info("wrote %s changelog records in %.1f s", f"{records:,}", time.perf_counter() - t0)
        with tempfile.TemporaryDirectory(prefix=f"{system}-restore-") as state_dir:
            if system == "java":
                restored, seconds = _restore_java(app, state_dir, timeout, java or _java_system())
            else:
                restored, seconds = _restore_kstreams(app, state_dir, timeout)
    finally:  # a failed run leaves no topics behind on a broker given with --bootstrap-servers
        for future in admin.delete_topics([app.input_topic, app.output_topic, app.changelog]).values():
            future.result(30)
    if restored != records:
        raise RuntimeError(f"{system} restored {restored:,} records, wrote {records:,}")
    return {"system": system, "records": records, "partitions": partitions, "restored": restored,
            "seconds": seconds, "records_per_s": records / seconds}


def _restore_kstreams(app: _App, state_dir: str, timeout: float) -> tuple[int, float]:
    """``(records restored, seconds)`` of a kstreams instance restoring ``app``'s store."""
    from kstreams import KafkaStreams

    timing = _Timing(app.partitions)
    streams = KafkaStreams(_topology(app.input_topic, app.output_topic),
                           {"application.id": app.app_id, "bootstrap.servers": app.bootstrap, "state.dir": state_dir})
    streams.set_global_state_restore_listener(timing)
    with streams:
        streams.start()
        if not timing.done.wait(timeout):
            raise RuntimeError(f"the restore did not finish in {timeout:.0f} s "
                               f"({timing.restored:,} of {app.records:,} records)")
    assert timing.started is not None and timing.ended is not None
    return timing.restored, timing.ended - timing.started


def _restore_java(app: _App, state_dir: str, timeout: float, java: JavaSystem) -> tuple[int, float]:
    """``(records restored, seconds)`` reported by ``kstreams.bench.Restore`` restoring ``app``'s store."""
    command = java.java_command(JAVA_RESTORE_MAIN, [
        "--bootstrap", app.bootstrap, "--app-id", app.app_id, "--input", app.input_topic,
        "--output", app.output_topic, "--partitions", str(app.partitions), "--state-dir", state_dir,
        "--records", str(app.records), "--timeout-s", str(timeout)])
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout + JVM_ALLOWANCE_S, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the Java restore did not exit within {timeout + JVM_ALLOWANCE_S:.0f} s") from None
    for line in done.stderr.splitlines():
        log.debug("java: %s", line)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"the Java restore exited {done.returncode}:\n{tail}")
    figures = json.loads(lines[-1])
    return int(figures["records"]), float(figures["seconds"])


def _java_system() -> JavaSystem:
    """The Java reference as ``compare`` runs it (``-Xmx1g``), built; SystemUnavailable if it cannot run."""
    from bench.compare.systems import JavaSystem

    java = JavaSystem("java")
    java.prepare()
    return java


def summarize(records: int, partitions: int, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The report of ``runs`` (:func:`run_once` results by system, in run order).

    kstreams' figures stay at the top level (``runs``, ``median_records_per_s``, ``min_...``,
    ``max_...``), as before there were other systems; every other system's are under its name,
    and with both kstreams and Java ``kstreams_over_java`` holds the ratio of their medians and
    the median of the per-run pair ratios.
    """
    summary: dict[str, Any] = {"records": records, "partitions": partitions, "systems": list(runs)}
    for name, results in runs.items():
        rates = [r["records_per_s"] for r in results]
        figures = {"runs": results, "median_records_per_s": statistics.median(rates),
                   "min_records_per_s": min(rates), "max_records_per_s": max(rates)}
        if name == "kstreams":
            summary.update(figures)
        else:
            summary[name] = figures
    if "kstreams" in runs and "java" in runs:
        pairs = [k["records_per_s"] / j["records_per_s"] for k, j in zip(runs["kstreams"], runs["java"], strict=True)]
        summary["kstreams_over_java"] = {
            "ratio_of_medians": summary["median_records_per_s"] / summary["java"]["median_records_per_s"],
            "median_of_pair_ratios": statistics.median(pairs), "pair_ratios": pairs}
    return summary


def report(summary: dict[str, Any]) -> str:
    """The text report of a :func:`summarize` result."""
    n_runs = len(summary["runs"] if "kstreams" in summary["systems"] else summary[summary["systems"][0]]["runs"])
    lines = [f"restore: {summary['records']:,} records over {summary['partitions']} partition(s), {n_runs} run(s)"]
    for name in summary["systems"]:
        figures = summary if name == "kstreams" else summary[name]
        lines.append(f"  {name:<9} median {figures['median_records_per_s']:>12,.0f} records/s "
                     f"({figures['min_records_per_s']:,.0f}-{figures['max_records_per_s']:,.0f})")
    ratio = summary.get("kstreams_over_java")
    if ratio:
        lines.append(f"  kstreams/java: {ratio['ratio_of_medians']:.2f} (ratio of the medians), "
                     f"{ratio['median_of_pair_ratios']:.2f} (median of the per-run ratios, "
                     f"{min(ratio['pair_ratios']):.2f}-{max(ratio['pair_ratios']):.2f})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The ``restore`` command."""
    from bench.compare.cli import broker_for
    from bench.compare.systems import SystemUnavailable

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    logging.getLogger("kstreams").setLevel(logging.WARNING)  # the application's own progress is noise here
    systems = list(dict.fromkeys(args.systems))
    java = None
    if "java" in systems:
        try:
            java = _java_system()
        except SystemUnavailable as exc:
            log.error("java cannot run: %s", exc)
            return 2
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    with tempfile.TemporaryDirectory(prefix="kstreams-restore-broker-") as work_dir:
        with broker_for(args, Path(work_dir)) as (bootstrap, _):
            for i in range(args.runs):
                for name in systems[i % len(systems):] + systems[:i % len(systems)]:
                    result = run_once(bootstrap, args.records, args.partitions, args.timeout, name, java)
                    log.info("[%d/%d] %s restored %s records in %.2f s: %s records/s", i + 1, args.runs, name,
                             f"{args.records:,}", result["seconds"], f"{result['records_per_s']:,.0f}")
                    runs[name].append(result)
    summary = summarize(args.records, args.partitions, runs)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(report(summary))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``restore`` command's options."""
    parser.add_argument("--records", type=int, default=1_000_000, help="changelog records (distinct keys)")
    parser.add_argument("--partitions", type=int, default=1, help="changelog partitions (tasks restoring)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one restore may take")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=["kstreams"],
                        help="systems to restore, each its own changelog per run (default: kstreams)")
    parser.add_argument("--bootstrap-servers", help="use this broker instead of starting a local one")
    parser.add_argument("--broker-heap", default="1g", help="-Xmx of the local broker")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
