"""The processor graph of one task and the context that moves records through it.

``forward`` is synchronous and depth-first: each child (in the order it was connected) runs to
completion, with its whole subtree, before the next child gets the record. A failure is handled
at the innermost node that raised it, by the processing-exception handler: "continue" drops the
record for that node's subtree only (the parent's ``forward`` returns normally and the siblings
still get it), "fail" raises :class:`~kstreams.errors.ProcessingError` naming node, task,
topic, partition and offset, which then passes every outer node untouched.
"""

from __future__ import annotations

import logging

import cython

if cython.compiled:
    from cython.cimports.kstreams._core.collector import RecordCollector
    from cython.cimports.kstreams._core.partition_group import PartitionGroup
    from cython.cimports.kstreams._core.punctuation import PunctuationQueue, PunctuationSchedule
    from cython.cimports.kstreams._core.record import Record, RecordMetadata
else:  # the same names, imported as plain Python modules
    from kstreams._core.collector import RecordCollector
    from kstreams._core.partition_group import PartitionGroup
    from kstreams._core.punctuation import PunctuationQueue, PunctuationSchedule
    from kstreams._core.record import Record, RecordMetadata

from kstreams._core.punctuation import PunctuationType
from kstreams.errors import (
    ErrorHandlerContext,
    HandlerResponse,
    ProcessingError,
    SerializationError,
    StateStoreError,
    StreamsError,
)

log = logging.getLogger("kstreams.task")

_STREAM_TIME = PunctuationType.STREAM_TIME
_WALL_CLOCK_TIME = PunctuationType.WALL_CLOCK_TIME


class ProcessorNode:
    """A node running a user :class:`~kstreams.Processor`."""

    def __init__(self, name: str, processor: object = None, store_names: frozenset = frozenset()) -> None:
        self.name = name
        self.children = []
        self.child_by_name = {}
        self.store_names = store_names
        self.processor = processor
        self._process = None if processor is None else processor.process

    def add_child(self, child: ProcessorNode) -> None:
        """Connect ``child`` after the children already connected."""
        self.children.append(child)
        self.child_by_name[child.name] = child

    def process_record(self, ctx: ProcessorContextImpl, record: Record) -> None:
        self._process(record)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class SourceNode(ProcessorNode):
    """A source: hands each deserialized record to its children."""

    def process_record(self, ctx: ProcessorContextImpl, record: Record) -> None:
        child: ProcessorNode
        for child in self.children:
            ctx.dispatch(child, record)


class RecordContext:
    """What a topic-name extractor sees besides key and value."""

    __slots__ = ("topic", "partition", "offset", "timestamp", "headers")

    def __init__(self, topic: object, partition: int, offset: int, timestamp: int, headers: tuple) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.headers = headers


