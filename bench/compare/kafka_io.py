"""Kafka plumbing of the comparison: topics, loading the input, and the output observer.

The observer watches a run's output topic through its last stable offsets while the system runs
(cheaply: the harness shares the machine with the system it measures), then reads every record
with a ``read_committed`` consumer for the verification, and works out the wall-clock time at
which the expected number of records had become visible: the end of the measured interval
("last output committed").
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.compare.dataset import Dataset

log = logging.getLogger("bench.compare")

TOPIC_TIMEOUT = 60.0
NO_RETENTION = {"retention.ms": "-1", "retention.bytes": "-1"}
"""Record timestamps are synthetic (in the past): keep time-based retention from deleting them."""
_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT,
              KafkaError._TRANSPORT}
"""Errors of an offsets query that a later sample gets past (a fresh topic, a busy broker)."""


def create_topic(admin: AdminClient, name: str, partitions: int, config: Mapping[str, str] | None = None,
                 timeout: float = TOPIC_TIMEOUT) -> None:
    """Create ``name`` (broker-default replication) and wait until every partition has a leader."""
    topic = NewTopic(name, num_partitions=partitions, replication_factor=-1, config=dict(config or {}))
    admin.create_topics([topic], operation_timeout=timeout)[name].result(timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            meta = admin.list_topics(name, timeout=10).topics[name]
            ready = meta.error is None and len(meta.partitions) == partitions and all(
                p.leader >= 0 for p in meta.partitions.values())
        except (KafkaException, KeyError):
            ready = False
        if ready:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} has no leader for every partition after {timeout:.0f} s")
        time.sleep(0.1)


def delete_topics_matching(admin: AdminClient, fragments: Iterable[str], timeout: float = TOPIC_TIMEOUT) -> list[str]:
    """Delete every topic whose name contains one of ``fragments``; return their names."""
    wanted = [f for f in fragments if f]
    names = [t for t in admin.list_topics(timeout=10).topics if any(f in t for f in wanted)]
    if names:
        for name, future in admin.delete_topics(names, operation_timeout=timeout).items():
            try:
                future.result(timeout)
            except KafkaException as exc:
                log.warning("could not delete topic %s: %s", name, exc)
    return names


def delete_group(admin: AdminClient, group: str) -> None:
    """Delete a consumer group, ignoring failures (best effort cleanup)."""
    try:
        for future in admin.delete_consumer_groups([group], request_timeout=10).values():
            future.result(15)
    except Exception as exc:  # the group may be gone already, or never have been created
        log.debug("could not delete group %s: %s", group, exc)


def load_input(bootstrap: str, topic: str, dataset: Dataset) -> float:
    """Produce the data set to ``topic`` (explicit partitions and timestamps); return the seconds taken.

    Raises ``RuntimeError`` if any record failed or the topic does not end up holding exactly
    the data set's records.
    """
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None and len(failures) < 5:
            failures.append(str(err))

    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 20,
        "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000, "compression.type": "none",
        "log_level": 3,  # not the harmless "coordinator load in progress" retries of a fresh broker
    })
    started = time.monotonic()
    for partition, key, value, timestamp in dataset.records():
        while True:
            try:
                producer.produce(topic, value, key, partition=partition, timestamp=timestamp, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(300)
    if remaining or failures:
        raise RuntimeError(f"loading {topic} failed: {remaining} undelivered, errors: {failures}")
    total = sum(topic_end_offsets(bootstrap, topic, dataset.spec.partitions))
    if total != len(dataset):
        raise RuntimeError(f"{topic} holds {total} records, the data set has {len(dataset)}")
    return time.monotonic() - started


def topic_end_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    """High watermarks of ``topic``'s partitions."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "kstreams-bench-offsets",
                         "enable.auto.commit": False})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                for p in range(partitions)]
    finally:
        consumer.close()


