"""The benchmark's input: a deterministic, seeded data set, and what each workload must output.

Record ``i`` has

* key ``"k%06d"`` (``keys`` distinct keys, drawn with a Zipf distribution of exponent ``skew``;
  the hottest keys are spread over the key space by a seeded permutation);
* a JSON value of about ``value_bytes`` bytes:
  ``{"id": i, "user": key, "kind": "buy"|"view", "amount": 1..1000, "ts": timestamp, "note": "..."}``;
* timestamp ``base_ts + i * interval_ms``: event time advances with the offsets, so windows close;
* partition ``murmur2(key) % partitions``, as Java's default partitioner would pick it.

The last records are *sentinels*, one per partition (a key of that partition), stamped half a
window after the end of the last real window: they advance every partition's stream time past
every real window, so all real windows close whatever the system's closing rule, and the
sentinels' own windows stay open (they are never expected). Only the value arrays are kept
(a few bytes per record); values are rebuilt from them when needed, so two million records cost
about 20 MB here.
"""

from __future__ import annotations

import itertools
import json
import random
from array import array
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.compare import workloads

_PAD_ALPHABET = "abcdefghijklmnopqrstuvwxyz" * 64
_KINDS = ("view", "buy")


@dataclass(frozen=True)
class DatasetSpec:
    """Parameters of a data set: with the same spec every run gets byte-identical input."""

    records: int = 2_000_000
    keys: int = 100_000
    partitions: int = 4
    value_bytes: int = 100
    skew: float = 0.99
    seed: int = 42
    interval_ms: int = 1
    window_ms: int = workloads.DEFAULT_WINDOW_MS
    base_ts: int = 1_700_000_000_000
    """Timestamp of record 0; the runner picks a recent one (brokers reject far-future records
    and time-based retention would delete far-past ones)."""

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON-able dict."""
        return asdict(self)

    def validate(self) -> None:
        """Raise ``ValueError`` for parameters that cannot make a data set."""
        if self.records < 1 or self.keys < 1 or self.partitions < 1:
            raise ValueError("records, keys and partitions must be positive")
        if self.keys > 1_000_000:
            raise ValueError("at most 1,000,000 keys (keys are k%06d)")
        if self.interval_ms < 1 or self.window_ms < 1:
            raise ValueError("interval_ms and window_ms must be positive")
        if self.skew < 0:
            raise ValueError("skew must be >= 0")


@dataclass
class Dataset:
    """A generated data set: per-record arrays plus derived facts (see the module doc)."""

    spec: DatasetSpec
    key_index: array  # 'I': key number of record i
    kind: bytearray  # 1 = buy, 0 = view
    amount: array  # 'H': 1..1000
    timestamp: array  # 'q': epoch ms
    sentinels: int
    key_names: list[str] = field(repr=False)
    key_partition: list[int] = field(repr=False)
    pad_length: int = 0

    def __len__(self) -> int:
        return len(self.key_index)

    def key(self, i: int) -> str:
        """Key of record ``i``."""
        return self.key_names[self.key_index[i]]

    def partition(self, i: int) -> int:
        """Partition of record ``i``."""
        return self.key_partition[self.key_index[i]]

    def value_dict(self, i: int) -> dict[str, Any]:
        """Value of record ``i`` as the dict a JSON parser returns."""
        offset = i % 26
        return {
            "id": i,
            "user": self.key_names[self.key_index[i]],
            "kind": _KINDS[self.kind[i]],
            "amount": self.amount[i],
            "ts": self.timestamp[i],
            "note": _PAD_ALPHABET[offset:offset + self.pad_length],
        }

    def value_bytes(self, i: int) -> bytes:
        """Value of record ``i`` as produced to the input topic (compact JSON)."""
        offset = i % 26
        return (
            f'{{"id":{i},"user":"{self.key_names[self.key_index[i]]}","kind":"{_KINDS[self.kind[i]]}",'
            f'"amount":{self.amount[i]},"ts":{self.timestamp[i]},'
            f'"note":"{_PAD_ALPHABET[offset:offset + self.pad_length]}"}}'
        ).encode()

    def records(self) -> Iterator[tuple[int, bytes, bytes, int]]:
        """``(partition, key, value, timestamp)`` of every record, in production order."""
        names = [name.encode() for name in self.key_names]
        for i in range(len(self.key_index)):
            k = self.key_index[i]
            yield self.key_partition[k], names[k], self.value_bytes(i), self.timestamp[i]

    # ----------------------------------------------------------------- expectations

    def buy_ids(self) -> Iterator[int]:
        """Ids of the records ``filter-map`` keeps."""
        return (i for i, kind in enumerate(self.kind) if kind)

    def ordinals(self) -> array:
        """``ordinals[i]``: how many records of record ``i``'s key up to and including ``i``."""
        seen = [0] * len(self.key_names)
        out = array("I", bytes(4 * len(self.key_index)))
        for i, k in enumerate(self.key_index):
            seen[k] += 1
            out[i] = seen[k]
        return out

    def closed_windows(self) -> dict[tuple[int, int], int]:
        """``(key index, window start) -> sum of amount`` of every window that closes.

        A window closes when the stream time of its key's partition (the largest timestamp of
        that partition) reaches its end. With the sentinels that is every window of every
        non-sentinel record.
        """
        size = self.spec.window_ms
        partition_time = [-1] * self.spec.partitions
        for i in range(len(self.key_index)):
            p = self.key_partition[self.key_index[i]]
            partition_time[p] = max(partition_time[p], self.timestamp[i])
        sums: dict[tuple[int, int], int] = {}
        for i in range(len(self.key_index)):
            k = self.key_index[i]
            ts = self.timestamp[i]
            start = ts - ts % size
            if start + size <= partition_time[self.key_partition[k]]:
                sums[(k, start)] = sums.get((k, start), 0) + self.amount[i]
        return sums

    def expected_outputs(self, workload: str) -> int:
        """How many output records a complete, duplicate-free run of ``workload`` writes."""
        if workload in ("passthrough", "count"):
            return len(self)
        if workload == "filter-map":
            return sum(self.kind)
        if workload == "window":
            return len(self.closed_windows())
        raise ValueError(f"unknown workload {workload!r}")

    def summary(self) -> dict[str, Any]:
        """Facts about the data set for the results file."""
        lengths = [len(self.value_bytes(i)) for i in range(0, len(self), max(1, len(self) // 1000))]
        per_partition = [0] * self.spec.partitions
        for k in self.key_index:
            per_partition[self.key_partition[k]] += 1
        counts: dict[int, int] = {}
        for k in self.key_index:
            counts[k] = counts.get(k, 0) + 1
        hottest = max(counts.values())
        return {
            "spec": self.spec.to_json(),
            "records": len(self),
            "sentinels": self.sentinels,
            "distinct_keys_used": len(counts),
            "hottest_key_share": round(hottest / len(self), 4),
            "records_per_partition": per_partition,
            "mean_value_bytes": round(sum(lengths) / len(lengths), 1),
            "first_timestamp": self.timestamp[0],
            "last_timestamp": self.timestamp[len(self) - 1],
        }


def generate(spec: DatasetSpec) -> Dataset:
    """Build the data set of ``spec`` (deterministic: the same spec gives the same records)."""
    spec.validate()
    rng = random.Random(spec.seed)
    key_names = [f"k{k:06d}" for k in range(spec.keys)]
    key_partition = [workloads.partition_for(name.encode(), spec.partitions) for name in key_names]
    by_rank = list(range(spec.keys))
    rng.shuffle(by_rank)

    # One sentinel per partition that has a key, hottest first so they are ordinary keys.
    sentinel_keys: dict[int, int] = {}
    for k in by_rank:
        sentinel_keys.setdefault(key_partition[k], k)
        if len(sentinel_keys) == spec.partitions:
            break
    sentinels = min(len(sentinel_keys), max(0, spec.records - 1))
    main = spec.records - sentinels

    weights = itertools.accumulate(1.0 / (rank**spec.skew) for rank in range(1, spec.keys + 1))
    ranks = rng.choices(range(spec.keys), cum_weights=list(weights), k=main)
    key_index = array("I", [by_rank[r] for r in ranks])
    kind = bytearray(b & 1 for b in rng.randbytes(main))
    raw = array("H")
    raw.frombytes(rng.randbytes(2 * main))
    amount = array("H", [1 + v % 1000 for v in raw])
    timestamp = array("q", range(spec.base_ts, spec.base_ts + main * spec.interval_ms, spec.interval_ms))

    size = spec.window_ms
    last = timestamp[main - 1] if main else spec.base_ts
    after = workloads.window_start(last, size) + size + size // 2
    for j, k in enumerate(sorted(sentinel_keys.values(), key=lambda k: key_partition[k])[:sentinels]):
        key_index.append(k)
        kind.append(1)
        amount.append(1)
        timestamp.append(after + j)

    dataset = Dataset(spec, key_index, kind, amount, timestamp, sentinels, key_names, key_partition)
    base_length = len(dataset.value_bytes(len(dataset) - 1))
    dataset.pad_length = max(0, min(len(_PAD_ALPHABET) - 26, spec.value_bytes - base_length))
    return dataset


def canonical(value: Any) -> str:
    """A value in a canonical JSON text (for messages that show a wrong value)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
