# cython: language_level=3
"""The stream threads' producer, on librdkafka's C API.

:class:`RdKafkaProducer` offers the part of ``confluent_kafka.Producer`` a stream thread uses,
with the same signatures, errors and callbacks, so either can serve it. What it saves per record:
the argument parsing of ``produce()`` (topics are cached as librdkafka topic handles), and the
per-record delivery bookkeeping confluent-kafka needs to offer ``on_delivery`` (it allocates a
state per record and reports every delivery to its callback, skipping successes itself). Here
librdkafka's own ``delivery.report.only.error`` is used: only failed records are reported, to
``on_delivery(err, message)`` with a ``confluent_kafka.Message``, while the thread polls or flushes.

Config values must be strings, numbers or booleans, except ``logger``: a ``logging.Logger`` that
receives librdkafka's log lines (as confluent-kafka's ``logger``) while the thread polls or
flushes, instead of librdkafka printing them to stderr. Other callables need confluent-kafka's
producer.

:class:`OutputBuffer` holds serialized records in one block of memory until
:meth:`RdKafkaProducer.send_buffer` queues them all without the GIL: the producer's own work per
record (a message allocated, copied and queued for its partition) can run on another thread
while the stream thread goes on processing.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from kstreams._core.rdkafka cimport (
    RD_KAFKA_CONF_OK,
    RD_KAFKA_MSG_F_COPY,
    RD_KAFKA_PRODUCER,
    RD_KAFKA_RESP_ERR__FATAL,
    RD_KAFKA_RESP_ERR__QUEUE_FULL,
    RD_KAFKA_RESP_ERR_NO_ERROR,
    RD_KAFKA_VTYPE_HEADERS,
    RD_KAFKA_VTYPE_KEY,
    RD_KAFKA_VTYPE_MSGFLAGS,
    RD_KAFKA_VTYPE_PARTITION,
    RD_KAFKA_VTYPE_RKT,
    RD_KAFKA_VTYPE_TIMESTAMP,
    RD_KAFKA_VTYPE_VALUE,
    Api,
    api,
    message_headers,
    rd_kafka_conf_t,
    rd_kafka_consumer_group_metadata_t,
    rd_kafka_error_t,
    rd_kafka_headers_t,
    rd_kafka_message_t,
    rd_kafka_t,
    rd_kafka_topic_partition_list_t,
    rd_kafka_topic_partition_t,
    rd_kafka_topic_t,
    rd_kafka_vu_t,
)

import logging

from confluent_kafka import KafkaError, KafkaException, Message

from kstreams._core import rdkafka


cdef int _ms(object timeout):
    """Seconds (``None`` or negative: no limit) as librdkafka's milliseconds."""
    if timeout is None or timeout < 0:
        return -1
    return <int>(timeout * 1000)


cdef object _exception(Api *a, rd_kafka_error_t *error):
    """The ``KafkaException`` of a librdkafka error object, which is destroyed."""
    err = KafkaError(a.error_code(error), (<bytes>a.error_string(error)).decode(errors="replace"),
                     fatal=bool(a.error_is_fatal(error)), retriable=bool(a.error_is_retriable(error)),
                     txn_requires_abort=bool(a.error_txn_requires_abort(error)))
    a.error_destroy(error)
    return KafkaException(err)


cdef void _delivery_failed(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) noexcept with gil:
    cdef RdKafkaProducer self = <RdKafkaProducer>opaque
    cdef int tstype = 0
    cdef Api *a = self._api
    if m.err == RD_KAFKA_RESP_ERR_NO_ERROR or self._on_delivery is None:
        return
    try:
        err = KafkaError(m.err, (<bytes>a.err2str(m.err)).decode(errors="replace"))
        ts = a.message_timestamp(m, &tstype)
        msg = Message(topic=(<bytes>a.topic_name(m.rkt)).decode(), partition=m.partition,
                      key=PyBytes_FromStringAndSize(<char *>m.key, m.key_len) if m.key != NULL else None,
                      value=PyBytes_FromStringAndSize(<char *>m.payload, m.len) if m.payload != NULL else None,
                      headers=message_headers(a, m), timestamp=(tstype, ts), error=err)
        self._on_delivery(err, msg)
    except BaseException as exc:
        if self._callback_error is None:
            self._callback_error = exc


