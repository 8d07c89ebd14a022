"""The two-phase commit, the changelog, the write buffer's bound and restoring from the changelog."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from state_helpers import Harness, make_builder

from kstreams import serdes
from kstreams.state import StoreRestorer, restore_store
from kstreams.state.leveldb import OFFSET_KEY


class RecordingListener:
    """A StateRestoreListener that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_restore_start(self, tp: tuple[str, int], store: str, start: int, end: int) -> None:
        self.calls.append(("start", tp, store, start, end))

    def on_batch_restored(self, tp: tuple[str, int], store: str, batch_end: int, n: int) -> None:
        self.calls.append(("batch", tp, store, batch_end, n))

    def on_restore_end(self, tp: tuple[str, int], store: str, total: int) -> None:
        self.calls.append(("end", tp, store, total))


def leveldb(tmp_path: Path, caching: bool = False, **kwargs: Any) -> Harness:
    return Harness(make_builder("leveldb-cached" if caching else "leveldb", **kwargs), tmp_path)


def contents(store: Any) -> list[tuple[Any, Any]]:
    with store.all() as it:
        return list(it)


# -- commit and changelog ----------------------------------------------------------------------------

def test_changelog_gets_one_record_per_dirty_key_with_its_last_timestamp(tmp_path: Path) -> None:
    h = leveldb(tmp_path)
    h.ctx.record_timestamp = 5
    h.store.put("a", 1)
    h.ctx.record_timestamp = 9
    h.store.put("a", 2)  # deduplicated: one record, the last value and timestamp
    h.store.put("b", 1)
    h.store.delete("b")  # a tombstone
    h.store.delete("never")  # deleting an absent key still logs a tombstone
    assert h.commit() == 3
    assert h.changelog.records == [(serdes.STRING.serialize("a"), serdes.MSGPACK.serialize(2), 9),
                                   (b"b", None, 9), (b"never", None, 9)]
    assert h.store.committed_offset() == 3
    assert h.commit() == 0  # nothing dirty: nothing logged, offset unchanged
    assert h.store.committed_offset() == 3


def test_two_phases_reads_see_pending_and_store_applies_at_commit(tmp_path: Path) -> None:
    h = leveldb(tmp_path)
    s = h.store
    s.put("a", 1)
    assert s.inner.get(b"a") is None  # buffered, not in LevelDB
    assert s.prepare_commit() == 1
    assert s.dirty_count == 0 and s.pending_count == 1
    assert s.inner.get(b"a") is None  # sent to the changelog, not applied yet
    assert s.get("a") == 1 and contents(s) == [("a", 1)]  # reads still see it
    assert s.commit(1) == 1
    s.wait_applied()  # the batch may be written in the background
    assert s.inner.get(b"a") == serdes.MSGPACK.serialize(1)
    assert s.committed_offset() == 1 and s.pending_count == 0


def test_synchronous_apply_writes_in_the_committing_thread(tmp_path: Path) -> None:
    h = Harness(make_builder("leveldb-sync"), tmp_path)
    assert h.store.inner.write_batch_async is None
    h.store.put("a", 1)
    h.commit()
    assert h.store.inner.get(b"a") == serdes.MSGPACK.serialize(1)  # no wait needed
    assert h.store.cached_count == 0


def test_offset_key_is_outside_the_user_key_space(tmp_path: Path) -> None:
    h = leveldb(tmp_path, key_serde=serdes.BYTES)
    h.store.put(OFFSET_KEY, "user value under the reserved key's bytes")
    h.store.put(b"", "empty key")
    h.commit()
    assert h.store.committed_offset() == 2
    assert h.store.get(OFFSET_KEY) == "user value under the reserved key's bytes"
    assert [k for k, _ in contents(h.store)] == [b"", OFFSET_KEY]  # no metadata in scans
    assert h.store.approximate_num_entries() == 2


def test_flush_without_offset_keeps_the_stored_offset(tmp_path: Path) -> None:
    h = leveldb(tmp_path)
    h.store.put("a", 1)
    h.commit()
    h.store.put("b", 2)
    h.store.flush()  # prepare + commit with no offset
    assert h.store.committed_offset() == 1  # a replay from 1 re-applies b: idempotent
    h.store.close()
    s2 = h.open()
    assert contents(s2) == [("a", 1), ("b", 2)]
    s2.close()


