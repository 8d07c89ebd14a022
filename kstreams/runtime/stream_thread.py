"""A stream thread: one consumer (group member), one producer, the tasks assigned to it.

The loop: poll a batch, buffer it in the tasks' partition queues (pausing full partitions),
restore stores incrementally, process through the compiled loop, fire wall-clock punctuations,
commit every ``commit.interval.ms`` (or when a processor asked). The commit follows DESIGN §5:
stores send their dirty entries to the changelogs, the producer flushes (at_least_once) or the
transaction commits with the consumed offsets (exactly_once_v2), and only then each store
applies its entries to LevelDB in one WriteBatch with the changelog offset they reach.

With the compiled producer, the tasks' records (output and changelog) are appended to an
``OutputBuffer`` and sent by the thread's helper (``_CommitHelper``), GIL released, once a buffer
holds ``_SEND_BATCH_BYTES``, a poll finds nothing new, or a commit comes: the producer's work per
record runs beside the processing, on the other core. The helper runs its jobs in order, so a
buffer handed over before a commit is in that commit's transaction (or flush), one after it in
the next. The production exception handler is then called on the helper thread for a record the
producer refuses, as Java's is called on the producer's I/O thread for a failed send.
"""

from __future__ import annotations

import collections
import enum
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from kstreams._core import RecordCollector, StreamTask, group_messages
from kstreams._core.fetcher import Fetcher
from kstreams._core.producer import OutputBuffer, RdKafkaProducer
from kstreams._core.task import monotonic_ms
from kstreams.config import EXACTLY_ONCE_V2, StreamsConfig
from kstreams.errors import ErrorHandlerContext, HandlerResponse, StreamsError, TaskMigratedError
from kstreams.runtime.changelog_ends import ChangelogEnds
from kstreams.runtime.clients import (
    admin_config,
    consumer_config,
    decode_partition_time,
    encode_partition_time,
    producer_config,
    restore_consumer_config,
)
from kstreams.runtime.metrics import Sensor
from kstreams.runtime.topics import TopologyMetadata
from kstreams.state.keyvalue import DEFER_RECORDS_EXTRA, share_cache
from kstreams.state.restore import StoreRestorer
from kstreams.tasks import build_task
from kstreams.topology import Topology

log = logging.getLogger("kstreams.runtime")

_RESTORE_BATCH = 10_000
_MIGRATED_CODES = (KafkaError._FENCED, KafkaError.INVALID_PRODUCER_EPOCH, KafkaError.PRODUCER_FENCED,
                   KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID,
                   KafkaError.INVALID_TXN_STATE)
_COORDINATOR_MOVING_CODES = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                             KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._WAIT_COORD, KafkaError._TIMED_OUT,
                             KafkaError._TRANSPORT, KafkaError.REQUEST_TIMED_OUT)
# Delivery errors Kafka Streams' default production handler answers with RETRY (the task is
# rewound to its last commit and processes the records again) instead of FAIL.
_RETRIABLE_DELIVERY_CODES = frozenset((
    KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.NETWORK_EXCEPTION, KafkaError.KAFKA_STORAGE_ERROR))
# Delivery errors of records the client purged itself (a transaction being aborted, the idempotent
# producer resetting after timed-out records): no broker refused them and they are processed again
# after the rewind, so neither the production handler nor the transaction's verdict sees them.
_PURGED_DELIVERY_CODES = frozenset((KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT))
_PROCESS_BUDGET = 10_000
_FIRST_ENDS_TIMEOUT_S = 5.0
_STORE_EXTRA = {DEFER_RECORDS_EXTRA: 100_000}
"""A persistent store writes its committed entries to disk once per ~100,000 changelog records
(or once they hold 16 MiB, ``DEFER_BYTES_EXTRA``'s default), not at every commit: a hot key changed in every commit goes
to LevelDB once per batch. The threshold bounds the changelog tail a crash leaves to restore
(~0.4 s per store: a store restored 400,000 records in 1.65 s on the benchmark machine).
Kafka Streams writes its checkpoint file once the offsets moved by 10,000
(``StateManagerUtil.OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT``) but under exactly-once wipes the
stores after a crash and restores them in full. Counted over the benchmark's count workload
(4 tasks, 100,000 zipf keys, 100 ms commits), 10,000 gave ~497,000 LevelDB writes for
~816,000 changelog records, 100,000 gives ~174,000."""
_MAX_BLOCK_S = 60.0  # how long a send waits for room in a full producer queue (Java's max.block.ms)
_MAX_SENDS_QUEUED = 8  # output buffers handed to the helper thread and not sent yet, at most
_SEND_BATCH_BYTES = 1 << 20
_SEND_LINGER_S = 0.02
"""A round's output waits in the output buffer until it holds ``_SEND_BATCH_BYTES``, its first
record waited ``_SEND_LINGER_S``, a poll finds nothing new, or a commit comes: every buffer
handed over costs the helper thread the GIL twice, which it gets only by making the stream
thread give it up (a buffer per round of ~1,000 records made that tens of thousands of waits a
run). The producer itself lingers 100 ms (``linger.ms``, as Kafka Streams sets it)."""


class ThreadState(enum.Enum):
    """Lifecycle of a stream thread."""

    CREATED = "CREATED"
    STARTING = "STARTING"
    PARTITIONS_REVOKED = "PARTITIONS_REVOKED"
    PARTITIONS_ASSIGNED = "PARTITIONS_ASSIGNED"
    RUNNING = "RUNNING"
    PENDING_SHUTDOWN = "PENDING_SHUTDOWN"
    DEAD = "DEAD"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _as_tuples(msgs: list[Message]) -> tuple[dict[tuple[str, int], list[Any]], list[KafkaError]]:
    """``group_messages`` with each message as the raw record tuple the fetcher produces, so a
    task queue never mixes the two forms."""
    by_tp, errors = group_messages(msgs)
    return {tp: [(m.key(), m.value(), m.timestamp()[1], m.offset(), None if m.headers() is None else
                  tuple(m.headers())) for m in batch] for tp, batch in by_tp.items()}, errors


@dataclass
class _TaskEntry:
    task: StreamTask
    partitions: list[tuple[str, int]]
    partition: int
    restorers: list[StoreRestorer] = field(default_factory=list)
    running: bool = False


class _HelperJob:
    """Work handed to the helper thread: ``finished`` once it ran, ``error`` what it raised."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.error: BaseException | None = None

    def run(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` (on the commit helper's thread); its exception is kept in ``error``."""
        try:
            fn(*args)
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished.set()


class _InflightCommit(_HelperJob):
    """A commit between its two phases: the tasks' stores prepared their batches (phase 1); under
    exactly_once_v2 the transaction commits on a helper thread meanwhile (``start``). ``busy``:
    the seconds the stream thread spent on it so far (not the records it processed meanwhile),
    what ``commit-latency-avg`` reports, as Kafka Streams measures its blocking commit."""

    def __init__(self, entries: list[_TaskEntry], changed: list[tuple[str, int]], first_offsets: bool) -> None:
        super().__init__()
        self.entries = entries
        self.changed = changed
        self.first_offsets = first_offsets
        self.busy = 0.0