class SinkNode(ProcessorNode):
    """A sink: serializes key and value and hands the record to the task's collector.

    ``topic`` is a static topic name, or ``None`` with ``topic_extractor(key, value,
    record_context) -> str``. A serializer of ``None`` means bytes are passed through unchanged.
    ``partitioner(topic, key, value, num_partitions)`` returns ``None`` (default partitioning),
    a partition number, or an iterable of partitions (empty: the record is dropped).
    """

    def __init__(self, name: str, topic: object, topic_extractor: object, key_serializer: object,
                 value_serializer: object, partitioner: object, collector: RecordCollector) -> None:
        super().__init__(name)
        self.topic = topic
        self._topic_extractor = topic_extractor
        self._key_serializer = key_serializer
        self._value_serializer = value_serializer
        self._partitioner = partitioner
        self._collector = collector

    def _serialize(self, serializer: object, obj: object, is_key: cython.bint, topic: object) -> bytes:
        if obj is None:
            return None
        try:
            if serializer is None:
                if type(obj) is bytes:
                    return obj
                raise TypeError(f"expected bytes, got {type(obj).__name__}")
            data = serializer(obj)
            if type(data) is not bytes:
                data = bytes(data)
            return data
        except Exception as exc:
            what = "key" if is_key else "value"
            raise SerializationError(
                f"Failed to serialize {what} for sink '{self.name}' (topic {topic!r}): {exc!r}") from exc

    def process_record(self, ctx: ProcessorContextImpl, record: Record) -> None:
        topic = self.topic
        if topic is None:
            topic = self._topic_extractor(record.key, record.value, RecordContext(
                ctx.topic, ctx.partition, ctx.offset, record.timestamp, record.headers))
            if not isinstance(topic, str):
                raise StreamsError(f"Topic name extractor of sink '{self.name}' returned {topic!r}, not a str")
        key = record.key
        value = record.value
        kb: bytes
        vb: bytes
        if self._key_serializer is None and (key is None or type(key) is bytes):
            kb = key
        else:
            kb = self._serialize(self._key_serializer, key, True, topic)
        if self._value_serializer is None and (value is None or type(value) is bytes):
            vb = value
        else:
            vb = self._serialize(self._value_serializer, value, False, topic)
        if self._partitioner is None:
            self._collector.send(topic, kb, vb, record.timestamp, record.headers, -1)
        else:
            self._send_partitioned(ctx, topic, kb, vb, record)

    def _send_partitioned(self, ctx: ProcessorContextImpl, topic: object, kb: bytes, vb: bytes,
                          record: Record) -> None:
        n = self._collector.partition_count(topic)
        chosen = self._partitioner(topic, record.key, record.value, n)
        if chosen is None:
            self._collector.send(topic, kb, vb, record.timestamp, record.headers, -1)
            return
        targets = (chosen,) if isinstance(chosen, int) else chosen
        sent = False
        for p in targets:
            if not 0 <= p < n:
                raise StreamsError(f"Partitioner of sink '{self.name}' chose partition {p} of topic {topic!r}, "
                                   f"which has {n} partitions")
            self._collector.send(topic, kb, vb, record.timestamp, record.headers, p)
            sent = True
        if not sent:
            ctx.dropped_records += 1
            log.debug("Partitioner of sink %s returned no partition; record dropped", self.name)


