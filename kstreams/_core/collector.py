"""The record collector: where sinks and change-logging stores hand over serialized records.

A collector either buffers its records for its driver to drain as ``(topic, partition, key,
value, timestamp, headers)`` tuples (the test driver and the in-process benchmark) or to send
later (the Kafka runtime while an exactly-once commit is in flight), or calls ``produce`` directly,
positionally as ``produce(topic, value, key, partition, callback, on_delivery, timestamp, headers)``,
or appends them to a compiled producer's ``OutputBuffer`` (:meth:`RecordCollector.use_output`),
which the Kafka runtime sends from another thread.
The Kafka runtime hands it its producer (:meth:`RecordCollector.use_producer`): a compiled
``RdKafkaProducer`` is then called from C, one call per record with no Python arguments built.

Partitioning follows Java's default partitioner: ``murmur2(key) & 0x7fffffff % partitions``
for non-null keys, so records land where Java producers and Kafka Streams put them.
"""

from __future__ import annotations

import cython

if cython.compiled:
    from cython.cimports.kstreams._core.producer import OutputBuffer, RdKafkaProducer
else:  # pure Python: records always go through ``produce``
    OutputBuffer = None
    RdKafkaProducer = None

_M = cython.declare(cython.uint, 0x5BD1E995)
_SEED = cython.declare(cython.uint, 0x9747B28C)
_MASK = cython.declare(cython.ulonglong, 0xFFFFFFFF)


def murmur2(data: bytes) -> cython.int:
    """Kafka's 32-bit murmur2 hash of ``data`` (signed, as Java's ``Utils.murmur2`` returns)."""
    buf: cython.p_uchar = data
    length: cython.Py_ssize_t = len(data)
    h: cython.ulonglong = (_SEED ^ length) & _MASK
    k: cython.ulonglong
    b0: cython.ulonglong
    b1: cython.ulonglong
    b2: cython.ulonglong
    b3: cython.ulonglong
    i: cython.Py_ssize_t = 0
    tail: cython.Py_ssize_t = length - (length & 3)
    while i < tail:
        b0 = buf[i]
        b1 = buf[i + 1]
        b2 = buf[i + 2]
        b3 = buf[i + 3]
        k = b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
        i += 4
    rest: cython.Py_ssize_t = length & 3
    if rest == 3:
        b2 = buf[tail + 2]
        h ^= b2 << 16
    if rest >= 2:
        b1 = buf[tail + 1]
        h ^= b1 << 8
    if rest >= 1:
        b0 = buf[tail]
        h ^= b0
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    if h >= 0x80000000:
        return cython.cast(cython.int, cython.cast(cython.longlong, h) - 0x100000000)
    return cython.cast(cython.int, h)


def murmur2_partition(key: bytes, num_partitions: cython.int) -> cython.int:
    """The partition Java's default partitioner picks for a non-null serialized key."""
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


