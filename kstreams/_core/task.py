"""The stream task: one sub-topology on one partition, and the record loop that runs it.

Per record: pick the queue with the smallest head timestamp, advance stream time, run the
source's subtree depth-first, then fire stream-time punctuations that became due. The loop is
the same for the Kafka runtime, the test driver and the in-process benchmark; they differ only
in how records arrive and where the collector's output goes.
"""

from __future__ import annotations

import cython

if cython.compiled:
    from cython.cimports.kstreams._core.collector import RecordCollector
    from cython.cimports.kstreams._core.nodes import ProcessorContextImpl, ProcessorNode
    from cython.cimports.kstreams._core.partition_group import PartitionGroup, RecordQueue
    from cython.cimports.kstreams._core.record import Record
    from cython.cimports.posix.time import CLOCK_MONOTONIC_COARSE, clock_gettime, timespec
else:  # the same names, imported as plain Python modules
    from kstreams._core.collector import RecordCollector
    from kstreams._core.nodes import ProcessorContextImpl, ProcessorNode
    from kstreams._core.partition_group import PartitionGroup, RecordQueue
    from kstreams._core.record import Record

import time

from kstreams.errors import StreamsError


@cython.warn.unreachable(False)  # the uncompiled branch, when compiled
def monotonic_ms() -> cython.longlong:
    """Milliseconds of the monotonic clock ``time.monotonic()`` reads, at the resolution of a
    scheduler tick when compiled (``CLOCK_MONOTONIC_COARSE``: a few nanoseconds to read, cheap
    enough to check after every record)."""
    if cython.compiled:
        ts = cython.declare(timespec)
        clock_gettime(CLOCK_MONOTONIC_COARSE, cython.address(ts))
        return ts.tv_sec * 1000 + ts.tv_nsec // 1_000_000
    return int(time.monotonic() * 1000)


class StreamTask:
    """A task: its processor nodes (in topology insertion order), input queues and stores.

    ``queues`` maps ``(topic, partition)`` to the partition's :class:`RecordQueue`.
    """

    def __init__(self, task_id: str, context: ProcessorContextImpl, group: PartitionGroup,
                 collector: RecordCollector, nodes: list, stores: dict) -> None:
        self.task_id = task_id
        self.context = context
        self.group = group
        self.collector = collector
        self.nodes = nodes
        self.stores = stores
        self.queues = {}
        queue: RecordQueue
        for queue in group.queues:
            self.queues[(queue.topic, queue.partition)] = queue
        self.commit_needed = False
        self.processed_total = 0
        self.punctuated_total = 0
        self.initialized = False

    # -- lifecycle ------------------------------------------------------------------------------

    def init_topology(self, wall_clock: int) -> None:
        """Call ``init(context)`` on every processor, in topology order (stores are open by now)."""
        ctx = self.context
        ctx.wall_clock = wall_clock
        node: ProcessorNode
        for node in self.nodes:
            if node.processor is None:
                continue
            ctx.current_node = node
            try:
                node.processor.init(ctx)
            except Exception as exc:
                raise StreamsError(f"failed to initialize processor {node.name} of task {self.task_id}: {exc!r}") \
                    from exc
            finally:
                ctx.current_node = None
        self.initialized = True

    def close_topology(self) -> None:
        """Call ``close()`` on every processor, even if one fails; the first failure is raised."""
        first = None
        node: ProcessorNode
        ctx = self.context
        for node in self.nodes:
            if node.processor is None:
                continue
            ctx.current_node = node
            try:
                node.processor.close()
            except Exception as exc:
                if first is None:
                    first = StreamsError(f"failed to close processor {node.name} of task {self.task_id}: {exc!r}")
                    first.__cause__ = exc
            finally:
                ctx.current_node = None
        self.initialized = False
        if first is not None:
            raise first

    # -- input ----------------------------------------------------------------------------------

    def add_records(self, topic: str, partition: int, records: list, message_mode: bool = False) -> int:
        """Buffer raw records of one input partition; returns that partition's queue size."""
        queue = self.queues.get((topic, partition))
        if queue is None:
            raise StreamsError(
                f"Topic {topic} is unknown to the topology of task {self.task_id} (partition {partition}). This may "
                f"happen if different KafkaStreams instances of the same application execute different Topologies.")
        return self.group.add_records(queue, records, message_mode)

    # -- the loop -------------------------------------------------------------------------------

    def process(self, max_records: cython.Py_ssize_t, wall_clock: cython.longlong,
                deadline_ms: cython.longlong = 0) -> cython.Py_ssize_t:
        """Process up to ``max_records`` buffered records; returns how many were processed.

        Stream-time punctuations are checked after every record. ``deadline_ms`` (positive: a time
        of :func:`monotonic_ms`) stops the loop after the record that reached it, so a thread
        whose tasks hold many slow records still commits and punctuates on time.
        """
        group: PartitionGroup = self.group
        ctx: ProcessorContextImpl = self.context
        stream_punctuations = ctx.stream_punctuations
        queue: RecordQueue
        record: Record
        child: ProcessorNode
        source: ProcessorNode
        offset: cython.longlong
        n: cython.Py_ssize_t = 0
        ctx.wall_clock = wall_clock
        while n < max_records:
            if group.nonempty < group.num_queues and not group.ready(wall_clock):
                break
            queue = group.next_queue()
            offset = queue.head_offset
            record = group.poll(queue)
            ctx.topic = queue.topic
            ctx.partition = queue.partition
            ctx.offset = offset
            ctx.record_timestamp = record.timestamp
            # the source's children, directly (the source node itself does nothing)
            source = queue.source
            ctx.current_node = source
            for child in source.children:
                ctx.dispatch(child, record)
            ctx.current_node = None
            n += 1
            if group.stream_time >= stream_punctuations.next_due:
                if ctx.punctuate(stream_punctuations, group.stream_time):
                    self.punctuated_total += 1
            if deadline_ms > 0 and monotonic_ms() >= deadline_ms:
                break
        if n > 0:
            self.commit_needed = True
            self.processed_total += n
        return n

    def punctuate_wall_clock(self, now: cython.longlong) -> cython.bint:
        """Fire wall-clock punctuations due at ``now``."""
        ctx: ProcessorContextImpl = self.context
        ctx.wall_clock = now
        if now < ctx.wall_punctuations.next_due:
            return False
        if ctx.punctuate(ctx.wall_punctuations, now):
            self.punctuated_total += 1
            self.commit_needed = True
            return True
        return False

    # -- commit bookkeeping ----------------------------------------------------------------------

    def committable_offsets(self) -> dict:
        """``{(topic, partition): (next_offset, partition_time)}`` for partitions that made progress."""
        out = {}
        q: RecordQueue
        for q in self.group.queues:
            if q.next_offset >= 0:
                out[(q.topic, q.partition)] = (q.next_offset, q.partition_time)
        return out

    def next_timestamp(self) -> int:
        """Timestamp of the record the task would process next (-1 if nothing is buffered)."""
        queue: RecordQueue = self.group.next_queue()
        return -1 if queue is None else queue.head_timestamp

    def has_buffered(self) -> bool:
        """Whether any input record is waiting."""
        return self.group.nonempty > 0

    @property
    def stream_time(self) -> int:
        """Largest timestamp processed by this task (-1 before the first record)."""
        return self.group.stream_time

    def __repr__(self) -> str:
        return f"StreamTask({self.task_id})"