class ProcessorContextImpl:
    """The :class:`~kstreams.processor.ProcessorContext` of one task.

    One context serves every processor of the task; ``current_node`` says which one is running.
    """

    def __init__(self, task_id: str, application_id: str, state_dir: object, app_configs: dict,
                 group: PartitionGroup, processing_handler: object) -> None:
        self.task_id = task_id
        self.application_id = application_id
        self.state_dir = state_dir
        self.app_configs = app_configs
        self.current_node = None
        self.topic = None
        self.partition = -1
        self.offset = -1
        self.record_timestamp = -1
        self.wall_clock = 0
        self.commit_requested = False
        self.stores = {}
        self.group = group
        self.stream_punctuations = PunctuationQueue()
        self.wall_punctuations = PunctuationQueue()
        self.processing_handler = processing_handler
        self.dropped_records = 0

    # -- the ProcessorContext API -------------------------------------------------------------

    def forward(self, record: Record, child_name: object = None) -> None:
        """Send ``record`` to every child in connection order, or only to the direct child named."""
        node: ProcessorNode = self.current_node
        if node is None:
            raise StreamsError("Current node is unknown. This can happen if 'forward()' is called in an "
                               "illegal scope, outside of process(), a punctuation or init().")
        child: ProcessorNode
        if child_name is None:
            for child in node.children:
                self.dispatch(child, record)
        else:
            child = node.child_by_name.get(child_name)
            if child is None:
                raise StreamsError(f"Unknown downstream node: {child_name} either does not exist or is not "
                                   f"connected to this processor.")
            self.dispatch(child, record)

    def schedule(self, interval_ms: int, punctuation_type: object, callback: object) -> PunctuationSchedule:
        """Call ``callback(timestamp)`` every ``interval_ms`` of stream time or wall-clock time.

        STREAM_TIME schedules are anchored at 0: the first call comes with the first record
        processed, later ones when stream time reaches the next multiple of the interval.
        WALL_CLOCK_TIME schedules first fire ``interval_ms`` after now. Returns the schedule,
        whose ``cancel()`` stops it.
        """
        if not isinstance(interval_ms, int) or interval_ms < 1:
            raise ValueError("The minimum supported scheduling interval is 1 millisecond.")
        node = self.current_node
        if node is None:
            raise StreamsError("Could not schedule a punctuation: the current node is unknown (call schedule() "
                               "from init(), process() or a punctuation).")
        if not callable(callback):
            raise TypeError(f"punctuation callback must be callable, got {callback!r}")
        if punctuation_type is _STREAM_TIME:
            return self.stream_punctuations.schedule(node, 0, interval_ms, callback)
        if punctuation_type is _WALL_CLOCK_TIME:
            return self.wall_punctuations.schedule(node, self.wall_clock + interval_ms, interval_ms, callback)
        raise ValueError(f"Unknown punctuation type {punctuation_type!r}")

    def commit(self) -> None:
        """Ask for a commit at the next opportunity (before the commit interval elapses)."""
        self.commit_requested = True

    def get_state_store(self, name: str) -> object:
        """The store ``name``, which must be connected to the calling processor."""
        node: ProcessorNode = self.current_node
        if node is None:
            raise StateStoreError("Accessing from an unknown node")
        if name not in node.store_names:
            raise StateStoreError(
                f"Processor {node.name} has no access to StateStore {name} as the store is not connected to the "
                f"processor. If you add stores manually via '.add_state_store()' make sure to connect the added "
                f"store to the processor by providing the processor name to '.add_state_store()' or connect them "
                f"via '.connect_processor_and_state_stores()'.")
        return self.stores[name]

    def record_metadata(self) -> RecordMetadata:
        """Topic, partition and offset of the source record (``None``, -1, -1 in a punctuation)."""
        return RecordMetadata(self.topic, self.partition, self.offset)

    def current_stream_time_ms(self) -> int:
        """The task's stream time: the largest timestamp processed so far (-1 before any)."""
        return self.group.stream_time

    def current_system_time_ms(self) -> int:
        """The wall-clock time of the loop iteration (the mocked clock in the test driver)."""
        return self.wall_clock

    # -- dispatch -------------------------------------------------------------------------------

    def dispatch(self, child: ProcessorNode, record: Record) -> None:
        parent = self.current_node
        self.current_node = child
        try:
            child.process_record(self, record)
        except ProcessingError:
            self.current_node = parent
            raise
        except Exception as exc:
            self.current_node = parent
            self._on_processing_error(child, record, exc)
            return
        self.current_node = parent

    def _on_processing_error(self, node: ProcessorNode, record: object, exc: object) -> None:
        where = (f"processor '{node.name}' of task {self.task_id} (topic {self.topic!r}, partition "
                 f"{self.partition}, offset {self.offset})")
        response = HandlerResponse.FAIL
        if self.processing_handler is not None:
            ctx = ErrorHandlerContext(self.topic, self.partition, self.offset, record.headers if record is not None
                                      else (), node.name, self.task_id,
                                      record.timestamp if record is not None else -1)
            response = self.processing_handler(ctx, record, exc)
        if response is HandlerResponse.CONTINUE:
            self.dropped_records += 1
            log.warning("Exception caught during processing in %s; the record is dropped for this node's subtree "
                        "and processing continues: %r", where, exc)
            return
        if response is not HandlerResponse.FAIL:
            raise ProcessingError(f"Processing exception handler returned {response!r} for {where}; expected a "
                                  f"HandlerResponse") from exc
        what = "while punctuating" if record is None else "in process() of"
        raise ProcessingError(f"Exception caught {what} {where}: {exc!r}", node=node.name,
                              task_id=self.task_id, topic=self.topic, partition=self.partition,
                              offset=self.offset) from exc

    def punctuate(self, queue: PunctuationQueue, now: cython.longlong) -> cython.bint:
        """Fire every schedule of ``queue`` due at ``now``; True if any fired."""
        fired: cython.bint = False
        sched: PunctuationSchedule
        while True:
            sched = queue.pop_next(now)
            if sched is None:
                return fired
            self.current_node = sched.node
            self.topic = None
            self.partition = -1
            self.offset = -1
            self.record_timestamp = now
            try:
                sched.callback(now)
            except ProcessingError:
                self.current_node = None
                raise
            except Exception as exc:
                self.current_node = None
                self._on_processing_error(sched.node, None, exc)
            self.current_node = None
            queue.reschedule(sched, now)
            fired = True
