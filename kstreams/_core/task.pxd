cimport cython
from kstreams._core.collector cimport RecordCollector
from kstreams._core.nodes cimport ProcessorContextImpl, ProcessorNode
from kstreams._core.partition_group cimport PartitionGroup, RecordQueue

cpdef long long monotonic_ms() noexcept

@cython.final
cdef class StreamTask:
    cdef readonly str task_id
    cdef readonly ProcessorContextImpl context
    cdef readonly PartitionGroup group
    cdef readonly RecordCollector collector
    cdef readonly list nodes
    cdef readonly dict queues
    cdef readonly dict stores
    cdef public bint commit_needed
    cdef public long long processed_total
    cdef public long long punctuated_total
    cdef readonly bint initialized

    cpdef Py_ssize_t process(self, Py_ssize_t max_records, long long wall_clock, long long deadline_ms=*) except -1
    cpdef bint punctuate_wall_clock(self, long long now) except -1
