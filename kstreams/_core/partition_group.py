"""Input buffering of a task: one queue per input partition and the choice of the next record.

* Each :class:`RecordQueue` holds the raw records of one partition, in offset order. Only the
  head is deserialized and timestamp-extracted (lazily, as in Kafka Streams); a record that
  cannot be deserialized, or whose extracted timestamp is negative, is handled here.
* Partition time is the largest timestamp polled from the partition; stream time is the largest
  timestamp polled from the whole group. Neither ever decreases.
* :class:`PartitionGroup` picks the queue whose head has the smallest timestamp (ties: the queue
  created first) and applies ``max.task.idle.ms`` when some partitions have nothing buffered.

Raw records are either tuples ``(key, value, timestamp, offset, headers)`` with bytes key/value
and headers as a tuple of pairs or ``None``, or confluent-kafka ``Message`` objects
(``message_mode``); the loop reads both without building intermediate objects.
"""

from __future__ import annotations

import logging
import time

import cython

if cython.compiled:
    from cython.cimports.kstreams._core.record import Record, make_record
else:  # the same names, imported as plain Python modules
    from kstreams._core.record import Record, make_record

from kstreams.errors import TimestampError

log = logging.getLogger("kstreams.task")

FAIL_ON_INVALID = cython.declare(cython.int, 0)
LOG_AND_SKIP = cython.declare(cython.int, 1)
USE_PARTITION_TIME = cython.declare(cython.int, 2)
WALLCLOCK = cython.declare(cython.int, 3)
CUSTOM = cython.declare(cython.int, 4)
_COMPACT_AT = cython.declare(cython.Py_ssize_t, 4096)


class ConsumerRecord:
    """A deserialized input record as a custom timestamp extractor sees it."""

    __slots__ = ("topic", "partition", "offset", "timestamp", "key", "value", "headers")

    def __init__(self, topic: str, partition: int, offset: int, timestamp: int, key: object,
                 value: object, headers: tuple) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers

    def __repr__(self) -> str:
        return (f"ConsumerRecord(topic={self.topic!r}, partition={self.partition}, offset={self.offset}, "
                f"timestamp={self.timestamp}, key={self.key!r}, value={self.value!r})")


def group_messages(messages: list) -> tuple:
    """Split a consumer batch by partition: ``({(topic, partition): [message, ...]}, [error, ...])``.

    Messages keep their order within a partition; messages carrying an error are returned
    separately (their ``error()``), so the record loop never sees them.
    """
    groups: dict = {}
    errors: list = []
    last_key = None
    last_list: list = None
    for m in messages:
        err = m.error()
        if err is not None:
            errors.append(err)
            continue
        key = (m.topic(), m.partition())
        if last_list is not None and key == last_key:
            last_list.append(m)
            continue
        lst = groups.get(key)
        if lst is None:
            lst = []
            groups[key] = lst
        lst.append(m)
        last_key = key
        last_list = lst
    return groups, errors