cdef void _client_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) noexcept with gil:
    cdef RdKafkaProducer self = <RdKafkaProducer>opaque
    cdef char buf[512]
    if self._on_error is None:
        return
    try:
        fatal = err == RD_KAFKA_RESP_ERR__FATAL
        if fatal:  # the error that made the producer fail, as confluent-kafka reports it
            err = self._api.fatal_error(rk, buf, sizeof(buf))
            reason = buf
        self._on_error(KafkaError(err, (<bytes>reason).decode(errors="replace"), fatal=fatal))
    except BaseException as exc:
        if self._callback_error is None:
            self._callback_error = exc


# librdkafka's syslog levels (0 emergency .. 7 debug) as logging levels
_LOG_LEVELS = (logging.CRITICAL, logging.CRITICAL, logging.CRITICAL, logging.ERROR, logging.WARNING,
               logging.INFO, logging.INFO, logging.DEBUG)


cdef void _client_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) noexcept with gil:
    cdef Api *a = api()
    cdef void *opaque = a.opaque(rk)
    if opaque == NULL:
        return
    cdef RdKafkaProducer self = <RdKafkaProducer>opaque
    if self._logger is None:
        return
    try:
        self._logger.log(_LOG_LEVELS[min(max(level, 0), 7)], "%s [%s] %s", (<bytes>fac).decode(errors="replace"),
                         (<bytes>a.name(rk)).decode(errors="replace"), (<bytes>buf).decode(errors="replace"))
    except Exception:
        pass  # a log line that cannot be logged is dropped: it must not stop the stream thread


