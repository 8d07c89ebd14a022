"""The demo: a word-count topology run in-process, then a throughput report.

``python -m kstreams.demo [--sentences N]`` builds a topology (split sentences into words,
count words in a key-value store, emit the running top words on a stream-time punctuation),
prints its description, runs it through the :class:`~kstreams.testing.TopologyTestDriver`,
prints the result, and reports records/s of the driver and of the bare compiled record loop.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
from typing import Any

from kstreams import COMPILED, Processor, PunctuationType, Record, Stores, Topology, serdes
from kstreams.testing import TopologyTestDriver

WORDS = ("kafka stream table state store record topic partition offset commit punctuate processor "
         "sink source task thread changelog window join key value time").split()


class SplitWords(Processor):
    """Forwards one record per word, keyed by the word."""

    def init(self, context: Any) -> None:
        self.context = context

    def process(self, record: Record) -> None:
        for word in record.value.split():
            self.context.forward(Record(word, 1, record.timestamp))


class CountWords(Processor):
    """Counts words in the ``counts`` store and emits the top 3 every 10 s of stream time."""

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
            top = sorted(it, key=lambda kv: -kv[1])[:3]
        summary = ", ".join(f"{w}={n}" for w, n in top)
        self.context.forward(Record("top", summary, timestamp), "top-words")


def build_topology() -> Topology:
    """The demo topology."""
    return (Topology()
            .add_source("sentences", ["sentences"], key_serde=serdes.STRING, value_serde=serdes.STRING)
            .add_processor("split", SplitWords, "sentences")
            .add_processor("count", CountWords, "split")
            .add_state_store(Stores.key_value_store_builder(Stores.in_memory_key_value_store("counts"),
                                                            serdes.STRING, serdes.INT64), "count")
            .add_sink("word-counts", "word-counts", "count", key_serde=serdes.STRING, value_serde=serdes.INT64)
            .add_sink("top-words", "top-words", "count", key_serde=serdes.STRING, value_serde=serdes.STRING))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kstreams.demo", description=__doc__)
    parser.add_argument("--sentences", type=int, default=20_000, help="sentences to pipe through the driver")
    parser.add_argument("--bench-records", type=int, default=1_000_000,
                        help="records for the compiled-loop throughput line (0 to skip)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = sys.stdout.write

    topology = build_topology()
    out(f"kstreams demo (compiled record loop: {COMPILED})\n\n{topology.describe()}\n")
    rng = random.Random(42)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(args.sentences)]
    with TopologyTestDriver(topology, {"application.id": "demo"}, initial_wall_clock_time_ms=0) as driver:
        inp = driver.create_input_topic("sentences", key_serde=serdes.STRING, value_serde=serdes.STRING)
        counts = driver.create_output_topic("word-counts", key_serde=serdes.STRING, value_serde=serdes.INT64)
        tops = driver.create_output_topic("top-words", key_serde=serdes.STRING, value_serde=serdes.STRING)
        start = time.perf_counter()
        for i, sentence in enumerate(sentences):
            inp.pipe_input(None, sentence, i * 100)
        elapsed = time.perf_counter() - start
        final = counts.read_key_values_to_map()
        top_updates = tops.read_values_to_list()
        store = driver.get_key_value_store("counts")
        out(f"piped {len(sentences):,} sentences ({len(sentences) * 8:,} words) over "
            f"{len(sentences) * 100 / 1000:.0f} s of event time\n")
        out(f"top words, emitted by a stream-time punctuation every 10 s ({len(top_updates)} times); last: "
            f"{top_updates[-1] if top_updates else '-'}\n")
        best = sorted(final.items(), key=lambda kv: -kv[1])[:5]
        out("final counts (top 5): " + ", ".join(f"{w}={n}" for w, n in best) + "\n")
        assert all(store.get(w) == n for w, n in final.items())
        out(f"test driver: {len(sentences) * 9 / elapsed:,.0f} records/s processed "
            f"(commit after every record, as Java's driver)\n")
    if args.bench_records:
        try:
            from bench.inprocess import measure
        except ImportError:
            out("(the throughput line needs the repository's bench/ package: run from the checkout)\n")
            return 0
        rates = measure("passthrough", args.bench_records, 100_000, 3)
        out(f"compiled record loop, passthrough (source -> 2 Python processors -> sink, bytes): "
            f"{statistics.median(rates):,.0f} records/s (median of 3 runs of {args.bench_records:,} records)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
