# cython: language_level=3
"""Consumed records straight from librdkafka into the task queues' raw record tuples.

A :class:`Fetcher` owns one librdkafka queue of a consumer. The fetch queues of the partitions
it is given (:meth:`Fetcher.forward`, called before they are assigned) are routed to it, so
their records skip confluent-kafka's ``Message`` objects: :meth:`Fetcher.fetch` builds, per
record, the tuple ``(key, value, timestamp, offset, headers)`` that
:class:`~kstreams._core.partition_group.RecordQueue` buffers, already grouped by partition.
Everything else of the consumer (rebalances, errors of the group, commits) stays on its own
queue, served by confluent-kafka's ``consume()``/``poll()`` as before; records of partitions
not forwarded keep arriving there too.

Forwarding outlives a revocation (librdkafka keeps an application's routing of a partition):
records of a partition assigned again later come here as well, in offset order.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t

from kstreams._core.rdkafka cimport (
    RD_KAFKA_CONSUMER,
    RD_KAFKA_RESP_ERR__PARTITION_EOF,
    RD_KAFKA_RESP_ERR_NO_ERROR,
    Api,
    api,
    client_handle,
    client_open_on,
    message_headers,
    rd_kafka_message_t,
    rd_kafka_queue_t,
    rd_kafka_t,
    rd_kafka_topic_t,
)

from confluent_kafka import KafkaError


cdef class Fetcher:
    """The compiled record path of one open confluent-kafka ``Consumer`` (``client.id`` ``client_id``).

    Construction raises ``ImportError`` when the consumer's librdkafka cannot be reached
    directly; the caller then keeps using ``consume()``. ``close()`` before the consumer closes.
    """

    cdef object _consumer
    cdef Api *_api
    cdef rd_kafka_t *_rk
    cdef rd_kafka_queue_t *_queue
    cdef rd_kafka_message_t **_batch
    cdef Py_ssize_t _batch_size

    def __cinit__(self, consumer, str client_id, Py_ssize_t max_batch):
        self._api = api()
        self._rk = client_handle(consumer, RD_KAFKA_CONSUMER, client_id)
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, got {max_batch}")
        self._batch = <rd_kafka_message_t **>PyMem_Malloc(max_batch * sizeof(rd_kafka_message_t *))
        if self._batch == NULL:
            raise MemoryError()
        self._batch_size = max_batch
        self._queue = self._api.queue_new(self._rk)
        self._consumer = consumer

    def __dealloc__(self):
        self._release()

    cdef void _release(self) noexcept:
        if self._queue != NULL:
            # once the consumer is closed its client is destroyed, and destroying the queue would
            # touch it: the queue is then left as it is (a small leak, only when closed out of order)
            if client_open_on(self._consumer, self._rk):
                self._api.queue_destroy(self._queue)
            self._queue = NULL
        if self._batch != NULL:
            PyMem_Free(self._batch)
            self._batch = NULL
        self._consumer = None

    cdef void _check_open(self) except *:
        if self._queue == NULL:
            raise ValueError("the fetcher is closed")
        if not client_open_on(self._consumer, self._rk):
            raise ValueError("the consumer of the fetcher is closed")

    def close(self):
        """Release the queue (records still in it are dropped: their offsets were not committed)."""
        cdef Py_ssize_t n
        if self._queue != NULL and client_open_on(self._consumer, self._rk):
            while True:
                n = self._api.consume_batch_queue(self._queue, 0, self._batch, self._batch_size)
                if n <= 0:
                    break
                for i in range(n):
                    self._api.message_destroy(self._batch[i])
        self._release()

    def forward(self, list topic_partitions):
        """Route the records of these ``(topic, partition)`` pairs here (call before assigning them)."""
        cdef rd_kafka_queue_t *pq
        self._check_open()
        for topic, partition in topic_partitions:
            pq = self._api.queue_get_partition(self._rk, (<str>topic).encode(), <int>partition)
            if pq == NULL:
                raise ValueError(f"librdkafka has no partition {topic}-{partition}")
            self._api.queue_forward(pq, self._queue)
            self._api.queue_destroy(pq)

    def fetch(self, double timeout):
        """Wait up to ``timeout`` seconds for records; returns ``(records, errors)``.

        ``records``: ``{(topic, partition): [(key, value, timestamp, offset, headers), ...]}`` in
        offset order, ``headers`` a tuple of ``(name, value)`` pairs or ``None``; ``errors``: the
        consumer errors met (``KafkaError``), end-of-partition events left out.
        """
        cdef dict groups = {}
        cdef list errors = []
        cdef dict topics = {}
        cdef list current = None
        cdef rd_kafka_topic_t *current_rkt = NULL
        cdef int current_partition = -1
        cdef rd_kafka_message_t *m
        cdef Py_ssize_t n, i
        cdef int timeout_ms = <int>(timeout * 1000) if timeout > 0 else 0
        cdef int tstype
        cdef int64_t ts
        cdef Api *a = self._api
        self._check_open()
        with nogil:
            n = a.consume_batch_queue(self._queue, timeout_ms, self._batch, self._batch_size)
        if n <= 0:
            return groups, errors
        try:
            for i in range(n):
                m = self._batch[i]
                if m.err != RD_KAFKA_RESP_ERR_NO_ERROR:
                    if m.err != RD_KAFKA_RESP_ERR__PARTITION_EOF:
                        errors.append(KafkaError(m.err, (<bytes>a.message_errstr(m)).decode(errors="replace")))
                    continue
                if m.rkt != current_rkt or m.partition != current_partition:
                    topic = topics.get(<size_t>m.rkt)
                    if topic is None:
                        topic = (<bytes>a.topic_name(m.rkt)).decode()
                        topics[<size_t>m.rkt] = topic
                    key = (topic, m.partition)
                    current = groups.get(key)
                    if current is None:
                        current = []
                        groups[key] = current
                    current_rkt = m.rkt
                    current_partition = m.partition
                ts = a.message_timestamp(m, &tstype)
                current.append((
                    PyBytes_FromStringAndSize(<char *>m.key, m.key_len) if m.key != NULL else None,
                    PyBytes_FromStringAndSize(<char *>m.payload, m.len) if m.payload != NULL else None,
                    ts,
                    m.offset,
                    None if (headers := message_headers(a, m)) is None else tuple(headers),
                ))
        finally:
            for i in range(n):
                a.message_destroy(self._batch[i])
        return groups, errors
