"""State stores: the Stores factory, store builders and the key-value store API."""

from kstreams.state.keyvalue import KeyValueIterator, KeyValueStore
from kstreams.state.stores import KeyValueBytesStoreSupplier, KeyValueStoreBuilder, StoreBuilder, Stores

__all__ = [
    "KeyValueBytesStoreSupplier",
    "KeyValueIterator",
    "KeyValueStore",
    "KeyValueStoreBuilder",
    "StoreBuilder",
    "Stores",
]
