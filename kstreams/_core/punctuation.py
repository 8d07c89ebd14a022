"""Punctuation schedules and the per-task, per-type queue that fires them.

Semantics (Kafka Streams' ``PunctuationQueue``/``PunctuationSchedule``):

* a schedule fires when the driving time (stream time or wall-clock time) reaches its
  ``next_time``; the callback gets the *current* time, not the grid time;
* after firing, the next time stays on the grid ``first_time + k * interval`` and is strictly
  greater than the current time, so a jump of several intervals fires once;
* ``cancel()`` takes effect at once, also from inside the callback;
* schedules due at the same time fire in the order they were scheduled (Java leaves this open).
"""

from __future__ import annotations

import enum
import heapq

import cython

INT64_MAX = cython.declare(cython.longlong, 9223372036854775807)


class PunctuationType(enum.Enum):
    """What drives a punctuation: the task's stream time, or the wall clock."""

    STREAM_TIME = "stream_time"
    WALL_CLOCK_TIME = "wall_clock_time"


class PunctuationSchedule:
    """A scheduled punctuation; returned by ``ProcessorContext.schedule`` as the ``Cancellable``."""

    def __init__(self, node: object, next_time: int, interval: int, callback: object) -> None:
        self.node = node
        self.next_time = next_time
        self.interval = interval
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Stop this schedule; it never fires again (safe to call from inside the callback)."""
        self.cancelled = True

    def __repr__(self) -> str:
        return (
            f"PunctuationSchedule(next_time={self.next_time}, interval={self.interval}, "
            f"cancelled={self.cancelled})"
        )


class PunctuationQueue:
    """Schedules of one punctuation type, ordered by next fire time.

    ``next_due`` is the earliest ``next_time`` (``INT64_MAX`` when empty) so the record loop can
    test ``time >= queue.next_due`` without touching the heap.
    """

    def __init__(self) -> None:
        self._heap = []
        self._seq = 0
        self.next_due = INT64_MAX

    def schedule(self, node: object, first_time: cython.longlong, interval: cython.longlong,
                 callback: object) -> PunctuationSchedule:
        """Add a schedule that first fires at ``first_time``."""
        sched = PunctuationSchedule(node, first_time, interval, callback)
        self._seq += 1
        heapq.heappush(self._heap, (first_time, self._seq, sched))
        self._refresh()
        return sched

    def pop_next(self, now: cython.longlong) -> PunctuationSchedule | None:
        """Remove and return the next live schedule due at ``now``, or ``None``.

        The caller runs it and then calls :meth:`reschedule` (a no-op if it was cancelled), then
        asks again: a schedule added or rescheduled meanwhile is seen, as in Kafka Streams.
        """
        heap = self._heap
        while heap and heap[0][0] <= now:
            sched = heapq.heappop(heap)[2]
            if not sched.cancelled:
                self._refresh()
                return sched
        self._refresh()
        return None

    def reschedule(self, schedule: PunctuationSchedule, now: cython.longlong) -> None:
        """Put ``schedule`` back at its next grid point strictly after ``now``."""
        if schedule.cancelled:
            return
        nxt: cython.longlong = schedule.next_time + schedule.interval
        if now >= nxt:
            nxt = schedule.next_time + ((now - schedule.next_time) // schedule.interval + 1) * schedule.interval
        schedule.next_time = nxt
        self._seq += 1
        heapq.heappush(self._heap, (nxt, self._seq, schedule))
        self._refresh()

    def _refresh(self) -> None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        self.next_due = heap[0][0] if heap else INT64_MAX

    def __len__(self) -> int:
        return len(self._heap)
