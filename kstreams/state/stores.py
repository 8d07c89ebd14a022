"""The ``Stores`` factory and store builders (Kafka Streams' ``Stores`` / ``StoreBuilder``).

A supplier names a store and makes its bytes layer (LevelDB, in-memory or LRU); a builder adds
serdes, logging (on by default) and caching (off by default) and builds one new store per task.

Every store buffers its writes between commits (the write buffer is how a commit stays
crash-consistent, DESIGN §5), whatever the caching setting. Caching adds a bounded read cache:
clean keys stay in memory across commits, so hot keys are served without touching LevelDB or a
deserializer.
"""

from __future__ import annotations

from typing import Any

from kstreams.state.keyvalue import KeyValueStore, TimestampedKeyValueStore
from kstreams.state.leveldb import LevelDBKeyValueBytesStore
from kstreams.state.memory import InMemoryKeyValueBytesStore, LRUKeyValueBytesStore

_KINDS = ("in-memory", "lru", "leveldb")


class KeyValueBytesStoreSupplier:
    """Makes the bytes layer of a key-value store: ``kind`` is ``"in-memory"``, ``"lru"`` or
    ``"leveldb"``. ``timestamped`` records that the supplier was made for timestamped stores
    (the builder decides the value format)."""

    def __init__(self, name: str, kind: str, timestamped: bool = False, **params: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"store name must be a non-empty str, got {name!r}")
        if kind not in _KINDS:
            raise ValueError(f"unknown store kind {kind!r}; expected one of {_KINDS}")
        self.name = name
        self.kind = kind
        self.timestamped = timestamped
        self.params = params

    @property
    def persistent(self) -> bool:
        """Whether the store keeps its data on disk."""
        return self.kind == "leveldb"

    def get(self, value_format: str = "plain") -> Any:
        """A new bytes store; ``value_format`` (``"plain"`` / ``"timestamped"``) for LevelDB."""
        if self.kind == "lru":
            return LRUKeyValueBytesStore(self.name, self.params["max_entries"])
        if self.kind == "leveldb":
            return LevelDBKeyValueBytesStore(self.name, value_format, self.params.get("options"),
                                             self.params.get("async_apply", True))
        return InMemoryKeyValueBytesStore(self.name)

    def metrics_scope(self) -> str:
        """Kafka Streams' metrics scope of the store type."""
        return {"leveldb": "rocksdb", "in-memory": "in-memory", "lru": "in-memory-lru"}[self.kind]

    def __repr__(self) -> str:
        return f"KeyValueBytesStoreSupplier({self.name!r}, {self.kind})"


