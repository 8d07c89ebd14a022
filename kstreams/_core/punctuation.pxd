cimport cython
@cython.final
cdef class PunctuationSchedule:
    cdef readonly object node
    cdef readonly long long interval
    cdef readonly object callback
    cdef public long long next_time
    cdef readonly bint cancelled

@cython.final
cdef class PunctuationQueue:
    cdef list _heap
    cdef long long _seq
    cdef public long long next_due

    cpdef PunctuationSchedule schedule(self, object node, long long first_time, long long interval, object callback)
    cpdef PunctuationSchedule pop_next(self, long long now)
    cpdef void reschedule(self, PunctuationSchedule schedule, long long now)
    cdef void _refresh(self)