class RecordQueue:
    """The buffered records of one input partition of a task.

    ``key_deserializer`` / ``value_deserializer`` are functions ``bytes -> object`` or ``None``
    for bytes passed through unchanged. ``error_handler(queue, offset, exc, is_key, key_bytes,
    value_bytes, timestamp, headers)`` decides what a deserialization failure does: it returns
    ``True`` to skip the record, or raises. ``add`` takes ownership of the list it is given.
    """

    def __init__(self, topic: str, partition: int, source: object, key_deserializer: object,
                 value_deserializer: object, extractor_kind: int, extractor: object,
                 error_handler: object) -> None:
        self.topic = topic
        self.partition = partition
        self.source = source
        self.key_deserializer = key_deserializer
        self.value_deserializer = value_deserializer
        self.extractor_kind = extractor_kind
        self.extractor = extractor
        self.error_handler = error_handler
        self._raw = []
        self._index = 0
        self._message_mode = False
        self.head = None
        self.head_offset = -1
        self.head_timestamp = -1
        self.partition_time = -1
        self.next_offset = -1

    def add(self, records: list, message_mode: cython.bint = False) -> cython.Py_ssize_t:
        """Append raw records (in offset order); returns the number of buffered records."""
        self._message_mode = message_mode
        if self._index == len(self._raw):
            self._raw = records if type(records) is list else list(records)
            self._index = 0
        else:
            self._raw.extend(records)
        if self.head is None:
            self._update_head()
        return self.size()

    def size(self) -> cython.Py_ssize_t:
        """Number of buffered records, the head included."""
        return len(self._raw) - self._index + (0 if self.head is None else 1)

    def poll(self) -> Record:
        """Remove and return the head; advance partition time and the committable offset."""
        record: Record = self.head
        ts: cython.longlong = self.head_timestamp
        if ts > self.partition_time:
            self.partition_time = ts
        self.next_offset = self.head_offset + 1
        self.head = None
        self._update_head()
        return record

    def _update_head(self) -> None:
        raw_list: list = self._raw
        n: cython.Py_ssize_t = len(raw_list)
        i: cython.Py_ssize_t = self._index
        offset: cython.longlong
        ts: cython.longlong
        key_deser = self.key_deserializer
        value_deser = self.value_deserializer
        while i < n:
            raw = raw_list[i]
            i += 1
            if self._message_mode:
                kb = raw.key()
                vb = raw.value()
                ts = raw.timestamp()[1]
                offset = raw.offset()
                hdrs = raw.headers()
                headers = () if hdrs is None else tuple(hdrs)
            else:
                t: tuple = raw
                kb = t[0]
                vb = t[1]
                ts = t[2]
                offset = t[3]
                hdrs = t[4]
                headers = () if hdrs is None else hdrs
            if kb is None or key_deser is None:
                key = kb
            else:
                try:
                    key = key_deser(kb)
                except Exception as exc:
                    self._index = i
                    if self.error_handler(self, offset, exc, True, kb, vb, ts, headers):
                        self.next_offset = offset + 1
                        continue
                    raise
            if vb is None or value_deser is None:
                value = vb
            else:
                try:
                    value = value_deser(vb)
                except Exception as exc:
                    self._index = i
                    if self.error_handler(self, offset, exc, False, kb, vb, ts, headers):
                        self.next_offset = offset + 1
                        continue
                    raise
            if self.extractor_kind != FAIL_ON_INVALID or ts < 0:
                ts = self._extract(raw, key, value, ts, offset, headers)
                if ts < 0:
                    self.next_offset = offset + 1
                    continue
            self.head = make_record(key, value, ts, headers)
            self.head_offset = offset
            self.head_timestamp = ts
            break
        if i >= _COMPACT_AT and i * 2 >= n:
            del raw_list[:i]
            i = 0
        self._index = i

    def _extract(self, raw: object, key: object, value: object, ts: cython.longlong,
                 offset: cython.longlong, headers: tuple) -> object:
        """Apply the timestamp extractor; a negative result means "drop this record"."""
        kind: cython.int = self.extractor_kind
        if kind == WALLCLOCK:
            return int(time.time() * 1000)
        if kind == CUSTOM:
            try:
                extracted = self.extractor.extract(
                    ConsumerRecord(self.topic, self.partition, offset, ts, key, value, headers),
                    self.partition_time)
            except Exception as exc:
                raise TimestampError(
                    f"Fatal user code error in TimestampExtractor callback for record at topic "
                    f"{self.topic!r} partition {self.partition} offset {offset}: {exc!r}") from exc
            if extracted is None or extracted < 0:
                log.warning("Skipping record due to negative extracted timestamp. topic=%s partition=%d "
                            "offset=%d extractedTimestamp=%s extractor=%r",
                            self.topic, self.partition, offset, extracted, self.extractor)
                return -1
            return extracted
        if ts >= 0:
            return ts
        if kind == FAIL_ON_INVALID:
            raise TimestampError(
                f"Input record at topic {self.topic!r} partition {self.partition} offset {offset} has "
                f"invalid (negative) timestamp {ts}. Use a different timestamp extractor "
                f"(default.timestamp.extractor) to process it.")
        if kind == LOG_AND_SKIP:
            log.warning("Input record at topic %s partition %d offset %d will be dropped because it has "
                        "an invalid (negative) timestamp %d.", self.topic, self.partition, offset, ts)
            return -1
        # USE_PARTITION_TIME
        if self.partition_time < 0:
            raise TimestampError(
                f"Could not infer new timestamp for input record at topic {self.topic!r} partition "
                f"{self.partition} offset {offset}: its timestamp {ts} is negative and the partition "
                f"time is not known yet.")
        log.warning("Input record at topic %s partition %d offset %d has invalid timestamp %d; using "
                    "partition time %d instead.", self.topic, self.partition, offset, ts, self.partition_time)
        return self.partition_time


