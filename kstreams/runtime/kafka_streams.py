"""KafkaStreams: runs a topology on a Kafka cluster.

``num.stream.threads`` threads per instance, each a member of the consumer group
``application.id``; any number of instances (processes, machines) share the work, one task per
input partition of each sub-topology. State lives in LevelDB stores under ``state.dir``, backed
by changelog topics, and moves with its task. See :mod:`kstreams.runtime.stream_thread` for
the loop and the commit protocol, and :mod:`kstreams.runtime.shutdown` for how an uncaught
exception answered with ``SHUTDOWN_APPLICATION`` stops every instance of the application.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka.admin import AdminClient

from kstreams.config import StreamsConfig
from kstreams.errors import StreamsError, StreamThreadExceptionResponse
from kstreams.runtime.clients import admin_config
from kstreams.runtime.shutdown import ShutdownWatcher, request_shutdown
from kstreams.runtime.stream_thread import PartitionBuffer, StreamThread, ThreadState
from kstreams.runtime.topics import prepare_topics
from kstreams.state.directory import StateDirectory
from kstreams.topology import Topology

log = logging.getLogger("kstreams.runtime")


class State(enum.Enum):
    """States of a KafkaStreams instance (Kafka Streams' ``KafkaStreams.State``)."""

    CREATED = "CREATED"
    REBALANCING = "REBALANCING"
    RUNNING = "RUNNING"
    PENDING_SHUTDOWN = "PENDING_SHUTDOWN"
    NOT_RUNNING = "NOT_RUNNING"
    PENDING_ERROR = "PENDING_ERROR"
    ERROR = "ERROR"


_TRANSITIONS = {
    State.CREATED: {State.REBALANCING, State.PENDING_SHUTDOWN, State.PENDING_ERROR},
    State.REBALANCING: {State.RUNNING, State.REBALANCING, State.PENDING_SHUTDOWN, State.PENDING_ERROR},
    State.RUNNING: {State.REBALANCING, State.PENDING_SHUTDOWN, State.PENDING_ERROR},
    State.PENDING_SHUTDOWN: {State.NOT_RUNNING},
    State.NOT_RUNNING: set(),
    State.PENDING_ERROR: {State.ERROR},
    State.ERROR: set(),
}


class KafkaStreams:
    """A Kafka Streams instance: ``start()``, ``close()``, state, listeners, metrics.

    Config mistakes fail here, at construction: unknown keys, wrong types, a missing
    ``application.id`` or ``bootstrap.servers``, an EOS transaction timeout below the commit
    interval.
    """

    def __init__(self, topology: Topology, config: Mapping[str, Any]) -> None:
        topology.validate_runnable()
        self.topology = topology
        self.config = StreamsConfig(config, require=("application.id", "bootstrap.servers"))
        self.application_id: str = self.config["application.id"]
        self._state = State.CREATED
        self._lock = threading.RLock()
        self._state_listener: Callable[[State, State], None] | None = None
        self._exception_handler: Callable[[BaseException], StreamThreadExceptionResponse] | None = None
        self._restore_listener: Any = None
        self._threads: list[StreamThread] = []
        self._state_dir = StateDirectory(self.config["state.dir"], self.application_id)
        self._metadata: Any = None
        self._closed = threading.Event()
        self._fatal: BaseException | None = None
        self._watcher: ShutdownWatcher | None = None

    # -- configuration before start -----------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    def set_state_listener(self, listener: Callable[[State, State], None]) -> None:
        """``listener(new_state, old_state)`` on every transition."""
        self._require_created("set_state_listener")
        self._state_listener = listener

    def set_uncaught_exception_handler(self, handler: Callable[[BaseException],
                                                               StreamThreadExceptionResponse]) -> None:
        """Decide what happens when a stream thread dies: replace it, shut down this client, or
        shut down the application: every running instance of ``application.id``, wherever it
        runs, closes to ERROR (see :mod:`kstreams.runtime.shutdown`)."""
        self._require_created("set_uncaught_exception_handler")
        self._exception_handler = handler

    def set_global_state_restore_listener(self, listener: Any) -> None:
        """A :class:`~kstreams.state.restore.StateRestoreListener` told about every store restore."""
        self._require_created("set_global_state_restore_listener")
        self._restore_listener = listener

    def _require_created(self, what: str) -> None:
        if self._state is not State.CREATED:
            raise StreamsError(f"{what} can only be called in state CREATED, not {self._state.value}")

    # -- lifecycle ------------------------------------------------------------------------------------

    def _set_state(self, new: State) -> bool:
        with self._lock:
            old = self._state
            if new is old and new is not State.REBALANCING:
                return False
            if new not in _TRANSITIONS[old]:
                return False
            self._state = new
        log.info("stream-client [%s] State transition from %s to %s", self.application_id, old.value, new.value)
        if self._state_listener is not None and new is not old:
            try:
                self._state_listener(new, old)
            except Exception as exc:
                log.warning("state listener failed: %r", exc)
        return True

    def start(self) -> None:
        """Create internal topics, lock the state directory and start the stream threads."""
        if self._state is not State.CREATED:
            raise StreamsError(f"KafkaStreams can only be started once (state is {self._state.value})")
        self._state_dir.lock()
        try:
            admin = AdminClient(admin_config(self.config, f"{self.application_id}-admin"))
            self._metadata = prepare_topics(self.topology, self.config, admin)
            admin.poll(0)  # its log lines
            del admin
            self._process_id = str(self._state_dir.process_id())
            self._watcher = ShutdownWatcher(self.config, self._process_id, self._on_shutdown_request)
            self._watcher.seek_to_end()
        except BaseException:
            self._stop_watcher()
            self._state_dir.unlock()
            raise
        with self._lock:  # a shutdown request waits for every thread to be there to stop it
            self._set_state(State.REBALANCING)
            for i in range(1, self.config["num.stream.threads"] + 1):
                self._start_thread(i)
            self._watcher.start()

    def _start_thread(self, index: int) -> StreamThread:
        t = StreamThread(index, self.topology, self.config, self._metadata, self._process_id,
                         str(self._state_dir.state_dir), self._restore_listener, self._on_thread_state,
                         self._on_thread_fatal)
        with self._lock:
            self._threads = [x for x in self._threads if x.index != index] + [t]
        t.start()
        return t

    def _on_thread_state(self, thread: StreamThread, state: ThreadState) -> None:
        if self._state in (State.PENDING_SHUTDOWN, State.NOT_RUNNING, State.PENDING_ERROR, State.ERROR):
            return
        if state in (ThreadState.PARTITIONS_ASSIGNED, ThreadState.PARTITIONS_REVOKED):
            self._set_state(State.REBALANCING)
        elif state is ThreadState.RUNNING:
            with self._lock:
                alive = [t for t in self._threads if t.state is not ThreadState.DEAD]
            if alive and all(t.state is ThreadState.RUNNING for t in alive):
                self._set_state(State.RUNNING)

    def _on_thread_fatal(self, thread: StreamThread, exc: BaseException) -> None:
        response = StreamThreadExceptionResponse.SHUTDOWN_CLIENT
        if self._exception_handler is not None:
            try:
                response = self._exception_handler(exc)
            except Exception as handler_exc:
                log.error("uncaught exception handler failed: %r", handler_exc)
        if self._closed.is_set() or self._state in (State.PENDING_SHUTDOWN, State.NOT_RUNNING):
            return
        if response is StreamThreadExceptionResponse.REPLACE_THREAD:
            log.warning("Replacing dead stream thread %s", thread.name)
            self._start_thread(thread.index)
            return
        log.error("Stream thread %s died (%r); shutting down this client (%s)", thread.name, exc, response.value)
        self._fatal = exc
        if self._set_state(State.PENDING_ERROR):
            request = None
            if response is StreamThreadExceptionResponse.SHUTDOWN_APPLICATION:
                request = (thread.name, exc)
            threading.Thread(target=self._shutdown_on_error, args=(request,), name=f"{self.application_id}-shutdown",
                             daemon=True).start()

    def _on_shutdown_request(self, request: dict[str, Any]) -> None:
        """The shutdown watcher read a request (from any instance, this one included)."""
        if self._closed.is_set():
            return
        error = StreamsError(f"Shutdown of application {self.application_id} requested by process "
                             f"{request.get('process')} (thread {request.get('thread')}): {request.get('error')}")
        if self._set_state(State.PENDING_ERROR):
            self._fatal = error
            log.error("stream-client [%s] %s; shutting down this client", self.application_id, error)
            threading.Thread(target=self._shutdown_on_error, args=(None,), name=f"{self.application_id}-shutdown",
                             daemon=True).start()

    def _shutdown_on_error(self, request: tuple[str, BaseException] | None) -> None:
        if request is not None:  # tell the other instances first: ours stop meanwhile
            request_shutdown(self.config, self._process_id, *request)
        self._stop_threads(60.0)
        self._stop_watcher()
        self._state_dir.unlock()
        self._set_state(State.ERROR)

    def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _stop_threads(self, timeout: float | None) -> bool:
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.shutdown()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in threads:
            if t is threading.current_thread():
                continue
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def close(self, timeout: float | None = None) -> bool:
        """Stop the threads (each commits and closes its tasks); True if all stopped in time."""
        if self._state in (State.NOT_RUNNING, State.ERROR) or self._closed.is_set():
            return True
        self._closed.set()
        if self._state is State.PENDING_ERROR:
            self._stop_threads(timeout)
            return True
        self._set_state(State.PENDING_SHUTDOWN)
        stopped = self._stop_threads(timeout)
        self._stop_watcher()
        self._state_dir.unlock()
        self._set_state(State.NOT_RUNNING)
        return stopped

    def clean_up(self) -> None:
        """Delete this application's local state (only when not running)."""
        if self._state not in (State.CREATED, State.NOT_RUNNING, State.ERROR):
            raise StreamsError("Cannot clean up while running.")
        self._state_dir.clean_up()

    def __enter__(self) -> KafkaStreams:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- introspection --------------------------------------------------------------------------------

    def metrics(self) -> dict[str, dict[str, float]]:
        """Thread metrics by thread name (Kafka Streams' names: process-rate, process-latency-avg,
        commit-rate, commit-latency-avg, punctuate-rate, poll-rate, records-lag-max), plus task
        metrics under ``"<thread>/<task id>"``."""
        out: dict[str, dict[str, float]] = {}
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            out[t.name] = t.metrics()
            for entry in list(t.tasks.values()):
                task = entry.task
                out[f"{t.name}/{task.task_id}"] = {"process-total": float(task.processed_total),
                                                   "punctuate-total": float(task.punctuated_total),
                                                   "dropped-records-total": float(task.context.dropped_records)}
        return out

    def partition_buffers(self) -> dict[tuple[str, int], PartitionBuffer]:
        """Back-pressure state of every input partition this instance has a task for, by
        ``(topic, partition)``: a snapshot for monitoring and tests (see
        :class:`~kstreams.runtime.stream_thread.PartitionBuffer`)."""
        out: dict[tuple[str, int], PartitionBuffer] = {}
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            out.update(t.partition_buffers())
        return out

    @property
    def fatal_error(self) -> BaseException | None:
        """The error that moved this instance to ERROR, if any."""
        return self._fatal

    def wait_for_state(self, *states: State, timeout: float = 60.0) -> bool:
        """Block until the instance is in one of ``states`` (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._state in states:
                return True
            time.sleep(0.05)
        return self._state in states
