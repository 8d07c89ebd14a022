cimport cython
@cython.final
cdef class Record:
    cdef readonly object key
    cdef readonly object value
    cdef readonly long long timestamp
    cdef readonly tuple headers

@cython.final
cdef class RecordMetadata:
    cdef readonly object topic
    cdef readonly int partition
    cdef readonly long long offset

cpdef Record make_record(object key, object value, long long timestamp, tuple headers)
cpdef tuple normalize_headers(object headers)
