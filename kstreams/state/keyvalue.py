"""The typed key-value store API processors use, over a bytes store.

Keys and values go through the store's serdes; scans follow the **serialized key's byte order**
(unsigned lexicographic), as in Kafka Streams: with msgpack or ``INT64`` keys that is not the
numeric order; use ``serdes.ORDERED_INT64`` / ``serdes.ORDERED_STRING`` keys for ordered scans.
Every change is sent to the store's changelog topic when logging is enabled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from kstreams.errors import StateStoreError
from kstreams.state.context import StateStoreContext

log = logging.getLogger("kstreams.state")


class KeyValueIterator:
    """An iterator of ``(key, value)`` pairs; also a context manager (``close()`` on exit)."""

    def __init__(self, pairs: Iterator[tuple[bytes, bytes]], key_de: Any, value_de: Any) -> None:
        self._pairs = pairs
        self._key_de = key_de
        self._value_de = value_de
        self._peeked: tuple[bytes, bytes] | None = None
        self._closed = False

    def __iter__(self) -> KeyValueIterator:
        return self

    def __next__(self) -> tuple[Any, Any]:
        if self._closed:
            raise StopIteration
        if self._peeked is not None:
            kb, vb = self._peeked
            self._peeked = None
        else:
            kb, vb = next(self._pairs)
        return self._key_de(kb), self._value_de(vb)

    def peek_next_key(self) -> Any:
        """The next key without consuming it (``StopIteration`` at the end)."""
        if self._peeked is None:
            self._peeked = next(self._pairs)
        return self._key_de(self._peeked[0])

    def close(self) -> None:
        """Release the iterator."""
        self._closed = True
        close = getattr(self._pairs, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> KeyValueIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KeyValueStore:
    """A key-value store of one task (Kafka Streams' ``KeyValueStore``).

    ``put(key, None)`` deletes. Iterators yield ``(key, value)`` in serialized-key byte order.
    """

    def __init__(self, name: str, inner: Any, key_serde: Any, value_serde: Any, logging_enabled: bool,
                 log_config: dict[str, str] | None) -> None:
        self._name = name
        self._inner = inner
        self._key_serde = key_serde
        self._value_serde = value_serde
        self.logging_enabled = logging_enabled
        self.log_config = dict(log_config or {})
        self._changelog: str | None = None
        self._collector: Any = None
        self._pctx: Any = None
        self._partition = -1
        self._key_ser: Any = None
        self._key_de: Any = None
        self._value_ser: Any = None
        self._value_de: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def init(self, context: StateStoreContext) -> None:
        """Open the store for a task (called by the runtime before processors' ``init``)."""
        key_serde = self._key_serde or context.default_key_serde
        value_serde = self._value_serde or context.default_value_serde
        self._key_ser, self._key_de = key_serde.serialize, key_serde.deserialize
        self._value_ser, self._value_de = value_serde.serialize, value_serde.deserialize
        self._changelog = context.changelog_topic if self.logging_enabled else None
        self._collector = context.collector
        self._pctx = context.processor_context
        self._partition = context.partition
        self._inner.open(context)

    @property
    def name(self) -> str:
        """The store name."""
        return self._name

    @property
    def persistent(self) -> bool:
        """Whether the data lives on disk."""
        return bool(self._inner.persistent)

    @property
    def is_open(self) -> bool:
        """Whether the store is open."""
        return bool(self._inner.is_open)

    @property
    def changelog_topic(self) -> str | None:
        """The changelog topic, or ``None`` when logging is disabled."""
        return self._changelog

    @property
    def inner(self) -> Any:
        """The bytes store underneath."""
        return self._inner

    def flush(self) -> None:
        """Persist what is buffered (called at commit)."""
        self._inner.flush()

    def close(self) -> None:
        """Close the store (the runtime does this; processors must not)."""
        self._inner.close()

    # -- serde helpers ------------------------------------------------------------------------------

    def _kb(self, key: Any) -> bytes:
        if key is None:
            raise StateStoreError(f"store {self._name!r}: key must not be None")
        return self._key_ser(key)

    def _log(self, kb: bytes, vb: bytes | None) -> None:
        if self._changelog is not None:
            ts = self._pctx.record_timestamp if self._pctx is not None else 0
            self._collector.send(self._changelog, kb, vb, ts if ts >= 0 else 0, (), self._partition)

    def _check_open(self) -> None:
        if not self._inner.is_open:
            raise StateStoreError(f"Store {self._name} is currently closed.")

    # -- the API ------------------------------------------------------------------------------------

    def get(self, key: Any) -> Any:
        """The value of ``key`` or ``None``."""
        vb = self._inner.get(self._kb(key))
        return None if vb is None else self._value_de(vb)

    def put(self, key: Any, value: Any) -> None:
        """Set ``key`` to ``value``; ``None`` deletes the key."""
        kb = self._kb(key)
        vb = None if value is None else self._value_ser(value)
        self._inner.put(kb, vb)
        self._log(kb, vb)

    def put_if_absent(self, key: Any, value: Any) -> Any:
        """Set ``key`` only if it has no value; returns the existing value (or ``None``)."""
        kb = self._kb(key)
        old = self._inner.get(kb)
        if old is not None:
            return self._value_de(old)
        if value is not None:
            vb = self._value_ser(value)
            self._inner.put(kb, vb)
            self._log(kb, vb)
        return None

    def put_all(self, entries: Iterable[tuple[Any, Any]]) -> None:
        """Put every ``(key, value)`` pair (``None`` values delete)."""
        for key, value in entries:
            self.put(key, value)

    def delete(self, key: Any) -> Any:
        """Delete ``key``; returns its old value (or ``None``). A tombstone is always logged."""
        kb = self._kb(key)
        old = self._inner.get(kb)
        self._inner.put(kb, None)
        self._log(kb, None)
        return None if old is None else self._value_de(old)

    def _iter(self, from_key: Any, to_key: Any, reverse: bool) -> KeyValueIterator:
        fb = None if from_key is None else self._kb(from_key)
        tb = None if to_key is None else self._kb(to_key)
        if fb is not None and tb is not None and fb > tb:
            log.warning("Returning empty iterator for fetch with invalid key range: from > to. This may be due to "
                        "range arguments set in the wrong order, or serdes that don't preserve ordering when "
                        "lexicographically comparing the serialized bytes. (store %s)", self._name)
            return KeyValueIterator(iter(()), self._key_de, self._value_de)
        return KeyValueIterator(self._inner.range(fb, tb, reverse), self._key_de, self._value_de)

    def range(self, from_key: Any, to_key: Any) -> KeyValueIterator:
        """Pairs with ``from_key <= key <= to_key`` (serialized bytes; ``None`` = unbounded), ascending."""
        return self._iter(from_key, to_key, False)

    def reverse_range(self, from_key: Any, to_key: Any) -> KeyValueIterator:
        """As :meth:`range`, descending."""
        return self._iter(from_key, to_key, True)

    def all(self) -> KeyValueIterator:
        """Every pair, ascending by serialized key bytes."""
        return self._iter(None, None, False)

    def reverse_all(self) -> KeyValueIterator:
        """Every pair, descending by serialized key bytes."""
        return self._iter(None, None, True)

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
        inner = self._inner.range(pb, None, False)

        def gen() -> Iterator[tuple[bytes, bytes]]:
            for kb, vb in inner:
                if not kb.startswith(pb):
                    break
                yield kb, vb

        return KeyValueIterator(gen(), self._key_de, self._value_de)

    def approximate_num_entries(self) -> int:
        """An estimate of the number of keys."""
        return int(self._inner.approximate_num_entries())

    def __repr__(self) -> str:
        return f"KeyValueStore({self._name!r}, {type(self._inner).__name__})"