class _CommitHelper:
    """The daemon thread of a stream thread's producer work, one job after the other: the tasks'
    output buffers sent (with the compiled producer) and, under exactly_once_v2, the transactions
    committed (a thread started per commit kept the stream thread waiting for it to start, ten
    times a second).

    ``retire()`` lets it go: it exits after the commit it is running, if any. A commit blocked
    in librdkafka keeps its helper; the stream thread starts a new one."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[_HelperJob, Callable[..., None], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            inflight, fn, args = job
            inflight.run(fn, *args)

    def submit(self, inflight: _HelperJob, fn: Callable[..., None], *args: Any) -> None:
        """Run ``inflight.run(fn, *args)`` after the jobs submitted before it."""
        self._jobs.put((inflight, fn, args))

    def retire(self) -> None:
        """Exit once the commit running, if any, returns."""
        self._jobs.put(None)


@dataclass(frozen=True)
class PartitionBuffer:
    """Back-pressure state of one input partition of a stream thread (a snapshot).

    ``buffered``: records waiting in the task's queue for the partition; ``paused``: fetching is
    paused (the queue went over ``buffered.records.per.partition``, or the task is restoring);
    ``pauses``/``resumes``: how often back-pressure paused the partition and resumed it once the
    queue was drained to the limit; ``peak``: the largest queue size seen right after a consumed
    batch was buffered, when it was over the limit (0 if it never was). A queue grows past the
    limit by at most one consumed batch (``max.poll.records``) before fetching pauses.
    """

    buffered: int
    paused: bool
    pauses: int
    resumes: int
    peak: int


class StreamThread(threading.Thread):
    """One stream thread of a :class:`~kstreams.runtime.KafkaStreams` instance."""

    def __init__(self, index: int, topology: Topology, config: StreamsConfig, metadata: TopologyMetadata,
                 process_id: str, state_dir: str, restore_listener: Any,
                 on_state: Callable[[StreamThread, ThreadState], None],
                 on_fatal: Callable[[StreamThread, BaseException], None]) -> None:
        super().__init__(name=f"{config['application.id']}-StreamThread-{index}", daemon=True)
        self.index = index
        self.topology = topology
        self.config = config
        self.metadata = metadata
        self.app_id: str = config["application.id"]
        self.process_id = process_id
        self.state_dir = state_dir
        self.restore_listener = restore_listener
        self._on_state = on_state
        self._on_fatal = on_fatal
        self.eos = config["processing.guarantee"] == EXACTLY_ONCE_V2
        self.state = ThreadState.CREATED
        self._shutdown_requested = threading.Event()
        self._subs = {sub.id: sub for sub in topology.subtopologies()}
        self._sub_of_topic = {t: sub for sub in self._subs.values() for t in sub.source_topics}
        self.tasks: dict[tuple[int, int], _TaskEntry] = {}
        self._task_of_tp: dict[tuple[str, int], _TaskEntry] = {}
        self._paused: set[tuple[str, int]] = set()
        self._bp_pauses: dict[tuple[str, int], int] = {}
        self._bp_resumes: dict[tuple[str, int], int] = {}
        self._bp_peak: dict[tuple[str, int], int] = {}
        self._restoring: dict[tuple[str, int], StoreRestorer] = {}
        self._txn_open = False
        self._inflight: _InflightCommit | None = None  # an exactly_once_v2 commit still running
        self._commit_helper: _CommitHelper | None = None  # the thread it runs on (started on first use)
        # with the compiled producer, the tasks' output and changelog records go into this buffer,
        # which the commit helper sends (the producer's work per record leaves this thread)
        self._out: OutputBuffer | None = None
        self._sends: collections.deque[_HelperJob] = collections.deque()  # buffers not sent yet
        self._sent_since_commit = False  # a buffer went to the helper since the last commit
        self._unsent_since: float | None = None  # when the output buffer got its first record
        self._sender_error: BaseException | None = None  # a helper job failed: later ones skip
        self._buffering = False  # the tasks' output waits in their collectors (a commit is running)
        self._last_commit = time.monotonic()
        self._changelog_ends: ChangelogEnds | None = None
        self._commit_interval = config["commit.interval.ms"] / 1000.0
        self._buffer_limit = config["buffered.records.per.partition"]
        self._poll_timeout = config["poll.ms"] / 1000.0
        self._max_poll = config["max.poll.records"]
        self.consumer: Consumer | None = None
        self._fetcher: Fetcher | None = None  # the compiled record path of the consumer, when available
        self.producer: Producer | RdKafkaProducer | None = None
        self.restore_consumer: Consumer | None = None
        self._restore_fetcher: Fetcher | None = None  # the compiled record path of the restore consumer
        self.admin: AdminClient | None = None
        self._record_failed = False  # a record's output was lost and the production handler said FAIL
        self._producer_failed = False  # the producer itself failed (fatal, fenced, wrong state)
        self._production_errors: list[str] = []
        # exactly_once_v2: the first record of the open transaction that could not be delivered
        # (whatever the handler answered): librdkafka can then only abort the transaction
        self._txn_record_error: str | None = None
        self._callback_error: BaseException | None = None
        self._txn_timeout = 60.0
        self._assign_failing_since: float | None = None
        self._assign_failures = 0  # consecutive failed assignments (the rejoin backs off)
        self.sensors = {name: Sensor() for name in ("process", "commit", "punctuate", "poll")}
        self._records_lag_max = 0
        self._processed_last = 0
        self._first_task = 0  # where the next round over the tasks starts
        self._max_poll_interval_ms = int(consumer_config(config, "").get("max.poll.interval.ms", 300_000))

    # -- lifecycle ----------------------------------------------------------------------------------

    def _set_state(self, state: ThreadState) -> None:
        self.state = state
        self._on_state(self, state)

    def shutdown(self) -> None:
        """Ask the thread to stop after its current iteration (it commits and closes its tasks)."""
        self._shutdown_requested.set()

    def run(self) -> None:
        clean = False
        try:
            self._set_state(ThreadState.STARTING)
            self._create_clients()
            self._subscribe()
            while not self._shutdown_requested.is_set():
                try:
                    self._run_once()
                    if self._callback_error is not None:
                        self._raise_callback_error()
                except TaskMigratedError as exc:
                    log.warning("%s: %s; closing its tasks and rejoining the group", self.name, exc)
                    self._handle_migrated()
            self._set_state(ThreadState.PENDING_SHUTDOWN)
            self._commit(force=True)
            clean = True
        except BaseException as exc:  # the thread dies; KafkaStreams decides what happens next
            self._die(exc)
            return
        except:  # noqa: E722  a KafkaError raised as if it were an exception (see _guarded): no silent death
            self._die(StreamsError(f"unexpected error: {sys.exc_info()[1]!r}"))
            return
        finally:
            if clean:
                self._close_tasks(list(self.tasks), clean=True)
                self._close_clients()
                self._set_state(ThreadState.DEAD)

    def _die(self, exc: BaseException) -> None:
        log.error("%s failed: %r", self.name, exc, exc_info=exc)
        self._close_tasks(list(self.tasks), clean=False)
        self._close_clients()
        self._set_state(ThreadState.DEAD)
        self._on_fatal(self, exc)

    def _client_id(self, kind: str) -> str:
        return f"{self.app_id}-{self.process_id}-StreamThread-{self.index}-{kind}"

    def _create_clients(self) -> None:
        self.consumer = Consumer(consumer_config(self.config, self._client_id("consumer")))
        try:
            self._fetcher = Fetcher(self.consumer, self._client_id("consumer"), self._max_poll)
        except ImportError as exc:
            log.info("%s: records come through confluent-kafka's Message objects (%s)", self.name, exc)
        self.restore_consumer = Consumer(restore_consumer_config(self.config, self._client_id("restore-consumer")))
        try:
            self._restore_fetcher = Fetcher(self.restore_consumer, self._client_id("restore-consumer"), _RESTORE_BATCH)
        except ImportError:
            pass  # changelog records come through Message objects too (logged for the consumer above)
        self.admin = AdminClient(admin_config(self.config, self._client_id("admin")))
        self._changelog_ends = ChangelogEnds(self.admin, self.name)
        self._create_producer()

    def _create_producer(self) -> None:
        txn_id = f"{self.app_id}-{self.process_id}-{self.index}" if self.eos else None
        conf = producer_config(self.config, self._client_id("producer"), txn_id)
        self.producer = self._new_producer(conf)
        self._txn_timeout = conf.get("transaction.timeout.ms", 60_000) / 1000.0
        if self.eos:
            self._txn_call(self.producer.init_transactions, 30)
            self._txn_open = False
        if isinstance(self.producer, RdKafkaProducer):
            self._out = OutputBuffer(self.producer)
            for entry in self.tasks.values():
                entry.task.collector.use_output(self._out)

    def _new_producer(self, conf: dict[str, Any]) -> Producer | RdKafkaProducer:
        """The compiled producer, or confluent-kafka's when librdkafka cannot be reached directly or
        a property is a callable (both report failed deliveries and client errors alike)."""
        if not any(callable(v) for v in conf.values()):
            try:
                return RdKafkaProducer(conf, self._on_delivery_error, self._on_client_error)
            except ImportError as exc:
                log.info("%s: using confluent-kafka's producer (%s)", self.name, exc)
        return Producer({**conf, "error_cb": self._on_client_error, "on_delivery": self._on_delivery_error})

    def _retire_commit_helper(self) -> None:
        if self._commit_helper is not None:
            self._commit_helper.retire()
            self._commit_helper = None

    def _close_clients(self) -> None:
        for closer in (self._close_producer, self._close_consumers, self._retire_commit_helper):
            try:
                closer()
            except Exception as exc:  # closing is best effort
                log.debug("%s: error while closing clients: %r", self.name, exc)

    def _close_producer(self) -> None:
        if self._inflight is not None or self._sends:
            self._abort_transaction(replace_blocked=False)
        if self.producer is not None:
            if self.eos and self._txn_open:
                try:
                    self.producer.abort_transaction(10)
                except KafkaException:
                    pass
            self.producer.flush(10)
            if isinstance(self.producer, RdKafkaProducer):
                self.producer.close()
            self.producer = None

    def _close_consumers(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()
            self._fetcher = None
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        if self._restore_fetcher is not None:
            self._restore_fetcher.close()
            self._restore_fetcher = None
        if self.restore_consumer is not None:
            self.restore_consumer.close()
            self.restore_consumer = None
        self.admin = None
        self._changelog_ends = None  # it holds the admin client too

    # -- callbacks ----------------------------------------------------------------------------------

    def _on_client_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._producer_failed = True
            self._production_errors.append(f"fatal client error: {err}")
        else:
            log.debug("%s: client error %s", self.name, err)

    def _on_delivery_error(self, err: KafkaError | None, msg: Any) -> None:
        """Delivery reports come only for failures (``delivery.report.only.error``); the
        production exception handler decides: continue (drop the record) or fail the thread.
        Without a handler, a retriable error (a timeout, a leader moving) rewinds the tasks to
        their last commit, as Kafka Streams' default handler does with RETRY; so does a record the
        client purged itself, whatever the handler."""
        if err is None:
            return
        text = f"Error sending record to topic {msg.topic()} partition {msg.partition()}: {err}"
        code = err.code()
        handler = self.config.production_handler
        if code in _PURGED_DELIVERY_CODES or (handler is None and code in _RETRIABLE_DELIVERY_CODES):
            self._production_errors.append(text)  # the tasks are rewound
            return
        if self.eos and self._txn_record_error is None:
            self._txn_record_error = text
        if handler is not None:
            ctx = ErrorHandlerContext(msg.topic(), msg.partition(), -1, tuple(msg.headers() or ()), None, "",
                                      msg.timestamp()[1])
            if handler(ctx, msg, KafkaException(err)) is HandlerResponse.CONTINUE:
                log.warning("%s: %s; dropped by the production exception handler", self.name, text)
                return
        self._record_failed = True
        self._production_errors.append(text)

    def _on_produce_error(self, exc: Exception, topic: str, value: bytes | None, key: bytes | None,
                          partition: int, timestamp: int, headers: Any) -> None:
        """``produce()`` raised for a record (the collector calls this; the hot path stays a
        direct ``produce`` call). Handled like Kafka Streams handles send errors: a full
        producer queue waits for deliveries (Java's ``send`` blocks up to ``max.block.ms``), and
        a record the client refuses (larger than ``message.max.bytes``, unknown partition) goes
        to the production exception handler like a failed delivery."""
        producer = self.producer
        if isinstance(exc, BufferError) and producer is not None:
            deadline = time.monotonic() + _MAX_BLOCK_S
            while True:
                producer.poll(0.05)  # serves delivery reports: that frees room in the queue
                try:
                    producer.produce(topic, value, key, partition, None, None, timestamp, headers)
                    return
                except BufferError:
                    if time.monotonic() < deadline:
                        continue
                    exc = KafkaException(KafkaError(KafkaError._QUEUE_FULL,
                                                    f"producer queue still full after {_MAX_BLOCK_S:.0f} s"))
                except KafkaException as refused:
                    exc = refused
                break
        if not isinstance(exc, KafkaException):
            raise exc
        self._on_send_error(exc, topic, partition, key, value, timestamp, headers)

    def _on_send_error(self, exc: KafkaException, topic: str, partition: int, key: bytes | None,
                       value: bytes | None, timestamp: int, headers: Any) -> None:
        """``produce()`` refused a record: the same handling as a failed delivery, unless the
        error concerns the producer rather than the record (fatal, fenced, wrong state)."""
        err = exc.args[0] if exc.args else None
        if not isinstance(err, KafkaError) or err.fatal() or err.code() in _MIGRATED_CODES \
                or err.code() == KafkaError._STATE:
            self._producer_failed = True
            self._production_errors.append(f"Error sending record to topic {topic} partition {partition}: {exc}")
            return
        msg = Message(topic=topic, partition=partition, key=key, value=value, headers=headers,
                      timestamp=(TIMESTAMP_CREATE_TIME, timestamp), error=err)
        self._on_delivery_error(err, msg)

    def _partition_count(self, topic: str) -> int | None:
        n = self.metadata.partitions.get(topic)
        if n is not None:
            return n
        assert self.admin is not None
        md = self.admin.list_topics(topic, timeout=10)
        tm = md.topics.get(topic)
        if tm is None or tm.error is not None or not tm.partitions:
            raise StreamsError(f"Could not get partition information for topic {topic}. This can happen if the "
                               f"topic does not exist (sink topics must exist before they are written).")
        self.metadata.partitions[topic] = len(tm.partitions)
        return len(tm.partitions)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._set_state(ThreadState.PARTITIONS_ASSIGNED)
        by_task: dict[tuple[int, int], list[tuple[str, int]]] = {}
        for tp in partitions:
            sub = self._sub_of_topic[tp.topic]
            by_task.setdefault((sub.id, tp.partition), []).append((tp.topic, tp.partition))
        if self._fetcher is not None:  # before assigning: no record of these partitions may go elsewhere first
            self._fetcher.forward([(tp.topic, tp.partition) for tp in partitions])
        consumer.assign(partitions)
        # librdkafka keeps a partition paused across its revocation and reassignment, but this
        # thread forgot the pause with the task it closed: a new assignment starts unpaused
        consumer.resume(partitions)
        committed = {(tp.topic, tp.partition): tp for tp in self._committed_offsets(consumer, partitions)}
        to_pause: list[TopicPartition] = []
        for key, tps in sorted(by_task.items()):
            entry = self._create_task(key, tps, committed)
            if entry.restorers:
                to_pause.extend(TopicPartition(t, p) for t, p in tps)
                self._paused.update(tps)
            else:
                self._start_task(entry)
        if to_pause:
            consumer.pause(to_pause)
        self._share_cache()
        self._assign_failing_since = None
        self._assign_failures = 0
        log.info("%s assigned tasks %s", self.name, sorted(f"{s}_{p}" for s, p in by_task))
        if not by_task:  # no task to start: the thread runs, idle (more members than tasks)
            self._set_state(ThreadState.RUNNING)

    def _committed_offsets(self, consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The group's committed offsets (with their metadata), retried while the error is
        retriable (the group coordinator moving, e.g. a broker restarting), as Java's consumer does."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return consumer.committed(partitions, timeout=max(1.0, deadline - time.monotonic()))
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if (not isinstance(err, KafkaError) or time.monotonic() >= deadline
                        or not (err.retriable() or err.code() in _COORDINATOR_MOVING_CODES)):
                    raise
                log.info("%s: reading committed offsets failed with a retriable error (%s); retrying", self.name, err)
                time.sleep(0.2)

    def _create_task(self, key: tuple[int, int], tps: list[tuple[str, int]],
                     committed: dict[tuple[str, int], TopicPartition]) -> _TaskEntry:
        sub = self._subs[key[0]]
        assert self.producer is not None
        collector = RecordCollector(self._partition_count, on_produce_error=self._on_produce_error)
        if self._out is not None:
            collector.use_output(self._out)
        elif not self._buffering:
            collector.use_producer(self.producer)
        task = build_task(self.topology, sub, key[1], self.config, collector, application_id=self.app_id,
                          state_dir=self.state_dir, input_topics=[t for t, _ in tps],
                          lag_provider=self._lag, wall_clock=_now_ms(), store_extra=_STORE_EXTRA)
        stream_time = -1
        for t, p in tps:
            tp = committed.get((t, p))
            pt = decode_partition_time(getattr(tp, "metadata", None)) if tp is not None else -1
            if pt >= 0:
                task.queues[(t, p)].partition_time = pt
                stream_time = max(stream_time, pt)
        task.group.stream_time = stream_time
        entry = _TaskEntry(task, tps, key[1])
        self.tasks[key] = entry
        for tp in tps:
            self._task_of_tp[tp] = entry
        self._register_restores(entry)
        return entry

    def _register_restores(self, entry: _TaskEntry) -> None:
        assert self.restore_consumer is not None and self.admin is not None
        task = entry.task
        partition = int(task.task_id.split("_")[1])
        assigns = []
        logged = {name: getattr(store, "changelog_topic", None) for name, store in task.stores.items()}
        bounds = self._changelog_bounds([TopicPartition(t, partition) for t in logged.values() if t is not None])
        for name, store in task.stores.items():
            topic = logged[name]
            if topic is None:
                continue
            low, high = bounds[(topic, partition)]
            restorer = StoreRestorer(store, (topic, partition), high, self.restore_listener, low)
            start = restorer.start()
            if restorer.done:
                restorer.finish()
                continue
            entry.restorers.append(restorer)
            self._restoring[(topic, partition)] = restorer
            assigns.append(TopicPartition(topic, partition, start))
            log.info("%s: task %s restores store %s from %s-%d offsets %d..%d", self.name, task.task_id, name, topic,
                     partition, start, high)
        if assigns:
            if self._restore_fetcher is not None:  # before assigning, as for the main consumer
                self._restore_fetcher.forward([(tp.topic, tp.partition) for tp in assigns])
            self.restore_consumer.incremental_assign(assigns)

    def _changelog_bounds(self, tps: list[TopicPartition]) -> dict[tuple[str, int], tuple[int, int]]:
        """Start and end offsets of changelog partitions; the end counts every record written.

        A restore reads (``read_committed``) up to that end, so it waits for the transactions
        below it to be decided. The end a ``read_committed`` reader sees (the last stable offset)
        is not enough: it stays below any undecided transaction, and right after a commit the
        thread's own transaction is one (its markers are written after ``commit_transaction``
        returns; for seconds when a partition leader just died). A store already holding that
        commit then looked ahead of the changelog and was wiped and restored to an older state
        while the input offsets committed with it stayed in effect: counts went back and their
        updates came out again. Leaders are looked up afresh first: librdkafka fails a request
        for a partition whose cached leader has left the cluster at once, until the topic's
        metadata is refreshed (every 5 minutes by default).
        """
        if not tps:
            return {}
        assert self.admin is not None
        for topic in sorted({tp.topic for tp in tps}):
            self.admin.list_topics(topic, timeout=30)
        ends = self.admin.list_offsets({tp: OffsetSpec.latest() for tp in tps},
                                       isolation_level=IsolationLevel.READ_UNCOMMITTED, request_timeout=30)
        starts = self.admin.list_offsets({tp: OffsetSpec.earliest() for tp in tps}, request_timeout=30)
        low = {(tp.topic, tp.partition): f.result(timeout=30).offset for tp, f in starts.items()}
        return {(tp.topic, tp.partition): (low[(tp.topic, tp.partition)], f.result(timeout=30).offset)
                for tp, f in ends.items()}

    def _start_task(self, entry: _TaskEntry) -> None:
        entry.task.init_topology(_now_ms())
        entry.running = True
        resume = [TopicPartition(t, p) for t, p in entry.partitions if (t, p) in self._paused]
        if resume and self.consumer is not None:
            self.consumer.resume(resume)
            self._paused.difference_update(entry.partitions)
        log.info("%s: task %s is running", self.name, entry.task.task_id)
        if all(e.running for e in self.tasks.values()):
            self._set_state(ThreadState.RUNNING)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._set_state(ThreadState.PARTITIONS_REVOKED)
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        keys = [k for k, e in self.tasks.items() if revoked.intersection(e.partitions)]
        try:
            self._commit(force=True)
        except (KafkaException, TaskMigratedError) as exc:
            log.warning("%s: commit on revocation failed (%s); closing tasks dirty", self.name, exc)
            self._abort_transaction()
            self._close_tasks(keys, clean=False)
            return
        self._close_tasks(keys, clean=True)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = {(tp.topic, tp.partition) for tp in partitions}
        keys = [k for k, e in self.tasks.items() if lost.intersection(e.partitions)]
        log.warning("%s lost partitions %s; closing their tasks without committing", self.name, sorted(lost))
        self._abort_transaction()
        self._close_tasks(keys, clean=False)

    def _share_cache(self) -> None:
        """Split this thread's share of ``statestore.cache.max.bytes`` among its tasks' stores."""
        total = self.config["statestore.cache.max.bytes"] // self.config["num.stream.threads"]
        share_cache([s for e in self.tasks.values() for s in e.task.stores.values()], total)

    def _close_tasks(self, keys: list[tuple[int, int]], clean: bool) -> None:
        if keys and self._changelog_ends is not None:
            self._changelog_ends.forget()  # its answer was for stores about to close
            if clean:
                self._take_final_offsets(keys)
        for key in keys:
            entry = self.tasks.pop(key, None)
            if entry is None:
                continue
            for tp in entry.partitions:
                self._task_of_tp.pop(tp, None)
                self._paused.discard(tp)
            # only changelogs still restoring are assigned: a finished restore unassigned its own
            restoring = [TopicPartition(*r.topic_partition) for r in entry.restorers
                         if self._restoring.pop(r.topic_partition, None) is not None]
            if self.restore_consumer is not None and restoring:
                try:
                    self.restore_consumer.incremental_unassign(restoring)
                except KafkaException:
                    pass
            try:
                if entry.running:
                    entry.task.close_topology()
            except Exception as exc:
                log.warning("%s: closing task %s: %r", self.name, entry.task.task_id, exc)
            for store in entry.task.stores.values():
                try:
                    if not clean and hasattr(store, "discard_uncommitted"):
                        store.discard_uncommitted()
                    store.close()
                except Exception as exc:
                    log.warning("%s: closing store %s of task %s: %r", self.name, store.name, entry.task.task_id, exc)
        if keys:
            self._share_cache()  # the stores left take the closed ones' part

    def _take_final_offsets(self, keys: list[tuple[int, int]]) -> None:
        """After the last commit of tasks closing cleanly, their stores take their changelogs'
        last stable offsets, so the batch they write on close leaves a restart little or nothing
        to restore (during processing a store asks for offsets only when its next batch is near).
        Stable offsets stop below a transaction not decided yet (the markers of our own last
        commit may still be on their way): the restore then reads across it.

        Only running tasks: the stores of a task still restoring hold the changelog up to where
        their restore got, and a restart must go on from there."""
        assert self._changelog_ends is not None
        stores = [(store, (store.changelog_topic, entry.partition))
                  for entry in (self.tasks[k] for k in keys if k in self.tasks) if entry.running
                  for store in entry.task.stores.values()
                  if getattr(store, "defer_records", 0) and store.changelog_topic]
        if not stores:
            return
        ends = self._changelog_ends.answer_now(sorted({tp for _, tp in stores}), _FIRST_ENDS_TIMEOUT_S, stable=True)
        for store, tp in stores:
            if tp in ends:
                try:
                    store.commit(ends[tp])
                except Exception as exc:  # the store's close reports it again; a restart restores more
                    log.warning("%s: store %s: writing its final changelog offset: %r", self.name, store.name, exc)

    def _production_failure(self) -> StreamsError:
        """What to raise for the production errors recorded: the thread fails when a record's
        output was lost and the production handler said FAIL; a retriable delivery error, or
        under exactly_once_v2 an error of the producer itself, aborts the transaction and
        rewinds the tasks instead."""
        errors, self._production_errors = self._production_errors, []
        if not self._record_failed and (self.eos or not self._producer_failed):
            return TaskMigratedError("; ".join(errors[:3]))
        return StreamsError("; ".join(errors[:3]))

    def _handle_migrated(self) -> None:
        self._production_errors.clear()
        self._producer_failed = False  # under exactly_once_v2 the producer is replaced below
        self._abort_transaction(replace_blocked=False)
        self._close_tasks(list(self.tasks), clean=False)
        assert self.consumer is not None
        self.consumer.unsubscribe()
        if self.eos:
            # a fenced or failed transactional producer cannot go on: destroy it now (what it still
            # holds belongs to the aborted transaction) rather than leave it retrying in the background
            old, self.producer = self.producer, None
            if isinstance(old, RdKafkaProducer):
                old.close()
            del old
        if self.producer is None:  # also one left to a send that never returned (at_least_once)
            self._create_producer()
        if self._assign_failing_since is not None:
            self._backoff_rejoin()
        self._subscribe()

    def _backoff_rejoin(self) -> None:
        """Wait before rejoining after a failed assignment (e.g. a broker down while the tasks were
        being created): ``retry.backoff.ms``, doubled for every consecutive failure up to
        ``retry.backoff.max.ms``, as Kafka's clients back off their retries. A shutdown request
        ends the wait."""
        self._assign_failures += 1
        base = self.config["retry.backoff.ms"]
        delay_ms = min(max(base, self.config["retry.backoff.max.ms"]), base << min(self._assign_failures - 1, 20))
        log.info("%s: assignment failed %d time(s) in a row; rejoining the group in %d ms",
                 self.name, self._assign_failures, delay_ms)
        self._shutdown_requested.wait(delay_ms / 1000.0)

    def _subscribe(self) -> None:
        assert self.consumer is not None
        self.consumer.subscribe(self.topology.source_topics(), on_assign=self._guarded(self._on_assign),
                                on_revoke=self._guarded(self._on_revoke), on_lost=self._guarded(self._on_lost))

    def _guarded(self, callback: Callable[[Consumer, list[TopicPartition]], None]) -> Callable[..., None]:
        """A rebalance callback that keeps its exception for :meth:`_raise_callback_error`.

        An exception leaving a callback comes back out of ``consume()``, but on Python < 3.12
        confluent-kafka re-raises an exception raised by its own C code (e.g. the KafkaException of
        a client call while a broker is down) as its bare ``KafkaError`` value, which is no
        ``BaseException``: no ``except`` clause matched it and the thread died without a trace,
        leaving the instance REBALANCING forever.
        """

        def guarded(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            try:
                callback(consumer, partitions)
            except Exception as exc:
                if self._callback_error is None:
                    self._callback_error = exc

        return guarded

    def _raise_callback_error(self) -> None:
        """Raise what a rebalance callback failed with. A Kafka error there (a broker down while the
        tasks were being created) closes the tasks and rejoins the group, until ``task.timeout.ms``."""
        exc, self._callback_error = self._callback_error, None
        if isinstance(exc, KafkaException):
            now = time.monotonic()
            if self._assign_failing_since is None:
                self._assign_failing_since = now
            if now - self._assign_failing_since < self.config["task.timeout.ms"] / 1000.0:
                raise TaskMigratedError(f"a rebalance callback failed: {exc}") from exc
        assert exc is not None
        raise exc

    def _abort_transaction(self, replace_blocked: bool = True) -> None:
        """Abort the open transaction (the tasks are being rewound), after waiting for a commit in
        flight; a commit still blocked leaves its producer to its helper (replaced by a new one
        when ``replace_blocked``)."""
        if self._changelog_ends is not None:
            self._changelog_ends.forget()
        inflight, self._inflight = self._inflight, None
        if inflight is not None:  # the tasks are rewound: wait for the commit, drop what was buffered
            if not inflight.finished.wait(self._txn_timeout + 2.0):
                self._leave_producer_to_blocked_commit(replace_blocked)
            elif inflight.error is None and self._out is None:
                self._txn_open = False  # it committed: nothing is open to abort
        if self._sends:  # the helper keeps the transaction's state: wait until it is idle
            if not self._sends[-1].finished.wait(self._txn_timeout + 2.0 + _MAX_BLOCK_S):
                self._leave_producer_to_blocked_commit(replace_blocked)
            self._sends.clear()
        self._sender_error = None
        self._sent_since_commit = False
        if self._out is not None:
            self._out.clear()  # records of the transaction being aborted
            self._unsent_since = None
        if self._buffering:
            self._set_buffering(False, drain=False)
        if self.eos and self._txn_open and self.producer is not None:
            try:
                self.producer.abort_transaction(30)
            except KafkaException as exc:
                log.warning("%s: abort_transaction failed: %s", self.name, exc)
            self._txn_open = False
            # delivery failures reported while aborting (timed-out or purged records) belong to the
            # aborted transaction, whose records are processed again: they must not fail the next one
            self._production_errors.clear()
            self._record_failed = False
        self._txn_record_error = None

    # -- the loop -----------------------------------------------------------------------------------

    def _lag(self, topic: str, partition: int) -> int | None:
        if self.consumer is None:
            return None
        try:
            low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        except KafkaException:
            return None
        if high < 0:
            return None
        entry = self._task_of_tp.get((topic, partition))
        pos = entry.task.queues[(topic, partition)].next_offset if entry is not None else -1
        if pos < 0:
            positions = self.consumer.position([TopicPartition(topic, partition)])
            pos = positions[0].offset if positions else -1
        return None if pos < 0 else max(0, high - pos)

    def _run_once(self) -> None:
        assert self.consumer is not None and self.producer is not None
        if self._sends:
            self._reap_sends()
        if self._inflight is not None:
            self._finish_commit(wait=False)
        if self._production_errors:
            raise self._production_failure()
        # poll without waiting while restoring or while the last round processed records; records
        # that cannot be processed yet (a task idling for max.task.idle.ms) must not spin a core
        # output waiting to be sent (below _SEND_BATCH_BYTES) goes out once a poll finds nothing new
        unsent = self._out is not None and len(self._out) > 0
        busy = self._restoring or unsent or (self._processed_last > 0
                                             and any(e.running and e.task.has_buffered() for e in self.tasks.values()))
        t0 = time.perf_counter()
        if self._fetcher is None:
            msgs = self.consumer.consume(self._max_poll, 0 if busy else self._poll_timeout)
            got = bool(msgs)
            if msgs:
                self._buffer(*group_messages(msgs), True)
        else:
            # rebalances, group errors (and records of partitions not routed to the fetcher)
            msgs = self.consumer.consume(self._max_poll, 0)
            if msgs:
                self._buffer(*_as_tuples(msgs), False)
            records, errors = self._fetcher.fetch(0 if busy or msgs else self._poll_timeout)
            got = bool(msgs) or bool(records)
            if records or errors:
                self._buffer(records, errors, False)
        self.sensors["poll"].record(1, time.perf_counter() - t0)
        if unsent and not got:
            self._send_output()
        if self._restoring:
            self._restore_step()
        if self.eos and self._out is None and not self._txn_open and self.tasks and self._inflight is None:
            # after consume(): its rebalance callbacks may have created the tasks and committed
            self.producer.begin_transaction()
            self._txn_open = True
        now = _now_ms()
        processed = 0
        entries = list(self.tasks.values())
        if len(entries) > 1:  # a round cut short by its deadline starts at the next task next time
            self._first_task = (self._first_task + 1) % len(entries)
            entries = entries[self._first_task:] + entries[:self._first_task]
        deadline = self._process_deadline(entries, now)
        t1 = time.perf_counter()
        for entry in entries:
            if entry.running:
                processed += entry.task.process(_PROCESS_BUDGET, now, deadline)
        self._processed_last = processed
        if processed:
            self.sensors["process"].record(processed, time.perf_counter() - t1)
        if self._inflight is None and not self._sends:  # else the helper serves the producer's callbacks
            self.producer.poll(0)
        for entry in list(self.tasks.values()):
            if entry.running and entry.task.punctuate_wall_clock(now):
                self.sensors["punctuate"].record()
        mono = time.monotonic()
        if self._out is not None and len(self._out):
            if self._unsent_since is None:
                self._unsent_since = mono
            if self._out.nbytes >= _SEND_BATCH_BYTES or mono - self._unsent_since >= _SEND_LINGER_S:
                self._send_output()
        self._resume_drained()
        self._maybe_commit(mono)

    def _process_deadline(self, entries: list[_TaskEntry], wall_clock: int) -> int:
        """When this round's processing stops (a time of ``monotonic_ms``), even with records left:
        half a commit interval after the next interval commit is due, when the next wall-clock
        punctuation is due, or half of ``max.poll.interval.ms`` after the poll.

        Without it, a thread holding thousands of slow records committed only after processing
        them all (an exactly_once_v2 transaction could outlive ``transaction.timeout.ms`` and be
        aborted, again and again). Kafka Streams checks between rounds whose size it adapts so
        that a round takes less than half the commit interval; the half interval of slack here
        lets a round of fast records end on its record budget, as before: stopping it right at
        the due time made exactly_once_v2 commit more often than the budget-sized rounds did and
        cost the count benchmark ~9 % of its throughput."""
        now = monotonic_ms()
        commit_due = int((self._last_commit + 1.5 * self._commit_interval) * 1000)
        deadline = min(commit_due, now + self._max_poll_interval_ms // 2)
        for entry in entries:
            if entry.running:
                due = entry.task.context.wall_punctuations.next_due
                if due - wall_clock < deadline - now:
                    deadline = now + max(0, due - wall_clock)
        return max(deadline, 1)

    def _maybe_commit(self, now: float) -> None:
        """Kafka Streams' ``maybeCommit``: every task that made progress once ``commit.interval.ms``
        has passed since the last interval commit ended; before that, the same commit only when a
        task asked for one (``context.commit()``, a full store cache), which leaves the interval's
        clock alone, so a stream of requests neither delays nor replaces the interval commits.

        The interval counts from the end of the commit, as Kafka Streams' ``lastCommitMs``: an
        exactly_once_v2 commit first waits for the one in flight, and counted from before that
        wait, a thread whose commits took longer than the interval (a broker down) found its next
        commit due at once and processed one record per task per commit."""
        if now - self._last_commit >= self._commit_interval:
            started = time.monotonic()
            self._commit(force=False)
            self._last_commit = now + (time.monotonic() - started)
        elif any(e.running and e.task.context.commit_requested for e in self.tasks.values()):
            self._commit(force=False)

    def _buffer(self, by_tp: dict[tuple[str, int], list[Any]], errors: list[KafkaError], message_mode: bool) -> None:
        """Hand consumed records to their tasks, pausing partitions whose queue is over the limit."""
        for err in errors:
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            if err.fatal():
                raise KafkaException(err)
            log.warning("%s: consumer error: %s", self.name, err)
        to_pause = []
        for key, batch in by_tp.items():
            entry = self._task_of_tp.get(key)
            if entry is None:
                continue  # revoked meanwhile
            size = entry.task.add_records(key[0], key[1], batch, message_mode)
            if size > self._buffer_limit:
                if size > self._bp_peak.get(key, 0):
                    self._bp_peak[key] = size
                if key not in self._paused:
                    self._paused.add(key)
                    self._bp_pauses[key] = self._bp_pauses.get(key, 0) + 1
                    to_pause.append(TopicPartition(*key))
        if to_pause:
            assert self.consumer is not None
            self.consumer.pause(to_pause)

    def _resume_drained(self) -> None:
        if not self._paused:
            return
        resume = []
        for key in list(self._paused):
            entry = self._task_of_tp.get(key)
            if entry is None or not entry.running:
                continue
            if entry.task.queues[key].size() <= self._buffer_limit:
                self._paused.discard(key)
                self._bp_resumes[key] = self._bp_resumes.get(key, 0) + 1
                resume.append(TopicPartition(*key))
        if resume:
            assert self.consumer is not None
            self.consumer.resume(resume)

    def _restore_step(self) -> None:
        assert self.restore_consumer is not None
        if self._restore_fetcher is not None:
            self._serve_restore_consumer()
            by_tp, errors = self._restore_fetcher.fetch(0.05)
        else:
            by_tp, errors = _as_tuples(self.restore_consumer.consume(_RESTORE_BATCH, 0.05))
        self._log_restore_errors(errors)
        done_tps = []
        for key, restorer in list(self._restoring.items()):
            records = by_tp.get(key)
            pos_list = self.restore_consumer.position([TopicPartition(*key)])
            position = pos_list[0].offset if pos_list and pos_list[0].offset >= 0 else restorer.position
            if records:
                last = records[-1][3]  # (key, value, timestamp, offset, headers)
                position = max(position, last + 1)
                restorer.restore_batch(records, position, last)
            elif position > restorer.position:
                restorer.restore_batch([], position)
            if restorer.done:
                restorer.finish()
                del self._restoring[key]
                done_tps.append(TopicPartition(*key))
        if done_tps:
            self.restore_consumer.incremental_unassign(done_tps)
        for entry in list(self.tasks.values()):
            if not entry.running and all(r.done for r in entry.restorers):
                self._start_task(entry)

    # -- commit -------------------------------------------------------------------------------------

    def _commit(self, force: bool) -> None:
        """Commit every task that made progress (all of them when ``force``).

        Under exactly_once_v2 the transaction commits on a helper thread while this thread goes
        on processing (:class:`_InflightCommit`); ``force`` waits for it.
        """
        if self.consumer is None or self.producer is None:
            return
        if self._inflight is not None:
            self._finish_commit(wait=True)  # one transaction commits at a time
        entries = [e for e in self.tasks.values()
                   if e.running and (force or e.task.commit_needed or e.task.context.commit_requested)]
        sending = self._out is not None
        if not entries and not (self.eos and (self._sent_since_commit if sending else self._txn_open)):
            return
        t0 = time.perf_counter()
        if self.eos and not sending and not self._txn_open:  # the stores' changelog records go into it
            self._txn_call(self.producer.begin_transaction)
            self._txn_open = True
        # Phase 1: stores send their dirty entries to the changelogs and keep them pending; the
        # flags are reset now, so records processed while an exactly_once_v2 commit is in flight
        # set them again for the next commit
        changed: list[tuple[str, int]] = []
        first_offsets = False  # a store without any changelog offset yet waits for this commit's
        offsets: list[TopicPartition] = []
        for e in entries:
            for store in e.task.stores.values():
                if hasattr(store, "prepare_commit") and store.prepare_commit() > 0 and store.changelog_topic:
                    changed.append((store.changelog_topic, e.partition))
                    first_offsets = first_offsets or store.changelog_offset is None
            for (topic, partition), (offset, ptime) in e.task.committable_offsets().items():
                offsets.append(TopicPartition(topic, partition, offset, metadata=encode_partition_time(ptime)))
            e.task.commit_needed = False
            e.task.context.commit_requested = False
        done = _InflightCommit(entries, changed, first_offsets)
        if self.eos:
            if self._production_errors:  # never commit past a record whose output was lost
                raise self._production_failure()
            records = None
            if sending:  # the helper sends them, then commits; what follows goes into the next transaction
                if len(self._out):  # sent by the commit's own job: one GIL hand-over less per commit
                    records = self._out.take()
                self._unsent_since = None
                self._sent_since_commit = False
            else:  # the producer refuses records while the transaction commits: outputs wait in the collectors
                self._set_buffering(True)
            self._inflight = done
            if self._commit_helper is None:
                self._commit_helper = _CommitHelper(f"{self.name}-commit")
            self._commit_helper.submit(done, self._commit_transaction, self.producer, offsets,
                                       self.consumer.consumer_group_metadata(), records)
            done.busy = time.perf_counter() - t0
            if force or first_offsets:
                # a store's first commit also waits for phase 2: until a store holds a changelog
                # offset, a crash makes its restart restore the whole changelog
                self._finish_commit(wait=True)
            return
        if sending:
            self._send_output()
            self._sent_since_commit = False
            if self._sends:
                self._wait_for_send(self._sends[-1])
                self._reap_sends()
        remaining = self.producer.flush(60)
        if remaining:
            raise StreamsError(f"{remaining} records were not delivered within 60 s")
        if self._production_errors:  # never commit past a record whose output was lost
            raise self._production_failure()
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and err.code() in _MIGRATED_CODES:
                    raise TaskMigratedError(f"offset commit failed: {err}") from exc
                raise
        done.busy = time.perf_counter() - t0
        self._apply_commit(done)

    def _commit_transaction(self, producer: Any, offsets: list[TopicPartition], group_metadata: Any,
                            records: OutputBuffer | None = None) -> None:
        """The helper thread of an exactly_once_v2 commit: ``records`` sent (the transaction's
        last buffer), offsets into the transaction, then commit.

        With an output buffer the helper owns the transaction's state: it opens the transaction
        (if no buffer sent did), refuses to commit one a record of which was lost, and marks it
        closed once committed; a failure makes the buffers queued behind it skip."""
        if records is not None:
            self._send_records(producer, records)
        if self._out is None:
            if offsets:
                self._txn_call(producer.send_offsets_to_transaction, offsets, group_metadata, self._txn_timeout)
            self._txn_call(producer.commit_transaction, 60)
            return
        try:
            if self._sender_error is not None:
                raise self._sender_error
            if self._production_errors:  # never commit past a record whose output was lost
                raise self._production_failure()
            if not self._txn_open:
                self._txn_call(producer.begin_transaction)
                self._txn_open = True
            if offsets:
                self._txn_call(producer.send_offsets_to_transaction, offsets, group_metadata, self._txn_timeout)
            self._txn_call(producer.commit_transaction, 60)
            self._txn_open = False
            self._txn_record_error = None
        except BaseException as exc:
            if self._sender_error is None:
                self._sender_error = exc
            raise

    def _send_output(self) -> None:
        """Hand what the tasks wrote into the output buffer to the helper thread, which sends it
        after the jobs before it (opening the transaction first when none is open). Waits for the
        oldest buffer when too many are queued."""
        out = self._out
        assert out is not None
        self._unsent_since = None
        if not len(out):
            return
        if len(self._sends) >= _MAX_SENDS_QUEUED:
            self._wait_for_send(self._sends[0])
            self._reap_sends()
        job = _HelperJob()
        if self._commit_helper is None:
            self._commit_helper = _CommitHelper(f"{self.name}-commit")
        self._commit_helper.submit(job, self._send_records, self.producer, out.take())
        self._sends.append(job)
        self._sent_since_commit = True

    def _send_records(self, producer: RdKafkaProducer, records: OutputBuffer) -> None:
        """The helper thread's part of :meth:`_send_output`. A record the producer refuses goes to
        :meth:`_on_produce_error`, as it would from the collector."""
        if self._sender_error is not None:
            records.clear()  # the transaction is lost: the tasks are rewound and process them again
            return
        try:
            if self.eos and not self._txn_open:
                self._txn_call(producer.begin_transaction)
                self._txn_open = True
            producer.send_buffer(records, self._on_produce_error, _MAX_BLOCK_S)
            producer.poll(0)
        except BaseException as exc:
            if self._sender_error is None:
                self._sender_error = exc
            raise

    def _wait_for_send(self, job: _HelperJob) -> None:
        """Wait for a buffer handed to the helper; one that never returns (the helper blocked in a
        commit, see :meth:`_finish_commit`) leaves the producer to it."""
        if not job.finished.wait(self._txn_timeout + 2.0 + _MAX_BLOCK_S):
            self._leave_producer_to_blocked_commit(replace=True)
            raise TaskMigratedError("sending the output blocked (the producer did not return)")

    def _reap_sends(self) -> None:
        """Forget the buffers the helper sent; raise what the first failed one raised."""
        sends = self._sends
        while sends and sends[0].finished.is_set():
            job = sends.popleft()
            if job.error is not None:
                raise job.error

    def _finish_commit(self, wait: bool) -> None:
        """Complete the exactly_once_v2 commit in flight, once its helper thread is done (``wait``:
        block until then). Its failure is raised here; on success the stores apply their batches
        and the records buffered meanwhile go out in the next transaction.

        librdkafka 2.16 can block in ``send_offsets_to_transaction`` far past its timeout when the
        group coordinator dies: the TxnOffsetCommit request waits for the dead broker's connection to
        come up and nothing else wakes it (confluentinc/librdkafka#5456, #5511). When the helper has
        not returned shortly after the transaction timeout (the transaction coordinator aborts the
        transaction by then anyway), the producer is left to it and replaced: the new producer's
        ``init_transactions`` fences the old one; :class:`TaskMigratedError` rewinds the tasks.
        """
        inflight = self._inflight
        assert inflight is not None
        t0 = time.perf_counter()
        if not inflight.finished.wait(self._txn_timeout + 2.0 if wait else 0):
            if not wait:
                return
            self._inflight = None
            self._leave_producer_to_blocked_commit(replace=True)
            self._set_buffering(False, drain=False)
            raise TaskMigratedError("the transaction commit blocked (the group coordinator is unreachable)")
        self._inflight = None
        if inflight.error is not None:
            self._set_buffering(False, drain=False)  # the transaction is aborted and the tasks rewound
            raise inflight.error
        if self._out is None:  # else the helper keeps both (it may have opened the next transaction)
            self._txn_open = False
            self._txn_record_error = None
        if self._production_errors:
            self._set_buffering(False, drain=False)
            raise StreamsError("; ".join(self._production_errors[:3]))
        inflight.busy += time.perf_counter() - t0  # the wait, when the helper was not done yet
        self._apply_commit(inflight)
        if self._out is not None:
            return
        if any(e.task.collector.buffered() for e in self.tasks.values()):
            assert self.producer is not None
            self._txn_call(self.producer.begin_transaction)
            self._txn_open = True
        self._set_buffering(False)

    def _leave_producer_to_blocked_commit(self, replace: bool) -> None:
        """The commit helper is still inside a call on the producer (see :meth:`_finish_commit`):
        aborting, flushing or destroying the producer under that call is unsafe, so the helper
        keeps it until the call returns. ``replace``: a new producer takes its place (its
        ``init_transactions`` fences the old one)."""
        log.warning("%s: committing the transaction did not finish within %.0f s; %s the producer",
                    self.name, self._txn_timeout + 2.0, "replacing" if replace else "leaving")
        self._retire_commit_helper()  # it stays with the blocked call; the next commit starts another
        self.producer = None
        self._txn_open = False
        self._sends.clear()  # the retired helper drops them: they belong to the lost transaction
        self._sender_error = None
        self._sent_since_commit = False
        if self._out is not None:
            self._out.clear()
            self._out = None
        if replace:
            self._create_producer()

    def _apply_commit(self, done: _InflightCommit) -> None:
        """Phase 2: stores apply their batches with the changelog end offsets asked for after the
        previous commit (changelog_ends.py says why that is safe), then we ask for this one's."""
        t0 = time.perf_counter()
        ends = self._changelog_ends.take() if self._changelog_ends is not None else {}
        if done.first_offsets and self._changelog_ends is not None:
            ends.update(self._changelog_ends.answer_now(done.changed, _FIRST_ENDS_TIMEOUT_S))
        changed = set(done.changed)
        wanted = []  # the changelogs of stores that write a batch soon
        for e in done.entries:
            for store in e.task.stores.values():
                if not hasattr(store, "prepare_commit"):
                    continue
                tp = (store.changelog_topic, e.partition)
                offset = ends.get(tp) if store.changelog_topic else None
                if store.pending_count > 0 or offset is not None:
                    store.commit(offset)
                if tp in changed and getattr(store, "offset_wanted", True):
                    wanted.append(tp)
        if self._changelog_ends is not None:
            self._changelog_ends.request(wanted)
        self._serve_idle_clients()
        self.sensors["commit"].record(1, done.busy + time.perf_counter() - t0)
        self._records_lag_max = max((lag for lag in (self._lag(t, p) for t, p in self._task_of_tp) if lag is not None),
                                    default=0)

    def _serve_idle_clients(self) -> None:
        """Serve the log lines and errors of the clients the loop does not poll: the admin client,
        and the restore consumer while nothing restores (it has no partitions then)."""
        if self.admin is not None:
            self.admin.poll(0)
        if self.restore_consumer is not None and not self._restoring:
            self._serve_restore_consumer()

    def _serve_restore_consumer(self) -> None:
        """Serve the restore consumer's own queue: its client errors and log lines. Changelog
        records never arrive there when the fetcher runs (each changelog is routed to it before
        it is assigned) nor while nothing restores (nothing is assigned)."""
        assert self.restore_consumer is not None
        self._log_restore_errors([m.error() for m in self.restore_consumer.consume(_RESTORE_BATCH, 0)
                                  if m.error() is not None])

    def _log_restore_errors(self, errors: list[KafkaError]) -> None:
        for err in errors:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("%s: restore consumer error: %s", self.name, err)

    def _set_buffering(self, on: bool, drain: bool = True) -> None:
        """Route the tasks' output to their collectors' buffers (``on``), or back to the producer,
        first sending what was buffered (``drain``) or dropping it (the tasks are being rewound)."""
        if self._out is not None:  # the output waits in the output buffer anyway
            if not on and not drain:
                self._out.clear()
            return
        self._buffering = on
        producer = None if on else self.producer
        for entry in self.tasks.values():
            collector = entry.task.collector
            collector.use_producer(producer)
            if on:
                continue
            if drain and producer is not None:
                collector.send_buffered()
            else:
                collector.drain()

    def _txn_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A transactional producer call: retried while its error is retriable (a coordinator
        moving, a broker restarting); an abortable or fatal error means the tasks must be
        rewound to the last commit (:class:`TaskMigratedError`)."""
        deadline = time.monotonic() + self.config["task.timeout.ms"] / 1000.0
        while True:
            try:
                return fn(*args)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if not isinstance(err, KafkaError):
                    raise
                if err.txn_requires_abort() and self._txn_record_error is None:
                    self._await_delivery_reports(getattr(fn, "__self__", None))
                if err.retriable() and not err.txn_requires_abort() and time.monotonic() < deadline:
                    log.info("%s: %s failed with a retriable error (%s); retrying", self.name, fn.__name__, err)
                    time.sleep(0.2)
                    continue
                if err.txn_requires_abort() and self._txn_record_error is not None:
                    # Rewinding would send the same record again and fail again, forever. Kafka
                    # Streams' thread dies here too ("Error encountered trying to commit a
                    # transaction"), whatever the production handler answered for the record.
                    raise StreamsError(f"{fn.__name__} failed: {err}. The transaction holds a record that could not "
                                       f"be delivered ({self._txn_record_error}); under exactly_once_v2 it can only "
                                       f"be aborted, so the stream thread stops") from exc
                if err.txn_requires_abort() or err.fatal() or err.code() in _MIGRATED_CODES:
                    raise TaskMigratedError(f"{fn.__name__} failed: {err}") from exc
                raise

    def _await_delivery_reports(self, producer: Any) -> None:
        """Serve the producer's delivery reports until one arrives, for up to a second.

        An abortable transaction error is often caused by a record the broker refused. The
        error reaches a transactional call (``send_offsets_to_transaction`` fails with
        ``_STATE``) a moment before the record's delivery report is served. Without this wait
        the thread took it for a passing failure and rewound the tasks. The same record then
        failed again, over and over, where it must stop (or let the handler decide)."""
        if producer is None or not hasattr(producer, "poll"):
            return
        errors = len(self._production_errors)
        until = time.monotonic() + 1.0
        while (self._txn_record_error is None and len(self._production_errors) == errors
               and time.monotonic() < until):
            producer.poll(0.05)

    # -- introspection ------------------------------------------------------------------------------

    def metrics(self) -> dict[str, float]:
        """This thread's metrics by Kafka Streams' names."""
        s = self.sensors
        return {
            "process-rate": s["process"].rate(),
            "process-latency-avg": s["process"].avg() * 1e3,
            "process-total": s["process"].total,
            "commit-rate": s["commit"].rate(),
            "commit-latency-avg": s["commit"].avg() * 1e3,
            "commit-total": s["commit"].total,
            "punctuate-rate": s["punctuate"].rate(),
            "poll-rate": s["poll"].rate(),
            "poll-total": s["poll"].total,
            "records-lag-max": float(self._records_lag_max),
        }

    def partition_buffers(self) -> dict[tuple[str, int], PartitionBuffer]:
        """The back-pressure state of every input partition this thread has tasks for."""
        out: dict[tuple[str, int], PartitionBuffer] = {}
        for key, entry in list(self._task_of_tp.items()):
            queue = entry.task.queues.get(key)
            out[key] = PartitionBuffer(queue.size() if queue is not None else 0, key in self._paused,
                                       self._bp_pauses.get(key, 0), self._bp_resumes.get(key, 0),
                                       self._bp_peak.get(key, 0))
        return out

