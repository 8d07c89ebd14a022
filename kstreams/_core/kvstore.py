"""The typed key-value store front: write buffer, read cache and the two-phase commit.

Compiled by Cython (see ``kvstore.pxd``); the same source runs as plain Python. This module
knows nothing about LevelDB: it talks to a *bytes store* (``inner``) through

* ``get(key_bytes) -> bytes | None``,
* ``write_batch(pairs, changelog_offset)``: apply the ``(key_bytes, value_bytes_or_None)`` pairs
  (an iterable; each key once) atomically, together with the changelog offset they reach
  (``None``: keep the stored one),
* ``range(from_bytes, to_bytes, reverse) -> iterator of (key_bytes, value_bytes)``, inclusive
  bounds, ``None`` unbounded, in unsigned byte order.

Between commits every write lands in the buffer: an entry per key, keyed by the key object
itself when it is an ``int`` or a ``str`` (no serialization on the hot path) and by the
serialized key otherwise. Values of immutable types (``int``, ``float``, ``str``, ``bytes``,
``bool``) are kept as objects and serialized only when they are flushed; other values are
serialized at ``put`` (so later mutation of the object does not leak into the store, as in
Kafka Streams) and deserialized at every ``get``. Reads see the buffer first; scans merge it with
the bytes store in key order. Clean entries form a bounded read cache (only when caching is
enabled). When the dirty entries outgrow ``cache_max_bytes`` the store asks its task for an
early commit (``processor_context.commit_requested = True``).

Commit, in two phases (DESIGN §5):

1. :meth:`KVStoreCore.prepare_commit` serializes the dirty entries, sends them to the changelog
   through the task's record collector and keeps them *pending*;
2. :meth:`KVStoreCore.commit` applies the pending entries to the bytes store in one batch
   together with the changelog offset they reach.

A store may *defer* phase 2's batch (``defer_records``, set by the Kafka runtime): committed
entries stay in memory, pinned, until about that many changelog records were committed since
the last batch (or their bytes pass ``defer_bytes``), then one batch carries them all (a hot key
once) with the latest changelog offset known. Nothing committed is lost by a crash meanwhile:
the stored offset is older, so the restore replays that tail of the changelog. Under
exactly_once_v2 (a commit every 100 ms) this writes a fraction of the entries a batch per
commit would. The deferred batch plays the part of RocksDB's write buffer under Kafka Streams
(16 MiB a store there): its bytes have their own bound and do not count against the cache's,
which keeps ``cache_max_bytes`` of other entries beside them.

A bytes store may also offer ``write_batch_async(pairs, changelog_offset) -> handle`` (with
``done()`` and ``result()``): it returns once the batch is built and writes it on another thread
(LevelDB releases the GIL while it writes). Until the write completes, the entries it carries
stay *pinned* in memory (reads and scans are served from them, eviction skips them); the next
commit, a restore, a wipe or ``close`` waits for it first. Crash consistency is unchanged: the
batch and its offset are applied atomically, or not at all.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right, insort

import cython

if cython.compiled:
    from cython.cimports.kstreams._core.collector import RecordCollector
    from cython.cimports.kstreams._core.nodes import ProcessorContextImpl
else:  # the same names, imported as plain Python modules
    from kstreams._core.collector import RecordCollector
    from kstreams._core.nodes import ProcessorContextImpl

from kstreams.errors import SerializationError, StateStoreError

_ENTRY_OVERHEAD: cython.Py_ssize_t = 96
"""Approximate bytes of bookkeeping per cached key (entry object, dict slot, key object)."""

DEFAULT_DEFER_BYTES = 16 * 1024 * 1024
"""Bound of a store's deferred batch unless ``configure`` is given another (RocksDB's write
buffer size under Kafka Streams)."""

_TYPED_VALUE_SIZE: cython.Py_ssize_t = 16

_TS = struct.Struct(">q")
_ts_pack = _TS.pack
_ts_unpack_from = _TS.unpack_from


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _immutable(value: object) -> cython.bint:
    t = type(value)
    return t is int or t is str or t is float or t is bytes or t is bool


class ValueAndTimestamp:
    """A value and its timestamp, as a timestamped key-value store holds them.

    Immutable; unpacks as ``value, timestamp = vat``. ``str()`` is Kafka Streams' ``<value,ts>``.
    """

    def __init__(self, value: object, timestamp: cython.longlong) -> None:
        self.value = value
        self.timestamp = timestamp

    @staticmethod
    def make(value: object, timestamp: int) -> object:
        """A ``ValueAndTimestamp``, or ``None`` when ``value`` is ``None``."""
        if value is None:
            return None
        return ValueAndTimestamp(value, timestamp)

    @staticmethod
    def make_allow_nullable(value: object, timestamp: int) -> ValueAndTimestamp:
        """A ``ValueAndTimestamp`` even when ``value`` is ``None``."""
        return ValueAndTimestamp(value, timestamp)

    @staticmethod
    def get_value_or_null(value_and_timestamp: object) -> object:
        """The value of ``value_and_timestamp``, or ``None`` when it is ``None``."""
        if value_and_timestamp is None:
            return None
        vat: ValueAndTimestamp = value_and_timestamp
        return vat.value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValueAndTimestamp):
            return NotImplemented
        o: ValueAndTimestamp = other
        return self.timestamp == o.timestamp and self.value == o.value

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        if result is NotImplemented:
            return result
        return not result

    def __hash__(self) -> int:
        return hash((self.value, self.timestamp))

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.value, self.timestamp))

    def __repr__(self) -> str:
        return f"ValueAndTimestamp({self.value!r}, {self.timestamp})"

    def __str__(self) -> str:
        return f"<{self.value},{self.timestamp}>"


@cython.no_gc
@cython.cclass
class _Entry:
    """One buffered key: its serialized key, the value (object or bytes) and its state.

    ``typed``: ``value`` holds the value object (``None`` = absent/deleted), ``vb`` is ``None``;
    otherwise ``vb`` holds the serialized value. ``dirty``: written since the last
    ``prepare_commit``. ``pins``: how many batches holding it are prepared or still being
    written (the bytes store may not have it yet, so it must stay in memory). ``ref``: read or
    written since the last eviction pass (second chance).

    Not tracked by the cyclic GC (``no_gc``): an entry holds only bytes, immutable scalars and
    ``None``, so it is never part of a cycle, and a large cache does not slow collections.
    """

    def __init__(self) -> None:
        self.kb = None
        self.value = None
        self.vb = None
        self.ts = 0
        self.typed = True
        self.dirty = False
        self.pins = 0
        self.ref = True
        self.size = 0


class KeyValueIterator:
    """An iterator of ``(key, value)`` pairs in serialized-key byte order.

    It merges the store's buffered writes with the bytes store underneath. It is also a context
    manager (``close()`` on exit); ``peek_next_key()`` looks ahead without consuming.
    """

    def __init__(self, store: KVStoreCore, inner: object, overlay: list, reverse: bool,
                 prefix: object = None) -> None:
        self._store = store
        self._inner = inner
        self._ihead = None
        self._overlay = overlay
        self._oi = 0
        self._reverse = reverse
        self._prefix = prefix
        self._peeked = None
        self._closed = False

    def _advance(self) -> tuple:
        store: KVStoreCore = self._store
        e: _Entry
        take_overlay: cython.bint
        while not self._closed:
            ih = self._ihead
            if ih is None and self._inner is not None:
                try:
                    ih = next(self._inner)
                except StopIteration:
                    ih = None
                    self._close_inner()
                self._ihead = ih
            oh = None
            if self._oi < len(self._overlay):
                oh = self._overlay[self._oi]
            if ih is None and oh is None:
                self.close()
                return None
            if ih is None:
                take_overlay = True
            elif oh is None:
                take_overlay = False
            else:
                ik = ih[0]
                ok = oh[0]
                if ik == ok:
                    self._ihead = None
                    take_overlay = True
                elif self._reverse:
                    take_overlay = ok > ik
                else:
                    take_overlay = ok < ik
            if take_overlay:
                self._oi += 1
                kb = oh[0]
                item = oh[1]
                if isinstance(item, _Entry):
                    e = item
                    if e.typed:
                        value = e.value
                        if value is None:
                            continue
                    else:
                        if e.vb is None:
                            continue
                        value = store._decode(e.vb)
                else:
                    if item is None:
                        continue
                    value = store._decode(item)
            else:
                self._ihead = None
                kb = ih[0]
                value = store._decode(ih[1])
            if self._prefix is not None and not kb.startswith(self._prefix):
                self.close()
                return None
            return (store._key_de(kb), value)
        return None

    def _close_inner(self) -> None:
        inner = self._inner
        self._inner = None
        if inner is not None:
            close = getattr(inner, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> KeyValueIterator:
        return self

    def __next__(self) -> tuple:
        pair = self._peeked
        if pair is not None:
            self._peeked = None
            return pair
        pair = self._advance()
        if pair is None:
            raise StopIteration
        return pair

    def has_next(self) -> bool:
        """Whether another pair follows."""
        if self._peeked is None:
            self._peeked = self._advance()
        return self._peeked is not None

    def peek_next_key(self) -> object:
        """The next key without consuming it (``StopIteration`` at the end)."""
        if self._peeked is None:
            self._peeked = self._advance()
            if self._peeked is None:
                raise StopIteration
        return self._peeked[0]

    def close(self) -> None:
        """Release the iterator (further ``next`` calls stop)."""
        self._closed = True
        self._overlay = []
        self._close_inner()

    def __enter__(self) -> KeyValueIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KVStoreCore:
    """The typed, buffered front of a key-value store over a bytes store (see the module doc).

    Built unconfigured; :meth:`configure` gives it serdes, the task's collector and context,
    its changelog (``None``: logging disabled) and the buffer bound. ``timestamped`` stores hold
    :class:`ValueAndTimestamp` values: on the bytes store as an 8-byte big-endian timestamp
    followed by the value bytes, in the changelog as the plain value bytes with the record
    timestamp set to the stored timestamp.
    """

    def __init__(self, name: str, inner: object, timestamped: bool = False) -> None:
        self.name = name
        self.inner = inner
        self.timestamped = timestamped
        self.caching_enabled = False
        self.changelog_topic = None
        self.changelog_partition = -1
        self.cache_max_bytes = 0
        self.early_commit_requests = 0
        self._open = False
        self._drop_all()  # the buffer, the read cache and the deferred batch: empty
        self.defer_records = 0
        self.defer_bytes = 0
        self._applying = {}
        self._applying_bytes = 0
        self._applying_entries = []
        self._apply_handle = None
        self._write_async = None
        self._key_ser = None
        self._key_de = None
        self._value_ser = None
        self._value_de = None
        self._inner_get = None
        self._plan_evictions = None
        self._checked_vtype = None
        self._collector = None
        self._collector_obj = None
        self._ctx = None
        self._ctx_obj = None
        self._last_offset = None
        self._evict_at = 0

    # -- set-up -------------------------------------------------------------------------------------

    def configure(self, key_serde: object, value_serde: object, collector: object, processor_context: object,
                  changelog_topic: object, partition: int, cache_max_bytes: int, caching_enabled: bool,
                  defer_records: int = 0, defer_bytes: int = DEFAULT_DEFER_BYTES) -> None:
        """Wire the store to its task (the bytes store must be open already).

        ``defer_records``: a store with a changelog and a bytes store that writes in the
        background may keep committed entries in memory until about that many changelog records
        were committed since its last batch, or they hold more than ``defer_bytes``: hot keys
        reach the bytes store once per batch, not once per commit, and a crash replays at most
        that tail of the changelog. 0: every commit writes its batch."""
        self._key_ser = key_serde.serialize
        self._key_de = key_serde.deserialize
        self._value_ser = value_serde.serialize
        self._value_de = value_serde.deserialize
        self._collector_obj = collector
        self._collector = collector if isinstance(collector, RecordCollector) else None
        self._ctx_obj = processor_context
        self._ctx = processor_context if isinstance(processor_context, ProcessorContextImpl) else None
        self.changelog_topic = changelog_topic
        self.changelog_partition = partition
        self.cache_max_bytes = max(0, cache_max_bytes)
        self._evict_at = self.cache_max_bytes
        self.caching_enabled = caching_enabled
        self._checked_vtype = None
        self._bind_inner()
        # a store without changelog has nothing to replay a deferred batch from; an in-memory
        # bytes store (or an LRU map, which plans its evictions per batch) gains nothing
        deferrable = changelog_topic is not None and self._write_async is not None
        self.defer_records = max(0, defer_records) if deferrable else 0
        self.defer_bytes = max(0, defer_bytes)

    def resize_cache(self, cache_max_bytes: int) -> None:
        """Set the bound of the write buffer and read cache: the store's share of
        ``statestore.cache.max.bytes`` (see :func:`kstreams.state.keyvalue.share_cache`). A cache
        above the new bound shrinks at its next eviction; a buffer above it asks for a commit."""
        self.cache_max_bytes = max(0, cache_max_bytes)
        self._evict_at = self.cache_max_bytes
        if self.dirty_bytes > self.cache_max_bytes:
            self._request_commit()

    def _bind_inner(self) -> None:
        """(Re)bind the bytes store's ``get`` after it was opened or wiped."""
        self._inner_get = self.inner.get
        self._plan_evictions = getattr(self.inner, "plan_evictions", None)
        self._write_async = getattr(self.inner, "write_batch_async", None)
        self._last_offset = self.inner.committed_offset()
        self._open = True

    def _close_core(self) -> None:
        """Write what was committed, forget everything else and refuse further use (uncommitted
        writes are lost)."""
        try:
            self._write_deferred(True)
        finally:
            self._drop_all()
            self._open = False

    def _drop_all(self) -> None:
        """Forget the cache, every uncommitted write and the deferred batch (call
        :meth:`wait_applied` first to keep what was committed)."""
        self._cache = {}
        self._dirty = []
        self._pending = {}
        self._pending_entries = []
        self._pending_bytes = 0
        self._deferred = {}
        self._deferred_entries = []
        self._deferred_records = 0
        self._deferred_bytes = 0
        self._deferred_offset = None
        self._sorted_dirty = None
        self._dirty_by_kb = None
        self.cache_bytes = 0
        self.dirty_bytes = 0

    # -- serialization helpers ---------------------------------------------------------------------

    def _key_bytes(self, key: object) -> bytes:
        if key is None:
            raise StateStoreError(f"store {self.name!r}: key must not be None")
        data = self._key_ser(key)
        if type(data) is not bytes:
            data = bytes(data)
        return data

    def _decode(self, vb: object) -> object:
        if self.timestamped:
            ts = _ts_unpack_from(vb, 0)[0]
            return ValueAndTimestamp(self._value_de(vb[8:]), ts)
        return self._value_de(vb)

    def _encode(self, value: object) -> bytes:
        vat: ValueAndTimestamp
        if self.timestamped:
            if not isinstance(value, ValueAndTimestamp):
                raise TypeError(f"timestamped store {self.name!r} expects ValueAndTimestamp values (or None), got "
                                f"{type(value).__name__}")
            vat = value
            data = self._value_ser(vat.value)
            if type(data) is not bytes:
                data = bytes(data)
            return _ts_pack(vat.timestamp) + data
        data = self._value_ser(value)
        if type(data) is not bytes:
            data = bytes(data)
        return data

    def _record_ts(self) -> cython.longlong:
        if self._ctx is not None:
            return self._ctx.record_timestamp
        if self._ctx_obj is None:
            return 0
        return getattr(self._ctx_obj, "record_timestamp", 0)

    # -- reads --------------------------------------------------------------------------------------

    def get(self, key: object) -> object:
        """The value of ``key``, or ``None``."""
        e: _Entry
        t = type(key)
        if t is int or t is str:
            ck = key
        else:
            ck = self._key_bytes(key)
        obj = self._cache.get(ck)
        if obj is not None:
            e = cython.cast(_Entry, obj)
            e.ref = True
            if e.typed:
                return e.value
            return self._decode(e.vb)
        return self._miss(key, ck)

    def _miss(self, key: object, ck: object) -> object:
        e: _Entry
        if not self._open:
            raise StateStoreError(f"Store {self.name} is currently closed.")
        if type(ck) is bytes:
            kb = ck
        else:
            kb = self._key_bytes(key)
        vb = self._inner_get(kb)
        value = None if vb is None else self._decode(vb)
        if not self.caching_enabled:
            return value
        e = _Entry()
        e.kb = kb
        if vb is None:
            e.size = _ENTRY_OVERHEAD + len(kb)
        elif (self.timestamped and _immutable(cython.cast(ValueAndTimestamp, value).value)) or \
                (not self.timestamped and _immutable(value)):
            e.value = value
            e.size = _ENTRY_OVERHEAD + len(kb) + len(vb)
        else:
            e.typed = False
            e.vb = vb
            e.size = _ENTRY_OVERHEAD + len(kb) + len(vb)
        self._cache[ck] = e
        self.cache_bytes += e.size
        if self.cache_bytes > self._evict_at:
            self._evict()
        return value

    # -- writes -------------------------------------------------------------------------------------

    def _entry_for_write(self, key: object) -> _Entry:
        """The entry of ``key``, created (and inserted, absent) if the key is not buffered."""
        e: _Entry
        t = type(key)
        if t is int or t is str:
            ck = key
            obj = self._cache.get(ck)
            if obj is not None:
                return cython.cast(_Entry, obj)
            kb = self._key_bytes(key)
        else:
            kb = self._key_bytes(key)
            ck = kb
            obj = self._cache.get(ck)
            if obj is not None:
                return cython.cast(_Entry, obj)
        if not self._open:
            raise StateStoreError(f"Store {self.name} is currently closed.")
        e = _Entry()
        e.kb = kb
        e.size = _ENTRY_OVERHEAD + len(kb)
        self._cache[ck] = e
        self.cache_bytes += e.size
        return e

    def _set_value(self, e: _Entry, value: object) -> None:
        """Give ``e`` a new value (``None``: deleted); serialization errors leave ``e`` unchanged."""
        size: cython.Py_ssize_t
        typed: cython.bint
        vt = None
        if value is None:
            typed = False
        elif self.timestamped:
            typed = type(value) is ValueAndTimestamp and _immutable(cython.cast(ValueAndTimestamp, value).value)
            if typed:
                vt = type(cython.cast(ValueAndTimestamp, value).value)
        else:
            typed = _immutable(value)
            vt = type(value)
        if value is None:
            size = _ENTRY_OVERHEAD + len(e.kb)
            e.value = None
            e.vb = None
            e.typed = True
        elif typed:
            if vt is not self._checked_vtype:
                self._encode(value)  # fail at put, not at commit, when the serde rejects the type
                self._checked_vtype = vt
            size = _ENTRY_OVERHEAD + len(e.kb) + _TYPED_VALUE_SIZE
            e.value = value
            e.vb = None
            e.typed = True
        else:
            vb = self._encode(value)
            size = _ENTRY_OVERHEAD + len(e.kb) + len(vb)
            e.value = None
            e.vb = vb
            e.typed = False
        if size != e.size:
            self.cache_bytes += size - e.size
            if e.dirty:
                self.dirty_bytes += size - e.size
            e.size = size

    def _mark_dirty(self, e: _Entry) -> None:
        e.dirty = True
        self._dirty.append(e)
        self.dirty_bytes += e.size
        if self._sorted_dirty is not None:
            if e.kb not in self._dirty_by_kb:
                insort(self._sorted_dirty, e.kb)
            self._dirty_by_kb[e.kb] = e
        if self.dirty_bytes > self.cache_max_bytes:
            self._request_commit()

    def _request_commit(self) -> None:
        """Ask the task for an early commit (the buffer outgrew its bound)."""
        if self._ctx is not None:
            if not self._ctx.commit_requested:
                self._ctx.commit_requested = True
                self.early_commit_requests += 1
        elif self._ctx_obj is not None:
            if not getattr(self._ctx_obj, "commit_requested", False):
                self._ctx_obj.commit_requested = True
                self.early_commit_requests += 1

    def put(self, key: object, value: object) -> None:
        """Set ``key`` to ``value``; ``None`` deletes the key."""
        e: _Entry
        t = type(key)
        if (t is int or t is str) and type(value) is self._checked_vtype and not self.timestamped:
            # the hot path: a buffered key gets another value of a type already checked
            obj = self._cache.get(key)
            if obj is not None:
                e = cython.cast(_Entry, obj)
                if e.typed and e.value is not None:
                    e.value = value
                    e.vb = None
                    e.ts = self._record_ts()
                    e.ref = True
                    if not e.dirty:
                        self._mark_dirty(e)
                    return
        e = self._entry_for_write(key)
        try:
            self._set_value(e, value)
        except BaseException:
            if not e.dirty and e.pins == 0 and e.typed and e.value is None and e.vb is None:
                self._forget(key, e)
            raise
        e.ts = self._record_ts()
        e.ref = True
        if not e.dirty:
            self._mark_dirty(e)

    def _forget(self, key: object, e: _Entry) -> None:
        """Drop a clean entry created for a write that failed (its "absent" state is not known)."""
        t = type(key)
        ck = key if (t is int or t is str) else e.kb
        if self._cache.get(ck) is e:
            del self._cache[ck]
            self.cache_bytes -= e.size

    def put_if_absent(self, key: object, value: object) -> object:
        """Set ``key`` only if it has no value; returns the existing value (or ``None``)."""
        old = self.get(key)
        if old is None and value is not None:
            self.put(key, value)
        return old

    def put_all(self, entries: object) -> None:
        """Put every ``(key, value)`` pair (``None`` values delete)."""
        for key, value in entries:
            self.put(key, value)

    def delete(self, key: object) -> object:
        """Delete ``key``; returns its old value (or ``None``). A tombstone is always logged."""
        old = self.get(key)
        self.put(key, None)
        return old

    # -- commit -------------------------------------------------------------------------------------

    def prepare_commit(self) -> int:
        """Phase 1: send the dirty entries to the changelog and keep them pending.

        Returns the number of entries prepared. A serialization failure raises
        :class:`~kstreams.errors.SerializationError` before anything is sent.
        """
        e: _Entry
        ts: cython.longlong
        i: cython.Py_ssize_t
        dirty = self._dirty
        if not dirty:
            return 0
        n: cython.Py_ssize_t = len(dirty)
        values = []
        for e in dirty:
            if e.typed:
                if e.value is None:
                    vb = None
                else:
                    try:
                        vb = self._encode(e.value)
                    except Exception as exc:
                        raise SerializationError(
                            f"Failed to serialize the value of key {self._key_de(e.kb)!r} for store "
                            f"{self.name!r}: {exc!r}") from exc
            else:
                vb = e.vb
            values.append(vb)
        topic = self.changelog_topic
        partition: cython.int = self.changelog_partition
        pending = self._pending
        distinct: cython.bint = not pending  # the keys of one prepare are distinct
        for i in range(n):
            e = cython.cast(_Entry, dirty[i])
            vb = values[i]
            e.dirty = False
            e.pins += 1
            if not distinct:
                pending.pop(e.kb, None)  # a key's last write decides its place (an LRU map's recency)
            pending[e.kb] = vb
            if topic is None:
                continue
            if self.timestamped and vb is not None:
                ts = _ts_unpack_from(vb, 0)[0]
                cv = vb[8:]
            else:
                ts = e.ts
                cv = vb
            self._send(topic, e.kb, cv, ts, partition)
        if self._plan_evictions is not None:
            # a bounded bytes store (LRU map) tells which keys this batch pushes out: they are
            # deleted in the same batch and logged as tombstones, so a restore matches
            ts = self._record_ts()
            for kb in self._plan_evictions([(cython.cast(_Entry, dirty[i]).kb, values[i]) for i in range(n)]):
                pending.pop(kb, None)
                pending[kb] = None
                if topic is not None:
                    self._send(topic, kb, None, ts, partition)
        self._pending_bytes += self.dirty_bytes
        self._dirty = []
        self.dirty_bytes = 0
        self._sorted_dirty = None
        self._dirty_by_kb = None
        if self._pending_entries:
            self._pending_entries.extend(dirty)
        else:
            self._pending_entries = dirty
        return n

    def _send(self, topic: object, kb: object, cv: object, ts: cython.longlong, partition: cython.int) -> None:
        if ts < 0:
            ts = 0
        if self._collector is not None:
            self._collector.send(topic, kb, cv, ts, (), partition)
        else:
            self._collector_obj.send(topic, kb, cv, ts, (), partition)

    def commit(self, changelog_offset: object = None) -> int:
        """Phase 2: the pending entries are committed (``changelog_offset``: the changelog's end
        offset after them, or an earlier one; ``None``: unknown). They go to the bytes store in
        one batch with the latest offset known, now or, when the store defers its writes
        (``defer_records``), once enough changelog records have been committed since its last
        batch. Returns the number of entries committed."""
        pending = self._pending
        n: cython.Py_ssize_t = len(pending)
        if n > 0:
            if self._deferred:
                before: cython.Py_ssize_t = len(self._deferred)
                self._deferred.update(pending)
                self._deferred_entries.extend(self._pending_entries)
                # the bytes bound counts what stays pinned: a key deferred again adds nothing
                self._deferred_bytes += self._pending_bytes * (len(self._deferred) - before) // n
            else:
                self._deferred = pending
                self._deferred_entries = self._pending_entries
                self._deferred_bytes += self._pending_bytes
            self._deferred_records += n
            self._pending = {}
            self._pending_entries = []
            self._sorted_dirty = None
            self._dirty_by_kb = None
        self._pending_bytes = 0
        if changelog_offset is not None:
            known = self._deferred_offset if self._deferred_offset is not None else self._last_offset
            if known is None or changelog_offset > known:  # never back (a stable offset may be lower)
                self._deferred_offset = changelog_offset
        if self._write_due():
            self._write_deferred(False)
        elif self._apply_handle is not None and self._apply_handle.done():
            self._finish_apply()
        self._trim()
        return n

    def _write_due(self) -> cython.bint:
        if not self._deferred and (self._deferred_offset is None or self._deferred_offset == self._last_offset):
            return False  # nothing new for the bytes store
        if self._last_offset is None and self._deferred_offset is not None:
            return True  # the store's first offset: from now on a crash never forces a full restore
        return self._deferred_records >= self.defer_records or self._deferred_bytes > self.defer_bytes

    def _write_deferred(self, wait: cython.bint) -> None:
        """Hand the committed entries not in the bytes store yet to it, in one batch with the
        latest changelog offset known (``wait``: written before this returns)."""
        e: _Entry
        self._finish_apply()  # one batch at a time, in commit order
        batch = self._deferred
        entries = self._deferred_entries
        offset = self._deferred_offset
        held: cython.Py_ssize_t = self._deferred_bytes
        self._deferred = {}
        self._deferred_entries = []
        self._deferred_records = 0
        self._deferred_bytes = 0
        self._sorted_dirty = None
        self._dirty_by_kb = None
        if not batch and (offset is None or offset == self._last_offset):
            return
        try:
            if self._write_async is not None and batch and not wait:
                self._apply_handle = self._write_async(batch.items(), offset)
                self._applying = batch
                self._applying_entries = entries
                self._applying_bytes = held
                entries = []
            else:
                self.inner.write_batch(batch.items(), offset)
        except BaseException:
            for e in entries:
                e.pins -= 1
            raise
        if offset is not None:
            self._last_offset = offset
        for e in entries:
            e.pins -= 1

    def _trim(self) -> None:
        """Bring the cache back within its bound (only dirty and pinned entries without caching)."""
        if not self.caching_enabled:
            self._drop_clean()
        elif self.cache_bytes > self.cache_max_bytes + self._deferred_bytes + self._applying_bytes:
            self._evict()

    def wait_applied(self) -> None:
        """Write the committed entries the store deferred, wait until every committed batch is in
        the bytes store, then trim the cache."""
        self._write_deferred(True)
        self._trim()

    def _finish_apply(self) -> cython.bint:
        """Wait for the background write, if any, and unpin its entries; True if there was one."""
        e: _Entry
        handle = self._apply_handle
        if handle is None:
            return False
        entries = self._applying_entries
        self._apply_handle = None
        self._applying = {}
        self._applying_entries = []
        self._applying_bytes = 0
        self._sorted_dirty = None
        self._dirty_by_kb = None
        for e in entries:
            e.pins -= 1
        try:
            handle.result()
        except Exception as exc:
            raise StateStoreError(f"store {self.name!r}: writing a committed batch failed (the store is restored "
                                  f"from its changelog on restart): {exc!r}") from exc
        return True

    def flush(self) -> None:
        """Prepare and commit with no changelog offset (for callers that have none); everything
        committed goes to the bytes store."""
        self.prepare_commit()
        self.commit(None)
        self._write_deferred(False)

    def discard_uncommitted(self) -> None:
        """Forget every write not committed yet (after an aborted transaction): reads go back to
        what the last commit left, which the bytes store then holds."""
        self._write_deferred(True)
        self._drop_all()

    @property
    def dirty_count(self) -> int:
        """Number of keys written since the last ``prepare_commit``."""
        return len(self._dirty)

    @property
    def pending_count(self) -> int:
        """Number of entries prepared but not committed."""
        return len(self._pending)

    @property
    def offset_wanted(self) -> bool:
        """Whether the changelog's end offset is worth asking for: the store has none yet, or
        its next batch is near (a store that writes at every commit always wants it)."""
        return self._last_offset is None or 2 * self._deferred_records >= self.defer_records

    @property
    def deferred_count(self) -> int:
        """Number of committed entries not handed to the bytes store yet."""
        return len(self._deferred)

    @property
    def changelog_offset(self) -> object:
        """The changelog offset the store's committed data reaches (``None`` until one is known)."""
        return self._last_offset

    @property
    def cached_count(self) -> int:
        """Number of keys in the buffer and read cache."""
        return len(self._cache)

    def _drop_clean(self) -> None:
        """Keep only the entries that must stay in memory (dirty or pinned)."""
        e: _Entry
        if not self._dirty and not self._applying_entries and not self._pending_entries and not self._deferred_entries:
            self._cache = {}
            self.cache_bytes = 0
            return
        kept = {}
        size: cython.Py_ssize_t = 0
        for ck, obj in self._cache.items():
            e = cython.cast(_Entry, obj)
            if e.dirty or e.pins > 0:
                kept[ck] = e
                size += e.size
        self._cache = kept
        self.cache_bytes = size

    def _evict(self) -> None:
        """Second-chance (CLOCK) eviction down to 15/16 of the bound.

        The dict's insertion order is the clock: the hand starts at the oldest entry; an entry
        used since the hand last passed (``ref``) or dirty gets a second chance and moves to the
        end; an unused clean entry is dropped. Entries the hand passed are not visited again until
        every other entry was, so a pass costs O(entries freed + entries spared)."""
        e: _Entry
        if self._apply_handle is not None and self._apply_handle.done():
            self._finish_apply()
        target: cython.Py_ssize_t = self.cache_max_bytes - self.cache_max_bytes // 16
        if self.dirty_bytes >= target:
            return
        # the entries the bytes store has yet to receive are bounded apart (defer_bytes)
        held: cython.Py_ssize_t = self._deferred_bytes + self._applying_bytes
        target += held
        cache = self._cache
        limit: cython.Py_ssize_t = 2 * len(cache)
        seen: cython.Py_ssize_t = 0
        while self.cache_bytes > target and seen < limit:
            victims = []
            spared = []
            freed: cython.Py_ssize_t = 0
            excess: cython.Py_ssize_t = self.cache_bytes - target
            for ck, obj in cache.items():
                seen += 1
                e = cython.cast(_Entry, obj)
                if e.dirty or e.pins > 0 or e.ref:
                    e.ref = False
                    spared.append(ck)
                else:
                    victims.append(ck)
                    freed += e.size
                    if freed >= excess:
                        break
                if seen >= limit:
                    break
            for ck in victims:
                e = cython.cast(_Entry, cache.pop(ck))
                self.cache_bytes -= e.size
            for ck in spared:
                cache[ck] = cache.pop(ck)
        # entries that must stay (dirty, pinned) can keep the cache above its bound: try again
        # only once it grew by another 1/16 (or at the next commit)
        self._evict_at = max(self.cache_max_bytes + held, self.cache_bytes + self.cache_max_bytes // 16)

    # -- restore ------------------------------------------------------------------------------------

    def restore_batch(self, records: object, end_offset: object) -> int:
        """Apply changelog records ``(key_bytes, value_bytes_or_None[, timestamp])`` in one batch
        with ``end_offset`` (the changelog offset after them). Timestamped stores need the
        record timestamp. Returns the number of records applied.

        A bytes store that writes in the background gets the batch that way, so the next batch
        is read meanwhile; the one before is written first (batches land in changelog order), and
        :meth:`wait_applied` waits for the last."""
        if self._dirty or self._pending:
            raise StateStoreError(f"cannot restore store {self.name!r}: it has uncommitted writes")
        self._write_deferred(True)  # and the previous restore batch
        if not self._open:
            raise StateStoreError(f"Store {self.name} is currently closed.")
        pairs = []
        timestamped: cython.bint = self.timestamped
        for rec in records:
            kb = rec[0]
            vb = rec[1]
            if vb is not None and timestamped:
                if len(rec) < 3:
                    raise StateStoreError(f"restoring timestamped store {self.name!r} needs "
                                          f"(key, value, timestamp) records")
                vb = _ts_pack(rec[2]) + vb
            pairs.append((kb, vb))
        if self._write_async is not None and pairs:
            self._apply_handle = self._write_async(pairs, end_offset)
        else:
            self.inner.write_batch(pairs, end_offset)
        if end_offset is not None:
            self._last_offset = end_offset
        self._drop_all()
        return len(pairs)

    # -- scans --------------------------------------------------------------------------------------

    def _overlay(self, from_kb: object, to_kb: object, reverse: cython.bint) -> list:
        """Buffered entries with ``from_kb <= key <= to_kb`` in scan order, as ``(kb, entry)``
        (dirty) or ``(kb, value_bytes_or_None)`` (prepared, or committed by a batch still being
        written)."""
        e: _Entry
        if self._apply_handle is not None and self._apply_handle.done():
            self._finish_apply()
        if not self._dirty and not self._pending and not self._deferred and not self._applying:
            return []
        if self._sorted_dirty is None:
            # built once, then kept up to date by _mark_dirty until the next commit phase
            by_kb = {}
            by_kb.update(self._applying)
            by_kb.update(self._deferred)
            by_kb.update(self._pending)
            for e in self._dirty:
                by_kb[e.kb] = e
            self._dirty_by_kb = by_kb
            self._sorted_dirty = sorted(by_kb)
        kbs = self._sorted_dirty
        by_kb = self._dirty_by_kb
        lo: cython.Py_ssize_t = 0 if from_kb is None else bisect_left(kbs, from_kb)
        hi: cython.Py_ssize_t = len(kbs) if to_kb is None else bisect_right(kbs, to_kb)
        out = [(kb, by_kb[kb]) for kb in kbs[lo:hi]]
        if reverse:
            out.reverse()
        return out

    def _scan(self, from_kb: object, to_kb: object, reverse: bool, prefix: object = None) -> KeyValueIterator:
        """A merged iterator over ``[from_kb, to_kb]`` (bytes; ``None`` unbounded)."""
        if not self._open:
            raise StateStoreError(f"Store {self.name} is currently closed.")
        overlay = self._overlay(from_kb, to_kb, reverse)
        inner = self.inner.range(from_kb, to_kb, reverse)
        return KeyValueIterator(self, inner, overlay, reverse, prefix)

    def _buffered_puts(self) -> int:
        """Dirty or pending keys that hold a value (for ``approximate_num_entries``)."""
        e: _Entry
        n: cython.Py_ssize_t = 0
        for e in self._dirty:
            if (e.typed and e.value is not None) or (not e.typed and e.vb is not None):
                n += 1
        for vb in self._pending.values():
            if vb is not None:
                n += 1
        for vb in self._deferred.values():
            if vb is not None:
                n += 1
        return n
