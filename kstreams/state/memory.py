"""In-memory key-value bytes stores: sorted by key bytes (like Java's TreeMap), and an LRU map."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterator

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
        return self._data.get(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            if self._data.pop(key, None) is not None:
                self._sorted_valid = False
        else:
            if key not in self._data:
                self._sorted_valid = False
            self._data[key] = value

    def write_batch(self, entries: list[tuple[bytes, bytes | None]], changelog_offset: int | None = None) -> None:
        for key, value in entries:
            self.put(key, value)

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
        return len(self._data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.is_open = False


class LRUKeyValueBytesStore(InMemoryKeyValueBytesStore):
    """An in-memory store keeping at most ``max_entries`` keys, evicting the least recently used.

    Evictions are logged to the changelog as deletes, so a restored store matches.
    """

    def __init__(self, name: str, max_entries: int) -> None:
        super().__init__(name)
        if max_entries < 0:
            raise ValueError(f"lru_map {name!r}: max_entries must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._lru: OrderedDict[bytes, None] = OrderedDict()
        self.evicted: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        value = self._data.get(key)
        if value is not None:
            self._lru.move_to_end(key)
        return value

    def put(self, key: bytes, value: bytes | None) -> None:
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
