"""The demo: a word-count topology on Kafka, live progress, the result and throughput.

``python -m kstreams.demo [--bootstrap-servers B] [--sentences N]`` runs by default on
librdkafka's in-process mock cluster (nothing to install); with ``--bootstrap-servers`` on a
real cluster. It prints the topology, pre-loads the input, runs it with ``KafkaStreams``
(LevelDB store with changelog, a stream-time punctuation emitting the top words), shows
progress, checks the result against a count done here, and reports records/s, then the
records/s of the bare compiled record loop. Ctrl-C (SIGINT) or SIGTERM closes it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kstreams import COMPILED, KafkaStreams, Processor, PunctuationType, Record, State, Stores, Topology, serdes

WORDS = ("kafka stream table state store record topic partition offset commit punctuate processor "
         "sink source task thread changelog window join key value time").split()
PARTITIONS = 4  # the mock cluster auto-creates topics with 4 partitions


class SplitWords(Processor):
    """Forwards one record per word, keyed by the word."""

    def init(self, context: Any) -> None:
        self.context = context

    def process(self, record: Record) -> None:
        for word in record.value.split():
            self.context.forward(Record(word, 1, record.timestamp))


class CountWords(Processor):
    """Counts words in the ``counts`` store; emits the task's top word every 10 s of stream time."""

    def init(self, context: Any) -> None:
        self.context = context
        self.counts = context.get_state_store("counts")
        context.schedule(10_000, PunctuationType.STREAM_TIME, self.emit_top)

    def process(self, record: Record) -> None:
        n = (self.counts.get(record.key) or 0) + 1
        self.counts.put(record.key, n)
        self.context.forward(record.with_value(n), "word-counts")

    def emit_top(self, timestamp: int) -> None:
        with self.counts.all() as it:
            top = max(it, key=lambda kv: kv[1], default=None)
        if top is not None:
            self.context.forward(Record(self.context.task_id, f"{top[0]}={top[1]}", timestamp), "top-words")


def build_topology(sentences: str, words: str, counts: str, tops: str) -> Topology:
    """The demo topology: split, repartition by word through ``words``, count."""
    return (Topology()
            .add_source("sentences", [sentences], key_serde=serdes.STRING, value_serde=serdes.STRING)
            .add_processor("split", SplitWords, "sentences")
            .add_sink("by-word", words, "split", key_serde=serdes.STRING, value_serde=serdes.INT64)
            .add_source("words", [words], key_serde=serdes.STRING, value_serde=serdes.INT64)
            .add_processor("count", CountWords, "words")
            .add_state_store(Stores.key_value_store_builder(Stores.persistent_key_value_store("counts"),
                                                            serdes.STRING, serdes.INT64), "count")
            .add_sink("word-counts", counts, "count", key_serde=serdes.STRING, value_serde=serdes.INT64)
            .add_sink("top-words", tops, "count", key_serde=serdes.STRING, value_serde=serdes.STRING))