class RecordCollector:
    """Collects the serialized output of a task (sinks and changelogs).

    ``partition_count_lookup(topic) -> int`` tells how many partitions a topic has; answers are
    cached. ``produce``: ``None`` to buffer, or a function called for every record.
    ``on_produce_error(exc, topic, value, key, partition, timestamp, headers)``, if given, is
    called when ``produce`` raises (a full queue, a record the client refuses) and decides: it
    returns (the record is handled) or raises. The hot path stays one direct ``produce`` call.
    """

    def __init__(self, partition_count_lookup: object, produce: object = None,
                 on_produce_error: object = None) -> None:
        self._buffer = []
        self._produce_fn = produce
        self._rdk = None
        self._out = None
        self.on_produce_error = on_produce_error
        self._partition_counts = {}
        self._partition_count_lookup = partition_count_lookup
        self._null_key_counters = {}
        self._last_topic = None
        self._last_count = 0
        self.sent = 0

    @property
    def produce(self) -> object:
        """The function each record is handed to (``None``: records are buffered)."""
        return self._produce_fn

    @produce.setter
    def produce(self, produce: object) -> None:
        self._produce_fn = produce
        self._rdk = None

    def use_producer(self, producer: object) -> None:
        """Hand records to ``producer.produce`` (``producer`` ``None``: buffer them). A compiled
        :class:`~kstreams._core.producer.RdKafkaProducer` is called directly, without building
        the Python call's arguments."""
        self.produce = None if producer is None else producer.produce
        if RdKafkaProducer is not None and type(producer) is RdKafkaProducer:
            self._rdk = producer

    def use_output(self, output: object) -> None:
        """Append every record to ``output``, a compiled producer's ``OutputBuffer`` (``None``:
        back to ``produce`` or the buffer). Its owner sends what it holds."""
        if output is not None and (OutputBuffer is None or type(output) is not OutputBuffer):
            raise TypeError("use_output needs the compiled producer's OutputBuffer")
        self._out = output

    def send(self, topic: str, key: object, value: object, timestamp: cython.longlong, headers: tuple,
             partition: cython.int) -> None:
        """Hand over one serialized record; ``partition`` -1 means "the default partitioner"."""
        if partition < 0:
            partition = self.default_partition(topic, key)
        self.sent += 1
        if self._out is not None:
            try:
                self._out.append(topic, partition, key, value, timestamp, headers)
            except Exception as exc:
                if self.on_produce_error is None:
                    raise
                self.on_produce_error(exc, topic, value, key, partition, timestamp,
                                      list(headers) if headers else None)
        elif self._produce_fn is None:
            # flat, six slots per record: no tuple per record, which (kept alive for the tens of
            # milliseconds an exactly-once commit takes) made the cyclic GC busy
            buf: list = self._buffer
            buf.append(topic)
            buf.append(partition)
            buf.append(key)
            buf.append(value)
            buf.append(timestamp)
            buf.append(headers)
        else:
            self._produce(topic, partition, key, value, timestamp, headers)

    def _produce(self, topic: str, partition: cython.int, key: object, value: object, timestamp: cython.longlong,
                 headers: tuple) -> None:
        try:
            if self._rdk is not None:
                self._rdk.send(topic, partition, key, value, timestamp, headers)
            else:
                self._produce_fn(topic, value, key, partition, None, None, timestamp,
                                 list(headers) if headers else None)
        except Exception as exc:
            if self.on_produce_error is None:
                raise
            self.on_produce_error(exc, topic, value, key, partition, timestamp, list(headers) if headers else None)

    def send_buffered(self) -> None:
        """Hand the buffered records to ``produce`` (which must be set), in the order they were sent."""
        buf: list = self._buffer
        self._buffer = []
        n: cython.Py_ssize_t = len(buf)
        i: cython.Py_ssize_t
        for i in range(0, n, 6):
            self._produce(buf[i], buf[i + 1], buf[i + 2], buf[i + 3], buf[i + 4], buf[i + 5])

    def partition_count(self, topic: str) -> cython.int:
        """Number of partitions of ``topic`` (looked up once, then cached)."""
        if topic is self._last_topic:
            return self._last_count
        count = self._partition_counts.get(topic)
        if count is None:
            count = self._partition_count_lookup(topic)
            if count is None or count < 1:
                raise LookupError(
                    f"Could not get partition information for topic {topic!r}. "
                    f"This can happen if the topic does not exist.")
            self._partition_counts[topic] = count
        self._last_topic = topic
        self._last_count = count
        return count

    def default_partition(self, topic: str, key: object) -> cython.int:
        """murmur2 of the key bytes, or round-robin for a null key."""
        n: cython.int = self.partition_count(topic)
        if n == 1:
            return 0
        if key is None:
            c = self._null_key_counters.get(topic, 0)
            self._null_key_counters[topic] = c + 1
            return c % n
        return murmur2_partition(key, n)

    def buffered(self) -> cython.Py_ssize_t:
        """Number of records buffered."""
        return len(self._buffer) // 6

    def drain(self) -> list:
        """Return and forget the buffered records, as ``(topic, partition, key, value, timestamp,
        headers)`` tuples."""
        buf: list = self._buffer
        self._buffer = []
        n: cython.Py_ssize_t = len(buf)
        i: cython.Py_ssize_t
        out = []
        for i in range(0, n, 6):
            out.append((buf[i], buf[i + 1], buf[i + 2], buf[i + 3], buf[i + 4], buf[i + 5]))
        return out
