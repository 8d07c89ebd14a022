"""State stores: the Stores factory, store builders, the key-value store API, the state
directory and changelog restore."""

from kstreams.state.directory import StateDirectory, StateDirectoryLockedError
from kstreams.state.keyvalue import KeyValueIterator, KeyValueStore, TimestampedKeyValueStore, ValueAndTimestamp
from kstreams.state.restore import NoOpStateRestoreListener, StateRestoreListener, StoreRestorer, restore_store
from kstreams.state.stores import (
    KeyValueBytesStoreSupplier,
    KeyValueStoreBuilder,
    StoreBuilder,
    Stores,
    TimestampedKeyValueStoreBuilder,
)

__all__ = [
    "KeyValueBytesStoreSupplier",
    "KeyValueIterator",
    "KeyValueStore",
    "KeyValueStoreBuilder",
    "NoOpStateRestoreListener",
    "StateDirectory",
    "StateDirectoryLockedError",
    "StateRestoreListener",
    "StoreBuilder",
    "StoreRestorer",
    "Stores",
    "TimestampedKeyValueStore",
    "TimestampedKeyValueStoreBuilder",
    "ValueAndTimestamp",
    "restore_store",
]
