"""In-memory key-value bytes stores: sorted by key bytes (like Java's TreeMap), and an LRU map.

They implement the bytes-store API the typed store front uses (``get``, ``write_batch``,
``range``, ``committed_offset``, ``wipe``): they keep no changelog offset, so after a restart
they are restored from the start of their changelog.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from kstreams.state.context import StateStoreContext


class InMemoryKeyValueBytesStore:
    """A dict plus a lazily re-sorted key list for ordered scans."""

    persistent = False

    def __init__(self, name: str) -> None:
        self.name = name
        self._data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] = []
        self._sorted_valid = True
        self.is_open = False

    def open(self, context: StateStoreContext) -> None:
        """Open (nothing to load: the content is restored from the changelog by the caller)."""
        self.is_open = True

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` or ``None``."""
        return self._data.get(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        """Set ``key`` (``None`` deletes)."""
        if value is None:
            if self._data.pop(key, None) is not None:
                self._sorted_valid = False
        else:
            if key not in self._data:
                self._sorted_valid = False
            self._data[key] = value

    def write_batch(self, entries: Iterable[tuple[bytes, bytes | None]], changelog_offset: int | None = None) -> None:
        """Apply ``entries`` in order (the offset is not kept: memory does not survive a restart)."""
        for key, value in entries:
            self.put(key, value)

    def wipe(self) -> None:
        """Delete every entry."""
        self._data.clear()
        self._sorted = []
        self._sorted_valid = True

    def committed_offset(self) -> int | None:
        """In-memory stores keep no offset: they are always restored from the changelog start."""
        return None

    def _keys(self) -> list[bytes]:
        if not self._sorted_valid:
            self._sorted = sorted(self._data)
            self._sorted_valid = True
        return self._sorted

    def range(self, from_key: bytes | None, to_key: bytes | None,
              reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with ``from_key <= key <= to_key`` (``None`` unbounded) in byte order."""
        keys = self._keys()
        lo = 0 if from_key is None else bisect_left(keys, from_key)
        hi = len(keys) if to_key is None else bisect_right(keys, to_key)
        selected = keys[lo:hi]
        if reverse:
            selected.reverse()
        data = self._data
        for k in selected:
            v = data.get(k)
            if v is not None:
                yield k, v

    def approximate_num_entries(self) -> int:
        """Number of keys."""
        return len(self._data)

    def flush(self) -> None:
        """Nothing to do."""

    def close(self) -> None:
        """Close (the content is dropped with the object)."""
        self.is_open = False


class LRUKeyValueBytesStore(InMemoryKeyValueBytesStore):
    """An in-memory store keeping at most ``max_entries`` keys, evicting the least recently used.

    The typed store asks :meth:`plan_evictions` which keys a commit batch pushes out, deletes
    them in the same batch and logs them to the changelog as tombstones, so a restored store
    matches. Reads refresh recency; writes buffered between commits refresh it when applied.
    """

    def __init__(self, name: str, max_entries: int) -> None:
        super().__init__(name)
        if max_entries < 0:
            raise ValueError(f"lru_map {name!r}: max_entries must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._lru: OrderedDict[bytes, None] = OrderedDict()
        self.evicted: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` (which becomes the most recently used)."""
        value = self._data.get(key)
        if value is not None:
            self._lru.move_to_end(key)
        return value

    def put(self, key: bytes, value: bytes | None) -> None:
        """Set ``key`` (``None`` deletes), evicting the least recently used keys past the bound."""
        super().put(key, value)
        if value is None:
            self._lru.pop(key, None)
            return
        self._lru[key] = None
        self._lru.move_to_end(key)
        while len(self._lru) > self.max_entries:
            old, _ = self._lru.popitem(last=False)
            super().put(old, None)
            self.evicted.append(old)

    def write_batch(self, entries: Iterable[tuple[bytes, bytes | None]], changelog_offset: int | None = None) -> None:
        """Apply ``entries`` in order, then evict past the bound (a planned batch needs no eviction)."""
        lru = self._lru
        for key, value in entries:
            InMemoryKeyValueBytesStore.put(self, key, value)
            if value is None:
                lru.pop(key, None)
            else:
                lru[key] = None
                lru.move_to_end(key)
        while len(lru) > self.max_entries:
            old, _ = lru.popitem(last=False)
            InMemoryKeyValueBytesStore.put(self, old, None)
            self.evicted.append(old)

    def plan_evictions(self, pairs: list[tuple[bytes, bytes | None]]) -> list[bytes]:
        """The keys that applying ``pairs`` in order would evict (least recently used first)."""
        data = self._data
        final: dict[bytes, bool] = {}
        for kb, vb in pairs:
            final.pop(kb, None)  # re-insert: the last write decides the key's recency
            final[kb] = vb is not None
        untouched = len(data) - sum(1 for kb in final if kb in data)
        excess = untouched + sum(1 for present in final.values() if present) - self.max_entries
        if excess <= 0:
            return []
        out: list[bytes] = []
        for kb in self._lru:
            if excess == 0:
                return out
            if kb not in final:
                out.append(kb)
                excess -= 1
        for kb, present in final.items():
            if excess == 0:
                break
            if present:
                out.append(kb)
                excess -= 1
        return out

    def wipe(self) -> None:
        """Delete every entry."""
        super().wipe()
        self._lru.clear()
