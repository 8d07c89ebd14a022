cimport cython
from kstreams._core.record cimport Record

@cython.final
cdef class RecordQueue:
    cdef readonly str topic
    cdef readonly int partition
    cdef readonly object source
    cdef object key_deserializer
    cdef object value_deserializer
    cdef int extractor_kind
    cdef object extractor
    cdef object error_handler
    cdef list _raw
    cdef Py_ssize_t _index
    cdef bint _message_mode
    cdef public Record head
    cdef public long long head_offset
    cdef public long long head_timestamp
    cdef public long long partition_time
    cdef public long long next_offset

    cpdef Py_ssize_t add(self, list records, bint message_mode=*)
    cpdef Py_ssize_t size(self)
    cdef Record poll(self)
    cdef void _update_head(self) except *
    cdef object _extract(self, object raw, object key, object value, long long ts, long long offset, tuple headers)

@cython.final
cdef class PartitionGroup:
    cdef readonly list queues
    cdef readonly int num_queues
    cdef public int nonempty
    cdef public long long stream_time
    cdef public long long max_task_idle_ms
    cdef dict _idle_deadlines
    cdef public object lag_provider
    cdef public long long enforced_processing

    cpdef Py_ssize_t add_records(self, RecordQueue queue, list records, bint message_mode=*)
    cpdef bint ready(self, long long wall_clock)
    cdef RecordQueue next_queue(self)
    cdef Record poll(self, RecordQueue queue)

cpdef tuple group_messages(list messages)
