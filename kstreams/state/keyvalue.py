"""The typed key-value store API processors use, over a bytes store.

Keys and values go through the store's serdes; scans follow the **serialized key's byte order**
(unsigned lexicographic), as in Kafka Streams: with msgpack or ``INT64`` keys that is not the
numeric order; use ``serdes.ORDERED_INT64`` / ``serdes.ORDERED_STRING`` keys for ordered scans.

The hot path (``get``, ``put``, ``delete``, ``put_if_absent``, the write buffer, the read cache
and the two-phase commit) is compiled: see :mod:`kstreams._core.kvstore`. Writes are buffered
until the task commits; at commit the runtime (or the test driver) calls

1. ``store.prepare_commit()``: the buffered changes go to the changelog topic
   ``<application.id>-<store>-changelog`` (partition = task partition; a tombstone for a delete);
2. ``store.commit(changelog_end_offset)``: the same changes are applied to the bytes store in one
   batch together with the changelog offset they reach, once the changelog records are durable
   (producer flushed / transaction committed).

``flush()`` does both with no offset. ``committed_offset()`` and ``restore_batch()`` serve the
restore (see :mod:`kstreams.state.restore`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kstreams import serdes as _serdes
from kstreams._core.kvstore import DEFAULT_DEFER_BYTES, KeyValueIterator, KVStoreCore, ValueAndTimestamp
from kstreams.errors import StateStoreError
from kstreams.state.context import StateStoreContext

__all__ = ["KeyValueIterator", "KeyValueStore", "TimestampedKeyValueStore", "ValueAndTimestamp", "share_cache"]

log = logging.getLogger("kstreams.state")

DEFAULT_CACHE_MAX_BYTES = 10 * 1024 * 1024
DEFER_RECORDS_EXTRA = "defer.records"
"""Key of :attr:`StateStoreContext.extra`: how many changelog records a persistent store may commit
before it writes them to disk in one batch (see ``KVStoreCore.configure``; default 0: every commit)."""
DEFER_BYTES_EXTRA = "defer.bytes"
"""Key of :attr:`StateStoreContext.extra`: how many bytes of such committed entries a store may keep
in memory before it writes them (default 16 MiB, outside ``statestore.cache.max.bytes`` as RocksDB's
write buffers are under Kafka Streams)."""

_INVALID_RANGE = ("Returning empty iterator for fetch with invalid key range: from > to. This may be due to range "
                  "arguments set in the wrong order, or serdes that don't preserve ordering when lexicographically "
                  "comparing the serialized bytes. Note that the built-in numerical serdes do not follow this for "
                  "negative numbers (store %s)")


def share_cache(stores: Iterable[object], total_bytes: int) -> int:
    """Split ``total_bytes`` equally among the key-value stores in ``stores`` (others are
    skipped) and return each one's share.

    ``statestore.cache.max.bytes`` bounds the buffered and cached bytes of a whole instance, as in
    Kafka Streams: a stream thread gets its share and splits it among the stores of its tasks,
    again whenever its tasks change. (Kafka Streams lets a thread's stores draw on one pool; here
    each store keeps an equal part of it.)"""
    kv = [s for s in stores if isinstance(s, KVStoreCore)]
    if not kv:
        return 0
    share = max(0, total_bytes) // len(kv)
    for store in kv:
        store.resize_cache(share)
    log.debug("%d key-value stores share %d cache bytes: %d each", len(kv), total_bytes, share)
    return share


class KeyValueStore(KVStoreCore):
    """A key-value store of one task (Kafka Streams' ``KeyValueStore``).

    ``put(key, None)`` deletes. Iterators yield ``(key, value)`` in serialized-key byte order and
    are context managers. Reads see the writes buffered since the last commit.
    """

    def __init__(self, name: str, inner: Any, key_serde: Any, value_serde: Any, logging_enabled: bool,
                 log_config: dict[str, str] | None, caching_enabled: bool = False,
                 timestamped: bool = False) -> None:
        super().__init__(name, inner, timestamped)
        self._key_serde = key_serde
        self._value_serde = value_serde
        self.logging_enabled = logging_enabled
        self.log_config = dict(log_config or {})
        self.caching_requested = caching_enabled
        self.task_id: str | None = None
        self._kser: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def init(self, context: StateStoreContext) -> None:
        """Open the store for a task (called by the runtime before processors' ``init``)."""
        key_serde = self._key_serde or context.default_key_serde or _serdes.MSGPACK
        value_serde = self._value_serde or context.default_value_serde or _serdes.MSGPACK
        self._kser = key_serde.serialize
        self.task_id = context.task_id
        self.inner.open(context)
        # the whole bound until the owner of the store's task shares it out (share_cache)
        bound = context.app_configs.get("statestore.cache.max.bytes", DEFAULT_CACHE_MAX_BYTES)
        # an LRU map tracks recency on reads: a read cache in front of it would hide them
        caching = self.caching_requested and not hasattr(self.inner, "plan_evictions")
        self.configure(key_serde, value_serde, context.collector, context.processor_context,
                       context.changelog_topic if self.logging_enabled else None, context.partition,
                       int(bound), caching, int(context.extra.get(DEFER_RECORDS_EXTRA, 0)),
                       int(context.extra.get(DEFER_BYTES_EXTRA, DEFAULT_DEFER_BYTES)))

    @property
    def persistent(self) -> bool:
        """Whether the data lives on disk."""
        return bool(self.inner.persistent)

    @property
    def is_open(self) -> bool:
        """Whether the store is open."""
        return bool(self.inner.is_open)

    def close(self) -> None:
        """Close the store (the runtime commits first; uncommitted writes are dropped)."""
        if self.dirty_count or self.pending_count:
            log.debug("Closing store %s of task %s with %d uncommitted writes", self.name, self.task_id,
                      self.dirty_count + self.pending_count)
        self._close_core()
        self.inner.close()

    def committed_offset(self) -> int | None:
        """The changelog offset the stored data reaches (restore resumes there), or ``None``."""
        return self.inner.committed_offset()

    def wipe(self) -> None:
        """Delete all local data and the stored offset (before a full restore)."""
        self.wait_applied()
        self._drop_all()
        self.inner.wipe()
        self._bind_inner()

    # -- scans --------------------------------------------------------------------------------------

    def _kb(self, key: Any) -> bytes:
        if key is None:
            raise StateStoreError(f"store {self.name!r}: key must not be None")
        data = self._kser(key)
        return data if type(data) is bytes else bytes(data)

    def _iter(self, from_key: Any, to_key: Any, reverse: bool) -> KeyValueIterator:
        fb = None if from_key is None else self._kb(from_key)
        tb = None if to_key is None else self._kb(to_key)
        if fb is not None and tb is not None and fb > tb:
            log.warning(_INVALID_RANGE, self.name)
            return KeyValueIterator(self, None, [], reverse)
        return self._scan(fb, tb, reverse)

    def range(self, from_key: Any, to_key: Any) -> KeyValueIterator:
        """Pairs with ``from_key <= key <= to_key`` (serialized bytes; ``None`` = unbounded), ascending."""
        return self._iter(from_key, to_key, False)

    def reverse_range(self, from_key: Any, to_key: Any) -> KeyValueIterator:
        """As :meth:`range`, descending."""
        return self._iter(from_key, to_key, True)

    def all(self) -> KeyValueIterator:
        """Every pair, ascending by serialized key bytes."""
        return self._scan(None, None, False)

    def reverse_all(self) -> KeyValueIterator:
        """Every pair, descending by serialized key bytes."""
        return self._scan(None, None, True)

    def prefix_scan(self, prefix: Any, prefix_serializer: Any = None) -> KeyValueIterator:
        """Pairs whose serialized key starts with the serialized ``prefix`` (ascending).

        ``prefix_serializer`` (a serde or a function) defaults to the key serde; note that with
        length-prefixed encodings such as msgpack a string prefix is not a byte prefix: use
        ``serdes.STRING``/``ORDERED_STRING`` keys for prefix scans over text.
        """
        if prefix_serializer is None:
            pb = self._kb(prefix)
        else:
            ser = getattr(prefix_serializer, "serialize", prefix_serializer)
            pb = ser(prefix)
            pb = pb if type(pb) is bytes else bytes(pb)
        return self._scan(pb, None, False, pb)

    def approximate_num_entries(self) -> int:
        """An estimate of the number of keys (stored keys plus buffered puts)."""
        return int(self.inner.approximate_num_entries()) + self._buffered_puts()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {type(self.inner).__name__})"


class TimestampedKeyValueStore(KeyValueStore):
    """A key-value store of :class:`ValueAndTimestamp` values (Kafka Streams'
    ``TimestampedKeyValueStore``).

    ``put(key, ValueAndTimestamp(value, ts))``; ``get`` returns a ``ValueAndTimestamp`` or
    ``None``. Stored as an 8-byte big-endian timestamp followed by the value bytes; the changelog
    carries the plain value bytes with the record timestamp set to the stored timestamp.
    """

    def __init__(self, name: str, inner: Any, key_serde: Any, value_serde: Any, logging_enabled: bool,
                 log_config: dict[str, str] | None, caching_enabled: bool = False) -> None:
        super().__init__(name, inner, key_serde, value_serde, logging_enabled, log_config, caching_enabled,
                         timestamped=True)
