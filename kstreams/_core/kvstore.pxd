from kstreams._core.collector cimport RecordCollector
from kstreams._core.nodes cimport ProcessorContextImpl

cdef class ValueAndTimestamp:
    cdef readonly object value
    cdef readonly long long timestamp

cdef class _Entry:
    cdef bytes kb
    cdef object value
    cdef object vb
    cdef long long ts
    cdef bint typed
    cdef bint dirty
    cdef int pins
    cdef bint ref
    cdef Py_ssize_t size

cdef class KeyValueIterator:
    cdef object _inner
    cdef object _ihead
    cdef list _overlay
    cdef Py_ssize_t _oi
    cdef bint _reverse
    cdef object _prefix
    cdef KVStoreCore _store
    cdef tuple _peeked
    cdef bint _closed

    cdef tuple _advance(self)

cdef class KVStoreCore:
    cdef readonly str name
    cdef readonly object inner
    cdef readonly bint timestamped
    cdef readonly bint caching_enabled
    cdef readonly object changelog_topic
    cdef readonly int changelog_partition
    cdef readonly Py_ssize_t cache_max_bytes
    cdef readonly Py_ssize_t cache_bytes
    cdef readonly Py_ssize_t dirty_bytes
    cdef readonly long long early_commit_requests
    cdef bint _open
    cdef Py_ssize_t _evict_at
    cdef dict _cache
    cdef list _dirty
    cdef readonly Py_ssize_t defer_records
    cdef readonly Py_ssize_t defer_bytes
    cdef dict _pending
    cdef list _pending_entries
    cdef Py_ssize_t _pending_bytes
    cdef dict _deferred
    cdef list _deferred_entries
    cdef Py_ssize_t _deferred_records
    cdef Py_ssize_t _deferred_bytes
    cdef object _deferred_offset
    cdef dict _applying
    cdef list _applying_entries
    cdef Py_ssize_t _applying_bytes
    cdef object _apply_handle
    cdef object _write_async
    cdef list _sorted_dirty
    cdef dict _dirty_by_kb
    cdef object _key_ser
    cdef object _key_de
    cdef object _value_ser
    cdef object _value_de
    cdef object _inner_get
    cdef object _plan_evictions
    cdef object _checked_vtype
    cdef RecordCollector _collector
    cdef object _collector_obj
    cdef ProcessorContextImpl _ctx
    cdef object _ctx_obj
    cdef object _last_offset

    cdef bytes _key_bytes(self, object key)
    cdef object _decode(self, object vb)
    cdef bytes _encode(self, object value)
    cdef object _miss(self, object key, object ck)
    cdef _Entry _entry_for_write(self, object key)
    cdef void _set_value(self, _Entry e, object value) except *
    cdef void _mark_dirty(self, _Entry e) except *
    cdef void _request_commit(self) except *
    cdef long long _record_ts(self) except? -2
    cdef void _evict(self) except *
    cdef bint _finish_apply(self) except -1
    cdef bint _write_due(self) except -1
    cdef void _write_deferred(self, bint wait) except *
    cdef void _send(self, object topic, object kb, object cv, long long ts, int partition) except *
    cdef list _overlay(self, object from_kb, object to_kb, bint reverse)
