"""Exception types of kstreams and the error-handler responses.

Every error raised by the library derives from :class:`StreamsError`. Messages name what was
wrong (node, topic, partition, offset, store, config key) so a failure can be traced to its cause.
"""

from __future__ import annotations

import enum

__all__ = [
    "StreamsError",
    "TopologyError",
    "ConfigError",
    "ProcessingError",
    "DeserializationError",
    "SerializationError",
    "TimestampError",
    "StateStoreError",
    "TaskMigratedError",
    "HandlerResponse",
    "ErrorHandlerContext",
    "StreamThreadExceptionResponse",
]


class StreamsError(Exception):
    """Base class of every error raised by kstreams."""


class TopologyError(StreamsError):
    """The topology is invalid; the message names the node, topic or store at fault.

    The message is prefixed with ``"Invalid topology: "`` as in Kafka Streams.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"Invalid topology: {message}")


class ConfigError(StreamsError, ValueError):
    """A configuration value is missing, unknown or of the wrong type; raised at construction."""


class ProcessingError(StreamsError):
    """A processor, punctuator or sink failed and the processing-exception handler chose to fail.

    Attributes name where it happened: ``node``, ``task_id``, ``topic``, ``partition``, ``offset``.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        task_id: str | None = None,
        topic: str | None = None,
        partition: int = -1,
        offset: int = -1,
    ) -> None:
        super().__init__(message)
        self.node = node
        self.task_id = task_id
        self.topic = topic
        self.partition = partition
        self.offset = offset


class DeserializationError(StreamsError):
    """A source record's key or value could not be deserialized.

    Attributes: ``topic``, ``partition``, ``offset``, ``is_key`` (True if the key failed).
    """

    def __init__(self, message: str, *, topic: str, partition: int, offset: int, is_key: bool) -> None:
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.is_key = is_key


class SerializationError(StreamsError):
    """A sink or store could not serialize a key or value; the message names topic or store."""


class TimestampError(StreamsError):
    """A timestamp extractor rejected a record (negative timestamp with the failing policy)."""


class StateStoreError(StreamsError):
    """A state store was used wrongly (not connected, unknown, closed, locked directory)."""


class TaskMigratedError(StreamsError):
    """The task was moved to another instance (fenced producer, failed commit); rejoin the group."""


class HandlerResponse(enum.Enum):
    """What an exception handler (deserialization or processing) tells the task to do."""

    CONTINUE = "continue"
    FAIL = "fail"


class StreamThreadExceptionResponse(enum.Enum):
    """Answer of an uncaught-exception handler when a stream thread dies."""

    REPLACE_THREAD = "replace_thread"
    SHUTDOWN_CLIENT = "shutdown_client"
    SHUTDOWN_APPLICATION = "shutdown_application"


class ErrorHandlerContext:
    """Where an error happened, as an exception handler sees it.

    ``topic``/``partition``/``offset`` of the source record (``None``/-1/-1 in a punctuation),
    its ``headers`` and ``timestamp``, the ``processor_node_id`` and the ``task_id``.
    """

    __slots__ = ("topic", "partition", "offset", "headers", "processor_node_id", "task_id", "timestamp")

    def __init__(
        self,
        topic: str | None,
        partition: int,
        offset: int,
        headers: tuple,
        processor_node_id: str | None,
        task_id: str,
        timestamp: int,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.headers = headers
        self.processor_node_id = processor_node_id
        self.task_id = task_id
        self.timestamp = timestamp

    def __repr__(self) -> str:
        return (
            f"ErrorHandlerContext(topic={self.topic!r}, partition={self.partition}, offset={self.offset}, "
            f"node={self.processor_node_id!r}, task={self.task_id})"
        )
