"""The four workloads of the Kafka->Kafka comparison, record by record.

Every system does the same work on the same input (JSON values, string keys):

* ``passthrough``: parse the value, forward it unchanged;
* ``filter-map``: keep ``kind == "buy"`` (about half), forward ``{id, user, cents = amount * 100}``;
* ``count``: count per key in a persistent store with a changelog, forward ``{id, count}`` for
  every record;
* ``window``: sum ``amount`` per key in tumbling windows of ``window_ms`` (10 s) kept in a
  store, emitted as ``{start, end, sum}`` once stream time reaches the window end.

This module is the single Python definition of that logic: the kstreams runner (project venv)
and the quixstreams runner (its own venv) import it, so it uses the standard library only, and
``bench/java/.../Workloads.java`` mirrors it. It also holds what every runner shares: the names
of the guarantees, the first-record mark a runner prints, Java's murmur2 partitioner.
"""

from __future__ import annotations

import sys
import time
from typing import Any

WORKLOADS = ("passthrough", "filter-map", "count", "window")
GUARANTEES = ("at_least_once", "exactly_once_v2")
DEFAULT_WINDOW_MS = 10_000

FIRST_RECORD_MARK = "BENCH first_record_ms="
"""Printed once per process, when its first input record reaches user code (epoch ms follows)."""
SETTINGS_MARK = "BENCH settings="
"""Printed once per process at start, followed by its effective settings as one JSON object."""

COUNT_STORE = "counts"
WINDOW_STORE = "windows"

_WINDOW_KEY_DIGITS = 15


# --------------------------------------------------------------------------- record logic


def keep(value: dict[str, Any]) -> bool:
    """``filter-map``'s predicate: the "buy" records (about half of the input)."""
    return value["kind"] == "buy"


def transform(value: dict[str, Any]) -> dict[str, Any]:
    """``filter-map``'s new value."""
    return {"id": value["id"], "user": value["user"], "cents": value["amount"] * 100}


def count_value(value: dict[str, Any], count: int) -> dict[str, Any]:
    """``count``'s output value for the record ``value`` whose key has now been seen ``count`` times."""
    return {"id": value["id"], "count": count}


def window_start(timestamp: int, window_ms: int) -> int:
    """Start of the tumbling window (aligned to the epoch) that holds ``timestamp``."""
    return timestamp - timestamp % window_ms


def window_value(start: int, window_ms: int, total: int) -> dict[str, Any]:
    """``window``'s output value for a closed window."""
    return {"start": start, "end": start + window_ms, "sum": total}


def window_store_key(start: int, key: str) -> str:
    """Store key of a key's window: the zero-padded start first, so byte order is window order."""
    return f"{start:0{_WINDOW_KEY_DIGITS}d}|{key}"


def window_store_floor(start: int) -> str:
    """A string below every store key of windows starting at ``start`` and above earlier ones."""
    return f"{start:0{_WINDOW_KEY_DIGITS}d}"


def window_store_bound(start: int) -> str:
    """A string above every store key of windows starting at ``start`` and below later ones."""
    return f"{start:0{_WINDOW_KEY_DIGITS}d}~"


def split_window_store_key(store_key: str) -> tuple[int, str]:
    """``(start, key)`` of a store key made by :func:`window_store_key`."""
    return int(store_key[:_WINDOW_KEY_DIGITS]), store_key[_WINDOW_KEY_DIGITS + 1:]


def last_closed_start(stream_time: int, window_ms: int) -> int:
    """Start of the newest window that is closed at ``stream_time`` (``start + size <= stream time``)."""
    return window_start(stream_time, window_ms) - window_ms


# --------------------------------------------------------------------------- shared helpers


class FirstRecordMark:
    """Prints :data:`FIRST_RECORD_MARK` with the wall-clock time the first time it is called.

    ``mark()`` costs one attribute test per record after that.
    """

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen = False

    def mark(self) -> None:
        if not self.seen:
            self.seen = True
            sys.stdout.write(f"{FIRST_RECORD_MARK}{int(time.time() * 1000)}\n")
            sys.stdout.flush()


def murmur2(data: bytes) -> int:
    """Java's ``Utils.murmur2`` (the default partitioner's hash), as a signed 32-bit int."""
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    end = length - length % 4
    for i in range(0, end, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner picks for a non-null ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
