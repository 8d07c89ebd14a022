cimport cython

from kstreams._core.producer cimport OutputBuffer, RdKafkaProducer

cpdef int murmur2(bytes data)
cpdef int murmur2_partition(bytes key, int num_partitions)

@cython.final
cdef class RecordCollector:
    cdef list _buffer
    cdef object _produce_fn
    cdef RdKafkaProducer _rdk
    cdef OutputBuffer _out
    cdef public object on_produce_error
    cdef dict _partition_counts
    cdef object _partition_count_lookup
    cdef dict _null_key_counters
    cdef object _last_topic
    cdef int _last_count
    cdef public long long sent

    cpdef void send(self, str topic, object key, object value, long long timestamp, tuple headers,
                   int partition) except *
    cdef void _produce(self, str topic, int partition, object key, object value, long long timestamp,
                       tuple headers) except *
    cpdef void send_buffered(self) except *
    cpdef int partition_count(self, str topic) except -1
    cpdef int default_partition(self, str topic, object key) except -2
    cpdef Py_ssize_t buffered(self)
    cpdef list drain(self)