def test_data_survives_a_clean_reopen(tmp_path: Path) -> None:
    h = leveldb(tmp_path, caching=True)
    for i in range(100):
        h.store.put(f"k{i:03d}", i)
    h.commit()
    h.store.close()
    s2 = h.open()
    assert s2.committed_offset() == 100
    assert s2.get("k042") == 42 and len(contents(s2)) == 100
    assert (tmp_path / "app" / "0_0" / "s" / "CURRENT").exists()  # <state.dir>/<app>/<task>/<store>
    s2.close()


def test_discard_uncommitted_goes_back_to_the_last_commit(tmp_path: Path) -> None:
    h = leveldb(tmp_path, caching=True)
    h.store.put("a", 1)
    h.commit()
    h.store.put("a", 2)
    h.store.put("b", 3)
    h.store.prepare_commit()
    h.store.put("c", 4)
    h.store.discard_uncommitted()  # e.g. the transaction was aborted
    assert (h.store.get("a"), h.store.get("b"), h.store.get("c")) == (1, None, None)
    assert contents(h.store) == [("a", 1)]


# -- the bound: read cache and early commit ----------------------------------------------------------

def test_early_commit_requested_past_the_bound(tmp_path: Path) -> None:
    h = Harness(make_builder("leveldb"), tmp_path, cache_max_bytes=2_000)
    s = h.store
    i = 0
    while not h.ctx.commit_requested:
        s.put(f"key-{i}", i)
        i += 1
        assert i < 100, "no early commit requested"
    assert s.dirty_bytes > 2_000 >= s.dirty_bytes - 200  # asked as soon as the bound was passed
    assert s.early_commit_requests == 1
    s.put("one-more", 1)
    assert s.early_commit_requests == 1  # asked once until the task commits
    h.commit()
    h.ctx.commit_requested = False
    assert s.dirty_bytes == 0
    s.put("after", 1)
    assert not h.ctx.commit_requested
    assert s.get("key-0") == 0 and s.get("one-more") == 1


def test_read_cache_is_bounded_and_serves_hot_keys(tmp_path: Path) -> None:
    h = Harness(make_builder("leveldb-cached"), tmp_path, cache_max_bytes=20_000)
    s = h.store
    for i in range(1000):
        s.put(f"k{i:04d}", i)
    h.commit()
    s.wait_applied()
    assert s.cache_bytes <= 20_000 < 1000 * 100
    calls = []
    real_get = s.inner.get
    s.inner.get = lambda kb: calls.append(kb) or real_get(kb)  # count reads that reach LevelDB
    s._bind_inner()
    for _ in range(50):
        assert s.get("k0007") == 7
    assert len(calls) <= 1  # a hot key is read from LevelDB at most once
    assert [s.get(f"k{i:04d}") for i in range(0, 1000, 97)] == list(range(0, 1000, 97))
    assert s.cache_bytes <= 20_000


def test_without_caching_only_dirty_keys_stay_in_memory(tmp_path: Path) -> None:
    h = leveldb(tmp_path)
    for i in range(10):
        h.store.put(str(i), i)
    assert h.store.cached_count == 10
    h.commit()
    h.store.wait_applied()
    assert h.store.cached_count == 0
    assert h.store.get("3") == 3


