"""The persistent bytes store: one LevelDB (plyvel) per store per task.

Layout of the database, at ``<state.dir>/<application.id>/<task_id>/<store>``:

* user entries under the prefix ``b"\\x01"`` (``b"\\x01" + key_bytes -> value_bytes``), so scans
  of the user key space never see anything else;
* metadata under ``b"\\x00"``: ``b"\\x00changelog-offset"`` (8-byte big-endian: the changelog
  offset the applied data reaches, i.e. where a restore resumes) and ``b"\\x00format"``
  (``kv1`` or ``tskv1``, the value format).

Every change arrives through :meth:`LevelDBKeyValueBytesStore.write_batch` (or
``write_batch_async``): one atomic WriteBatch with the changelog offset it reaches (DESIGN §5).
``sync=False``: the changelog, not the disk, is the source of truth. ``write_batch_async`` builds
the batch in the caller's thread and writes it on a shared writer thread (LevelDB releases the
GIL while it writes, so the record loop goes on meanwhile); the typed store keeps the entries of
a batch in flight in memory until it is written, and waits for it before the next one.

A directory that cannot be opened because it is corrupted (or holds the other value format) is
wiped, with a warning naming task and store; the store then has no offset and is restored from
the changelog in full.
"""

from __future__ import annotations

import logging
import shutil
import struct
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import plyvel

from kstreams.errors import StateStoreError
from kstreams.state.context import StateStoreContext

log = logging.getLogger("kstreams.state")

DATA_PREFIX = b"\x01"
META_PREFIX = b"\x00"
OFFSET_KEY = META_PREFIX + b"changelog-offset"
FORMAT_KEY = META_PREFIX + b"format"
FORMATS = {"plain": b"kv1", "timestamped": b"tskv1"}

_OFFSET = struct.Struct(">q")

DEFAULT_OPTIONS: dict[str, Any] = {
    "lru_cache_size": 32 * 1024 * 1024,
    "bloom_filter_bits": 10,
    "write_buffer_size": 16 * 1024 * 1024,
    "max_open_files": 64,
}
"""plyvel.DB options of every store (DESIGN §7, §9: a bloom filter and an LRU block cache make
random gets 2-3x faster; few open files per store, as there is one database per store per task)."""


_writer: ThreadPoolExecutor | None = None
_writer_lock = threading.Lock()


def _writer_pool() -> ThreadPoolExecutor:
    """The process-wide thread that writes batches in the background (created on first use)."""
    global _writer
    if _writer is None:
        with _writer_lock:
            if _writer is None:
                _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kstreams-leveldb-writer")
    return _writer


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "lock " in text and ("already held" in text or "Resource temporarily unavailable" in text
                                or "LOCK" in text)


