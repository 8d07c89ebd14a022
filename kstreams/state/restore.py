"""Restoring a store from its changelog, and the restore listener protocol.

A store's data reaches the changelog offset stored with it (``store.committed_offset()``, the
offset its last commit or restore batch reached). Restoring replays the changelog from there to
its end, batch by batch, each batch applied in one WriteBatch together with the offset it
reaches. So a crash at any point, also during a restore, leaves the store at some committed
point and the next restore replays only the tail. The Kafka runtime takes as the end every record
written (committed or not) and reads ``read_committed``: a restore waits for the transactions
before that end to be decided, so it always includes the last committed one, whose markers may
still be on their way.

The stored offset is thrown away, and the store wiped and restored in full, when it cannot be
used: beyond the changelog's end (the topic was deleted and recreated) or before its beginning
(the records in between are gone). A store whose directory could not be opened was already
wiped when it was opened (it has no offset).

The Kafka runtime drives a :class:`StoreRestorer` from a restore consumer, a batch per poll;
:func:`restore_store` drives one from any iterable of batches (tests, tools).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

log = logging.getLogger("kstreams.state")

__all__ = ["StateRestoreListener", "NoOpStateRestoreListener", "StoreRestorer", "restore_store"]

ChangelogRecord = Sequence[Any]
"""``(key_bytes, value_bytes_or_None)`` or ``(key_bytes, value_bytes_or_None, timestamp)``;
timestamped stores need the timestamp."""


class StateRestoreListener(Protocol):
    """Told about restores (Kafka Streams' ``StateRestoreListener``); one listener serves every store."""

    def on_restore_start(self, topic_partition: tuple[str, int], store_name: str, start_offset: int,
                         end_offset: int) -> None:
        """Restoring ``store_name`` from ``topic_partition`` begins at ``start_offset``; ends at ``end_offset``."""
        ...

    def on_batch_restored(self, topic_partition: tuple[str, int], store_name: str, batch_end_offset: int,
                          num_restored: int) -> None:
        """A batch of ``num_restored`` records up to ``batch_end_offset`` (inclusive) was applied."""
        ...

    def on_restore_end(self, topic_partition: tuple[str, int], store_name: str, total_restored: int) -> None:
        """Restoring finished after ``total_restored`` records."""
        ...


class NoOpStateRestoreListener:
    """A listener that does nothing."""

    def on_restore_start(self, topic_partition: tuple[str, int], store_name: str, start_offset: int,
                         end_offset: int) -> None:
        """Nothing."""

    def on_batch_restored(self, topic_partition: tuple[str, int], store_name: str, batch_end_offset: int,
                          num_restored: int) -> None:
        """Nothing."""

    def on_restore_end(self, topic_partition: tuple[str, int], store_name: str, total_restored: int) -> None:
        """Nothing."""


class StoreRestorer:
    """Restores one store from one changelog partition, a batch at a time.

    ``end_offset`` is the changelog's end (the Kafka runtime: its high watermark, every record
    written, see the module docstring), ``begin_offset`` its log start. Use::

        restorer = StoreRestorer(store, (topic, partition), end_offset, listener, begin_offset)
        position = restorer.start()          # seek the restore consumer here
        while not restorer.done:
            records, position = ...          # a batch, and the consumer position after it
            restorer.restore_batch(records, position)
        restorer.finish()
    """

    def __init__(self, store: Any, topic_partition: tuple[str, int], end_offset: int,
                 listener: StateRestoreListener | None = None, begin_offset: int = 0) -> None:
        self.store = store
        self.topic_partition = topic_partition
        self.end_offset = end_offset
        self.begin_offset = begin_offset
        self.listener = listener if listener is not None else NoOpStateRestoreListener()
        self.start_offset = begin_offset
        self.position = begin_offset
        self.total_restored = 0
        self.full_restore = False
        self.wiped = False
        self._started = False
        self._finished = False

    def start(self) -> int:
        """Decide where the restore begins (wiping the store if its offset is unusable) and tell
        the listener; returns the offset to read from (``== end_offset``: nothing to restore)."""
        if self._started:
            return self.position
        self._started = True
        store = self.store
        committed = store.committed_offset()
        task = getattr(store, "task_id", None)
        topic, partition = self.topic_partition
        if committed is not None and committed > self.end_offset:
            log.warning("State store %s of task %s: its changelog offset %d is beyond the end %d of %s-%d (was the "
                        "topic deleted and recreated?); wiping it and restoring it in full",
                        store.name, task, committed, self.end_offset, topic, partition)
            self._wipe()
            committed = None
        elif committed is not None and committed < self.begin_offset:
            log.warning("State store %s of task %s: its changelog offset %d is before the beginning %d of %s-%d "
                        "(records in between were deleted); wiping it and restoring it in full",
                        store.name, task, committed, self.begin_offset, topic, partition)
            self._wipe()
            committed = None
        self.full_restore = committed is None
        self.start_offset = self.begin_offset if committed is None else committed
        self.position = self.start_offset
        if self.start_offset < self.end_offset:
            log.info("Restoring state store %s of task %s from %s-%d, offsets %d to %d%s", store.name, task, topic,
                     partition, self.start_offset, self.end_offset, " (full restore)" if self.full_restore else "")
            self.listener.on_restore_start(self.topic_partition, store.name, self.start_offset, self.end_offset)
        return self.position

    def _wipe(self) -> None:
        self.store.wipe()
        self.wiped = True

    @property
    def done(self) -> bool:
        """Whether the restore reached the end offset."""
        return self.position >= self.end_offset

    def restore_batch(self, records: Sequence[ChangelogRecord], position: int, last_offset: int | None = None) -> int:
        """Apply one batch of changelog records; ``position`` is the consumer position after it
        (stored as the store's offset), ``last_offset`` the offset of its last record (default
        ``position - 1``). Returns the number of records applied."""
        if not self._started:
            self.start()
        n = self.store.restore_batch(records, position)
        self.position = position
        self.total_restored += n
        self.listener.on_batch_restored(self.topic_partition, self.store.name,
                                        position - 1 if last_offset is None else last_offset, n)
        return n

    def finish(self) -> int:
        """Wait until the store holds every batch, then tell the listener the restore ended (if
        one started); returns the records restored."""
        if not self._started:
            self.start()
        if not self._finished:
            wait_applied = getattr(self.store, "wait_applied", None)
            if wait_applied is not None:  # the last batch may still be on its way to disk
                wait_applied()
            self._finished = True
            if self.start_offset < self.end_offset:
                self.listener.on_restore_end(self.topic_partition, self.store.name, self.total_restored)
        return self.total_restored


def restore_store(store: Any, topic_partition: tuple[str, int], end_offset: int,
                  batches_from: Callable[[int], Iterable[tuple[Sequence[ChangelogRecord], int]]],
                  listener: StateRestoreListener | None = None, begin_offset: int = 0) -> StoreRestorer:
    """Restore ``store`` up to ``end_offset``: ``batches_from(start_offset)`` yields
    ``(records, position_after_batch)`` pairs read from the changelog from ``start_offset``.

    Returns the finished :class:`StoreRestorer` (``start_offset``, ``total_restored``,
    ``full_restore``, ``wiped``).
    """
    restorer = StoreRestorer(store, topic_partition, end_offset, listener, begin_offset)
    start = restorer.start()
    if not restorer.done:
        for records, position in batches_from(start):
            restorer.restore_batch(records, position)
            if restorer.done:
                break
    restorer.finish()
    return restorer
