cimport cython
from kstreams._core.record cimport Record
from kstreams._core.collector cimport RecordCollector
from kstreams._core.partition_group cimport PartitionGroup
from kstreams._core.punctuation cimport PunctuationQueue, PunctuationSchedule

cdef class ProcessorNode:
    cdef readonly str name
    cdef public list children
    cdef public dict child_by_name
    cdef public frozenset store_names
    cdef public object processor
    cdef object _process

    cdef void process_record(self, ProcessorContextImpl ctx, Record record) except *

@cython.final
cdef class SourceNode(ProcessorNode):
    pass

@cython.final
cdef class SinkNode(ProcessorNode):
    cdef readonly object topic
    cdef object _topic_extractor
    cdef object _key_serializer
    cdef object _value_serializer
    cdef object _partitioner
    cdef RecordCollector _collector

    cdef bytes _serialize(self, object serializer, object obj, bint is_key, object topic)
    cdef void _send_partitioned(self, ProcessorContextImpl ctx, object topic, bytes kb, bytes vb, Record record) except *

@cython.final
cdef class ProcessorContextImpl:
    cdef readonly str task_id
    cdef readonly str application_id
    cdef readonly object state_dir
    cdef readonly dict app_configs
    cdef public ProcessorNode current_node
    cdef public object topic
    cdef public int partition
    cdef public long long offset
    cdef public long long record_timestamp
    cdef public long long wall_clock
    cdef public bint commit_requested
    cdef public dict stores
    cdef public PartitionGroup group
    cdef public PunctuationQueue stream_punctuations
    cdef public PunctuationQueue wall_punctuations
    cdef public object processing_handler
    cdef public long long dropped_records

    cdef void dispatch(self, ProcessorNode child, Record record) except *
    cdef void _on_processing_error(self, ProcessorNode node, object record, object exc) except *
    cpdef bint punctuate(self, PunctuationQueue queue, long long now) except -1
