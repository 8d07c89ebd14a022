"""Building a stream task from a sub-topology: nodes, queues, stores, context.

Shared by the Kafka runtime and the test driver, so both run exactly the same task.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kstreams import serdes as _serdes
from kstreams._core import (
    PartitionGroup,
    ProcessorContextImpl,
    ProcessorNode,
    RecordCollector,
    RecordQueue,
    SinkNode,
    SourceNode,
    StreamTask,
)
from kstreams.config import StreamsConfig
from kstreams.errors import DeserializationError, ErrorHandlerContext, HandlerResponse, TopologyError
from kstreams.state.context import StateStoreContext
from kstreams.timestamps import resolve_extractor
from kstreams.topology import ProcessorDef, SinkDef, SourceDef, Subtopology, Topology

log = logging.getLogger("kstreams.task")

DLQ_HEADER_PREFIX = "__streams.errors."


def changelog_topic(application_id: str, store_name: str) -> str:
    """The changelog topic of a store: ``<application.id>-<store>-changelog``."""
    return f"{application_id}-{store_name}-changelog"


def task_id_of(subtopology: int, partition: int) -> str:
    """Kafka Streams' task id text, ``"<sub-topology>_<partition>"``."""
    return f"{subtopology}_{partition}"


def _deserializer(serde: Any) -> Any:
    return None if serde is _serdes.BYTES else serde.deserialize


def _serializer(serde: Any) -> Any:
    return None if serde is _serdes.BYTES else serde.serialize


class _DeserializationErrors:
    """The deserialization-exception handling of one task (fail, or log-and-continue + DLQ)."""

    def __init__(self, task_id: str, config: StreamsConfig, collector: RecordCollector,
                 serde_names: dict[str, tuple[Any, Any]]) -> None:
        self.task_id = task_id
        self.handler = config.deserialization_handler
        self.dlq = config["errors.dead.letter.queue.topic.name"]
        self.collector = collector
        self.serde_names = serde_names
        self.skipped = 0

    def __call__(self, queue: RecordQueue, offset: int, exc: Exception, is_key: bool, kb: bytes | None,
                 vb: bytes | None, ts: int, headers: tuple) -> bool:
        what = "key" if is_key else "value"
        serde = self.serde_names.get(queue.topic, (None, None))[0 if is_key else 1]
        message = (f"Failed to deserialize the {what} of the record at topic {queue.topic!r} partition "
                   f"{queue.partition} offset {offset} with {serde!r}: {exc!r}")
        response = HandlerResponse.FAIL
        if self.handler is not None:
            ctx = ErrorHandlerContext(queue.topic, queue.partition, offset, headers, queue.source.name,
                                      self.task_id, ts)
            response = self.handler(ctx, (kb, vb, ts, offset, headers), exc)
        if response is HandlerResponse.CONTINUE:
            self.skipped += 1
            log.warning("Skipping record due to deserialization error (task %s): %s", self.task_id, message)
            if self.dlq:
                self._send_dlq(queue, offset, exc, kb, vb, ts, headers)
            return True
        raise DeserializationError(
            "Deserialization exception handler is set to fail upon a deserialization error. If you would rather "
            "have the streaming pipeline continue after a deserialization error, please set the "
            "deserialization.exception.handler appropriately. " + message,
            topic=queue.topic, partition=queue.partition, offset=offset, is_key=is_key) from exc

    def _send_dlq(self, queue: RecordQueue, offset: int, exc: Exception, kb: bytes | None, vb: bytes | None,
                  ts: int, headers: tuple) -> None:
        extra = (
            (DLQ_HEADER_PREFIX + "exception", type(exc).__name__.encode()),
            (DLQ_HEADER_PREFIX + "message", str(exc).encode("utf-8", "replace")),
            (DLQ_HEADER_PREFIX + "stacktrace", "".join(traceback.format_exception(exc)).encode("utf-8", "replace")),
            (DLQ_HEADER_PREFIX + "topic", queue.topic.encode()),
            (DLQ_HEADER_PREFIX + "partition", str(queue.partition).encode()),
            (DLQ_HEADER_PREFIX + "offset", str(offset).encode()),
        )
        self.collector.send(self.dlq, kb, vb, max(ts, 0), tuple(headers) + extra, -1)