class OutputObserver(threading.Thread):
    """Watches a run's output topic while the run goes on, then reads it for the verification.

    Reading every output record while the system runs would cost the harness most of a core
    (a Python ``Message`` per record), taken from the system it measures on a small machine.
    So the run is watched through the partitions' last stable offsets (what a
    ``read_committed`` consumer can read up to), queried every ``sample_s``; the records are
    read only once the stable offsets add up to ``target`` (transaction markers take offsets
    too, so that is when the output may be complete), from the beginning, keeping each
    partition's record offsets. ``done_at`` is the wall-clock time (``time.time()``) at which
    ``target`` records had been read. After the system has stopped, :meth:`drain` reads up to
    the end of every partition; then ``reached_at`` is the first sample at which ``target``
    records lay below the stable offsets (the end of the measured interval, "last output
    committed", at most one sample late) and ``timeline`` holds the committed record count of
    every sample. All consumer calls happen on this thread.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: int, target: int, group: str,
                 sample_s: float = 0.05) -> None:
        super().__init__(name=f"observer-{topic}", daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.target = target
        self.sample_s = sample_s
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.count = 0
        """Records read so far."""
        self.visible = 0
        """Sum of the last stable offsets: an upper bound of the committed records (markers count)."""
        self.first_at: float | None = None
        self.last_at: float | None = None
        """When the output last grew (stable offsets or records read)."""
        self.done_at: float | None = None
        self.error: str | None = None
        self.ready = threading.Event()
        self.drained = threading.Event()
        self._draining = threading.Event()
        self._stop_event = threading.Event()
        self._samples: list[tuple[float, list[int]]] = []
        self._offsets = [array("q") for _ in range(partitions)]
        self._reading = False
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
            "fetch.queue.backoff.ms": 10,
            "queued.max.messages.kbytes": 262144,
        })

    def run(self) -> None:
        consumer = self._consumer
        try:
            self.ready.set()
            next_sample = 0.0
            next_check = 0.0
            while not self._stop_event.is_set():
                now = time.monotonic()
                if now >= next_sample:
                    next_sample = now + self.sample_s
                    self._sample()
                if not self._reading:
                    if self.visible >= self.target:
                        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING)
                                         for p in range(self.partitions)])
                        self._reading = True
                    else:
                        self._stop_event.wait(max(0.0, next_sample - time.monotonic()))
                    continue
                batch = consumer.consume(10_000, self.sample_s)
                if batch:
                    self._take(batch)
                if self._draining.is_set() and not self.drained.is_set() and time.monotonic() >= next_check:
                    next_check = time.monotonic() + 0.25
                    if not batch and self._at_end():
                        self.drained.set()
        except Exception as exc:  # reported by the run as a harness failure
            self.error = f"output observer failed: {exc!r}"
            log.exception("output observer failed")
        finally:
            self.ready.set()
            self.drained.set()
            consumer.close()

    def _sample(self) -> None:
        """Query every partition's last stable offset (the high watermark a read_committed
        consumer sees) and note it with the time."""
        consumer = self._consumer
        try:
            stable = [consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10, cached=False)[1]
                      for p in range(self.partitions)]
        except KafkaException as exc:
            if exc.args[0].code() not in _TRANSIENT:
                raise
            log.debug("output offsets not available yet: %s", exc)  # a fresh topic's leader: skip this sample
            return
        now = time.time()
        self._samples.append((now, stable))
        visible = sum(stable)
        if visible > self.visible:
            self.visible = visible
            self._grew(now)

    def _grew(self, now: float) -> None:
        if self.first_at is None:
            self.first_at = now
        self.last_at = now

    def _take(self, batch: list[Any]) -> None:
        keys = self.keys
        values = self.values
        offsets = self._offsets
        for message in batch:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("output consumer: %s", error)
                continue
            keys.append(message.key())
            values.append(message.value())
            offsets[message.partition()].append(message.offset())
        if len(values) > self.count:
            now = time.time()
            self.count = len(values)
            self._grew(now)
            if self.done_at is None and self.count >= self.target:
                self.done_at = now

    def progress(self) -> str:
        """How far the output has got, for a message: records read, or committed offsets seen."""
        return str(self.count) if self._reading else f"~{self.visible} (committed offsets)"

    def _committed_at(self, stable: list[int]) -> int:
        """Records below the stable offsets ``stable`` (exact once the output has been drained)."""
        return sum(bisect.bisect_left(self._offsets[p], stable[p]) for p in range(self.partitions))

    @property
    def timeline(self) -> list[tuple[float, int]]:
        """``(wall time, committed records)`` of every sample: the shape of the run's output."""
        return [(t, self._committed_at(stable)) for t, stable in self._samples]

    @property
    def reached_at(self) -> float | None:
        """When ``target`` records had been committed (the first such sample); ``None`` before
        :meth:`drain` has read them."""
        if self.done_at is None:
            return None
        for t, stable in self._samples:
            if self._committed_at(stable) >= self.target:
                return t
        return self.done_at

    def _at_end(self) -> bool:
        consumer = self._consumer
        for p in range(self.partitions):
            tp = TopicPartition(self.topic, p)
            high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
            position = consumer.position([tp])[0].offset
            if high > 0 and position < high:
                return False
        return True

    def drain(self, timeout: float) -> bool:
        """Read to the end of every partition; False if that took longer than ``timeout``."""
        self._draining.set()
        if not self._reading:
            self.visible = max(self.visible, self.target)  # start reading, whatever the offsets say
        return self.drained.wait(timeout)

    def stop(self) -> None:
        """Stop reading and close the consumer."""
        self._stop_event.set()
        self.join(30)

    def records(self) -> Iterable[tuple[bytes | None, bytes | None]]:
        """Every ``(key, value)`` read."""
        return zip(self.keys, self.values, strict=True)
