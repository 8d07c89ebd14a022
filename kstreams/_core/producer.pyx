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
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport malloc
from libc.string cimport memcpy

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