class SlowWriter:
    """Wraps a LevelDB bytes store: background writes happen only when the test says so."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.get = inner.get
        self.held: list[tuple[Any, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_batch_async(self, pairs: Any, offset: Any) -> Any:
        writer = self

        class Handle:
            written = False

            def done(self) -> bool:
                return self.written

            def result(self) -> None:
                if not self.written:
                    writer.inner.write_batch(pairs, offset)
                    self.written = True

        handle = Handle()
        self.held.append((handle, pairs))
        return handle


@pytest.mark.parametrize("caching", [False, True])
def test_batch_in_flight_is_served_from_memory(tmp_path: Path, caching: bool) -> None:
    h = Harness(make_builder("leveldb-cached" if caching else "leveldb"), tmp_path, cache_max_bytes=3_000)
    s = h.store
    s.put("a", 1)
    s.put("b", 2)
    h.commit()
    s.wait_applied()
    slow = SlowWriter(s.inner)
    s_inner = s.inner
    try:
        # swap the bytes store's async writer for the controllable one
        s_inner.write_batch_async = slow.write_batch_async
        s._bind_inner()
        for i in range(40):  # more than the cache bound, all in one batch
            s.put(f"k{i:02d}", i)
        s.put("a", 10)
        s.delete("b")
        h.commit()
        handle, pairs = slow.held[-1]
        assert not handle.done() and len(pairs) == 42
        assert s_inner.get(b"a") == serdes.MSGPACK.serialize(1)  # LevelDB does not have the batch yet...
        assert s.get("a") == 10 and s.get("b") is None  # ...but reads see it
        assert s.get("k07") == 7 and s.cached_count >= 42  # pinned: neither evicted nor dropped
        assert contents(s) == [("a", 10)] + [(f"k{i:02d}", i) for i in range(40)]
        s.put("c", 3)
        s.put("a", 11)  # a key of the batch in flight goes into the next batch too
        h.commit()  # the next commit waits for the batch in flight first
        assert handle.done()
        assert not slow.held[-1][0].done()
        assert s.get("a") == 11  # still pinned by the second batch
        s.wait_applied()
        assert s_inner.get(b"a") == serdes.MSGPACK.serialize(11) and s_inner.get(b"b") is None
        assert s.committed_offset() == h.changelog.end_offset == 46
        if caching:
            assert s.cache_bytes <= 3_000
        else:
            assert s.cached_count == 0
        assert contents(s)[:2] == [("a", 11), ("c", 3)]
    finally:
        del s_inner.write_batch_async


# -- deferred batches (the Kafka runtime's stores) ------------------------------------------------------

class BatchLog:
    """Records the batches a LevelDB bytes store is asked to write in the background."""

    def __init__(self, store: Any) -> None:
        self.batches: list[tuple[dict[bytes, Any], Any]] = []
        inner = store.inner
        real = inner.write_batch_async

        def write_batch_async(pairs: Any, offset: Any) -> Any:
            pairs = list(pairs)
            self.batches.append((dict(pairs), offset))
            return real(pairs, offset)

        inner.write_batch_async = write_batch_async
        store._bind_inner()


def ser(value: Any) -> bytes:
    return serdes.MSGPACK.serialize(value)


def test_deferred_batch_writes_each_key_once_with_the_latest_offset(tmp_path: Path) -> None:
    h = Harness(make_builder("leveldb-cached"), tmp_path, defer_records=10)
    s = h.store
    assert s.defer_records == 10
    log = BatchLog(s)
    s.put("a", 0)
    s.put("gone", 0)
    h.commit()  # the store's first offset is written at once
    assert [(sorted(b), o) for b, o in log.batches] == [([b"a", b"gone"], 2)]
    assert not s.offset_wanted  # the next batch is far: no end offsets asked for
    for i in range(1, 5):  # 8 changelog records, below the 10 that make a batch
        s.put("a", i)
        s.put(f"b{i}", i)
        h.commit()
        assert s.offset_wanted == (2 * i >= 5)  # from half the threshold on
    s.delete("gone")
    h.commit()
    assert len(log.batches) == 1 and s.deferred_count == 6
    s.inner.wait_written()
    assert s.committed_offset() == 2 and s.inner.get(b"a") == ser(0)  # LevelDB is still at the first commit
    assert s.get("a") == 4 and s.get("gone") is None  # reads and scans see what was committed
    assert contents(s) == [("a", 4), ("b1", 1), ("b2", 2), ("b3", 3), ("b4", 4)]
    s.put("a", 5)
    h.commit()  # 10 records since the last batch: one batch, "a" in it once, with its last value
    assert len(log.batches) == 2
    batch, offset = log.batches[1]
    assert batch == {b"a": ser(5), b"b1": ser(1), b"b2": ser(2), b"b3": ser(3), b"b4": ser(4), b"gone": None}
    assert offset == h.changelog.end_offset == 12
    assert s.committed_offset() == 12 and s.deferred_count == 0
    assert s.inner.get(b"a") == ser(5) and s.inner.get(b"gone") is None
    s.commit(7)  # an older offset (a stable one, below an undecided transaction) is not taken
    s.close()
    s2 = h.open()
    assert s2.committed_offset() == 12
    s2.close()


def test_crash_with_a_deferred_batch_replays_only_the_tail(tmp_path: Path) -> None:
    h = Harness(make_builder("leveldb-cached"), tmp_path, defer_records=100)
    s = h.store
    for i in range(10):
        s.put(f"k{i}", i)
    h.commit()  # written: LevelDB at 10
    s.put("k1", 100)
    s.delete("k2")
    s.put("new", 7)
    h.commit()  # committed (changelog 10..12), deferred
    assert s.deferred_count == 3
    s.inner.close()  # the crash: the deferred batch never reaches LevelDB

    s2 = h.open()
    assert s2.committed_offset() == 10
    result = restore_store(s2, (h.topic, 0), h.changelog.end_offset, h.changelog.batches_from, None)
    assert (result.start_offset, result.total_restored, result.full_restore) == (10, 3, False)
    assert (s2.get("k1"), s2.get("k2"), s2.get("new"), s2.get("k9")) == (100, None, 7, 9)
    s2.close()


def test_close_and_discard_write_the_deferred_batch(tmp_path: Path) -> None:
    h = Harness(make_builder("leveldb"), tmp_path, defer_records=100)
    s = h.store
    s.put("a", 1)
    h.commit()
    s.put("a", 2)
    s.put("b", 2)
    h.commit()  # deferred
    s.put("a", 3)
    s.prepare_commit()  # in a transaction that is then aborted
    s.put("c", 3)
    s.discard_uncommitted()
    assert (s.get("a"), s.get("b"), s.get("c")) == (2, 2, None)  # back to the last commit, not the last batch
    assert s.committed_offset() == 3 and s.inner.get(b"a") == ser(2)
    s.put("d", 4)
    h.commit()  # deferred again (the changelog also holds the aborted record for "a")
    assert s.deferred_count == 1
    s.close()
    s2 = h.open()
    assert s2.committed_offset() == h.changelog.end_offset == 5 and contents(s2) == [("a", 2), ("b", 2), ("d", 4)]
    s2.close()


def _small_cache_after_first_batch(tmp_path: Path) -> tuple[Harness, Any, BatchLog]:
    """A store with a 3,000-byte cache, a high record threshold and 1,500 deferred bytes at most,
    past its first batch (a store's first offset is written at once)."""
    h = Harness(make_builder("leveldb-cached"), tmp_path, cache_max_bytes=3_000, defer_records=1_000,
                defer_bytes=1_500)
    log = BatchLog(h.store)
    h.store.put("first", 0)
    h.commit()
    return h, h.store, log


def test_deferred_entries_are_pinned_and_bounded_by_their_own_bytes(tmp_path: Path) -> None:
    h, s, log = _small_cache_after_first_batch(tmp_path)
    for i in range(10):
        s.put(f"k{i:02d}", i)
    h.commit()  # ~1,150 bytes deferred: under the bound
    assert len(log.batches) == 1 and s.deferred_count == 10
    for i in range(40):  # reads that fill the cache past its bound evict clean entries only
        assert s.get(f"absent{i:02d}") is None
    assert all(s.get(f"k{i:02d}") == i for i in range(10)) and s.inner.get(b"k00") is None
    for i in range(10, 20):
        s.put(f"k{i:02d}", i)
    h.commit()  # past the bound: written
    assert len(log.batches) == 2 and len(log.batches[1][0]) == 20 and s.deferred_count == 0
    s.wait_applied()
    assert s.cache_bytes <= 3_000


def test_deferred_entries_do_not_crowd_the_cache_out(tmp_path: Path) -> None:
    """The deferred batch is bounded apart, like a write buffer: beside its ~1,150 bytes the cache
    still keeps 3,000 bytes of clean entries; once the batch is written it is back to 3,000."""
    h, s, log = _small_cache_after_first_batch(tmp_path)
    for i in range(10):
        s.put(f"k{i:02d}", i)
    h.commit()
    assert s.deferred_count == 10
    for i in range(25):  # ~2,600 bytes of clean entries (absent keys are cached too)
        assert s.get(f"absent{i:02d}") is None
    assert s.cache_bytes > 3_000 and s.cached_count == 1 + 10 + 25
    for i in range(10, 20):
        s.put(f"k{i:02d}", i)
    h.commit()
    s.wait_applied()
    assert s.cache_bytes <= 3_000 and s.cached_count < 1 + 20 + 25


def test_keys_deferred_again_do_not_count_twice_against_the_bound(tmp_path: Path) -> None:
    h, s, log = _small_cache_after_first_batch(tmp_path)
    for rnd in range(5):  # the same ten hot keys every commit: ~1,150 pinned bytes, however often
        for i in range(10):
            s.put(f"k{i:02d}", rnd * 10 + i)
        h.commit()
    assert len(log.batches) == 1 and s.deferred_count == 10
    for i in range(10, 20):  # ten more keys: past the bound
        s.put(f"k{i:02d}", i)
    h.commit()
    assert len(log.batches) == 2 and s.deferred_count == 0
    assert sorted(log.batches[1][0]) == [f"k{i:02d}".encode() for i in range(20)]
    s.wait_applied()
    assert [s.get(f"k{i:02d}") for i in range(20)] == [40 + i for i in range(10)] + list(range(10, 20))


@pytest.mark.parametrize("kind", ["leveldb-sync", "in-memory", "lru"])
def test_only_changelogged_stores_written_in_the_background_defer(tmp_path: Path, kind: str) -> None:
    h = Harness(make_builder(kind), tmp_path, defer_records=100)
    assert h.store.defer_records == 0
    h.store.put("a", 1)
    h.commit()
    h.store.put("a", 2)
    h.commit()
    assert h.store.deferred_count == 0
    h2 = Harness(make_builder("leveldb").with_logging_disabled(), tmp_path / "nolog", defer_records=100)
    assert h2.store.defer_records == 0


# -- restore -------------------------------------------------------------------------------------------

def test_a_restore_writes_its_batches_in_the_background_in_order_and_ends_once_all_are_on_disk(
        tmp_path: Path) -> None:
    h = leveldb(tmp_path)
    for i in range(10):
        h.store.put(f"k{i}", i)
        h.commit()  # ten commits: changelog offsets 0..9, one record each
    h.store.close()
    s2 = Harness(make_builder("leveldb"), tmp_path / "empty").store  # an empty state dir: a full restore
    written = []
    real = s2.inner._build

    class SlowBatch:  # each batch takes a while on the writer thread, so the next one is read meanwhile
        def __init__(self, pairs: Any, offset: int) -> None:
            self.batch, self.offset = real(pairs, offset), offset

        def write(self) -> None:
            time.sleep(0.05)
            self.batch.write()
            written.append(self.offset)

    s2.inner._build = SlowBatch
    result = restore_store(s2, (h.topic, 0), h.changelog.end_offset, h.changelog.batches_from)
    assert result.total_restored == 10
    assert written == [3, 6, 9, 10]  # one batch after the other, in changelog order
    # on disk when the restore ends, not only in memory: read the bytes store itself
    logged = {rec[0]: rec[1] for rec in h.changelog.records}
    assert len(logged) == 10 and all(s2.inner.get(kb) == vb for kb, vb in logged.items())
    assert s2.inner.committed_offset() == 10
    s2.close()


def test_crash_after_changelog_before_leveldb_replays_only_the_tail(tmp_path: Path) -> None:
    h = leveldb(tmp_path, caching=True)
    s = h.store
    for i in range(10):
        s.put(f"k{i}", i)
    h.commit()  # changelog offsets 0..9, LevelDB at 10
    s.put("k1", 100)
    s.delete("k2")
    s.put("new", 7)
    s.prepare_commit()
    assert h.changelog.capture(h.collector, h.topic) == 3  # produced and committed: offsets 10..12
    s.close()  # the crash: LevelDB never gets this batch

    s2 = h.open()
    assert s2.committed_offset() == 10
    assert (s2.get("k1"), s2.get("k2"), s2.get("new")) == (1, 2, None)  # the state of the last commit
    listener = RecordingListener()
    applied = []
    real = s2.inner._build  # the WriteBatch of write_batch and of write_batch_async (which a restore uses)
    s2.inner._build = lambda pairs, offset: (applied.append((len(pairs), offset)), real(pairs, offset))[1]
    result = restore_store(s2, (h.topic, 0), h.changelog.end_offset, h.changelog.batches_from, listener)
    assert (result.start_offset, result.total_restored, result.full_restore) == (10, 3, False)
    assert applied == [(3, 13)]  # one WriteBatch for the batch, with the offset it reaches
    assert (s2.get("k1"), s2.get("k2"), s2.get("new"), s2.get("k9")) == (100, None, 7, 9)
    assert s2.committed_offset() == 13
    assert listener.calls == [("start", (h.topic, 0), "s", 10, 13), ("batch", (h.topic, 0), "s", 12, 3),
                              ("end", (h.topic, 0), "s", 3)]
    s2.close()


def test_crash_during_restore_resumes_where_it_stopped(tmp_path: Path) -> None:
    h = leveldb(tmp_path)
    for i in range(10):
        h.store.put(f"k{i}", i)
        h.commit()  # ten commits, one record each
    h.store.wipe()
    assert h.store.committed_offset() is None and contents(h.store) == []
    restorer = StoreRestorer(h.store, (h.topic, 0), h.changelog.end_offset)
    assert restorer.start() == 0 and restorer.full_restore
    records, position = next(h.changelog.batches_from(0, size=4))
    restorer.restore_batch(records, position)
    h.store.close()  # crash after the first batch
    s2 = h.open()
    result = restore_store(s2, (h.topic, 0), h.changelog.end_offset,
                           lambda start: h.changelog.batches_from(start, size=4))
    assert (result.start_offset, result.total_restored) == (4, 6)
    assert contents(s2) == [(f"k{i}", i) for i in range(10)]
    s2.close()


def test_offset_beyond_changelog_end_means_full_restore(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = leveldb(tmp_path)
    for i in range(10):
        h.store.put(f"old{i}", i)
    h.commit()
    assert h.store.committed_offset() == 10
    h.changelog.records = [(b"a", serdes.MSGPACK.serialize(1), 0), (b"b", serdes.MSGPACK.serialize(2), 0)]
    with caplog.at_level(logging.WARNING, logger="kstreams.state"):
        result = restore_store(h.store, (h.topic, 0), h.changelog.end_offset, h.changelog.batches_from)
    assert result.wiped and result.full_restore
    assert (result.start_offset, result.total_restored) == (0, 2)
    assert contents(h.store) == [("a", 1), ("b", 2)]  # nothing of the old incarnation is left
    assert h.store.committed_offset() == 2
    assert any("beyond the end" in r.getMessage() and "s of task 0_0" in r.getMessage() for r in caplog.records)


def test_offset_before_changelog_beginning_means_full_restore(tmp_path: Path) -> None:
    h = leveldb(tmp_path)
    for i in range(6):
        h.store.put(f"k{i}", i)
        h.commit()
    h.store.close()
    s2 = h.open()
    s2.wipe()
    s2.restore_batch(h.changelog.records[:2], 2)  # stored offset 2
    result = restore_store(s2, (h.topic, 0), 6, lambda start: h.changelog.batches_from(start), begin_offset=3)
    assert result.wiped and result.start_offset == 3 and result.total_restored == 3
    assert contents(s2) == [("k3", 3), ("k4", 4), ("k5", 5)]
    s2.close()


def test_corrupted_store_directory_is_wiped_and_fully_restored(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    h = leveldb(tmp_path)
    for i in range(5):
        h.store.put(f"k{i}", i)
    h.commit()
    h.store.close()
    store_dir = tmp_path / "app" / "0_0" / "s"
    (store_dir / "CURRENT").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="kstreams.state"):
        s2 = h.open()
    assert any("State store s of task 0_0" in r.getMessage() and "wiping" in r.getMessage() for r in caplog.records)
    assert s2.committed_offset() is None and contents(s2) == []
    result = restore_store(s2, (h.topic, 0), h.changelog.end_offset, h.changelog.batches_from)
    assert result.full_restore and result.total_restored == 5
    assert contents(s2) == [(f"k{i}", i) for i in range(5)] and s2.committed_offset() == 5
    s2.close()


def test_value_format_mismatch_is_wiped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = leveldb(tmp_path)
    h.store.put("a", 1)
    h.commit()
    h.store.close()
    ts = Harness(make_builder("leveldb", timestamped=True), tmp_path)
    assert ts.store.committed_offset() is None and contents(ts.store) == []
    assert any("kv1" in r.getMessage() for r in caplog.records)
    ts.store.close()


def test_nothing_to_restore_calls_no_listener(tmp_path: Path) -> None:
    h = leveldb(tmp_path)
    h.store.put("a", 1)
    h.commit()
    listener = RecordingListener()
    result = restore_store(h.store, (h.topic, 0), 1, h.changelog.batches_from, listener)
    assert result.total_restored == 0 and listener.calls == []


def test_timestamped_restore_rebuilds_the_stored_format(tmp_path: Path) -> None:
    from kstreams.state import ValueAndTimestamp

    h = Harness(make_builder("leveldb", timestamped=True, value_serde=serdes.STRING), tmp_path)
    h.store.put("a", ValueAndTimestamp("x", 11))
    h.commit()
    h.store.wipe()
    restore_store(h.store, (h.topic, 0), 1, h.changelog.batches_from)
    assert h.store.get("a") == ValueAndTimestamp("x", 11)


def test_restore_refuses_a_store_with_uncommitted_writes(tmp_path: Path) -> None:
    from kstreams.errors import StateStoreError

    h = leveldb(tmp_path)
    h.store.put("a", 1)
    with pytest.raises(StateStoreError, match="uncommitted"):
        h.store.restore_batch([(b"a", b"\x01")], 1)


def test_in_memory_store_always_restores_in_full(tmp_path: Path) -> None:
    h = Harness(make_builder("in-memory"), tmp_path)
    h.store.put("a", 1)
    h.commit()
    assert h.store.committed_offset() is None
    h2 = Harness(make_builder("in-memory"), tmp_path)
    result = restore_store(h2.store, (h.topic, 0), 1, h.changelog.batches_from)
    assert result.full_restore and contents(h2.store) == [("a", 1)]


def test_hot_keys_touch_neither_serdes_nor_leveldb_per_record(tmp_path: Path) -> None:
    from kstreams.serdes import Serde

    calls = {"kser": 0, "vser": 0, "vde": 0}

    def counting(name: str, fn: Any) -> Any:
        def wrapped(x: Any) -> Any:
            calls[name] += 1
            return fn(x)
        return wrapped

    key_serde = Serde("k", counting("kser", serdes.INT64.serialize), serdes.INT64.deserialize)
    value_serde = Serde("v", counting("vser", serdes.INT64.serialize), counting("vde", serdes.INT64.deserialize))
    h = Harness(make_builder("leveldb-cached", key_serde=key_serde, value_serde=value_serde), tmp_path)
    s = h.store
    reads = []
    real_get = s.inner.get
    s.inner.get = lambda kb: reads.append(kb) or real_get(kb)
    s._bind_inner()
    for _ in range(3):  # three commit intervals
        for _ in range(1000):
            s.put(7, (s.get(7) or 0) + 1)
        h.commit()
    assert s.get(7) == 3000
    assert len(reads) == 1  # the first get, then the key lives in the cache
    assert calls["kser"] == 1  # the key is serialized once
    assert calls["vser"] == 1 + 3  # one type check, then once per commit
    assert calls["vde"] == 0