class _MockCluster:
    """librdkafka's in-process mock cluster, kept alive by one idle producer."""

    def __init__(self) -> None:
        lines: list[str] = []

        class _Capture(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                lines.append(record.getMessage())

        logger = logging.getLogger("kstreams.demo.mock")
        logger.propagate = False
        logger.addHandler(_Capture())
        logger.setLevel(logging.DEBUG)
        self._holder = Producer({"test.mock.num.brokers": 1, "logger": logger, "debug": "mock"})
        deadline = time.monotonic() + 10
        self.bootstrap = None
        while self.bootstrap is None and time.monotonic() < deadline:
            self._holder.poll(0.05)
            for line in lines:
                m = re.search(r"bootstrap\.servers=(\S+)", line)
                if m:
                    self.bootstrap = m.group(1)
        if self.bootstrap is None:
            raise RuntimeError("librdkafka's mock cluster did not report its bootstrap servers")


def _create_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(timeout=10)
    if md.controller_id in md.brokers:  # the mock cluster has none: it auto-creates topics on first use
        for f in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics]).values():
            f.result()
    producer = Producer({"bootstrap.servers": bootstrap})
    for t in topics:
        producer.list_topics(t, timeout=10)
    del producer, admin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kstreams.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", help="a Kafka cluster (default: librdkafka's in-process mock)")
    parser.add_argument("--sentences", type=int, default=50_000, help="sentences to pre-load (8 words each)")
    parser.add_argument("--bench-records", type=int, default=1_000_000,
                        help="records for the compiled-loop throughput line (0 to skip)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = sys.stdout.write

    mock = None
    if args.bootstrap_servers:
        bootstrap = args.bootstrap_servers
        where = f"Kafka at {bootstrap}"
    else:
        mock = _MockCluster()
        bootstrap = mock.bootstrap
        where = f"librdkafka's in-process mock cluster ({bootstrap})"
    run = uuid.uuid4().hex[:8]
    topics = {"sentences": f"sentences-{run}", "words": f"words-{run}", "counts": f"word-counts-{run}",
              "tops": f"top-words-{run}"}
    topology = build_topology(topics["sentences"], topics["words"], topics["counts"], topics["tops"])
    out(f"kstreams demo on {where}; compiled record loop: {COMPILED}\n\n{topology.describe()}\n")

    _create_topics(bootstrap, list(topics.values()))
    rng = random.Random(42)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(args.sentences)]
    expected = Counter(w for s in sentences for w in s.split())
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "partitioner": "murmur2_random"})
    for i, sentence in enumerate(sentences):
        producer.produce(topics["sentences"], sentence.encode(), None, timestamp=1_000 + i * 100)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)
    del producer
    out(f"pre-loaded {len(sentences):,} sentences ({sum(expected.values()):,} words, "
        f"{len(sentences) * 100 / 1000:,.0f} s of event time) into {topics['sentences']}\n")

    app = KafkaStreams(topology, {
        "application.id": f"kstreams-demo-{run}", "bootstrap.servers": bootstrap,
        "state.dir": tempfile.mkdtemp(prefix="kstreams-demo-"), "commit.interval.ms": 1000})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"demo-reader-{run}",
                       "auto.offset.reset": "earliest"})
    reader.subscribe([topics["counts"], topics["tops"]])
    final: dict[str, int] = {}
    tops: list[str] = []
    seen = 0
    total_words = sum(expected.values())
    start = time.monotonic()
    app.start()
    next_report = start + 1
    try:
        while seen < total_words and not stop.is_set():
            if app.state is State.ERROR:
                raise SystemExit(f"the application failed: {app.fatal_error!r}")
            for m in reader.consume(2000, 0.2):
                if m.error() is not None:
                    continue
                if m.topic() == topics["counts"]:
                    seen += 1
                    final[m.key().decode()] = serdes.INT64.deserialize(m.value())
                else:
                    tops.append(f"{m.key().decode()}: {m.value().decode()}")
            if time.monotonic() >= next_report:
                next_report = time.monotonic() + 1
                out(f"  [{time.monotonic() - start:5.1f} s] {app.state.value:<11} {seen:,} of {total_words:,} "
                    f"word counts out\n")
        elapsed = time.monotonic() - start
    finally:
        reader.close()
        app.close(30)
    if stop.is_set():
        out("interrupted: closed cleanly\n")
        return 130
    ok = final == dict(expected)
    out(f"done in {elapsed:.1f} s: {len(sentences) / elapsed:,.0f} sentences/s in, {seen / elapsed:,.0f} "
        f"word counts/s out (includes start-up and the consumer group join)\n")
    best = sorted(final.items(), key=lambda kv: -kv[1])[:5]
    out("top 5 words: " + ", ".join(f"{w}={n}" for w, n in best) + f"  (match a direct count: {ok})\n")
    out(f"top word per task, by stream-time punctuation every 10 s: {len(tops)} emitted, last: "
        f"{tops[-1] if tops else '-'}\n")
    del mock
    if args.bench_records:
        try:
            from bench.inprocess import measure
        except ImportError:
            out("(the throughput line needs the repository's bench/ package: run from the checkout)\n")
            return 0 if ok else 1
        rates = measure("passthrough", args.bench_records, 100_000, 3)
        out(f"compiled record loop, passthrough (source -> 2 Python processors -> sink, no broker): "
            f"{statistics.median(rates):,.0f} records/s (median of 3 runs of {args.bench_records:,} records)\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
