cimport cython

from kstreams._core.rdkafka cimport Api, rd_kafka_error_t, rd_kafka_headers_t, rd_kafka_t, rd_kafka_topic_t, rd_kafka_vu_t

ctypedef rd_kafka_error_t *(*txn_call_t)(rd_kafka_t *rk, int timeout_ms) noexcept nogil


@cython.final
cdef class RdKafkaProducer:
    cdef Api *_api
    cdef rd_kafka_t *_rk
    cdef object _on_delivery
    cdef object _on_error
    cdef object _logger
    cdef object _callback_error
    cdef dict _topics
    cdef str _last_topic
    cdef rd_kafka_topic_t *_last_rkt
    cdef rd_kafka_vu_t _vus[7]

    cdef void _destroy(self) noexcept
    cdef rd_kafka_t *_handle(self) except NULL
    cdef void _raise_callback_error(self) except *
    cdef rd_kafka_topic_t *_topic(self, str topic) except NULL
    cdef int send(self, str topic, int partition, object key, object value, long long timestamp,
                  object headers) except -1
    cdef rd_kafka_headers_t *_headers(self, object headers) except NULL
    cdef void _check(self, rd_kafka_error_t *error) except *
    cdef void _blocking(self, txn_call_t call, object timeout) except *


@cython.final
cdef class OutputBuffer:
    cdef RdKafkaProducer _producer
    cdef char *_data
    cdef size_t _len
    cdef size_t _cap
    cdef Py_ssize_t _count
    cdef OutputBuffer _parent
    cdef char *_spare[4]
    cdef size_t _spare_cap[4]
    cdef int _spares

    cdef int append(self, str topic, int partition, object key, object value, long long timestamp,
                    tuple headers) except -1
    cdef char *_reserve(self, size_t size) except NULL
    cdef void _release(self) noexcept
    cdef void _use_spare(self) noexcept
