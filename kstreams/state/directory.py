"""The state directory of one application: ``<state.dir>/<application.id>/``.

::

    <state.dir>/<application.id>/
        .lock                              held (fcntl.flock) by the one owner of the directory
        kafka-streams-process-metadata     {"processId": "<uuid>"}: a process id stable across restarts
        <sub>_<partition>/<store>/         one LevelDB per store per task

One owner at a time (a ``KafkaStreams`` instance, or a ``TopologyTestDriver`` given an explicit
``state.dir``): a second owner fails at start, as in Kafka Streams. The lock is an advisory
``flock`` on ``.lock``: it is released when the owner closes it or its process dies (kill -9
included), so a crashed owner never leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import IO

from kstreams.errors import StreamsError

log = logging.getLogger("kstreams.state")

LOCK_FILE = ".lock"
PROCESS_FILE = "kafka-streams-process-metadata"
_TASK_DIR = re.compile(r"^\d+_\d+$")


class StateDirectoryLockedError(StreamsError):
    """Another owner (instance, driver or process) holds the application's state directory."""


class StateDirectory:
    """The application directory: lock, process id, task and store directories, clean-up."""

    def __init__(self, state_dir: str | os.PathLike[str], application_id: str) -> None:
        if not application_id:
            raise ValueError("application_id must not be empty")
        self.state_dir = Path(state_dir)
        self.application_id = application_id
        self.app_dir = self.state_dir / application_id
        self._lock_file: IO[bytes] | None = None

    # -- locking ------------------------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        """Whether this object holds the directory lock."""
        return self._lock_file is not None

    def lock(self) -> None:
        """Take the directory lock, creating the directory; fails if another owner holds it."""
        if self._lock_file is not None:
            return
        self.app_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(self.app_dir, 0o750)
        except OSError:
            pass
        f = open(self.app_dir / LOCK_FILE, "ab")  # noqa: SIM115 - held open while the lock is held
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            f.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise StateDirectoryLockedError(
                    f"Unable to initialize state, this can happen if multiple instances of Kafka Streams are "
                    f"running in the same state directory (application directory {self.app_dir} is locked by "
                    f"another instance, driver or process)") from exc
            raise
        self._lock_file = f

    def unlock(self) -> None:
        """Release the directory lock (a no-op if not held)."""
        f = self._lock_file
        if f is None:
            return
        self._lock_file = None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        finally:
            f.close()

    def __enter__(self) -> StateDirectory:
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    # -- paths --------------------------------------------------------------------------------------

    def task_dir(self, task_id: str, create: bool = True) -> Path:
        """``<app dir>/<task_id>``, created unless ``create`` is False."""
        path = self.app_dir / task_id
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def store_dir(self, task_id: str, store_name: str) -> Path:
        """``<app dir>/<task_id>/<store>`` (not created: the store creates it)."""
        return self.app_dir / task_id / store_name

    def task_ids(self) -> list[str]:
        """Task ids that have a directory here, sorted."""
        if not self.app_dir.is_dir():
            return []
        return sorted(p.name for p in self.app_dir.iterdir() if p.is_dir() and _TASK_DIR.match(p.name))

    # -- process id ---------------------------------------------------------------------------------

    def process_id(self) -> uuid.UUID:
        """The process id stored in ``kafka-streams-process-metadata``, created on first use.

        A restarted instance gets the same id, so transactional ids derived from it fence the
        previous incarnation at once (DESIGN §9).
        """
        path = self.app_dir / PROCESS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return uuid.UUID(str(data["processId"]))
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("Unreadable process metadata %s (%r); writing a new process id", path, exc)
        pid = uuid.uuid4()
        self.app_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(PROCESS_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"processId": str(pid)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return pid

    # -- clean-up -----------------------------------------------------------------------------------

    def clean_up(self) -> None:
        """Delete all local state of the application (task directories and process metadata).

        Allowed when this object holds the lock or nobody does; raises
        :class:`StateDirectoryLockedError` if another owner holds it.
        """
        if not self.app_dir.exists():
            return
        held = self.locked
        if not held:
            self.lock()
        try:
            for child in self.app_dir.iterdir():
                if child.name == LOCK_FILE:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
            log.info("Deleted the local state of application %s in %s", self.application_id, self.app_dir)
        finally:
            if not held:
                self.unlock()

    def __repr__(self) -> str:
        return f"StateDirectory({str(self.app_dir)!r}, locked={self.locked})"