cdef class RdKafkaProducer:
    """A librdkafka producer with ``confluent_kafka.Producer``'s calls for what a stream thread does.

    ``config``: librdkafka properties; ``on_delivery(err, message)`` is called for each record
    that could not be delivered; ``error_cb(err)`` for client errors (``err.fatal()`` when the
    producer cannot go on). Raises ``ImportError`` if librdkafka cannot be bound directly, and
    ``KafkaException`` for a property librdkafka refuses.
    """

    def __cinit__(self, dict config, on_delivery=None, error_cb=None):
        cdef char errstr[512]
        cdef rd_kafka_conf_t *conf
        self._api = api()
        reason = rdkafka.unavailable_reason()
        if reason is not None:
            raise ImportError(reason)
        self._topics = {}
        properties = dict(config)
        properties["delivery.report.only.error"] = True
        logger = properties.pop("logger", None)
        if logger is not None:
            if not isinstance(logger, logging.Logger):
                raise TypeError(f"producer property 'logger' must be a logging.Logger, not {type(logger).__name__}")
            properties["log.queue"] = True  # served by poll() and flush(), never from librdkafka's threads
        conf = self._api.conf_new()
        try:
            for key, value in properties.items():
                if callable(value):
                    raise ValueError(f"producer property {key!r}: a callable needs confluent_kafka.Producer")
                text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                if self._api.conf_set(conf, str(key).encode(), text.encode(), errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK:
                    raise KafkaException(KafkaError(KafkaError._INVALID_ARG, (<bytes>errstr).decode(errors="replace")))
        except BaseException:
            self._api.conf_destroy(conf)
            raise
        self._api.conf_set_opaque(conf, <void *>self)
        self._api.conf_set_dr_msg_cb(conf, _delivery_failed)
        self._api.conf_set_error_cb(conf, _client_error)
        if logger is not None:
            self._api.conf_set_log_cb(conf, _client_log)
        self._on_delivery = on_delivery
        self._on_error = error_cb
        self._logger = logger
        self._rk = self._api.new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))
        if self._rk == NULL:
            self._api.conf_destroy(conf)
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG, (<bytes>errstr).decode(errors="replace")))
        if logger is not None:
            self._api.set_log_queue(self._rk, NULL)  # the main queue, which poll() and flush() serve

    def __dealloc__(self):
        self._on_delivery = None
        self._on_error = None
        self._logger = None
        self._destroy()

    cdef void _destroy(self) noexcept:
        cdef rd_kafka_t *rk = self._rk
        if rk == NULL:
            return
        self._rk = NULL
        if self._topics:
            for handle in self._topics.values():
                self._api.topic_destroy(<rd_kafka_topic_t *><size_t>handle)
            self._topics.clear()
        self._last_topic = None
        self._last_rkt = NULL
        with nogil:
            self._api.destroy(rk)

    cdef rd_kafka_t *_handle(self) except NULL:
        if self._rk == NULL:
            raise RuntimeError("the producer is closed")
        return self._rk

    cdef void _raise_callback_error(self) except *:
        exc = self._callback_error
        if exc is not None:
            self._callback_error = None
            raise exc

    def close(self):
        """Destroy the producer (records not yet delivered are dropped; flush first)."""
        self._destroy()

    def __len__(self):
        return self._api.outq_len(self._handle())

    cdef rd_kafka_topic_t *_topic(self, str topic) except NULL:
        handle = self._topics.get(topic)
        cdef rd_kafka_topic_t *rkt
        if handle is None:
            rkt = self._api.topic_new(self._handle(), topic.encode(), NULL)
            if rkt == NULL:
                raise KafkaException(KafkaError(KafkaError._INVALID_ARG, f"invalid topic {topic!r}"))
            self._topics[topic] = <size_t>rkt
        else:
            rkt = <rd_kafka_topic_t *><size_t>handle
        self._last_topic = topic
        self._last_rkt = rkt
        return rkt

    def produce(self, str topic, object value=None, object key=None, int partition=-1, object callback=None,
                object on_delivery=None, long long timestamp=0, object headers=None):
        """Queue one record (``confluent_kafka.Producer.produce``'s positional order; no per-record
        callbacks). ``BufferError`` when the queue is full; ``KafkaException`` when refused."""
        if callback is not None or on_delivery is not None:
            raise ValueError("per-record delivery callbacks are not supported; pass on_delivery to the producer")
        self.send(topic, partition, key, value, timestamp, headers)

    cdef int send(self, str topic, int partition, object key, object value, long long timestamp,
                  object headers) except -1:
        """:meth:`produce` as a C call, for the record collector: ``headers`` are ``(name, value)``
        pairs or empty."""
        cdef rd_kafka_vu_t *vus = self._vus
        cdef rd_kafka_headers_t *hdrs = NULL
        cdef rd_kafka_error_t *error
        cdef size_t n = 6
        cdef int code
        if value is not None and type(value) is not bytes:
            raise TypeError(f"record value must be bytes or None, not {type(value).__name__}")
        if key is not None and type(key) is not bytes:
            raise TypeError(f"record key must be bytes or None, not {type(key).__name__}")
        vus[0].vtype = RD_KAFKA_VTYPE_RKT
        vus[0].u.rkt = self._last_rkt if topic is self._last_topic and self._rk != NULL else self._topic(topic)
        vus[1].vtype = RD_KAFKA_VTYPE_PARTITION
        vus[1].u.i32 = partition
        vus[2].vtype = RD_KAFKA_VTYPE_VALUE
        vus[2].u.mem.ptr = PyBytes_AS_STRING(value) if value is not None else NULL
        vus[2].u.mem.size = PyBytes_GET_SIZE(value) if value is not None else 0
        vus[3].vtype = RD_KAFKA_VTYPE_KEY
        vus[3].u.mem.ptr = PyBytes_AS_STRING(key) if key is not None else NULL
        vus[3].u.mem.size = PyBytes_GET_SIZE(key) if key is not None else 0
        vus[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        vus[4].u.i = RD_KAFKA_MSG_F_COPY
        vus[5].vtype = RD_KAFKA_VTYPE_TIMESTAMP
        vus[5].u.i64 = timestamp
        if headers:
            hdrs = self._headers(headers)
            vus[6].vtype = RD_KAFKA_VTYPE_HEADERS
            vus[6].u.headers = hdrs
            n = 7
        error = self._api.produceva(self._rk, vus, n)
        if error == NULL:
            return 0
        if hdrs != NULL:  # librdkafka owns the headers only once the record is queued
            self._api.headers_destroy(hdrs)
        code = self._api.error_code(error)
        if code == RD_KAFKA_RESP_ERR__QUEUE_FULL:
            self._api.error_destroy(error)
            raise BufferError("Local: Queue full")
        raise _exception(self._api, error)

    cdef rd_kafka_headers_t *_headers(self, object headers) except NULL:
        cdef rd_kafka_headers_t *hdrs = self._api.headers_new(len(headers))
        cdef bytes name
        try:
            for pair in headers:
                name = (<str>pair[0]).encode() if not isinstance(pair[0], bytes) else pair[0]
                value = pair[1]
                if isinstance(value, str):
                    value = (<str>value).encode()
                if value is None:
                    self._api.header_add(hdrs, name, len(name), NULL, 0)
                else:
                    self._api.header_add(hdrs, name, len(name), PyBytes_AS_STRING(<bytes>value), len(<bytes>value))
        except BaseException:
            self._api.headers_destroy(hdrs)
            raise
        return hdrs

    def send_buffer(self, OutputBuffer records, object on_error=None, double max_block=60.0):
        """Queue every record of ``records`` (a buffer made for this producer), in order, with the
        GIL released; ``records`` is emptied. A full queue is waited on (deliveries served) for
        up to ``max_block`` seconds, as Java's ``send`` blocks up to ``max.block.ms``. A record
        the producer refuses goes to ``on_error(exc, topic, value, key, partition, timestamp,
        headers)`` (the collector's ``on_produce_error`` signature), then the rest follow;
        without ``on_error`` its ``KafkaException`` is raised and the records after it are
        dropped. Returns how many records were queued."""
        cdef rd_kafka_t *rk = self._handle()
        cdef size_t pos = 0
        cdef size_t end = records._len
        cdef const char *data = records._data
        cdef Py_ssize_t sent = 0
        cdef double max_block_ms = max_block * 1000.0
        cdef rd_kafka_error_t *error
        cdef const _Rec *rec
        cdef const char *body
        cdef size_t klen
        cdef size_t vlen
        if records._producer is not self:
            raise ValueError("the records were buffered for another producer")
        try:
            while pos < end:
                with nogil:
                    error = _send_from(self._api, rk, data, end, &pos, max_block_ms, &sent)
                if error == NULL:
                    break
                rec = <const _Rec *>(data + pos)
                if self._api.error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL:
                    self._api.error_destroy(error)
                    exc = KafkaException(KafkaError(KafkaError._QUEUE_FULL,
                                                    f"producer queue still full after {max_block:.0f} s"))
                else:
                    exc = _exception(self._api, error)
                pos += _rec_size(rec)
                if on_error is None:
                    raise exc
                body = <const char *>rec + sizeof(_Rec)
                klen = rec.key_len if rec.key_len > 0 else 0
                vlen = rec.value_len if rec.value_len > 0 else 0
                on_error(exc, (<bytes>self._api.topic_name(rec.rkt)).decode(),
                         PyBytes_FromStringAndSize(body + klen, vlen) if rec.value_len >= 0 else None,
                         PyBytes_FromStringAndSize(body, klen) if rec.key_len >= 0 else None,
                         rec.partition, rec.timestamp,
                         _read_headers(body + klen + vlen, rec.headers_len) if rec.headers_len else None)
        finally:
            records._release()
        self._raise_callback_error()
        return sent

    def poll(self, timeout=None):
        """Serve delivery failures and client errors; wait up to ``timeout`` seconds for one."""
        cdef rd_kafka_t *rk = self._handle()
        cdef int ms = _ms(timeout)
        cdef int served
        if ms == 0:
            served = self._api.poll(rk, 0)
        else:
            with nogil:
                served = self._api.poll(rk, ms)
        self._raise_callback_error()
        return served

    def flush(self, timeout=None):
        """Wait until every queued record is delivered or failed; returns how many are left."""
        cdef rd_kafka_t *rk = self._handle()
        cdef int ms = _ms(timeout)
        with nogil:
            self._api.flush(rk, ms)
        self._raise_callback_error()
        return self._api.outq_len(rk)

    cdef void _check(self, rd_kafka_error_t *error) except *:
        """Raise what a callback served during the call raised, else the call's own error."""
        exc = _exception(self._api, error) if error != NULL else None
        self._raise_callback_error()
        if exc is not None:
            raise exc

    cdef void _blocking(self, txn_call_t call, object timeout) except *:
        """A transactional call taking a timeout, run without the GIL."""
        cdef rd_kafka_t *rk = self._handle()
        cdef int ms = _ms(timeout)
        cdef rd_kafka_error_t *error
        with nogil:
            error = call(rk, ms)
        self._check(error)

    def init_transactions(self, timeout=None):
        """Register the ``transactional.id`` (fencing older producers with it)."""
        self._blocking(self._api.init_transactions, timeout)

    def begin_transaction(self):
        """Start a transaction."""
        self._check(self._api.begin_transaction(self._handle()))

    def send_offsets_to_transaction(self, list offsets, bytes group_metadata, timeout=None):
        """Add consumed offsets (``TopicPartition``s, metadata included) to the transaction."""
        cdef rd_kafka_t *rk = self._handle()
        cdef int ms = _ms(timeout)
        cdef rd_kafka_error_t *error
        cdef rd_kafka_consumer_group_metadata_t *cgmd = NULL
        cdef rd_kafka_topic_partition_list_t *tps
        cdef rd_kafka_topic_partition_t *elem
        cdef bytes metadata
        error = self._api.consumer_group_metadata_read(&cgmd, PyBytes_AS_STRING(group_metadata),
                                                       PyBytes_GET_SIZE(group_metadata))
        self._check(error)
        tps = self._api.topic_partition_list_new(len(offsets))
        try:
            for tp in offsets:
                elem = self._api.topic_partition_list_add(tps, (<str>tp.topic).encode(), tp.partition)
                elem.offset = tp.offset
                if tp.metadata:
                    # NUL-terminated and counted with its NUL, as confluent-kafka commits metadata:
                    # its reader (``committed()``) takes the stored bytes for a C string
                    metadata = (<str>tp.metadata).encode()
                    elem.metadata = malloc(len(metadata) + 1)  # the list frees it
                    if elem.metadata == NULL:
                        raise MemoryError()
                    memcpy(elem.metadata, PyBytes_AS_STRING(metadata), len(metadata) + 1)
                    elem.metadata_size = len(metadata) + 1
            with nogil:
                error = self._api.send_offsets_to_transaction(rk, tps, cgmd, ms)
        finally:
            self._api.topic_partition_list_destroy(tps)
            self._api.consumer_group_metadata_destroy(cgmd)
        self._check(error)

    def commit_transaction(self, timeout=None):
        """Flush and commit the transaction."""
        self._blocking(self._api.commit_transaction, timeout)

    def abort_transaction(self, timeout=None):
        """Abort the transaction (queued and in-flight records are purged)."""
        self._blocking(self._api.abort_transaction, timeout)


cdef struct _Rec:
    # one record of an OutputBuffer; its key, value and headers follow, then padding to 8 bytes
    rd_kafka_topic_t *rkt
    long long timestamp
    int partition
    int key_len  # -1: null
    int value_len  # -1: null
    int headers_len  # bytes of the headers section (0: none): per header its name's length, the
    # name, its value's length (-1: null) and the value


cdef inline size_t _padded(size_t size) noexcept nogil:
    return (size + 7) & ~(<size_t>7)


cdef inline size_t _rec_size(const _Rec *rec) noexcept nogil:
    return _padded(sizeof(_Rec) + <size_t>(rec.key_len if rec.key_len > 0 else 0)
                   + <size_t>(rec.value_len if rec.value_len > 0 else 0) + <size_t>rec.headers_len)


cdef inline double _monotonic_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6


cdef inline int _read_int(const char *p) noexcept nogil:
    cdef int v
    memcpy(&v, p, sizeof(int))
    return v


cdef rd_kafka_headers_t *_build_headers(Api *a, const char *p, size_t size) noexcept nogil:
    cdef const char *end = p + size
    cdef rd_kafka_headers_t *hdrs = a.headers_new(4)
    cdef int name_len
    cdef int value_len
    cdef const char *name
    while p < end:
        name_len = _read_int(p)
        name = p + sizeof(int)
        p = name + name_len
        value_len = _read_int(p)
        p += sizeof(int)
        if value_len < 0:
            a.header_add(hdrs, name, name_len, NULL, 0)
        else:
            a.header_add(hdrs, name, name_len, p, value_len)
            p += value_len
    return hdrs


cdef list _read_headers(const char *p, size_t size):
    cdef const char *end = p + size
    cdef int name_len
    cdef int value_len
    out = []
    while p < end:
        name_len = _read_int(p)
        name = PyBytes_FromStringAndSize(p + sizeof(int), name_len).decode(errors="replace")
        p += sizeof(int) + name_len
        value_len = _read_int(p)
        p += sizeof(int)
        if value_len < 0:
            out.append((name, None))
        else:
            out.append((name, PyBytes_FromStringAndSize(p, value_len)))
            p += value_len
    return out


cdef rd_kafka_error_t *_send_from(Api *a, rd_kafka_t *rk, const char *data, size_t end, size_t *pos,
                                  double max_block_ms, Py_ssize_t *sent) noexcept nogil:
    """Queue the records of ``data`` from ``pos[0]`` on; returns NULL once all are queued, or the
    error of the record at ``pos[0]`` (a full queue only once it stayed full ``max_block_ms``)."""
    cdef rd_kafka_vu_t vus[7]
    cdef rd_kafka_headers_t *hdrs
    cdef rd_kafka_error_t *error
    cdef const _Rec *rec
    cdef const char *body
    cdef size_t p = pos[0]
    cdef size_t n
    cdef size_t klen
    cdef size_t vlen
    cdef double deadline = -1
    vus[0].vtype = RD_KAFKA_VTYPE_RKT
    vus[1].vtype = RD_KAFKA_VTYPE_PARTITION
    vus[2].vtype = RD_KAFKA_VTYPE_VALUE
    vus[3].vtype = RD_KAFKA_VTYPE_KEY
    vus[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS
    vus[4].u.i = RD_KAFKA_MSG_F_COPY
    vus[5].vtype = RD_KAFKA_VTYPE_TIMESTAMP
    vus[6].vtype = RD_KAFKA_VTYPE_HEADERS
    while p < end:
        rec = <const _Rec *>(data + p)
        body = data + p + sizeof(_Rec)
        klen = rec.key_len if rec.key_len > 0 else 0
        vlen = rec.value_len if rec.value_len > 0 else 0
        vus[0].u.rkt = rec.rkt
        vus[1].u.i32 = rec.partition
        vus[2].u.mem.ptr = <void *>(body + klen) if rec.value_len >= 0 else NULL
        vus[2].u.mem.size = vlen
        vus[3].u.mem.ptr = <void *>body if rec.key_len >= 0 else NULL
        vus[3].u.mem.size = klen
        vus[5].u.i64 = rec.timestamp
        n = 6
        hdrs = NULL
        if rec.headers_len:
            hdrs = _build_headers(a, body + klen + vlen, rec.headers_len)
            vus[6].u.headers = hdrs
            n = 7
        error = a.produceva(rk, vus, n)
        if error != NULL:
            if hdrs != NULL:  # librdkafka owns the headers only once the record is queued
                a.headers_destroy(hdrs)
            if a.error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL:
                if deadline < 0:
                    deadline = _monotonic_ms() + max_block_ms
                if _monotonic_ms() < deadline:
                    a.error_destroy(error)
                    a.poll(rk, 10)  # deliveries served free room in the queue
                    continue
            pos[0] = p
            return error
        deadline = -1
        sent[0] += 1
        p += _rec_size(rec)
    pos[0] = p
    return NULL


cdef class OutputBuffer:
    """Serialized records for one :class:`RdKafkaProducer`, held in one growing block of memory
    (no Python object per record) until :meth:`RdKafkaProducer.send_buffer` queues them.

    The stream thread's collectors append to it; :meth:`take` moves the records into a new
    buffer, which another thread can hand to the producer while appending goes on here. A taken
    buffer's memory comes back to its parent once sent (up to 4 blocks are kept), and the next
    :meth:`take` leaves the parent one of them: the blocks, grown to the size a round needs, are
    not allocated and paged in again for every round.
    """

    def __cinit__(self, RdKafkaProducer producer):
        self._producer = producer

    def __dealloc__(self):
        self._release()
        while self._spares:
            self._spares -= 1
            free(self._spare[self._spares])

    cdef void _release(self) noexcept:
        """Give the memory back to the parent (it keeps up to 4 blocks spare) or free it."""
        cdef OutputBuffer parent = self._parent
        if self._data != NULL:
            if parent is not None and parent._spares < 4:
                parent._spare[parent._spares] = self._data
                parent._spare_cap[parent._spares] = self._cap
                parent._spares += 1
            else:
                free(self._data)
        self._data = NULL
        self._cap = 0
        self._len = 0
        self._count = 0
        self._parent = None

    cdef void _use_spare(self) noexcept:
        """Take the last block given back as this buffer's memory (it has none)."""
        if self._spares:
            self._spares -= 1
            self._data = self._spare[self._spares]
            self._cap = self._spare_cap[self._spares]
        else:
            self._data = NULL
            self._cap = 0

    cdef char *_reserve(self, size_t size) except NULL:
        cdef size_t cap = self._cap
        cdef char *data
        if self._len + size > cap:
            cap = max(cap * 2, self._len + size, <size_t>65536)
            data = <char *>realloc(self._data, cap)
            if data == NULL:
                raise MemoryError()
            self._data = data
            self._cap = cap
        return self._data + self._len

    cdef int append(self, str topic, int partition, object key, object value, long long timestamp,
                    tuple headers) except -1:
        """Add one record (``key``, ``value``: bytes or ``None``; ``headers``: ``(name, value)``
        pairs, names ``str`` or bytes, values bytes, ``str`` or ``None``)."""
        cdef RdKafkaProducer producer = self._producer
        cdef rd_kafka_topic_t *rkt
        cdef Py_ssize_t klen = -1
        cdef Py_ssize_t vlen = -1
        cdef size_t hlen = 0
        cdef char *p
        cdef _Rec *rec
        if value is not None:
            if type(value) is not bytes:
                raise TypeError(f"record value must be bytes or None, not {type(value).__name__}")
            vlen = PyBytes_GET_SIZE(value)
        if key is not None:
            if type(key) is not bytes:
                raise TypeError(f"record key must be bytes or None, not {type(key).__name__}")
            klen = PyBytes_GET_SIZE(key)
        if topic is producer._last_topic and producer._rk != NULL:
            rkt = producer._last_rkt
        else:
            rkt = producer._topic(topic)
        if headers:
            headers = _encoded_headers(headers)
            for i in range(0, len(headers), 2):
                hlen += 2 * sizeof(int) + PyBytes_GET_SIZE(headers[i]) + \
                    (PyBytes_GET_SIZE(headers[i + 1]) if headers[i + 1] is not None else 0)
        cdef size_t size = _padded(sizeof(_Rec) + <size_t>(klen if klen > 0 else 0)
                                   + <size_t>(vlen if vlen > 0 else 0) + hlen)
        p = self._reserve(size)
        rec = <_Rec *>p
        rec.rkt = rkt
        rec.timestamp = timestamp
        rec.partition = partition
        rec.key_len = <int>klen
        rec.value_len = <int>vlen
        rec.headers_len = <int>hlen
        p += sizeof(_Rec)
        if klen > 0:
            memcpy(p, PyBytes_AS_STRING(key), klen)
            p += klen
        if vlen > 0:
            memcpy(p, PyBytes_AS_STRING(value), vlen)
            p += vlen
        if hlen:
            _write_headers(p, headers)
        self._len += size
        self._count += 1
        return 0

    def add(self, str topic, int partition, object key, object value, long long timestamp, tuple headers=()):
        """Add one record (as the collectors do; see :meth:`RdKafkaProducer.send_buffer`)."""
        self.append(topic, partition, key, value, timestamp, headers)

    def take(self):
        """A new buffer holding this one's records; this one is left empty."""
        cdef OutputBuffer taken = OutputBuffer(self._producer)
        taken._data, taken._cap, taken._len, taken._count = self._data, self._cap, self._len, self._count
        taken._parent = self
        self._use_spare()
        self._len = 0
        self._count = 0
        return taken

    def clear(self):
        """Drop the records held."""
        self._len = 0
        self._count = 0

    def __len__(self):
        return self._count

    @property
    def nbytes(self):
        """Bytes the records take in the buffer."""
        return self._len

    @property
    def producer(self):
        """The producer the records are for."""
        return self._producer


cdef tuple _encoded_headers(tuple headers):
    """``(name, value)`` pairs as a flat tuple of bytes names and bytes-or-None values."""
    out = []
    for pair in headers:
        name = pair[0]
        out.append((<str>name).encode() if not isinstance(name, bytes) else name)
        value = pair[1]
        if isinstance(value, str):
            value = (<str>value).encode()
        elif value is not None and type(value) is not bytes:
            value = bytes(value)
        out.append(value)
    return tuple(out)


cdef void _write_headers(char *p, tuple flat) noexcept:
    cdef int n
    for i in range(0, len(flat), 2):
        name = <bytes>flat[i]
        n = <int>PyBytes_GET_SIZE(name)
        memcpy(p, &n, sizeof(int))
        memcpy(p + sizeof(int), PyBytes_AS_STRING(name), n)
        p += sizeof(int) + n
        value = flat[i + 1]
        if value is None:
            n = -1
            memcpy(p, &n, sizeof(int))
            p += sizeof(int)
        else:
            n = <int>PyBytes_GET_SIZE(<bytes>value)
            memcpy(p, &n, sizeof(int))
            memcpy(p + sizeof(int), PyBytes_AS_STRING(<bytes>value), n)
            p += sizeof(int) + n
