"""The ``Stores`` factory and store builders (Kafka Streams' ``Stores`` / ``StoreBuilder``).

A supplier names a store and makes its bytes layer; a builder adds serdes, logging (on by
default) and caching (off by default) and builds one new store per task.
"""

from __future__ import annotations

from typing import Any

from kstreams.state.keyvalue import KeyValueStore
from kstreams.state.memory import InMemoryKeyValueBytesStore, LRUKeyValueBytesStore


class KeyValueBytesStoreSupplier:
    """Makes the bytes layer of a key-value store: ``kind`` is ``"in-memory"`` or ``"lru"``."""

    def __init__(self, name: str, kind: str, **params: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"store name must be a non-empty str, got {name!r}")
        self.name = name
        self.kind = kind
        self.params = params

    @property
    def persistent(self) -> bool:
        """Whether the store keeps its data on disk."""
        return False

    def get(self) -> Any:
        """A new bytes store."""
        if self.kind == "lru":
            return LRUKeyValueBytesStore(self.name, self.params["max_entries"])
        return InMemoryKeyValueBytesStore(self.name)

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
        """Buffer writes between commits (deduplicated changelog writes)."""
        self.caching_enabled = True
        return self

    def with_caching_disabled(self) -> StoreBuilder:
        """Write through on every put."""
        self.caching_enabled = False
        return self

    def build(self) -> Any:
        """A new store instance (one per task)."""
        raise NotImplementedError


class KeyValueStoreBuilder(StoreBuilder):
    """Builds :class:`~kstreams.state.KeyValueStore` instances from a supplier and serdes
    (``None`` serdes take the config's ``default.key.serde`` / ``default.value.serde``)."""

    def __init__(self, supplier: KeyValueBytesStoreSupplier, key_serde: Any = None, value_serde: Any = None) -> None:
        super().__init__(supplier.name)
        self.supplier = supplier
        self.key_serde = key_serde
        self.value_serde = value_serde

    def build(self) -> KeyValueStore:
        return KeyValueStore(self.name, self.supplier.get(), self.key_serde, self.value_serde,
                             self.logging_enabled, self.log_config)

    def __repr__(self) -> str:
        return f"KeyValueStoreBuilder({self.supplier!r})"


class Stores:
    """Factory of store suppliers and builders."""

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
