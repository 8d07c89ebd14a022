"""Helpers of the state-store tests (imported by their conftest and tests): a store opened as a
task would open it, with a changelog partition simulated in memory (offsets = positions in a
list), and the store kinds to test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kstreams import Stores, serdes
from kstreams._core import RecordCollector
from kstreams.state.context import StateStoreContext
from kstreams.state.keyvalue import DEFER_BYTES_EXTRA, DEFER_RECORDS_EXTRA

APP = "app"
TASK = "0_0"


class FakeContext:
    """What a store reads from the processor context: the record timestamp and the commit flag."""

    def __init__(self) -> None:
        self.record_timestamp = 0
        self.commit_requested = False


class Changelog:
    """One changelog partition: records ``(key_bytes, value_bytes_or_None, timestamp)``."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None, int]] = []

    @property
    def end_offset(self) -> int:
        return len(self.records)

    def capture(self, collector: RecordCollector, topic: str) -> int:
        """Move the collector's records for ``topic`` here; returns how many."""
        n = 0
        for t, _partition, kb, vb, ts, _headers in collector.drain():
            if t == topic:
                self.records.append((kb, vb, ts))
                n += 1
        return n

    def batches_from(self, start: int, size: int = 3) -> Any:
        """``(records, position_after)`` batches from ``start`` to the end."""
        for i in range(start, len(self.records), size):
            chunk = self.records[i:i + size]
            yield chunk, i + len(chunk)


class Harness:
    """A store of one task with its collector, context and changelog."""

    def __init__(self, builder: Any, state_dir: Path | None, cache_max_bytes: int = 10 * 1024 * 1024,
                 task_id: str = TASK, defer_records: int = 0, defer_bytes: int = 16 * 1024 * 1024) -> None:
        self.builder = builder
        self.defer_records = defer_records
        self.defer_bytes = defer_bytes
        self.state_dir = state_dir
        self.task_id = task_id
        self.cache_max_bytes = cache_max_bytes
        self.collector = RecordCollector(lambda topic: 1)
        self.ctx = FakeContext()
        self.changelog = Changelog()
        self.topic = f"{APP}-{builder.name}-changelog"
        self.store = self.open()

    def open(self) -> Any:
        """Build and open a new store instance on the same directory."""
        store = self.builder.build()
        store.init(StateStoreContext(
            application_id=APP, task_id=self.task_id, partition=0,
            state_dir=None if self.state_dir is None else self.state_dir / APP / self.task_id,
            app_configs={"statestore.cache.max.bytes": self.cache_max_bytes}, collector=self.collector,
            processor_context=self.ctx,
            changelog_topic=self.topic if self.builder.logging_enabled else None,
            default_key_serde=serdes.MSGPACK, default_value_serde=serdes.MSGPACK,
            extra={DEFER_RECORDS_EXTRA: self.defer_records, DEFER_BYTES_EXTRA: self.defer_bytes}))
        return store

    def commit(self) -> int:
        """Both phases, with the offset the simulated changelog reaches; returns records logged."""
        self.store.prepare_commit()
        n = self.changelog.capture(self.collector, self.topic)
        self.store.commit(self.changelog.end_offset if self.store.changelog_topic else None)
        return n


KINDS = ["leveldb", "leveldb-cached", "leveldb-sync", "in-memory", "in-memory-cached", "lru"]


def make_builder(kind: str, name: str = "s", key_serde: Any = serdes.STRING, value_serde: Any = serdes.MSGPACK,
                 timestamped: bool = False) -> Any:
    """A builder of the store kind ``kind`` (``-cached``: caching enabled; ``-sync``: LevelDB
    batches written in the committing thread)."""
    base = kind.removesuffix("-cached").removesuffix("-sync")
    if base == "leveldb":
        factory = (Stores.persistent_timestamped_key_value_store if timestamped
                   else Stores.persistent_key_value_store)
        supplier = factory(name, async_apply=not kind.endswith("-sync"))
    elif base == "in-memory":
        supplier = Stores.in_memory_key_value_store(name)
    else:
        supplier = Stores.lru_map(name, 1000)
    factory = Stores.timestamped_key_value_store_builder if timestamped else Stores.key_value_store_builder
    builder = factory(supplier, key_serde, value_serde)
    if kind.endswith("-cached"):
        builder.with_caching_enabled()
    return builder