class PartitionGroup:
    """The queues of one task, record selection, stream time and task idling."""

    def __init__(self, queues: list, max_task_idle_ms: int, lag_provider: object = None) -> None:
        self.queues = list(queues)
        self.num_queues = len(self.queues)
        self.nonempty = 0
        self.stream_time = -1
        self.max_task_idle_ms = max_task_idle_ms
        self._idle_deadlines = {}
        self.lag_provider = lag_provider
        self.enforced_processing = 0

    def add_records(self, queue: RecordQueue, records: list, message_mode: cython.bint = False) -> cython.Py_ssize_t:
        """Buffer raw records of ``queue``'s partition; returns that queue's size."""
        had_head: cython.bint = queue.head is not None
        size = queue.add(records, message_mode)
        if not had_head and queue.head is not None:
            self.nonempty += 1
            self._idle_deadlines.pop(queue, None)
        return size

    def ready(self, wall_clock: cython.longlong) -> cython.bint:
        """Whether the task may process now (Kafka Streams' ``readyToProcess``).

        With every partition buffered: yes. With ``max.task.idle.ms = -1``: yes if anything is
        buffered. Otherwise an empty partition blocks processing while its fetched lag is unknown
        or positive; with zero lag it blocks until ``max.task.idle.ms`` has passed on the wall
        clock since it was first seen empty, then processing is "enforced".
        """
        if self.nonempty == 0:
            return False
        if self.nonempty == self.num_queues or self.max_task_idle_ms < 0:
            return True
        enforced: cython.bint = False
        q: RecordQueue
        for q in self.queues:
            if q.head is not None:
                continue
            lag = 0 if self.lag_provider is None else self.lag_provider(q.topic, q.partition)
            if lag is None or lag != 0:
                self._idle_deadlines.pop(q, None)
                return False
            deadline = self._idle_deadlines.get(q)
            if deadline is None:
                deadline = wall_clock + self.max_task_idle_ms
                self._idle_deadlines[q] = deadline
            if wall_clock < deadline:
                return False
            enforced = True
        if enforced:
            self.enforced_processing += 1
        return True

    def next_queue(self) -> RecordQueue:
        """The queue whose head has the smallest timestamp (None if nothing is buffered)."""
        best: RecordQueue = None
        q: RecordQueue
        if self.num_queues == 1:
            q = self.queues[0]
            return q if q.head is not None else None
        for q in self.queues:
            if q.head is not None and (best is None or q.head_timestamp < best.head_timestamp):
                best = q
        return best

    def poll(self, queue: RecordQueue) -> Record:
        """Take the head of ``queue`` and advance stream time."""
        record: Record = queue.poll()
        if record.timestamp > self.stream_time:
            self.stream_time = record.timestamp
        if queue.head is None:
            self.nonempty -= 1
        return record
