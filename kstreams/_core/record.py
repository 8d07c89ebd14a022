"""Record and RecordMetadata: the immutable data that flows through a topology.

Compiled by Cython (see ``record.pxd``); the same source runs as plain Python.
"""

from __future__ import annotations

from typing import Any

import cython

EMPTY_HEADERS: tuple = ()


class Record:
    """One record: ``key``, ``value``, ``timestamp`` (ms, never negative) and ``headers``.

    Records are immutable; ``with_key``, ``with_value``, ``with_timestamp`` and ``with_headers``
    return copies with one field replaced. ``headers`` is a tuple of ``(name, value)`` pairs
    (``name`` a ``str``, ``value`` ``bytes`` or ``None``), in order, duplicates allowed, as Kafka
    headers are. A ``dict`` or any iterable of pairs is accepted wherever headers are given.
    """

    def __init__(self, key: Any, value: Any, timestamp: int, headers: Any = None) -> None:
        if timestamp < 0:
            raise ValueError(f"Timestamp may not be negative. Got: {timestamp}")
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.headers = normalize_headers(headers)

    def with_key(self, key: Any) -> Record:
        """Return a copy of this record with ``key`` replaced."""
        return make_record(key, self.value, self.timestamp, self.headers)

    def with_value(self, value: Any) -> Record:
        """Return a copy of this record with ``value`` replaced."""
        return make_record(self.key, value, self.timestamp, self.headers)

    def with_timestamp(self, timestamp: int) -> Record:
        """Return a copy with ``timestamp`` replaced; a negative timestamp raises ``ValueError``."""
        if timestamp < 0:
            raise ValueError(f"Timestamp may not be negative. Got: {timestamp}")
        return make_record(self.key, self.value, timestamp, self.headers)

    def with_headers(self, headers: Any) -> Record:
        """Return a copy of this record with ``headers`` replaced."""
        return make_record(self.key, self.value, self.timestamp, normalize_headers(headers))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        o: Record = other
        return (
            self.timestamp == o.timestamp
            and self.key == o.key
            and self.value == o.value
            and self.headers == o.headers
        )

    def __hash__(self) -> int:
        return hash((self.key, self.value, self.timestamp, self.headers))

    def __repr__(self) -> str:
        return (
            f"Record(key={self.key!r}, value={self.value!r}, timestamp={self.timestamp}, "
            f"headers={self.headers!r})"
        )

    def __reduce__(self) -> object:
        return (Record, (self.key, self.value, self.timestamp, self.headers))


def make_record(key: object, value: object, timestamp: cython.longlong, headers: tuple) -> Record:
    """Build a record without validation (the caller guarantees ``timestamp >= 0``)."""
    r: Record = Record.__new__(Record)
    r.key = key
    r.value = value
    r.timestamp = timestamp
    r.headers = headers
    return r


def normalize_headers(headers: object) -> tuple:
    """Turn ``None``, a dict or an iterable of ``(name, value)`` pairs into a tuple of pairs."""
    if headers is None:
        return EMPTY_HEADERS
    items = headers.items() if isinstance(headers, dict) else headers
    out = []
    for pair in items:
        name, value = pair
        if not isinstance(name, str):
            raise TypeError(f"header name must be str, got {type(name).__name__}")
        if value is not None and not isinstance(value, bytes):
            if isinstance(value, str):
                value = value.encode("utf-8")
            else:
                raise TypeError(f"header {name!r} value must be bytes, str or None, got {type(value).__name__}")
        out.append((name, value))
    return tuple(out)


class RecordMetadata:
    """Where the record being processed came from: ``topic``, ``partition``, ``offset``.

    Inside a punctuation (and for records forwarded from one) there is no source record:
    ``topic`` is ``None`` and ``partition`` and ``offset`` are -1.
    """

    def __init__(self, topic: str | None, partition: int, offset: int) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordMetadata):
            return NotImplemented
        o: RecordMetadata = other
        return self.topic == o.topic and self.partition == o.partition and self.offset == o.offset

    def __hash__(self) -> int:
        return hash((self.topic, self.partition, self.offset))

    def __repr__(self) -> str:
        return f"RecordMetadata(topic={self.topic!r}, partition={self.partition}, offset={self.offset})"
