"""Timestamp extractors: how a source record's timestamp is chosen.

The timestamp drives partition time, stream time, record selection across partitions and
stream-time punctuation. Built-ins (Kafka Streams' names):

* :class:`FailOnInvalidTimestamp` (default): the record's own timestamp; a negative one fails
  the task with an error naming topic, partition and offset.
* :class:`LogAndSkipOnInvalidTimestamp`: a negative timestamp logs a warning and drops the record.
* :class:`UsePartitionTimeOnInvalidTimestamp`: a negative timestamp is replaced by the
  partition's time (fails if the partition has none yet).
* :class:`WallclockTimestampExtractor`: the current wall-clock time (processing time).

A custom extractor implements ``extract(record, partition_time) -> int`` where ``record`` is a
:class:`~kstreams._core.ConsumerRecord` (deserialized key and value, topic, partition, offset,
timestamp, headers); returning a negative value drops the record with a warning.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from kstreams._core import ConsumerRecord

__all__ = [
    "TimestampExtractor",
    "ConsumerRecord",
    "FailOnInvalidTimestamp",
    "LogAndSkipOnInvalidTimestamp",
    "UsePartitionTimeOnInvalidTimestamp",
    "WallclockTimestampExtractor",
    "resolve_extractor",
]


@runtime_checkable
class TimestampExtractor(Protocol):
    """Chooses the timestamp of a source record."""

    def extract(self, record: ConsumerRecord, partition_time: int) -> int:
        """Return the record's timestamp in ms; negative means "drop the record"."""
        ...


class _BuiltinExtractor:
    kind = -1

    def __repr__(self) -> str:
        return type(self).__name__ + "()"


class FailOnInvalidTimestamp(_BuiltinExtractor):
    """The record's timestamp; fail on a negative one (the default)."""

    kind = 0

    def extract(self, record: ConsumerRecord, partition_time: int) -> int:
        """Used only when called directly; the record loop applies this policy natively."""
        if record.timestamp < 0:
            raise ValueError(f"Input record {record!r} has invalid (negative) timestamp")
        return record.timestamp


class LogAndSkipOnInvalidTimestamp(_BuiltinExtractor):
    """The record's timestamp; drop the record with a warning if it is negative."""

    kind = 1

    def extract(self, record: ConsumerRecord, partition_time: int) -> int:
        """Used only when called directly; the record loop applies this policy natively."""
        return record.timestamp


class UsePartitionTimeOnInvalidTimestamp(_BuiltinExtractor):
    """The record's timestamp; the partition time instead of a negative one."""

    kind = 2

    def extract(self, record: ConsumerRecord, partition_time: int) -> int:
        """Used only when called directly; the record loop applies this policy natively."""
        return record.timestamp if record.timestamp >= 0 else partition_time


class WallclockTimestampExtractor(_BuiltinExtractor):
    """The current wall-clock time in ms (processing-time semantics)."""

    kind = 3

    def extract(self, record: ConsumerRecord, partition_time: int) -> int:
        """Used only when called directly; the record loop applies this policy natively."""
        import time

        return int(time.time() * 1000)


_BY_NAME = {
    cls.__name__.lower(): cls
    for cls in (FailOnInvalidTimestamp, LogAndSkipOnInvalidTimestamp, UsePartitionTimeOnInvalidTimestamp,
                WallclockTimestampExtractor)
}
CUSTOM_KIND = 4


def resolve_extractor(value: Any, what: str) -> tuple[int, Any]:
    """Turn an extractor (instance, class or built-in class name) into ``(kind, extractor)``.

    ``what`` names the config key or source in the error for anything else.
    """
    if isinstance(value, str):
        cls = _BY_NAME.get(value.lower().rsplit(".", 1)[-1])
        if cls is None:
            raise ValueError(f"{what}: unknown timestamp extractor {value!r}; built-ins are "
                             f"{[c.__name__ for c in _BY_NAME.values()]}")
        value = cls
    if isinstance(value, type):
        value = value()
    if isinstance(value, _BuiltinExtractor):
        return value.kind, value
    if callable(getattr(value, "extract", None)):
        return CUSTOM_KIND, value
    raise TypeError(f"{what}: expected a timestamp extractor (an object with extract(record, partition_time)), "
                    f"got {value!r}")