def build_task(
    topology: Topology,
    sub: Subtopology,
    partition: int,
    config: StreamsConfig,
    collector: RecordCollector,
    *,
    application_id: str,
    state_dir: Path | None,
    input_topics: list[str] | None = None,
    lag_provider: Callable[[str, int], int | None] | None = None,
    wall_clock: int = 0,
    store_extra: dict[str, Any] | None = None,
) -> StreamTask:
    """Create the task ``<sub.id>_<partition>`` with its nodes, input queues and stores.

    ``input_topics`` limits the queues to topics that have this partition (default: all sources
    of the sub-topology). Stores are built and opened (``store_extra``: their
    :attr:`StateStoreContext.extra`); processors are not initialized yet (call
    ``task.init_topology`` after restoring the stores).
    """
    task_id = task_id_of(sub.id, partition)
    nodes_def = topology.nodes
    default_key = config["default.key.serde"]
    default_value = config["default.value.serde"]
    default_extractor = config.timestamp_extractor

    nodes: dict[str, ProcessorNode] = {}
    seen_processors: dict[int, str] = {}
    for name in sub.node_names:
        d = nodes_def[name]
        if isinstance(d, SourceDef):
            node: ProcessorNode = SourceNode(name)
        elif isinstance(d, ProcessorDef):
            processor = d.supplier()
            if processor is None or not callable(getattr(processor, "process", None)):
                raise TopologyError(f"supplier of processor {name} returned {processor!r}, not a Processor")
            if id(processor) in seen_processors:
                raise TopologyError(f"supplier of processor {name} returned the same instance as for "
                                    f"{seen_processors[id(processor)]}: a supplier must return a new Processor each "
                                    f"time it is called (a 'Processor' instance is shared)")
            seen_processors[id(processor)] = name
            node = ProcessorNode(name, processor, frozenset(d.stores))
        else:
            assert isinstance(d, SinkDef)
            node = SinkNode(name, d.topic, d.topic_extractor, _serializer(d.key_serde or default_key),
                            _serializer(d.value_serde or default_value), d.partitioner, collector)
        nodes[name] = node
        for parent in d.parents:
            nodes[parent].add_child(node)

    serde_names: dict[str, tuple[Any, Any]] = {}
    deser_errors = _DeserializationErrors(task_id, config, collector, serde_names)
    queues: list[RecordQueue] = []
    wanted = None if input_topics is None else set(input_topics)
    for name in sub.node_names:
        d = nodes_def[name]
        if not isinstance(d, SourceDef):
            continue
        key_serde = d.key_serde or default_key
        value_serde = d.value_serde or default_value
        kind, extractor = (resolve_extractor(d.timestamp_extractor, f"source {name}")
                           if d.timestamp_extractor is not None else default_extractor)
        for topic in d.topics:
            if wanted is not None and topic not in wanted:
                continue
            serde_names[topic] = (key_serde, value_serde)
            queues.append(RecordQueue(topic, partition, nodes[name], _deserializer(key_serde),
                                      _deserializer(value_serde), kind, extractor, deser_errors))

    group = PartitionGroup(queues, config["max.task.idle.ms"], lag_provider)
    task_dir = None if state_dir is None else Path(state_dir) / application_id / task_id
    app_configs = config.as_dict()
    ctx = ProcessorContextImpl(task_id, application_id, task_dir, app_configs, group, config.processing_handler)
    ctx.wall_clock = wall_clock
    stores: dict[str, Any] = {}
    builders = topology.store_builders
    for store_name in sub.store_names:
        builder = builders[store_name]
        store = builder.build()
        store.init(StateStoreContext(
            application_id=application_id, task_id=task_id, partition=partition, state_dir=task_dir,
            app_configs=app_configs, collector=collector, processor_context=ctx,
            changelog_topic=changelog_topic(application_id, store_name) if builder.logging_enabled else None,
            default_key_serde=default_key, default_value_serde=default_value, extra=dict(store_extra or {})))
        stores[store_name] = store
    ctx.stores = stores
    return StreamTask(task_id, ctx, group, collector, list(nodes.values()), stores)