class LevelDBKeyValueBytesStore:
    """A sorted bytes store in LevelDB (see the module docstring for the layout).

    ``value_format`` (``"plain"`` or ``"timestamped"``) is recorded in the database so a
    directory written by the other kind of store is not misread. ``async_apply`` offers
    ``write_batch_async`` (the typed store then writes committed batches in the background).
    """

    persistent = True

    def __init__(self, name: str, value_format: str = "plain", options: dict[str, Any] | None = None,
                 async_apply: bool = True) -> None:
        if value_format not in FORMATS:
            raise ValueError(f"value_format must be one of {sorted(FORMATS)}, got {value_format!r}")
        self.name = name
        self.value_format = value_format
        self.options = {**DEFAULT_OPTIONS, **(options or {})}
        self.path: Path | None = None
        self.task_id = "?"
        self.is_open = False
        self.wiped_reason: str | None = None
        self._db: Any = None
        self._data: Any = None
        self._count: int | None = None
        self._inflight: Future[None] | None = None
        if not async_apply:
            self.write_batch_async = None  # type: ignore[assignment]

    # -- lifecycle ----------------------------------------------------------------------------------

    def open(self, context: StateStoreContext) -> None:
        """Open (creating) the database in the task directory; wipe it if it is corrupted."""
        if context.state_dir is None:
            raise StateStoreError(f"persistent store {self.name!r} of task {context.task_id} needs a state "
                                  f"directory (state.dir)")
        self.task_id = context.task_id
        self.path = Path(context.state_dir) / self.name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open_db()

    def _open_db(self) -> None:
        assert self.path is not None
        try:
            db = self._connect()
        except plyvel.IOError as exc:
            if _is_lock_error(exc):
                raise StateStoreError(
                    f"store {self.name!r} of task {self.task_id}: the database {self.path} is already open "
                    f"(another instance or thread uses this state directory)") from exc
            raise StateStoreError(f"store {self.name!r} of task {self.task_id}: cannot open {self.path}: "
                                  f"{exc}") from exc
        except plyvel.Error as exc:
            self._wipe_dir(f"the database cannot be opened ({_text(exc)})")
            db = self._connect()
        stored = db.get(FORMAT_KEY)
        wanted = FORMATS[self.value_format]
        if stored is not None and stored != wanted:
            db.close()
            self._wipe_dir(f"it holds {stored.decode(errors='replace')} data, this store writes "
                           f"{wanted.decode()}")
            db = self._connect()
            stored = None
        if stored is None:
            db.put(FORMAT_KEY, wanted)
        self._db = db
        self._data = db.prefixed_db(DATA_PREFIX)
        # reads go straight to plyvel: no Python frame between the typed store and LevelDB
        self.get = self._data.get  # type: ignore[method-assign]
        self._count = None
        self.is_open = True

    def _connect(self) -> Any:
        return plyvel.DB(str(self.path), create_if_missing=True, **self.options)

    def _wipe_dir(self, reason: str) -> None:
        log.warning("State store %s of task %s: %s; wiping %s and restoring it from the changelog in full",
                    self.name, self.task_id, reason, self.path)
        self.wiped_reason = reason
        shutil.rmtree(str(self.path), ignore_errors=True)

    def wipe(self) -> None:
        """Delete every entry and the stored offset (the directory is recreated empty)."""
        self.wait_written()
        if self._db is not None:
            self._db.close()
            self._db = None
        assert self.path is not None
        shutil.rmtree(str(self.path), ignore_errors=True)
        self._open_db()

    def close(self) -> None:
        """Close the database (uncommitted writes live above this layer and are not flushed)."""
        try:
            self.wait_written()
        finally:
            self._close_db()

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            self._data = None
        self.is_open = False

    def flush(self) -> None:
        """Nothing to do: every batch is applied when written."""

    # -- the bytes store API ------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` (rebound to plyvel's own ``get`` once open)."""
        if self._data is None:
            raise StateStoreError(f"Store {self.name} is currently closed.")
        return self._data.get(key)

    def write_batch(self, pairs: Iterable[tuple[bytes, bytes | None]], changelog_offset: int | None = None) -> None:
        """Apply ``pairs`` (``None`` deletes) and the changelog offset they reach in one WriteBatch."""
        self.wait_written()
        self._build(pairs, changelog_offset).write()

    def write_batch_async(self, pairs: Iterable[tuple[bytes, bytes | None]],
                          changelog_offset: int | None = None) -> Future[None]:
        """As :meth:`write_batch`, but the batch is written on the writer thread; returns its future.

        Until it completes, reads of its keys may see their previous values: the caller keeps
        them in memory (the typed store pins them).
        """
        self.wait_written()
        batch = self._build(pairs, changelog_offset)
        future = _writer_pool().submit(batch.write)
        self._inflight = future
        return future

    def wait_written(self) -> None:
        """Wait for the batch being written in the background, if any (its error is raised)."""
        future = self._inflight
        if future is not None:
            self._inflight = None
            future.result()

    def _build(self, pairs: Iterable[tuple[bytes, bytes | None]], changelog_offset: int | None) -> Any:
        db = self._db
        if db is None:
            raise StateStoreError(f"Store {self.name} is currently closed.")
        wb = db.write_batch()
        put = wb.put
        delete = wb.delete
        prefix = DATA_PREFIX
        for kb, vb in pairs:
            if vb is None:
                delete(prefix + kb)
            else:
                put(prefix + kb, vb)
        if changelog_offset is not None:
            put(OFFSET_KEY, _OFFSET.pack(changelog_offset))
        if pairs:
            self._count = None
        return wb

    def committed_offset(self) -> int | None:
        """The changelog offset the stored data reaches (where a restore resumes), or ``None``."""
        if self._db is None:
            raise StateStoreError(f"Store {self.name} is currently closed.")
        self.wait_written()
        raw = self._db.get(OFFSET_KEY)
        return None if raw is None else _OFFSET.unpack(raw)[0]

    def range(self, from_key: bytes | None, to_key: bytes | None,
              reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with ``from_key <= key <= to_key`` (``None`` unbounded) in byte order."""
        if self._data is None:
            raise StateStoreError(f"Store {self.name} is currently closed.")
        return self._data.iterator(start=from_key, stop=to_key, include_start=True, include_stop=True,
                                   reverse=reverse)

    def approximate_num_entries(self) -> int:
        """Number of keys (counted once, then kept until the next batch)."""
        if self._count is None:
            if self._data is None:
                raise StateStoreError(f"Store {self.name} is currently closed.")
            self.wait_written()
            n = 0
            with self._data.iterator(include_value=False) as it:
                for _ in it:
                    n += 1
            self._count = n
        return self._count

    def __repr__(self) -> str:
        return f"LevelDBKeyValueBytesStore({self.name!r}, {self.path})"


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    if isinstance(arg, bytes):
        return arg.decode(errors="replace")
    return str(arg)