class StoreBuilder:
    """Common builder options: logging (default on) and caching (default off)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.logging_enabled = True
        self.log_config: dict[str, str] = {}
        self.caching_enabled = False

    def with_logging_enabled(self, topic_config: dict[str, str] | None = None) -> StoreBuilder:
        """Log every change to ``<application.id>-<store>-changelog`` with extra topic configs."""
        self.logging_enabled = True
        self.log_config = dict(topic_config or {})
        return self

    def with_logging_disabled(self) -> StoreBuilder:
        """Keep no changelog: the store is not restored after a failure or migration."""
        self.logging_enabled = False
        self.log_config = {}
        return self

    def with_caching_enabled(self) -> StoreBuilder:
        """Keep clean keys in a bounded read cache across commits (``statestore.cache.max.bytes``)."""
        self.caching_enabled = True
        return self

    def with_caching_disabled(self) -> StoreBuilder:
        """Keep only the keys written since the last commit in memory."""
        self.caching_enabled = False
        return self

    def build(self) -> Any:
        """A new store instance (one per task)."""
        raise NotImplementedError


class KeyValueStoreBuilder(StoreBuilder):
    """Builds :class:`~kstreams.state.KeyValueStore` instances from a supplier and serdes
    (``None`` serdes take the config's ``default.key.serde`` / ``default.value.serde``)."""

    def __init__(self, supplier: KeyValueBytesStoreSupplier, key_serde: Any = None, value_serde: Any = None) -> None:
        if not isinstance(supplier, KeyValueBytesStoreSupplier):
            raise TypeError(f"expected a key-value store supplier (e.g. Stores.persistent_key_value_store(name)), "
                            f"got {supplier!r}")
        super().__init__(supplier.name)
        self.supplier = supplier
        self.key_serde = key_serde
        self.value_serde = value_serde

    def build(self) -> KeyValueStore:
        return KeyValueStore(self.name, self.supplier.get("plain"), self.key_serde, self.value_serde,
                             self.logging_enabled, self.log_config, self.caching_enabled)

    def __repr__(self) -> str:
        return f"KeyValueStoreBuilder({self.supplier!r})"


class TimestampedKeyValueStoreBuilder(KeyValueStoreBuilder):
    """Builds :class:`~kstreams.state.TimestampedKeyValueStore` instances (values are
    :class:`~kstreams.state.ValueAndTimestamp`; ``value_serde`` is the serde of the plain value)."""

    def build(self) -> TimestampedKeyValueStore:
        return TimestampedKeyValueStore(self.name, self.supplier.get("timestamped"), self.key_serde,
                                        self.value_serde, self.logging_enabled, self.log_config,
                                        self.caching_enabled)

    def __repr__(self) -> str:
        return f"TimestampedKeyValueStoreBuilder({self.supplier!r})"


class Stores:
    """Factory of store suppliers and builders."""

    @staticmethod
    def persistent_key_value_store(name: str, *, async_apply: bool = True) -> KeyValueBytesStoreSupplier:
        """A LevelDB key-value store, at ``<state.dir>/<application.id>/<task_id>/<name>``.

        ``async_apply``: committed batches are written to LevelDB on a background thread (the
        record loop goes on meanwhile; reads are served from memory until the write is done).
        It helps when a core is free; ``False`` writes them in the committing thread.
        """
        return KeyValueBytesStoreSupplier(name, "leveldb", async_apply=async_apply)

    @staticmethod
    def persistent_timestamped_key_value_store(name: str, *, async_apply: bool = True) -> KeyValueBytesStoreSupplier:
        """A LevelDB store of values with timestamps (use with :meth:`timestamped_key_value_store_builder`);
        ``async_apply`` as in :meth:`persistent_key_value_store`."""
        return KeyValueBytesStoreSupplier(name, "leveldb", timestamped=True, async_apply=async_apply)

    @staticmethod
    def in_memory_key_value_store(name: str) -> KeyValueBytesStoreSupplier:
        """An in-memory key-value store ordered by serialized key bytes."""
        return KeyValueBytesStoreSupplier(name, "in-memory")

    @staticmethod
    def lru_map(name: str, max_entries: int) -> KeyValueBytesStoreSupplier:
        """An in-memory store keeping the ``max_entries`` most recently used keys."""
        if max_entries < 0:
            raise ValueError(f"lru_map {name!r}: max_entries must be >= 0, got {max_entries}")
        return KeyValueBytesStoreSupplier(name, "lru", max_entries=max_entries)

    @staticmethod
    def key_value_store_builder(supplier: KeyValueBytesStoreSupplier, key_serde: Any = None,
                                value_serde: Any = None) -> KeyValueStoreBuilder:
        """A builder of key-value stores from ``supplier`` with the given serdes."""
        return KeyValueStoreBuilder(supplier, key_serde, value_serde)

    @staticmethod
    def timestamped_key_value_store_builder(supplier: KeyValueBytesStoreSupplier, key_serde: Any = None,
                                            value_serde: Any = None) -> TimestampedKeyValueStoreBuilder:
        """A builder of timestamped key-value stores (values are ``ValueAndTimestamp``)."""
        return TimestampedKeyValueStoreBuilder(supplier, key_serde, value_serde)
