"""TopologyTestDriver: run a topology in-process, with no broker, through the real record loop.

It follows Java's ``TopologyTestDriver``: records piped into an input topic are processed at
once, stream-time punctuations are checked after every record, wall-clock punctuations fire only
on :meth:`TopologyTestDriver.advance_wall_clock_time`, every record is followed by a commit, and
records written to a topic that a source reads are fed back in (so a repartition through a topic
works).

Beyond Java's driver, topics can have several partitions (``create_input_topic(...,
partitions=N)``): records go to partitions by murmur2 of the serialized key (or an explicit
``partition=``), and every sub-topology gets one task per partition, each with its own stream
time, punctuations and stores, exactly as the Kafka runtime runs them.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kstreams._core import RecordCollector, StreamTask, murmur2_partition, normalize_headers
from kstreams.config import StreamsConfig
from kstreams.state.directory import StateDirectory
from kstreams.state.keyvalue import share_cache
from kstreams.tasks import build_task, changelog_topic
from kstreams.topology import Subtopology, Topology

__all__ = ["TopologyTestDriver", "TestInputTopic", "TestOutputTopic", "TestRecord", "NoSuchElementError"]

log = logging.getLogger("kstreams.testing")
_driver_ids = itertools.count()


class NoSuchElementError(LookupError):
    """Reading from an output topic that has no (more) records."""


@dataclass(frozen=True)
class TestRecord:
    """A record read from an output topic."""

    __test__ = False  # not a pytest test class

    key: Any
    value: Any
    timestamp: int
    headers: tuple = ()

    @property
    def record_time(self) -> int:
        """Alias of ``timestamp`` (Java's ``getRecordTime``)."""
        return self.timestamp


class _Topic:
    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.partitions = partitions
        self.next_offset = [0] * partitions
        self.unread: list[tuple[int, bytes | None, bytes | None, int, tuple]] = []
        self.produced = False
        self._null_key_counter = 0

    def grow(self, partitions: int) -> None:
        if partitions > self.partitions:
            self.next_offset.extend([0] * (partitions - self.partitions))
            self.partitions = partitions

    def partition_for(self, key_bytes: bytes | None) -> int:
        if self.partitions == 1:
            return 0
        if key_bytes is None:
            self._null_key_counter += 1
            return (self._null_key_counter - 1) % self.partitions
        return murmur2_partition(key_bytes, self.partitions)


class TestInputTopic:
    """Pipes records into one source topic of a driver.

    Records without an explicit timestamp get the topic's clock, which starts at
    ``start_timestamp_ms`` and advances by ``auto_advance_ms`` after each record.
    """

    __test__ = False

    def __init__(self, driver: TopologyTestDriver, name: str, key_serde: Any, value_serde: Any,
                 start_timestamp_ms: int, auto_advance_ms: int) -> None:
        self._driver = driver
        self.name = name
        self._key_ser = key_serde.serialize
        self._value_ser = value_serde.serialize
        self._time = start_timestamp_ms
        self._advance = auto_advance_ms

    def advance_time(self, ms: int) -> None:
        """Move this topic's clock forward (not the driver's stream time or wall clock)."""
        if ms < 0:
            raise ValueError(f"advance must be non-negative, got {ms}")
        self._time += ms

    def pipe_input(self, key: Any, value: Any, timestamp: int | None = None, headers: Any = None, *,
                   partition: int | None = None) -> None:
        """Write one record and process everything that becomes processable."""
        if timestamp is None:
            timestamp = self._time
            self._time += self._advance
        kb = None if key is None else self._key_ser(key)
        vb = None if value is None else self._value_ser(value)
        self._driver._pipe(self.name, kb, vb, timestamp, normalize_headers(headers), partition)

    def pipe_value(self, value: Any, timestamp: int | None = None) -> None:
        """Write one record with a null key."""
        self.pipe_input(None, value, timestamp)

    def pipe_key_value_list(self, pairs: Iterable[tuple[Any, Any]], start_timestamp: int | None = None,
                            advance_ms: int = 0) -> None:
        """Write ``(key, value)`` pairs; timestamps from ``start_timestamp`` (or the topic clock)
        advancing by ``advance_ms`` per record."""
        ts = self._time if start_timestamp is None else start_timestamp
        for key, value in pairs:
            self.pipe_input(key, value, ts)
            ts += advance_ms
        if start_timestamp is None:
            self._time = ts

    def pipe_value_list(self, values: Iterable[Any], start_timestamp: int | None = None, advance_ms: int = 0) -> None:
        """Write values with null keys (timestamps as in :meth:`pipe_key_value_list`)."""
        self.pipe_key_value_list(((None, v) for v in values), start_timestamp, advance_ms)


class TestOutputTopic:
    """Reads (and consumes) the records a topology wrote to one topic, in production order."""

    __test__ = False

    def __init__(self, driver: TopologyTestDriver, name: str, key_serde: Any, value_serde: Any) -> None:
        self._driver = driver
        self.name = name
        self._key_de = key_serde.deserialize
        self._value_de = value_serde.deserialize

    def _take(self) -> tuple[int, bytes | None, bytes | None, int, tuple]:
        topic = self._driver._topics.get(self.name)
        if topic is None or not topic.produced:
            raise NoSuchElementError(f"Uninitialized topic: {self.name}")
        if not topic.unread:
            raise NoSuchElementError(f"Empty topic: {self.name}")
        return topic.unread.pop(0)

    def _decode(self, raw: tuple[int, bytes | None, bytes | None, int, tuple]) -> TestRecord:
        _, kb, vb, ts, headers = raw
        return TestRecord(None if kb is None else self._key_de(kb), None if vb is None else self._value_de(vb),
                          ts, headers)

    def read_record(self) -> TestRecord:
        """The next record (key, value, timestamp, headers)."""
        return self._decode(self._take())

    def read_value(self) -> Any:
        """The next record's value."""
        return self.read_record().value

    def read_key_value(self) -> tuple[Any, Any]:
        """The next record's ``(key, value)``."""
        r = self.read_record()
        return r.key, r.value

    def read_records_to_list(self) -> list[TestRecord]:
        """All remaining records."""
        out = []
        while not self.is_empty():
            out.append(self.read_record())
        return out

    def read_values_to_list(self) -> list[Any]:
        """All remaining values."""
        return [r.value for r in self.read_records_to_list()]

    def read_key_values_to_list(self) -> list[tuple[Any, Any]]:
        """All remaining ``(key, value)`` pairs."""
        return [(r.key, r.value) for r in self.read_records_to_list()]

    def read_key_values_to_map(self) -> dict[Any, Any]:
        """The last value per key among the remaining records (a ``None`` value removes the key)."""
        out: dict[Any, Any] = {}
        for r in self.read_records_to_list():
            if r.value is None:
                out.pop(r.key, None)
            else:
                out[r.key] = r.value
        return out

    def get_queue_size(self) -> int:
        """Number of unread records."""
        topic = self._driver._topics.get(self.name)
        return 0 if topic is None else len(topic.unread)

    def is_empty(self) -> bool:
        """Whether every record has been read."""
        return self.get_queue_size() == 0


class TopologyTestDriver:
    """Runs ``topology`` in-process; see the module docstring for the semantics.

    ``config`` is a Streams config (``application.id`` defaults to a generated name, the state
    directory to a temporary one deleted on :meth:`close`). ``initial_wall_clock_time_ms``
    starts the mocked wall clock (``None``: now).
    """

    def __init__(self, topology: Topology, config: Mapping[str, Any] | None = None, *,
                 initial_wall_clock_time_ms: int | None = None) -> None:
        props = dict(config or {})
        props.setdefault("application.id", f"dummy-topology-test-driver-app-id-{next(_driver_ids)}")
        self._own_state_dir = "state.dir" not in props
        if self._own_state_dir:
            props["state.dir"] = tempfile.mkdtemp(prefix="kstreams-driver-")
        self.config = StreamsConfig(props)
        self.application_id: str = self.config["application.id"]
        self._state_dir = Path(self.config["state.dir"])
        # an explicit state.dir is locked like KafkaStreams locks it: one owner per application directory
        self._state_directory: StateDirectory | None = None
        if not self._own_state_dir:
            self._state_directory = StateDirectory(self._state_dir, self.application_id)
            self._state_directory.lock()
        self._topology = topology
        self._wall_clock = int(time.time() * 1000) if initial_wall_clock_time_ms is None \
            else int(initial_wall_clock_time_ms)
        self._topics: dict[str, _Topic] = {}
        self._subtopologies = topology.subtopologies()
        self._sub_of_topic: dict[str, Subtopology] = {}
        for sub in self._subtopologies:
            for t in sub.source_topics:
                self._sub_of_topic[t] = sub
        self._tasks: dict[tuple[int, int], StreamTask] = {}
        self._collector = RecordCollector(self._partition_count)
        self._closed = False
        try:
            for sub in self._subtopologies:
                self._ensure_tasks(sub)
        except BaseException:
            self.close()
            raise

    # -- topics ---------------------------------------------------------------------------------------

    def _topic(self, name: str, partitions: int = 1) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic(name, partitions)
        return topic

    def _partition_count(self, name: str) -> int:
        return self._topic(name).partitions

    def _num_tasks(self, sub: Subtopology) -> int:
        return max(self._topic(t).partitions for t in sub.source_topics)

    def _ensure_tasks(self, sub: Subtopology) -> None:
        n = self._num_tasks(sub)
        for store in sub.store_names:
            self._topic(changelog_topic(self.application_id, store)).grow(n)
        for p in range(n):
            if (sub.id, p) in self._tasks:
                continue
            inputs = [t for t in sub.source_topics if self._topic(t).partitions > p]
            task = build_task(self._topology, sub, p, self.config, self._collector,
                              application_id=self.application_id, state_dir=self._state_dir,
                              input_topics=inputs, wall_clock=self._wall_clock)
            # one stream thread's worth of cache: the whole bound, split among every task's stores
            share_cache([s for t in (*self._tasks.values(), task) for s in t.stores.values()],
                        self.config["statestore.cache.max.bytes"])
            task.init_topology(self._wall_clock)
            self._tasks[(sub.id, p)] = task
            self._capture_outputs()

    def create_input_topic(self, name: str, *, key_serde: Any = None, value_serde: Any = None, partitions: int = 1,
                           start_timestamp_ms: int | None = None, auto_advance_ms: int = 0) -> TestInputTopic:
        """An input topic for source topic ``name`` (serdes default to the config's defaults).

        ``partitions`` > 1 gives the topic that many partitions (and its sub-topology that many
        tasks); it must be set before the first record is piped into the topic.
        """
        if name not in self._sub_of_topic:
            raise ValueError(f"Unknown topic: {name}")
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        topic = self._topic(name)
        if partitions != topic.partitions:
            if any(topic.next_offset):
                raise ValueError(f"topic {name} already has records; set partitions before piping input")
            topic.grow(partitions)
            self._ensure_tasks(self._sub_of_topic[name])
        start = self._wall_clock if start_timestamp_ms is None else start_timestamp_ms
        return TestInputTopic(self, name, key_serde or self.config["default.key.serde"],
                              value_serde or self.config["default.value.serde"], start, auto_advance_ms)

    def create_output_topic(self, name: str, *, key_serde: Any = None, value_serde: Any = None) -> TestOutputTopic:
        """An output topic reader for ``name`` (serdes default to the config's defaults)."""
        return TestOutputTopic(self, name, key_serde or self.config["default.key.serde"],
                               value_serde or self.config["default.value.serde"])

    def produced_topic_names(self) -> set[str]:
        """Every topic the topology wrote to (sinks, changelogs, dead-letter topics)."""
        return {name for name, t in self._topics.items() if t.produced}

    # -- processing -----------------------------------------------------------------------------------

    def _pipe(self, name: str, kb: bytes | None, vb: bytes | None, ts: int, headers: tuple,
              partition: int | None) -> None:
        self._check_open()
        if ts < 0:
            raise ValueError(f"timestamp must be non-negative, got {ts}")
        self._enqueue(name, kb, vb, ts, headers, partition)
        self._complete_all_processable_work()

    def _enqueue(self, name: str, kb: bytes | None, vb: bytes | None, ts: int, headers: tuple,
                 partition: int | None) -> None:
        sub = self._sub_of_topic.get(name)
        if sub is None:
            raise ValueError(f"Unknown topic: {name}")
        topic = self._topic(name)
        p = topic.partition_for(kb) if partition is None else partition
        if not 0 <= p < topic.partitions:
            raise ValueError(f"topic {name} has {topic.partitions} partitions; partition {p} does not exist")
        offset = topic.next_offset[p]
        topic.next_offset[p] += 1
        self._tasks[(sub.id, p)].add_records(name, p, [(kb, vb, ts, offset, headers)])

    def _capture_outputs(self) -> None:
        for topic_name, partition, kb, vb, ts, headers in self._collector.drain():
            topic = self._topic(topic_name)
            topic.produced = True
            topic.unread.append((partition, kb, vb, ts, headers))
            if topic_name in self._sub_of_topic:
                self._enqueue(topic_name, kb, vb, ts, headers, partition)
            else:
                topic.next_offset[partition] += 1

    def _commit(self, task: StreamTask) -> None:
        # the two-phase store commit of the runtime: changelog first, then the store's batch with
        # the offset its changelog partition reached
        stores = list(task.stores.values())
        for store in stores:
            store.prepare_commit()
        self._capture_outputs()
        for store in stores:
            topic = store.changelog_topic
            store.commit(None if topic is None else self._topic(topic).next_offset[store.changelog_partition])
        task.commit_needed = False
        task.context.commit_requested = False

    def _complete_all_processable_work(self) -> None:
        self._capture_outputs()
        while True:
            best: StreamTask | None = None
            best_ts = 0
            for task in self._tasks.values():
                if not task.has_buffered() or not task.group.ready(self._wall_clock):
                    continue
                ts = task.next_timestamp()
                if best is None or ts < best_ts:
                    best, best_ts = task, ts
            if best is None:
                break
            best.process(1, self._wall_clock)
            self._commit(best)
            self._capture_outputs()
        if any(t.has_buffered() for t in self._tasks.values()):
            log.info("Due to the max.task.idle.ms configuration, there are currently some records that cannot be "
                     "processed. Advancing wall-clock time or enqueuing records on the empty topics will allow "
                     "processing to continue.")

    def advance_wall_clock_time(self, ms: int) -> None:
        """Move the mocked wall clock forward, fire due wall-clock punctuations, then process."""
        self._check_open()
        if ms < 0:
            raise ValueError(f"advance must be non-negative, got {ms}")
        self._wall_clock += ms
        for task in self._tasks.values():
            task.punctuate_wall_clock(self._wall_clock)
            self._commit(task)
            self._capture_outputs()
        self._complete_all_processable_work()

    @property
    def wall_clock_time_ms(self) -> int:
        """The mocked wall-clock time."""
        return self._wall_clock

    # -- stores ---------------------------------------------------------------------------------------

    def get_key_value_store(self, name: str, partition: int | None = None) -> Any:
        """The key-value store ``name`` (of the task for ``partition`` when there are several)."""
        found = [(key[1], t.stores[name]) for key, t in self._tasks.items() if name in t.stores]
        if not found:
            raise KeyError(f"no state store named {name!r} in this topology")
        if partition is None:
            if len(found) > 1:
                raise ValueError(f"store {name!r} exists in {len(found)} tasks; pass partition=")
            return found[0][1]
        for p, store in found:
            if p == partition:
                return store
        raise KeyError(f"no task with partition {partition} holds store {name!r}")

    def get_all_state_stores(self) -> dict[str, Any]:
        """Stores by name (of the partition-0 tasks)."""
        out: dict[str, Any] = {}
        for _, task in sorted(self._tasks.items(), key=lambda kv: (kv[0][1] != 0, kv[0])):
            for name, store in task.stores.items():
                out.setdefault(name, store)
        return out

    def tasks(self) -> dict[str, StreamTask]:
        """The tasks by id (``"<sub-topology>_<partition>"``)."""
        return {t.task_id: t for t in self._tasks.values()}

    # -- lifecycle ------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("TopologyTestDriver is closed")

    def close(self) -> None:
        """Close processors and stores, and delete the temporary state directory."""
        if self._closed:
            return
        self._closed = True
        first: BaseException | None = None
        for task in self._tasks.values():
            try:
                task.close_topology()
            except Exception as exc:  # close every task, raise the first failure
                first = first or exc
            for store in task.stores.values():
                try:
                    store.close()
                except Exception as exc:
                    first = first or exc
        self._capture_outputs_after_close()
        if self._own_state_dir:
            shutil.rmtree(self._state_dir, ignore_errors=True)
        if self._state_directory is not None:
            self._state_directory.unlock()
        if first is not None:
            raise first

    def _capture_outputs_after_close(self) -> None:
        for topic_name, partition, kb, vb, ts, headers in self._collector.drain():
            topic = self._topic(topic_name)
            topic.produced = True
            topic.unread.append((partition, kb, vb, ts, headers))

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
